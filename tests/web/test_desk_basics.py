"""Desk basics (issue 15, item 8): a filter the list does not know is refused with the values it
does know, an alerts page, one search box for serials, devices, accounts and numbers, detaching
a device is asked first, and 403/404 answer in the site's look."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


@pytest.mark.parametrize(("url", "named"), [
    ("/desk/tickets/?status=bogus", "status"),
    ("/desk/episodes/?status=bogus", "status"),
    ("/desk/episodes/?severity=huge", "severity"),
    ("/desk/offers/?status=bogus", "status"),
    ("/desk/alerts/?state=gone", "state"),
])
def test_unknown_filter_is_refused_with_the_values_allowed(
        world: ServedWorld, desk_agent: Any, browser_client: Any, url: str, named: str) -> None:
    response = browser_client(desk_agent).get(url)
    assert response.status_code == 400
    body = response.content.decode()
    assert f"Unknown {named}" in body
    assert "choose one of" in body
    # Nothing listed as if the filter were not there.
    assert world.north.ticket.number not in body
    assert world.north.asset.serial not in body


def test_known_filters_still_filter(world: ServedWorld,
        desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(desk_agent)
    assert world.north.ticket.number in client.get("/desk/tickets/?status=open").content.decode()
    closed = client.get("/desk/tickets/?status=closed")
    assert closed.status_code == 200
    assert world.north.ticket.number not in closed.content.decode()


def test_alerts_page_lists_alerts_by_asset_not_internal_id(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    body = browser_client(desk_agent).get("/desk/alerts/").content.decode()
    assert world.north.asset.serial in body
    assert world.south.asset.serial in body
    assert "vibration_rms_mm_s 7.10 (usual 2.80)" in body
    assert f">{world.north.alert.alert_id}<" not in body  # the raw id only as a tooltip
    open_only = browser_client(desk_agent).get("/desk/alerts/?state=clear").content.decode()
    assert world.north.asset.serial not in open_only


def test_alerts_page_closed_to_engineers_and_customers(
        world: ServedWorld, field_engineer: Any, customer_user: Any, browser_client: Any) -> None:
    assert browser_client(field_engineer).get("/desk/alerts/").status_code == 403
    assert browser_client(customer_user).get("/desk/alerts/").status_code == 403


@pytest.mark.parametrize("query", ["serial", "device", "account", "ticket", "ticket-short"])
def test_search_opens_the_one_match(world: ServedWorld, desk_agent: Any, browser_client: Any,
                                    query: str) -> None:
    side = world.north
    q, url = {
        "serial": (side.asset.serial, f"/desk/assets/{side.asset.pk}/"),
        "device": ("cmp-n1", f"/desk/assets/{side.asset.pk}/"),
        "account": ("nordwerk", f"/desk/accounts/{side.account.pk}/"),
        "ticket": (side.ticket.number, f"/desk/tickets/{side.ticket.pk}/"),
        "ticket-short": (f"t-{side.ticket.pk}", f"/desk/tickets/{side.ticket.pk}/"),
    }[query]
    response = browser_client(desk_agent).get("/desk/search/", {"q": q})
    assert response.status_code == 302
    assert response["Location"] == url


def test_search_lists_several_and_says_when_nothing(world: ServedWorld, desk_agent: Any,
                                                    browser_client: Any) -> None:
    client = browser_client(desk_agent)
    several = client.get("/desk/search/", {"q": "SN-"}).content.decode()
    assert world.north.asset.serial in several
    assert world.south.pump.serial in several
    nothing = client.get("/desk/search/", {"q": "CMP-2022-00005"}).content.decode()
    assert 'data-testid="search-empty"' in nothing


def test_search_stays_in_the_users_scope(world: ServedWorld, field_engineer: Any) -> None:
    from service_crm.selectors.search import desk_search

    found = desk_search(user=field_engineer, query=world.south.ticket.number)
    assert found.total == 0
    found = desk_search(user=field_engineer, query="SN-")
    assert world.north.asset in found.assets
    assert world.south.asset not in found.assets


def test_detach_asks_first_then_detaches(world: ServedWorld, desk_agent: Any,
                                         browser_client: Any) -> None:
    client = browser_client(desk_agent)
    asked = client.get("/desk/devices/cmp-n1/release/")
    assert asked.status_code == 200
    assert 'data-testid="detach-confirm"' in asked.content.decode()
    # A POST without the confirmation only asks again.
    assert client.post("/desk/devices/cmp-n1/release/").status_code == 200
    assert m.DeviceLink.objects.filter(device_key="cmp-n1").exists()
    done = client.post("/desk/devices/cmp-n1/release/", {"confirm": "yes"})
    assert done.status_code == 302
    assert not m.DeviceLink.objects.filter(device_key="cmp-n1").exists()


def test_error_pages_in_the_sites_look(world: ServedWorld, customer_user: Any, desk_agent: Any,
                                       browser_client: Any) -> None:
    missing = browser_client(desk_agent).get("/desk/tickets/999999/")
    assert missing.status_code == 404
    assert 'data-testid="error-page"' in missing.content.decode()
    assert "Not found" in missing.content.decode()
    refused = browser_client(customer_user).get("/desk/tickets/")
    assert refused.status_code == 403
    body = refused.content.decode()
    assert 'data-testid="error-page"' in body
    assert "Your role does not open this page." in body
    assert "Log out" in body  # the site's header, not a bare page


def test_episode_evidence_reads_as_times_not_internal_ids(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    body = browser_client(desk_agent).get(
        f"/desk/episodes/{world.north.episode.pk}/").content.decode()
    alert = world.north.alert
    assert f"<td>{alert.alert_id} r{alert.revision}</td>" not in body
    assert f'title="{alert.alert_id} r{alert.revision}"' in body
    assert "<td>2.80</td>" in body  # the usual value (baseline) of the evidence


def test_pager_keeps_the_filters(world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    from service_crm.services.alerts import alert_ingest
    from tests import factories as f

    for i in range(55):  # past one page of 50
        alert_ingest(event=f.alert_event("cmp-n1", at=world.now, failure_mode=f"mode_{i}"),
                     now=world.now)
    body = browser_client(desk_agent).get("/desk/episodes/?severity=warning").content.decode()
    assert "severity=warning&amp;page=2" in body


def test_asset_list_finds_by_serial_device_or_account(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(desk_agent)
    everything = client.get("/desk/assets/").content.decode()
    for side in (world.north, world.south):
        assert side.asset.serial in everything
        assert side.pump.serial in everything
    by_device = client.get("/desk/assets/", {"q": "pmp-s1"}).content.decode()
    assert world.south.pump.serial in by_device
    assert world.north.asset.serial not in by_device
    by_account = client.get("/desk/assets/", {"q": "Südhof"}).content.decode()
    assert world.south.asset.serial in by_account
    assert world.north.asset.serial not in by_account
