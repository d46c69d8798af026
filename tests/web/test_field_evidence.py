"""Field evidence (issue 15): photos taken with the phone's camera, the customer's signature
and the service report PDF emailed to the customer on completion. Photos are checked and
re-encoded (a renamed file is refused, camera metadata dropped); only those who may see the
work order get its photos, signature and report."""

from __future__ import annotations

import base64
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from PIL import Image
from pypdf import PdfReader

from service_crm import models as m
from service_crm.services.field_evidence import (
    PHOTO_MAX_SIDE,
    work_order_photo_add,
    work_order_sign,
)
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def _started(world: ServedWorld, desk_agent: Any, engineer_user: Any) -> m.WorkOrder:
    start = world.now + dt.timedelta(minutes=5)
    wo = work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                             start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)
    return work_order_start(work_order=wo, actor=engineer_user)


def _jpeg_with_exif(size: tuple[int, int] = (3000, 1500)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def _signature_url(*, ink: bool = True) -> str:
    image = Image.new("RGBA", (300, 100), (255, 255, 255, 255))
    if ink:
        for x in range(20, 280):
            image.putpixel((x, 50 + (x % 7)), (0, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_photo_is_reencoded_smaller_without_camera_metadata(
        world: ServedWorld, desk_agent: Any, field_engineer: Any) -> None:
    wo = _started(world, desk_agent, field_engineer)
    data = _jpeg_with_exif()
    assert b"PhoneMaker" in data
    photo = work_order_photo_add(work_order=wo, actor=field_engineer, data=data,
                                 caption="Worn bearing")
    with photo.image.open("rb") as fh:
        stored = fh.read()
    assert b"PhoneMaker" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()
    assert (photo.width, photo.height) == (PHOTO_MAX_SIDE, PHOTO_MAX_SIDE // 2)
    assert m.AuditLog.objects.filter(action="work_order.photo_add",
                                     actor_id=field_engineer.pk).exists()


@pytest.mark.parametrize("data", [b"%PDF-1.4 not a picture", b"", b"\x89PNG\r\n\x1a\nbroken"])
def test_not_a_picture_is_refused(world: ServedWorld, desk_agent: Any, field_engineer: Any,
                                  data: bytes) -> None:
    wo = _started(world, desk_agent, field_engineer)
    with pytest.raises(ValidationError) as exc:
        work_order_photo_add(work_order=wo, actor=field_engineer, data=data)
    assert "image" in exc.value.message_dict
    assert not m.WorkOrderPhoto.objects.exists()


def test_photo_needs_the_job_in_progress(world: ServedWorld, field_engineer: Any) -> None:
    with pytest.raises(ValidationError, match="in progress"):
        work_order_photo_add(work_order=world.north.work_order, actor=field_engineer,
                             data=_jpeg_with_exif((10, 10)))


def test_empty_signature_or_no_name_is_refused(world: ServedWorld, desk_agent: Any,
                                               field_engineer: Any) -> None:
    wo = _started(world, desk_agent, field_engineer)
    with pytest.raises(ValidationError, match="empty"):
        work_order_sign(work_order=wo, actor=field_engineer, signed_by="Ann Buyer",
                        data_url=_signature_url(ink=False))
    with pytest.raises(ValidationError, match="name"):
        work_order_sign(work_order=wo, actor=field_engineer, signed_by="  ",
                        data_url=_signature_url())
    with pytest.raises(ValidationError, match="sign"):
        work_order_sign(work_order=wo, actor=field_engineer, signed_by="Ann",
                        data_url="data:image/png;base64,@@@")
    assert not m.WorkOrderSignature.objects.exists()


def test_completion_emails_the_report_with_photo_and_signature(
        world: ServedWorld, desk_agent: Any, field_engineer: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    tech = m.Contact.objects.create(account=world.north.account, name="Tech n1",
                                    email="tech@nordwerk.example", roles=["technical"])
    wo = _started(world, desk_agent, field_engineer)
    work_order_photo_add(work_order=wo, actor=field_engineer, data=_jpeg_with_exif((400, 300)))
    work_order_sign(work_order=wo, actor=field_engineer, signed_by="Ann Buyer",
                    data_url=_signature_url())
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        work_order_complete(work_order=wo, actor=field_engineer,
                            report="Replaced the drive-end bearing.", outcome="fault_confirmed",
                            time_spent_min=95,
                            parts=[PartUsed(part=world.part, warehouse=world.warehouse,
                                            quantity=1)])
    [email] = [e for e in mail.outbox if "Service report" in e.subject]
    technical = m.Contact.objects.filter(account=world.north.account,
                                         roles__contains=["technical"])
    assert sorted(email.to) == sorted(c.email for c in technical)
    assert tech.email in email.to
    assert f"/portal/tickets/{wo.ticket_id}/" in email.body
    [(name, content, mimetype)] = email.attachments
    assert (name, mimetype) == (f"service-report-WO-{wo.pk:06d}.pdf", "application/pdf")
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (f"Service report WO-{wo.pk:06d}", "Replaced the drive-end bearing.",
                     "1 x Bearing 6205", "Ann Buyer", "1 h 35 min", "Photos (1)"):
        assert expected in text
    assert sum(len(page.images) for page in reader.pages) == 2  # the photo, the signature


def test_pages_scope_photos_signature_and_report(
        world: ServedWorld, desk_agent: Any, field_engineer: Any, other_region_engineer: Any,
        customer_user: Any, other_customer_user: Any, browser_client: Any) -> None:
    wo = _started(world, desk_agent, field_engineer)
    engineer = browser_client(field_engineer)
    upload = io.BytesIO(_jpeg_with_exif((800, 600)))
    upload.name = "IMG_0001.JPG"
    response = engineer.post(f"/field/work-orders/{wo.pk}/photos/",
                             {"image": upload, "caption": "Nameplate"})
    assert response.status_code == 302
    photo = m.WorkOrderPhoto.objects.get(work_order=wo)
    fake = io.BytesIO(b"<html>not a photo</html>")
    fake.name = "photo.jpg"
    refused = engineer.post(f"/field/work-orders/{wo.pk}/photos/", {"image": fake})
    assert refused.status_code == 400
    assert "not a picture" in refused.content.decode()
    done = engineer.post(f"/field/work-orders/{wo.pk}/complete/", {
        "report": "Cleaned the cooler.", "outcome": "fault_confirmed", "time_spent_min": "30",
        "signed_by": "Ann Buyer", "signature": _signature_url()})
    assert done.status_code == 302, done.content.decode()[:3000]
    assert m.WorkOrderSignature.objects.get(work_order=wo).signed_by == "Ann Buyer"
    photo_url = f"/field/work-orders/{wo.pk}/photos/{photo.pk}/"
    assert engineer.get(photo_url)["Content-Type"] == "image/jpeg"
    assert browser_client(desk_agent).get(photo_url).status_code == 200
    assert browser_client(other_region_engineer).get(photo_url).status_code == 404
    assert browser_client(customer_user).get(photo_url).status_code == 403
    desk_page = browser_client(desk_agent).get(f"/desk/work-orders/{wo.pk}/").content.decode()
    assert photo_url in desk_page
    assert "Ann Buyer" in desk_page
    report = browser_client(customer_user).get(f"/portal/visits/{wo.pk}/service-report.pdf")
    assert report.status_code == 200
    assert report["Content-Type"] == "application/pdf"
    assert browser_client(other_customer_user).get(
        f"/portal/visits/{wo.pk}/service-report.pdf").status_code == 404
    ticket_page = browser_client(customer_user).get(
        f"/portal/tickets/{wo.ticket_id}/").content.decode()
    assert f"/portal/visits/{wo.pk}/service-report.pdf" in ticket_page
