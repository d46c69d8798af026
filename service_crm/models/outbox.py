"""The transactional outbox and the webhooks it feeds (the ERP and other systems listen)."""

from __future__ import annotations

import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from service_crm.models.choices import DeliveryStatus


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """A receiver outside: an ERP or integration that gets our business events, signed with its
    own secret (HMAC-SHA256), for the topics it subscribed to (none listed = all)."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, default=_new_secret,
                              help_text="Shared with the receiver to check signatures")
    topics = ArrayField(models.CharField(max_length=60), default=list, blank=True,
                        help_text="e.g. offer.accepted, contract.lapsed; empty = every event")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from service_crm import conf

        if self.url and not self.url.startswith("https://") and not conf.webhook_allow_http():
            raise ValidationError({"url": "Webhooks go to https:// addresses only."})

    def wants(self, topic: str) -> bool:
        return not self.topics or topic in self.topics


class OutboxEvent(models.Model):
    """A business event written in the same transaction as the change it reports, so it is
    sent if and only if the change committed. Its id is the idempotency key receivers see."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    topic = models.CharField(max_length=60)
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.topic} {self.id}"


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint: attempts, the last answer, and when to try next."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE,
                                 related_name="deliveries")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-next_attempt_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event.topic} -> {self.endpoint} ({self.status})"


class Notification(models.Model):
    """An email the automation owes someone, written in the same transaction as the change
    that causes it: sent if and only if the change committed, and retried until the mail
    server takes it (``services.notifications``). It holds ids, never the message: the email
    is built from the records when it is sent."""

    kind = models.CharField(max_length=60)
    args = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    leased_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-next_attempt_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"],
                                name="notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.args} ({self.status})"
