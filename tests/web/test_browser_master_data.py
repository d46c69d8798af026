"""Master data in real Chromium (issue 16 item 5): the desk finds a likely duplicate account,
is asked before merging it, merges; checks a CSV import with a dry run that reports an error
by line and stores nothing; reads the data-quality report. Desktop and a 390x844 phone;
screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service_crm import models as m
from tests import factories as f
from tests.support.web import ARTIFACTS, desk_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]


@pytest.mark.parametrize(("name", "viewport"), [
    ("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})])
def test_desk_merges_a_duplicate_and_dry_runs_an_import(
        browser: Any, live_server: Any, live_world: ServedWorld, desk_agent: Any,
        tmp_path: Path, name: str, viewport: dict[str, int]) -> None:
    keep = f.AccountFactory(name="Kältewerk Rhein GmbH")
    twin = f.AccountFactory(name="KÄLTEWERK RHEIN AG")
    f.SiteFactory(account=twin, name="Werk Köln")
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors,
                              viewport=viewport, is_mobile=name == "phone")

    page.goto(f"{live_server.url}/desk/data/duplicates/")
    pairs = page.locator("[data-testid=account-pairs] tbody tr", has_text="Kältewerk Rhein")
    assert pairs.count() == 1, page.inner_text("[data-testid=account-pairs]")
    page.screenshot(path=ARTIFACTS / f"master-duplicates-{name}.png", full_page=True)
    first = page.inner_text("[data-testid=account-pairs] tbody tr >> nth=0 >> td >> nth=0")
    pairs.locator("text=keep the first").click()
    # Asked first: what stays, what goes, nothing merged yet.
    page.wait_for_selector("[data-testid=keep]")
    assert page.inner_text("[data-testid=keep]") == first
    assert m.Account.objects.filter(pk__in=[keep.pk, twin.pk]).count() == 2
    page.screenshot(path=ARTIFACTS / f"master-merge-confirm-{name}.png", full_page=True)
    page.click("button:text('Merge')")
    page.wait_for_selector("text=merged into")
    left = m.Account.objects.filter(pk__in=[keep.pk, twin.pk])
    assert left.count() == 1
    assert m.Site.objects.get(name="Werk Köln").account_id == left.get().pk
    assert m.AuditLog.objects.filter(action__startswith="account.merge").exists()

    csv = tmp_path / "accounts.csv"
    csv.write_text("name,vat_id\nNeukunde Süd GmbH,\nFalsch GmbH,DE123\n", encoding="utf-8")
    page.goto(f"{live_server.url}/desk/data/import/")
    page.select_option("select[name=kind]", "accounts")
    page.set_input_files("input[name=file]", str(csv))
    page.check("input[name=dry_run]")
    page.click("button:text('Import')")
    report = page.wait_for_selector("[data-testid=import-report]")
    text = report.inner_text()
    assert "vat_id" in text, text  # the bad VAT id, named by its column ...
    assert "3" in text, text  # ... and its line
    assert not m.Account.objects.filter(name="Neukunde Süd GmbH").exists()
    page.screenshot(path=ARTIFACTS / f"master-import-{name}.png", full_page=True)

    page.goto(f"{live_server.url}/desk/data/quality/")
    assert page.locator("[data-testid=quality-summary] tbody tr").count() >= 3
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
    assert errors == []
    context.close()
