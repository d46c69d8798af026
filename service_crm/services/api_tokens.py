"""API tokens: made, listed, rotated and revoked here, and checked on every API request.

A key is ``act_`` + 43 random URL-safe characters (256 bits). Only its SHA-256 is stored: the
key has full entropy, so a fast hash is enough and makes each request's lookup one index probe.
A token is live while it is neither revoked nor expired, its owner is active and the owner's
password is the one it was made under (``password_fingerprint``), so changing a password by
any path (the admin, a reset, ``set_password``) ends every token made before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from service_crm.models import ApiToken
from service_crm.services.audit import audit_record, snapshot

KEY_PREFIX = "act_"
DEFAULT_LIFETIME = dt.timedelta(days=90)
# Live tokens one user may hold: each POST /api/v1/token/ makes one, and a script that asks on
# every run must not fill the table.
MAX_LIVE_TOKENS = 50
MAX_LIFETIME = dt.timedelta(days=365)
# last_used_at is written at most this often per token: not one UPDATE per request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _fingerprint(user: Any) -> str:
    return str(user.get_session_auth_hash())


@dataclass(frozen=True)
class IssuedToken:
    """A token just made, with its key: the only time the key is known."""

    token: ApiToken
    key: str


def _issue(*, user: Any, name: str, lifetime: dt.timedelta, now: dt.datetime) -> IssuedToken:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, key_hash=key_hash(key), prefix=key[:12],
                     password_fingerprint=_fingerprint(user), created_at=now,
                     expires_at=now + lifetime)
    token.full_clean()
    token.save()
    return IssuedToken(token=token, key=key)


def _check_lifetime(expires_in_days: int | None) -> dt.timedelta:
    if expires_in_days is None:
        return DEFAULT_LIFETIME
    if not 1 <= expires_in_days <= MAX_LIFETIME.days:
        raise ValidationError({"expires_in_days": f"Between 1 and {MAX_LIFETIME.days} days."})
    return dt.timedelta(days=expires_in_days)


@transaction.atomic
def api_token_create(*, user: Any, name: str, expires_in_days: int | None = None,
                     now: dt.datetime | None = None) -> IssuedToken:
    """A new token for ``user`` (who has just proven who they are)."""
    now = now or timezone.now()
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name (what it is for)."})
    lifetime = _check_lifetime(expires_in_days)
    # The user's row serialises their token requests, so the cap holds under parallel calls.
    type(user)._default_manager.select_for_update().filter(pk=user.pk).first()
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now)
    if live.count() >= MAX_LIVE_TOKENS:
        raise ValidationError({"token": f"You have {MAX_LIVE_TOKENS} live tokens: revoke one "
                                        "you no longer use (DELETE /api/v1/tokens/{id}/)."})
    issued = _issue(user=user, name=name, lifetime=lifetime, now=now)
    audit_record(actor=user, action="api_token.create", obj=issued.token, before=None, at=now)
    return issued


def _may_manage(*, actor: Any, token: ApiToken) -> bool:
    return bool(actor.is_superuser) or token.user_id == actor.pk


def _revoke(*, token: ApiToken, actor: Any | None, reason: str, now: dt.datetime) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    before = snapshot(token)
    token.revoked_at, token.revoked_reason = now, reason[:60]
    token.save(update_fields=["revoked_at", "revoked_reason"])
    audit_record(actor=actor, action="api_token.revoke", obj=token, before=before, at=now)
    return token


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Any, reason: str = "revoked",
                     now: dt.datetime | None = None) -> ApiToken:
    """Revoke one token (its owner or an admin). Revoking a revoked token changes nothing."""
    if not _may_manage(actor=actor, token=token):
        raise ValidationError({"token": "Only its owner or an admin may revoke a token."})
    return _revoke(token=token, actor=actor, reason=reason, now=now or timezone.now())


@transaction.atomic
def api_token_rotate(*, token: ApiToken, actor: Any, expires_in_days: int | None = None,
                     now: dt.datetime | None = None) -> IssuedToken:
    """Replace a live token by a new one of the same name and owner; the old key stops
    working at once. Only the owner rotates (an admin revokes instead)."""
    now = now or timezone.now()
    if token.user_id != actor.pk:
        raise ValidationError({"token": "Only its owner may rotate a token."})
    # Locked first: two rotations of one token at once give one new token, not two.
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if not api_token_is_live(token=token, user=actor, now=now):
        raise ValidationError({"token": "This token is no longer live: make a new one."})
    lifetime = (token.expires_at - token.created_at if expires_in_days is None
                else _check_lifetime(expires_in_days))
    _revoke(token=token, actor=actor, reason="rotated", now=now)
    issued = _issue(user=actor, name=token.name, lifetime=min(lifetime, MAX_LIFETIME), now=now)
    audit_record(actor=actor, action="api_token.rotate", obj=issued.token, before=None, at=now)
    return issued


@transaction.atomic
def api_tokens_revoke_for_user(*, user: Any, actor: Any | None, reason: str,
                               now: dt.datetime | None = None) -> int:
    """Revoke every live token of ``user`` (deactivated, password changed); returns how many."""
    now = now or timezone.now()
    tokens = list(ApiToken.objects.filter(user=user, revoked_at__isnull=True))
    for token in tokens:
        _revoke(token=token, actor=actor, reason=reason, now=now)
    return len(tokens)


def api_token_is_live(*, token: ApiToken, user: Any, now: dt.datetime) -> bool:
    return (token.revoked_at is None and token.expires_at > now and bool(user.is_active)
            and constant_time_compare(token.password_fingerprint, _fingerprint(user)))


def api_token_authenticate(*, key: str, now: dt.datetime | None = None) -> ApiToken | None:
    """The live token with this key (its ``user`` loaded), or None."""
    now = now or timezone.now()
    token = ApiToken.objects.select_related("user").filter(key_hash=key_hash(key)).first()
    if token is None:
        return None
    if not api_token_is_live(token=token, user=token.user, now=now):
        if token.revoked_at is None and token.expires_at > now:
            # Owner deactivated or password changed: revoked for good, so reactivating the
            # account or restoring the old password does not bring the token back.
            reason = "owner deactivated" if not token.user.is_active else "password changed"
            with transaction.atomic():
                _revoke(token=token, actor=None, reason=reason, now=now)
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
