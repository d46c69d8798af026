"""Photos and the customer's signature taken on site, checked by content (Pillow) and
re-encoded before they are stored: a file that is not an image is refused, and what the
phone's camera wrote into it (its location, the device) is not kept."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from service_crm.models import WorkOrder, WorkOrderPhoto, WorkOrderSignature
from service_crm.models.choices import WorkOrderStatus
from service_crm.models.field_evidence import MAX_PHOTO_BYTES, MAX_PHOTOS_PER_WORK_ORDER
from service_crm.services.audit import audit_record, snapshot

PHOTO_MAX_SIDE = 2048  # px: enough to read a nameplate, a tenth of a camera's bytes
MAX_PIXELS = 60_000_000  # a decompression bomb is refused before it is decoded
MAX_SIGNATURE_BYTES = 512 * 1024
PHOTO_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "MPO"}  # MPO: some phones' JPEG


def _open_image(data: bytes, *, field: str, formats: set[str]) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind, (w, h) = probe.format, probe.size
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError):
        raise ValidationError({field: "This is not a picture we can read (JPEG, PNG or "
                                      "WebP)."}) from None
    if kind not in formats:
        raise ValidationError({field: f"{kind} pictures are not accepted; use "
                                      f"{', '.join(sorted(formats - {'MPO'}))}."})
    if w * h > MAX_PIXELS:
        raise ValidationError({field: f"The picture is too large ({w}x{h} pixels)."})
    return Image.open(io.BytesIO(data))  # verify() used the first one up


def photo_reencoded(data: bytes) -> tuple[bytes, int, int]:
    """The picture upright, at most PHOTO_MAX_SIDE px, as JPEG without any metadata."""
    from PIL import ImageOps

    image = _open_image(data, field="image", formats=PHOTO_FORMATS)
    image = ImageOps.exif_transpose(image).convert("RGB")
    image.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=True)  # no exif= : none written
    return out.getvalue(), image.width, image.height


def _locked_in_progress(work_order: WorkOrder, what: str) -> WorkOrder:
    wo = WorkOrder.objects.select_for_update().get(pk=work_order.pk)
    if wo.status != WorkOrderStatus.IN_PROGRESS:
        raise ValidationError({"status": f"{what} are added while the job is in progress."})
    return wo


@transaction.atomic(durable=True)
def work_order_photo_add(*, work_order: WorkOrder, actor: Any, data: bytes, caption: str = "",
                         now: dt.datetime | None = None) -> WorkOrderPhoto:
    """Keep a photo of the job (re-encoded, see :func:`photo_reencoded`); audited."""
    now = now or timezone.now()
    wo = _locked_in_progress(work_order, "Photos")
    if len(data) > MAX_PHOTO_BYTES:
        raise ValidationError({"image": f"A photo may be at most {MAX_PHOTO_BYTES // 2**20} MB."})
    if WorkOrderPhoto.objects.filter(work_order=wo).count() >= MAX_PHOTOS_PER_WORK_ORDER:
        raise ValidationError({"image": f"A job keeps at most {MAX_PHOTOS_PER_WORK_ORDER} "
                                        "photos."})
    jpeg, width, height = photo_reencoded(data)
    photo = WorkOrderPhoto(work_order=wo, caption=caption.strip()[:200], width=width,
                           height=height, uploaded_at=now,
                           uploaded_by_id=getattr(actor, "pk", None))
    photo.image.save("photo.jpg", ContentFile(jpeg), save=False)
    photo.full_clean()
    photo.save()
    audit_record(actor=actor, action="work_order.photo_add", obj=photo, before=None, at=now)
    return photo


def signature_png(data_url: str) -> bytes:
    """The signature drawn on the phone (a ``data:image/png;base64,`` URL) as a checked PNG,
    refused when it is empty (nothing drawn)."""
    from PIL import Image

    prefix = "data:image/png;base64,"
    if not data_url.startswith(prefix):
        raise ValidationError({"signature": "Ask the customer to sign in the box."})
    try:
        raw = base64.b64decode(data_url[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({"signature": "The signature did not arrive whole; sign "
                                            "again."}) from None
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise ValidationError({"signature": "The signature is too large."})
    image = _open_image(raw, field="signature", formats={"PNG"}).convert("LA")
    # Ink is anything not transparent and not white: an untouched pad has none.
    ink = Image.eval(image.getchannel("A"), lambda a: 255 if a > 32 else 0)
    dark = Image.eval(image.getchannel("L"), lambda v: 255 if v < 200 else 0)
    from PIL import ImageChops

    if ImageChops.multiply(ink, dark).getbbox() is None:
        raise ValidationError({"signature": "The signature box is empty."})
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


@transaction.atomic(durable=True)
def work_order_sign(*, work_order: WorkOrder, actor: Any, signed_by: str, data_url: str,
                    now: dt.datetime | None = None) -> WorkOrderSignature:
    """The customer confirms the visit by signing on the engineer's phone (signing again
    replaces it while the job is open); audited."""
    now = now or timezone.now()
    wo = _locked_in_progress(work_order, "Signatures")
    name = " ".join(signed_by.split())
    if not name:
        raise ValidationError({"signed_by": "Write the name of the person who signs."})
    png = signature_png(data_url)
    existing = WorkOrderSignature.objects.filter(work_order=wo).first()
    before = None if existing is None else snapshot(existing)
    sig = existing or WorkOrderSignature(work_order=wo)
    sig.signed_by, sig.signed_at = name[:120], now
    sig.image.save("signature.png", ContentFile(png), save=False)
    sig.full_clean()
    sig.save()
    audit_record(actor=actor, action="work_order.sign", obj=sig, before=before, at=now)
    return sig
