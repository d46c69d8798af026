"""API tokens: an integration's key to the REST API, one per purpose, each with an expiry."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A named key a user hands to one integration (an ERP sync, a script). Only the SHA-256 of
    the key is stored; the key itself is shown once, when it is made. A token stops working when
    it expires, is revoked (by its owner or an admin), or its owner's password changes or the
    owner is deactivated."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the key, so its owner can tell tokens apart in a list.
    prefix = models.CharField(max_length=12)
    # The owner's session auth hash (derived from the password hash) when the token was made:
    # a changed password no longer matches, whichever way it was changed.
    password_fingerprint = models.CharField(max_length=128)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="apitoken_user_live")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
