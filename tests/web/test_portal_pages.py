"""The customer portal (issue 15, item 5): assets and tickets open their own pages; an asset
page has the machine's health trend (the telemetry chart, scoped to the customer) with the
issues found and the visits; a ticket page has the SLA promised and kept and what the engineer
did, without the engineer's internal notes. Another customer's pages answer 404."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from tests.support.world import ServedWorld
from tests.web.test_work_order_pages import _completed

pytestmark = pytest.mark.db


def test_home_links_assets_and_tickets_and_keeps_health_and_sla_on_phones(
        world: ServedWorld, customer_user: Any, browser_client: Any) -> None:
    page = browser_client(customer_user).get("/portal/").content.decode()
    assert f'href="/portal/assets/{world.north.asset.pk}/"' in page
    assert f'href="/portal/tickets/{world.north.ticket.pk}/"' in page
    # The phone stylesheet hides the 4th column onwards of ordinary lists: these keep theirs.
    assert '<table class="list keep-cols" data-testid="portal-assets">' in page
    assert '<table class="list keep-cols" data-testid="portal-tickets">' in page
    assert "awaiting your answer" in page  # the sent offer


def test_customer_asset_page_has_health_trend_issues_and_tickets(
        world: ServedWorld, customer_user: Any, browser_client: Any) -> None:
    response = browser_client(customer_user).get(f"/portal/assets/{world.north.asset.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert world.north.asset.serial in page
    assert f'data-telemetry-url="/api/v1/assets/{world.north.asset.pk}/telemetry/"' in page
    assert world.north.episode.failure_mode.name in page
    assert "being handled" in page
    assert f'href="/portal/tickets/{world.north.ticket.pk}/"' in page
    markers = response.context["markers"]
    assert [mk["kind"] for mk in markers] == ["alert", "work_order"]


def test_customer_telemetry_is_scoped(world: ServedWorld, customer_user: Any,
                                      browser_client: Any) -> None:
    client = browser_client(customer_user)
    own = client.get(f"/api/v1/assets/{world.north.asset.pk}/telemetry/")
    assert own.status_code == 200
    assert client.get(f"/api/v1/assets/{world.south.asset.pk}/telemetry/").status_code == 404


def test_other_customers_pages_are_404_and_staff_get_403(
        world: ServedWorld, customer_user: Any, desk_agent: Any, browser_client: Any) -> None:
    client = browser_client(customer_user)
    assert client.get(f"/portal/assets/{world.south.asset.pk}/").status_code == 404
    assert client.get(f"/portal/tickets/{world.south.ticket.pk}/").status_code == 404
    assert client.get("/portal/assets/999999/").status_code == 404
    desk = browser_client(desk_agent)
    assert desk.get(f"/portal/assets/{world.north.asset.pk}/").status_code == 403
    assert desk.get(f"/portal/tickets/{world.north.ticket.pk}/").status_code == 403


def test_ticket_page_shows_visit_and_sla_before_and_after_completion(
        world: ServedWorld, customer_user: Any, desk_agent: Any, field_engineer: Any,
        browser_client: Any) -> None:
    client = browser_client(customer_user)
    url = f"/portal/tickets/{world.north.ticket.pk}/"
    before = client.get(url).content.decode()
    assert str(world.north.work_order) in before
    assert "Resolution by" in before
    wo = _completed(world, desk_agent, field_engineer)
    # Notes are saved while the job runs (the field service); set here to check they stay out.
    m.WorkOrder.objects.filter(pk=wo.pk).update(
        notes="Customer's operator was rude; internal only.")
    after = client.get(url).content.decode()
    assert "Replaced the drive-end bearing." in after
    assert "2 × Bearing 6205" in after
    assert "1 h 35 min" in after
    assert "rude" not in after  # the engineer's notes stay internal
    assert 'data-testid="ticket-sla-resolution"><span class="badge ok">kept</span>' in after
