"""What an engineer brings back from site besides the report: photos and the customer's
signature. Images are stored under MEDIA_ROOT with random names (re-encoded, so nothing from
the phone's camera metadata, such as its location, is kept) and served only through views that
check who may see the work order."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from service_crm.models.work_order import WorkOrder

MAX_PHOTO_BYTES = 15 * 1024 * 1024  # what a phone camera's JPEG comes to, with room
MAX_PHOTOS_PER_WORK_ORDER = 20


def _photo_path(instance: WorkOrderPhoto, filename: str) -> str:
    return f"work-orders/{instance.work_order_id}/{uuid.uuid4().hex}.jpg"


def _signature_path(instance: WorkOrderSignature, filename: str) -> str:
    return f"work-orders/{instance.work_order_id}/signature-{uuid.uuid4().hex}.png"


class WorkOrderPhoto(models.Model):
    """A photo taken on site (the fault, the repair, the nameplate), re-encoded as JPEG."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(upload_to=_photo_path, max_length=200)
    caption = models.CharField(max_length=200, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["work_order", "uploaded_at", "pk"]

    def __str__(self) -> str:
        return f"Photo {self.pk} of WO-{self.work_order_id:06d}"


class WorkOrderSignature(models.Model):
    """The customer's signature confirming the visit, drawn on the engineer's phone."""

    work_order = models.OneToOneField(WorkOrder, on_delete=models.CASCADE,
                                      related_name="signature")
    signed_by = models.CharField(max_length=120, help_text="name of the person who signed")
    image = models.FileField(upload_to=_signature_path, max_length=200)
    signed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Signature of {self.signed_by} on WO-{self.work_order_id:06d}"
