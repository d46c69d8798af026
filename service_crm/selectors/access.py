"""Guarded reads: what a signed-in user may see, one function per object type.

Every page and API endpoint reads CRM objects through these selectors, so the answer to "may
this user see that?" lives in one place. An object outside the user's scope raises
:class:`~django.http.Http404`, exactly as if it did not exist: a customer must not learn that
another account's ticket number is taken.

Scopes, from the roles a user holds:

- admin (superuser), desk agent, service manager, account/sales manager: the whole fleet;
- field engineer (a user linked to an :class:`Engineer`): the sites of their region, and of
  work orders only their own;
- customer user (a user linked to a :class:`Contact`): their own account only, and of offers
  only those sent to the account (never drafts);
- anyone else: nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.http import Http404

from aftercare.store.rollups import RollupRow, rollup_sql
from service_crm.models import (
    Account,
    Alert,
    Asset,
    Contact,
    ContractDocument,
    DeviceLink,
    Engineer,
    Episode,
    Interaction,
    MaintenanceContract,
    Offer,
    Ticket,
    WorkOrder,
)
from service_crm.models.choices import OfferStatus
from service_crm.models.ticket import TicketQuerySet


class Role(enum.StrEnum):
    """Roles are Django groups of these names, except admin (superuser), field engineer (a
    linked Engineer) and customer (a linked Contact): a link is what gives a scope."""

    ADMIN = "admin"
    DESK_AGENT = "desk_agent"
    SERVICE_MANAGER = "service_manager"
    SALES_MANAGER = "sales_manager"
    FIELD_ENGINEER = "field_engineer"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER, Role.SALES_MANAGER})
CUSTOMER_VISIBLE_OFFERS = (OfferStatus.SENT, OfferStatus.ACCEPTED, OfferStatus.DECLINED,
                           OfferStatus.EXPIRED)
# Group name -> role. The display names are the groups `seed_demo` creates; either spelling
# grants the role, so demo data and `web.roles.assign_role` agree.
GROUP_ROLES: dict[str, Role] = {
    "desk_agent": Role.DESK_AGENT, "Service desk": Role.DESK_AGENT,
    "service_manager": Role.SERVICE_MANAGER, "Managers": Role.SERVICE_MANAGER,
    "sales_manager": Role.SALES_MANAGER, "Sales": Role.SALES_MANAGER,
}


@dataclass(frozen=True)
class Scope:
    """What part of the CRM a user sees; exactly one of the fields decides."""

    roles: frozenset[Role]
    everything: bool = False
    region: str | None = None
    engineer_id: int | None = None
    account_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.everything


def scope_for(*, user: Any) -> Scope:
    """The user's roles and scope, computed once per user object (i.e. once per request)."""
    cached = getattr(user, "_aftercare_scope", None)
    if isinstance(cached, Scope):
        return cached
    scope = _compute_scope(user)
    if getattr(user, "is_authenticated", False):
        user._aftercare_scope = scope
    return scope


def _compute_scope(user: Any) -> Scope:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Scope(roles=frozenset())
    roles: set[Role] = set()
    if user.is_superuser:
        roles.add(Role.ADMIN)
    roles.update(GROUP_ROLES[name] for name in user.groups.values_list("name", flat=True)
                 if name in GROUP_ROLES)
    engineer = Engineer.objects.filter(user=user).only("pk", "region").first()
    contact = Contact.objects.filter(user=user).only("pk", "account_id").first()
    if engineer is not None:
        roles.add(Role.FIELD_ENGINEER)
    if contact is not None:
        roles.add(Role.CUSTOMER)
    frozen = frozenset(roles)
    if frozen & STAFF_ROLES:
        return Scope(roles=frozen, everything=True)
    if engineer is not None:
        return Scope(roles=frozen, region=engineer.region, engineer_id=engineer.pk)
    if contact is not None:
        return Scope(roles=frozen, account_id=contact.account_id)
    return Scope(roles=frozen)


def has_role(*, user: Any, roles: frozenset[Role] | set[Role]) -> bool:
    return bool(scope_for(user=user).roles & roles)


M = TypeVar("M", bound=Model)


def _scoped(qs: QuerySet[M], scope: Scope, *, account: str, region: str | None) -> QuerySet[M]:
    """Narrow ``qs`` by the lookup paths to the account id and to the site region."""
    if scope.everything:
        return qs
    if scope.account_id is not None:
        return qs.filter(**{account: scope.account_id})
    if scope.region is not None and region is not None:
        return qs.filter(**{region: scope.region})
    return qs.none()


def _get(qs: QuerySet[M], pk: object, what: str) -> M:
    try:
        obj = qs.filter(pk=pk).first()
    except (TypeError, ValueError):
        obj = None
    if obj is None:
        raise Http404(f"No {what} {pk}.")
    return obj


# --- accounts -----------------------------------------------------------------------------

