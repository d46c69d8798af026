"""Service operations in real Chromium (issue 16): from the Operations page the desk opens the
invoice draft of a job's billable work and approves it, logs a call with a follow-up on the
account timeline and ticks the task off; on a desktop and a 390x844 phone. Screenshots go to
test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.models.choices import InvoiceStatus
from service_crm.services.billing import invoice_drafts_build
from tests.support.web import ARTIFACTS, billable_job, desk_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]
H = dt.timedelta(hours=1)


def _draft(world: ServedWorld) -> m.Invoice:
    billable_job(world)
    invoice_drafts_build(now=world.now + 3 * H)
    return m.Invoice.objects.get()


@pytest.mark.parametrize(("name", "viewport"), [
    ("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})])
def test_desk_approves_an_invoice_and_logs_a_call(browser: Any, live_server: Any,
                                                  live_world: ServedWorld, desk_agent: Any,
                                                  name: str,
                                                  viewport: dict[str, int]) -> None:
    world = live_world
    invoice = _draft(world)
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors,
                              viewport=viewport, is_mobile=name == "phone")

    page.goto(f"{live_server.url}/desk/operations/")
    assert page.inner_text("[data-testid=ops-drafts]") == "1"
    page.click("text=Invoice drafts")
    page.click(f"text={invoice.number}")
    page.wait_for_url(f"{live_server.url}/desk/invoices/{invoice.pk}/")
    assert page.inner_text("[data-testid=invoice-total]") == "179.50"
    page.screenshot(path=ARTIFACTS / f"ops-invoice-draft-{name}.png", full_page=True)
    page.click("text=Approve and send to the ERP")
    page.wait_for_selector("text=approved; the ERP is told")
    assert page.inner_text("[data-testid=invoice-status]") == "Approved"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.APPROVED

    account = world.north.account
    page.goto(f"{live_server.url}/desk/accounts/{account.pk}/timeline/")
    page.select_option("select[name=kind]", "call")
    page.fill("input[name=summary]", "Buyer wants a retrofit quote")
    page.fill("input[name=follow_up_title]", "Send the retrofit quote")
    page.fill("input[name=follow_up_due]", str(world.now.date() + dt.timedelta(days=1)))
    page.click("text=Log it")
    page.wait_for_selector("text=Logged on the timeline")
    assert "Buyer wants a retrofit quote" in page.inner_text("[data-testid=timeline]")
    page.screenshot(path=ARTIFACTS / f"ops-timeline-{name}.png", full_page=True)
    page.goto(f"{live_server.url}/desk/tasks/")
    assert "Send the retrofit quote" in page.inner_text("[data-testid=tasks]")
    page.click("[data-testid=tasks] button:text('Done')")
    page.wait_for_selector("text=Done: Send the retrofit quote")
    assert m.FollowUpTask.objects.get().done_by_id == desk_agent.pk
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
    assert errors == []
    context.close()
