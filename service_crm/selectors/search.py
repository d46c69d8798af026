"""The desk's one search box: an asset serial, a device id, an account name or a ticket,
work-order or offer number finds the thing, within what the user may see."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from service_crm.models import Account, Asset, Offer, Ticket, WorkOrder
from service_crm.selectors import access

LIMIT = 20  # per kind: a search box answers with a short list, not a report
_NUMBER = re.compile(r"^\s*(T|WO|Q)-?0*(\d{1,9})\s*$", re.IGNORECASE)


@dataclass
class SearchResult:
    """What one query found, by kind (each list at most LIMIT long)."""

    query: str
    assets: list[Asset] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    work_orders: list[WorkOrder] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (len(self.assets) + len(self.accounts) + len(self.tickets)
                + len(self.work_orders) + len(self.offers))


def desk_search(*, user: Any, query: str) -> SearchResult:
    """Find assets (serial, device id), accounts (name) and tickets, work orders and offers
    (by number: ``T-000012``, ``WO-12``, ``Q-7``; by a ticket's summary words when no asset
    or account matched).

    Everything goes through the user's scope, so nobody finds what they may not open.
    """
    q = query.strip()
    result = SearchResult(query=q)
    if not q:
        return result
    number = _NUMBER.match(q)
    if number:
        prefix, pk = number.group(1).upper(), int(number.group(2))
        if prefix == "T":
            result.tickets = list(access.ticket_list_for_user(user=user).filter(pk=pk))
        elif prefix == "WO":
            result.work_orders = list(access.work_order_list_for_user(user=user).filter(pk=pk))
        else:
            result.offers = list(access.offer_list_for_user(user=user).filter(pk=pk))
        return result
    result.assets = list(access.asset_list_for_user(user=user).filter(
        Q(serial__icontains=q) | Q(devices__device_key__icontains=q)).distinct()
        .order_by("serial")[:LIMIT])
    result.accounts = list(access.account_list_for_user(user=user).filter(
        name__icontains=q).order_by("name")[:LIMIT])
    if not (result.assets or result.accounts):
        # Summary words last: a serial or an account name also appears in ticket summaries,
        # and should open the asset or account, not list its tickets beside it.
        result.tickets = list(access.ticket_list_for_user(user=user).filter(
            summary__icontains=q).order_by("-opened_at")[:LIMIT])
    return result