def account_list_for_user(*, user: Any) -> QuerySet[Account]:
    scope = scope_for(user=user)
    qs = Account.objects.all()
    if scope.region is not None and not scope.everything:
        # Region-wide: accounts with at least one site there (subquery keeps rows unique).
        return qs.filter(pk__in=Account.objects.filter(sites__region=scope.region).values("pk"))
    return _scoped(qs, scope, account="pk", region=None)


def account_get_for_user(*, user: Any, pk: object) -> Account:
    return _get(account_list_for_user(user=user), pk, "account")


def contact_list_for_user(*, user: Any) -> QuerySet[Contact]:
    """People at customer accounts: staff see all; a customer sees only themself (their
    colleagues' details are not theirs to see); engineers none."""
    scope = scope_for(user=user)
    if scope.everything:
        return Contact.objects.select_related("account")
    return Contact.objects.filter(user_id=getattr(user, "pk", None) or 0)


def contact_get_for_user(*, user: Any, pk: object) -> Contact:
    return _get(contact_list_for_user(user=user), pk, "contact")


def interaction_list_for_account(*, user: Any, account: Account) -> QuerySet[Interaction]:
    """The account timeline; staff only (it holds internal notes), empty for anyone else."""
    account_get_for_user(user=user, pk=account.pk)
    if not scope_for(user=user).everything:
        return Interaction.objects.none()
    return Interaction.objects.filter(account=account).select_related("by", "ticket", "asset")


def contract_list_for_user(*, user: Any) -> QuerySet[MaintenanceContract]:
    return _scoped(MaintenanceContract.objects.select_related("account"), scope_for(user=user),
                   account="account_id", region=None)


def contract_get_for_user(*, user: Any, pk: object) -> MaintenanceContract:
    return _get(contract_list_for_user(user=user), pk, "contract")


def contract_document_list_for_user(*, user: Any) -> QuerySet[ContractDocument]:
    return ContractDocument.objects.select_related("contract").filter(
        contract__in=contract_list_for_user(user=user))


def contract_document_get_for_user(*, user: Any, pk: object) -> ContractDocument:
    return _get(contract_document_list_for_user(user=user), pk, "contract document")


# --- assets and devices -------------------------------------------------------------------

def asset_list_for_user(*, user: Any) -> QuerySet[Asset]:
    return _scoped(
        Asset.objects.select_related("site__account", "equipment_model"),
        scope_for(user=user), account="site__account_id", region="site__region",
    )


def asset_get_for_user(*, user: Any, pk: object) -> Asset:
    return _get(asset_list_for_user(user=user), pk, "asset")


@dataclass(frozen=True)
class DeviceRow:
    """A device as the store saw it, with the asset that claimed it (None: unclaimed)."""

    device_key: str
    first_seen: dt.datetime
    last_seen: dt.datetime | None
    state: str | None
    asset_id: int | None


# A device's state as the desk should see it: what it last said on its status topic, except
# that a device the detector has found silent for longer than a few of its own reporting
# intervals (an open "device offline" alert) is offline even though it never said so (a
# device whose link died without its will being sent, or one that stays connected but silent).
DEVICE_STATE_SQL = (
    "CASE WHEN EXISTS (SELECT 1 FROM service_crm_alert a WHERE a.device_key = d.device_key "
    "AND a.kind = 'device' AND a.failure_mode_code = 'device_offline' AND a.state <> 'clear') "
    "THEN 'offline' ELSE d.state END")


def device_list_for_user(*, user: Any, unclaimed: bool | None = None,
                         device_key: str | None = None,
                         limit: int = 500, offset: int = 0) -> list[DeviceRow]:
    """Devices seen on the broker. Unclaimed devices belong to nobody yet, so only staff see
    them; others see the devices of the assets they can see."""
    scope = scope_for(user=user)
    if not scope.everything:
        if unclaimed:
            return []
        keys = list(DeviceLink.objects.filter(asset__in=asset_list_for_user(user=user))
                    .values_list("device_key", flat=True))
        if not keys:
            return []
    sql = (f"SELECT d.device_key, d.first_seen, d.last_seen, {DEVICE_STATE_SQL}, l.asset_id "
           "FROM devices d LEFT JOIN service_crm_devicelink l ON l.device_key = d.device_key "
           "WHERE TRUE")
    params: list[Any] = []
    if unclaimed is True:
        sql += " AND l.id IS NULL"
    elif unclaimed is False:
        sql += " AND l.id IS NOT NULL"
    if not scope.everything:
        sql += " AND d.device_key = ANY(%s)"
        params.append(keys)
    if device_key is not None:
        sql += " AND d.device_key = %s"
        params.append(device_key)
    sql += " ORDER BY d.device_key LIMIT %s OFFSET %s"
    params += [limit, offset]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return [DeviceRow(*row) for row in cur.fetchall()]


