"""The data-quality page and API: office staff see the checks with links to the records to
fix; engineers and customers are refused. One Chromium walk from the Operations page to a
finding's record."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from tests import factories as f
from tests.support.web import ARTIFACTS, desk_page
from tests.support.world import ServedWorld


def _problems(world: ServedWorld) -> m.Account:
    m.Contact.objects.filter(pk=world.north.buyer.pk).update(phone="040 55")
    return f.AccountFactory(name="Ohne Standort GmbH")


@pytest.mark.db
def test_desk_page_and_api_list_findings_for_staff_only(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, customer_user: Any,
        browser_client: Any, api: Any) -> None:
    bare = _problems(world)
    page = browser_client(desk_agent).get("/desk/data/quality/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<a href="/desk/accounts/{bare.pk}/">Ohne Standort GmbH</a>' in html
    assert "is not in international form" in html
    assert browser_client(field_engineer).get("/desk/data/quality/").status_code == 403
    checks = {c["key"]: c for c in api(desk_agent).get("/api/v1/data-quality/").json()}
    assert {"kind": "account", "id": bare.pk, "account_id": bare.pk,
            "label": "Ohne Standort GmbH", "problem": "no site"} in \
        checks["account_no_site"]["findings"]
    assert checks["contact_invalid"]["count"] == 1
    assert api(customer_user).get("/api/v1/data-quality/").status_code == 403
    assert api(field_engineer).get("/api/v1/data-quality/").status_code == 403


@pytest.mark.browser
@pytest.mark.db
def test_desk_opens_a_finding_in_chromium(browser: Any, live_server: Any,
                                          live_world: ServedWorld, desk_agent: Any) -> None:
    bare = _problems(live_world)
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors)
    page.goto(f"{live_server.url}/desk/operations/")
    page.click("text=Data quality")
    page.wait_for_url(f"{live_server.url}/desk/data/quality/")
    assert page.inner_text("[data-testid=count-account_no_site]") == "1"
    assert page.inner_text("[data-testid=count-contact_invalid]") == "1"
    page.screenshot(path=ARTIFACTS / "data-quality.png", full_page=True)
    page.click("[data-testid=check-account_no_site] >> text=Ohne Standort GmbH")
    page.wait_for_url(f"{live_server.url}/desk/accounts/{bare.pk}/")
    context.close()
    assert errors == []
