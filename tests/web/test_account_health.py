"""One account health everywhere (issue 15, item 7): the account list, the account page and
the renewals pipeline show 100 minus the at-risk report's score, so an account with open
critical episodes never reads healthier than a quiet one; a contract that renews
automatically is not called an opportunity."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from service_crm import models as m
from service_crm.selectors import reports
from service_crm.services.alerts import alert_ingest
from tests import factories as f
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def _health_on(body: str, account: m.Account) -> int:
    row = re.search(rf"{re.escape(account.name)}</a>.*?data-score=\"(\d+)\"", body, re.S)
    assert row, body[:2000]
    return int(row.group(1))


def test_critical_episodes_lower_health_on_every_page(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    for mode in ("bearing_wear", "seal_leak", "motor_overheat"):
        alert_ingest(event=f.alert_event("cmp-n1", at=world.now, severity="critical",
                                         failure_mode=mode), now=world.now)
    north, south = world.north.account, world.south.account
    risk = reports.account_health_get_many(user=desk_agent, now=world.now,
                                           account_ids=[north.pk, south.pk])
    assert risk[north.pk].open_critical_episodes == 3
    assert risk[north.pk].health == 70
    assert risk[south.pk].health == 100
    client = browser_client(desk_agent)
    listing = client.get("/desk/accounts/").content.decode()
    assert _health_on(listing, north) == 70
    assert _health_on(listing, south) == 100
    page = client.get(f"/desk/accounts/{north.pk}/").content.decode()
    assert 'data-score="70"' in page
    assert "3 open critical episodes" in page
    # The at-risk report lists the same account with the same signals.
    at_risk = {a.account_id: a for a in reports.account_list_at_risk(user=desk_agent,
                                                                     now=world.now)}
    assert 100 - at_risk[north.pk].score == 70


def test_renewals_sets_automatic_renewals_apart(world: ServedWorld, desk_agent: Any,
                                                browser_client: Any) -> None:
    soon = (world.now + dt.timedelta(days=30)).date()
    m.MaintenanceContract.objects.filter(account=world.south.account).update(end=soon)
    m.MaintenanceContract.objects.filter(account=world.north.account).update(
        end=soon, auto_renew=True)
    page = browser_client(desk_agent).get("/desk/renewals/").content.decode()
    table, _, auto = page.partition('data-testid="auto-renew"')
    assert "Südhof Logistik AG" in table
    assert "Nordwerk Foods GmbH" not in table
    assert "Nordwerk Foods GmbH" in auto
    # South's contract ends within 90 days, not renewed: the report's 20 points, health 80.
    assert _health_on(table, world.south.account) == 80
