"""The engineer's job sheet on a 390x844 phone (issue 15, item 4): Start is on the first
screen, a refused completion says why where the page opens, the parts picker lists this
machine's parts only, and times are the site's local time with its zone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from service_crm import models as m
from service_crm.services.work_orders import work_order_schedule
from tests import factories as f
from tests.support.web import ARTIFACTS
from tests.support.web import browser_login as _login
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]


def _job_with_telemetry(world: ServedWorld, desk_agent: Any) -> m.WorkOrder:
    start = world.now + dt.timedelta(minutes=5)
    if start.date() != world.now.date():
        start = world.now - dt.timedelta(minutes=5)
    wo = work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                             start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)
    t0 = world.now.replace(minute=0, second=0) - dt.timedelta(hours=5)
    for metric in ("vibration_rms_mm_s", "temperature_c", "pressure_bar", "current_a"):
        f.store_rollup_1h("cmp-n1", metric,
                          [(t0 + dt.timedelta(hours=i), 7.0 - i) for i in range(5)])
    return wo


def test_phone_job_sheet_start_errors_parts_and_times(
        browser: Any, live_server: Any, live_world: ServedWorld, desk_agent: Any,
        field_engineer: Any) -> None:
    world = live_world
    wo = _job_with_telemetry(world, desk_agent)
    # A part of another machine kind in the same van: not offered for this machine.
    other = f.SparePartFactory(sku="CNC-SPINDLE-9", name="Spindle cartridge",
                               price=Decimal("900"))
    m.Stock.objects.create(part=other, warehouse=world.warehouse, quantity=3)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, live_server.url, "jana")
    page.wait_for_url(f"{live_server.url}/field/")
    job = page.inner_text(f"a.job[data-wo='{wo.pk}']")
    assert "CET" in job or "CEST" in job, job  # the site's zone (Europe/Berlin), not UTC
    page.click(f"a.job[data-wo='{wo.pk}']")
    page.wait_for_selector(".chart[data-loaded='1']")
    when = page.inner_text("[data-testid=wo-when]")
    local = wo.scheduled_start.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert local.strftime("%H:%M") in when, when
    assert "UTC" not in when
    start = page.locator("text=Start job").bounding_box()
    assert start is not None
    assert start["y"] + start["height"] <= 844, start  # on the first screen
    page.screenshot(path=ARTIFACTS / "field-sheet-start.png", full_page=False)

    page.click("text=Start job")
    page.wait_for_selector("#complete:not([hidden])")
    options = page.eval_on_selector_all("select[name=stock_0] option",
                                        "os => os.map(o => o.textContent)")
    assert any("Bearing 6205" in o for o in options), options
    assert not any("Spindle cartridge" in o for o in options), options
    stock = m.Stock.objects.get(part=world.part, warehouse=world.warehouse)
    page.select_option("select[name=stock_0]", str(stock.pk))
    page.fill("input[name=qty_0]", str(stock.quantity + 10))  # more than the van holds
    page.fill("textarea[name=report]", "Replaced the bearing")
    page.select_option("select[name=outcome]", "fault_confirmed")
    page.fill("input[name=time_spent_min]", "40")
    page.click("text=Complete job")
    page.wait_for_selector("[data-testid=sheet-errors]")
    box = page.locator("[data-testid=sheet-errors]").bounding_box()
    assert box is not None
    scroll = page.evaluate("window.scrollY")
    assert scroll <= box["y"] <= scroll + 844 - 40, (box, scroll)  # in view where it opens
    assert "not enough stock" in page.inner_text("[data-testid=sheet-errors]")
    assert page.input_value("textarea[name=report]") == "Replaced the bearing"
    page.screenshot(path=ARTIFACTS / "field-sheet-refused.png", full_page=False)
    assert m.WorkOrder.objects.get(pk=wo.pk).status == "in_progress"
    assert errors == []
    context.close()
