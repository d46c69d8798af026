"""One account health, also outside the desk pages (issue 15, items 6/7): the API's
`health_score` and the admin's account list say what the desk pages say (100 minus the
at-risk score): there is no stored copy to go stale."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm.services.alerts import alert_ingest
from tests import factories as f
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def test_api_and_admin_give_the_desk_pages_health(world: ServedWorld, desk_agent: Any, api: Any,
                                                  browser_client: Any) -> None:
    for mode in ("bearing_wear", "seal_leak"):
        alert_ingest(event=f.alert_event("cmp-n1", at=world.now, severity="critical",
                                         failure_mode=mode), now=world.now)
    north = world.north.account
    listing = api(desk_agent).get("/api/v1/accounts/").json()
    rows = listing["results"] if isinstance(listing, dict) else listing
    by_id = {r["id"]: r["health_score"] for r in rows}
    assert by_id[north.pk] == 70  # two open critical episodes: 2 x 15
    assert by_id[world.south.account.pk] == 100
    one = api(desk_agent).get(f"/api/v1/accounts/{north.pk}/").json()
    assert one["health_score"] == 70
    page = browser_client(desk_agent).get(f"/desk/accounts/{north.pk}/").content.decode()
    assert 'data-score="70"' in page
    boss = f.UserFactory(username="root", is_staff=True, is_superuser=True)
    admin_page = browser_client(boss).get("/admin/service_crm/account/").content.decode()
    assert '<td class="field-health">70</td>' in admin_page