def device_counts_for_user(*, user: Any) -> dict[str, int]:
    """How many of the devices the user may see are online, offline, of unknown state, and
    (staff only) unclaimed: the fleet-health figures of the dashboard."""
    scope = scope_for(user=user)
    sql = (f"SELECT coalesce({DEVICE_STATE_SQL}, 'unknown'), l.id IS NULL, count(*) "
           "FROM devices d "
           "LEFT JOIN service_crm_devicelink l ON l.device_key = d.device_key")
    params: list[Any] = []
    if not scope.everything:
        sql += " WHERE d.device_key = ANY(%s)"
        params.append(list(DeviceLink.objects.filter(
            asset__in=asset_list_for_user(user=user)).values_list("device_key", flat=True)))
    sql += " GROUP BY 1, 2"
    counts = {"online": 0, "offline": 0, "unknown": 0, "unclaimed": 0}
    with connection.cursor() as cur:
        cur.execute(sql, params)
        for state, unclaimed, n in cur.fetchall():
            counts["unclaimed" if unclaimed else state] += n
    return counts


def device_get_for_user(*, user: Any, device_key: str) -> DeviceRow:
    rows = device_list_for_user(user=user, device_key=device_key, limit=1)
    if not rows:
        raise Http404(f"No device {device_key}.")
    return rows[0]


def asset_telemetry_for_user(
    *, user: Any, pk: object, start: dt.datetime, end: dt.datetime,
    resolution: Literal["1m", "1h"] = "1h", metrics: list[str] | None = None,
) -> list[RollupRow]:
    """Rollups of the asset's devices in [start, end), oldest first, from the store's views:
    the store's own query (:func:`aftercare.store.rollups.rollup_sql`), read on Django's
    connection."""
    sql, params = rollup_sql(devices=[], metrics=metrics or None, start=start, end=end,
                             resolution=resolution, order="time")      # checks the arguments
    asset = asset_get_for_user(user=user, pk=pk)
    keys = list(asset.devices.values_list("device_key", flat=True))
    if not keys:
        return []
    params[0] = keys
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return [RollupRow(*row) for row in cur.fetchall()]


# --- alerts and episodes ------------------------------------------------------------------

def episode_list_for_user(*, user: Any) -> QuerySet[Episode]:
    return _scoped(
        Episode.objects.select_related("asset__site__account", "failure_mode"),
        scope_for(user=user), account="asset__site__account_id", region="asset__site__region",
    )


def episode_get_for_user(*, user: Any, pk: object) -> Episode:
    return _get(episode_list_for_user(user=user), pk, "episode")


def alert_list_for_user(*, user: Any) -> QuerySet[Alert]:
    """Alerts of unclaimed devices (no asset) are visible to staff only."""
    return _scoped(
        Alert.objects.select_related("asset__site"),
        scope_for(user=user), account="asset__site__account_id", region="asset__site__region",
    )


def alert_get_for_user(*, user: Any, pk: object) -> Alert:
    return _get(alert_list_for_user(user=user), pk, "alert")


# --- tickets and work orders --------------------------------------------------------------

def ticket_list_for_user(*, user: Any) -> TicketQuerySet:
    return cast(TicketQuerySet, _scoped(
        Ticket.objects.select_related("account", "asset__site", "episode", "assigned_to"),
        scope_for(user=user), account="account_id", region="asset__site__region",
    ))


def ticket_get_for_user(*, user: Any, pk: object) -> Ticket:
    return _get(ticket_list_for_user(user=user), pk, "ticket")


def work_order_list_for_user(*, user: Any) -> QuerySet[WorkOrder]:
    """Engineers see their own work orders only; customers those on their account's tickets."""
    scope = scope_for(user=user)
    qs = WorkOrder.objects.select_related("ticket__asset__site__account", "engineer")
    if scope.everything:
        return qs
    if scope.engineer_id is not None:
        return qs.filter(engineer_id=scope.engineer_id)
    if scope.account_id is not None:
        return qs.filter(ticket__account_id=scope.account_id)
    return qs.none()


def work_order_get_for_user(*, user: Any, pk: object) -> WorkOrder:
    return _get(work_order_list_for_user(user=user), pk, "work order")


# --- offers -------------------------------------------------------------------------------

def offer_list_for_user(*, user: Any) -> QuerySet[Offer]:
    """Customers see offers once sent; engineers see none (commercial data)."""
    scope = scope_for(user=user)
    qs = Offer.objects.select_related("account", "asset", "approved_by", "created_by")
    if scope.everything:
        return qs
    if scope.account_id is not None:
        return qs.filter(Q(account_id=scope.account_id)
                         & Q(status__in=CUSTOMER_VISIBLE_OFFERS))
    return qs.none()


def offer_get_for_user(*, user: Any, pk: object) -> Offer:
    return _get(offer_list_for_user(user=user), pk, "offer")
