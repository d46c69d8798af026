"""Real Chromium on a phone viewport: the engineer opens today's jobs, loses the connection,
opens a job sheet saved on the phone, starts and completes the job offline, and the queued
actions reach the server when the connection returns. Log-out deletes the saved copies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.work_orders import work_order_schedule
from tests.support.wait import wait_for
from tests.support.web import ARTIFACTS
from tests.support.web import browser_login as _login
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def _schedule_today(world: ServedWorld, desk_agent: Any) -> m.WorkOrder:
    start = world.now + dt.timedelta(minutes=5)
    if start.date() != world.now.date():
        start = world.now - dt.timedelta(minutes=5)
    return work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                               start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)


def _jana_on_phone(chromium: Any, base: str) -> tuple[Any, Any]:
    """Jana signed in on a phone, her job list open and saved by the service worker."""
    context = chromium.new_context(**PHONE)
    page = context.new_page()
    _login(page, base, "jana")
    page.wait_for_url(f"{base}/field/")
    page.wait_for_selector("#field-offline[data-precached]", state="attached", timeout=15_000)
    return context, page


def _start_and_complete(page: Any, wo: m.WorkOrder, *, report: str, minutes: int,
                        notes: str = "") -> None:
    """From the job list: open the (saved) job sheet, start, fill in the completion (ticking
    the first checklist item when there are notes) and send it."""
    page.click(f"a.job[href$='/work-orders/{wo.pk}/']")
    page.click("text=Start job")
    page.wait_for_selector("#complete:not([hidden])")
    if notes:
        page.check("input[name=check_0]")
        page.fill("textarea[name=notes]", notes)
    page.fill("textarea[name=report]", report)
    page.select_option("select[name=outcome]", "fault_confirmed")
    page.fill("input[name=time_spent_min]", str(minutes))
    page.click("text=Complete job")
    page.wait_for_selector("[data-testid=queued-completion]")


def test_engineer_completes_job_offline_and_it_reaches_the_server(
        browser: Any, live_server: Any, live_world: ServedWorld,
        desk_agent: Any, field_engineer: Any) -> None:
    from playwright.sync_api import expect

    wo = _schedule_today(live_world, desk_agent)
    # The service worker saved the job sheets and their files for use without signal.
    context, page = _jana_on_phone(browser, live_server.url)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    # Installable: Chromium finds nothing missing in the manifest, icons and worker (a
    # Playwright context is incognito-like, which alone blocks installing).
    cdp = context.new_cdp_session(page)
    problems = {e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")[
        "installabilityErrors"]}
    cdp.detach()
    assert problems <= {"in-incognito"}, problems

    context.set_offline(True)
    _start_and_complete(page, wo, report="Replaced the drive-end bearing offline", minutes=75,
                        notes="No signal in the basement.")
    expect(page.locator("[data-testid=offline-state]")).to_contain_text("Offline")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "field-offline-queued.png", full_page=True)
    assert int(page.get_attribute("#field-offline", "data-pending") or 0) >= 2
    assert m.WorkOrder.objects.get(pk=wo.pk).status == "scheduled"  # nothing sent yet

    context.set_offline(False)
    wait_for("the queued completion to reach the server",
             lambda: m.WorkOrder.objects.get(pk=wo.pk).status == "completed", 15, 0.2)
    done = m.WorkOrder.objects.get(pk=wo.pk)
    assert done.completion_report.startswith("Replaced the drive-end bearing offline")
    assert done.time_spent_min == 75
    assert done.checklist[0]["done"] is True
    assert done.notes == "No signal in the basement."
    page.wait_for_selector(f"[data-testid=outbox-log] li.ok:has-text('WO-{wo.pk:06d} completed')")
    page.wait_for_selector("#field-offline[data-pending='0']", state="attached")
    page.screenshot(path=ARTIFACTS / "field-offline-sent.png", full_page=True)

    # Log-out leaves none of this engineer's jobs on the phone.
    page.goto(f"{live_server.url}/field/")
    assert page.evaluate("caches.keys().then(k => k.length)") > 0
    page.click("header form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/login/**")
    left = "caches.keys().then(k => k.filter(n => n.startsWith('aftercare-field-')).length)"
    assert page.evaluate(left) == 0
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    assert errors == []
    context.close()


def test_offline_completion_of_a_job_cancelled_meanwhile_is_refused_with_a_message(
        browser: Any, live_server: Any, live_world: ServedWorld,
        desk_agent: Any, field_engineer: Any) -> None:
    wo = _schedule_today(live_world, desk_agent)
    context, page = _jana_on_phone(browser, live_server.url)
    context.set_offline(True)
    _start_and_complete(page, wo, report="Done", minutes=30)
    # Meanwhile the desk cancels the visit.
    m.WorkOrder.objects.filter(pk=wo.pk).update(status="cancelled")
    context.set_offline(False)
    page.wait_for_selector("[data-testid=outbox-log] li.bad", timeout=15_000)
    assert "not applied" in page.inner_text("[data-testid=outbox-log]")
    page.screenshot(path=ARTIFACTS / "field-offline-conflict.png", full_page=True)
    assert m.WorkOrder.objects.get(pk=wo.pk).status == "cancelled"
    context.close()
