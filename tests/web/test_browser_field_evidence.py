"""Photos, signature and service report on a 390x844 phone in real Chromium (issue 15): the
engineer adds a photo through the camera input, the customer signs with a finger (a pointer
drag here), the job is completed, and the sheet then shows the photo, the signature and the
report link; the report PDF downloads. Screenshots in test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from service_crm import models as m
from service_crm.services.work_orders import work_order_schedule
from tests.support.web import ARTIFACTS, session_page
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]


def test_photo_signature_and_report_on_a_phone(
        browser: Any, live_server: Any, live_world: ServedWorld, desk_agent: Any,
        field_engineer: Any, settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    world = live_world
    base = live_server.url
    start = world.now + dt.timedelta(minutes=5)
    wo = work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                             start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)
    picture = tmp_path / "IMG_0042.jpg"
    Image.new("RGB", (1200, 900), (40, 90, 160)).save(picture, format="JPEG")
    errors: list[str] = []
    context, page = session_page(browser, base, field_engineer, errors,
                                 viewport={"width": 390, "height": 844}, is_mobile=True,
                                 accept_downloads=True)
    page.goto(f"{base}/field/work-orders/{wo.pk}/")
    page.click("text=Start job")
    page.wait_for_selector("[data-testid=wo-photos]")
    page.set_input_files("[data-testid=wo-photos] input[type=file]", str(picture))
    page.fill("[data-testid=wo-photos] input[name=caption]", "Cooler fins")
    page.click("text=Add photo")
    page.wait_for_selector("[data-testid=wo-photos] .photo-strip img")
    # The thumbnail is served by the scoped photo view and decodes (loaded lazily: scroll).
    page.locator(".photo-strip img").scroll_into_view_if_needed()
    page.wait_for_function("(() => { const i = document.querySelector('.photo-strip img');"
                           " return i.complete && i.naturalWidth > 0; })()", timeout=10_000)

    pad = page.locator("canvas.signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(box["x"] + 20 + i * 25, box["y"] + box["height"] / 2 + (i % 3) * 12)
    page.mouse.up()
    assert page.input_value("input[name=signature]").startswith("data:image/png;base64,")
    page.fill("input[name=signed_by]", "Ann Buyer")
    page.fill("textarea[name=report]", "Cleaned the cooler fins.")
    page.select_option("select[name=outcome]", "fault_confirmed")
    page.fill("input[name=time_spent_min]", "40")
    page.screenshot(path=ARTIFACTS / "field-evidence-phone.png", full_page=True)
    page.click("text=Complete job")
    page.wait_for_selector("text=completed.")
    assert m.WorkOrderSignature.objects.get(work_order=wo).signed_by == "Ann Buyer"

    page.goto(f"{base}/field/work-orders/{wo.pk}/")
    assert "Ann Buyer" in page.inner_text("[data-testid=wo-signature]")
    page.locator("[data-testid=wo-signature] img").scroll_into_view_if_needed()
    page.wait_for_function("(() => { const i = document.querySelector("
                           "'[data-testid=wo-signature] img');"
                           " return i.complete && i.naturalWidth > 0; })()", timeout=10_000)
    page.screenshot(path=ARTIFACTS / "field-evidence-done-phone.png", full_page=True)
    with page.expect_download() as download:
        page.click("[data-testid=wo-report-pdf]")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
    context.close()
