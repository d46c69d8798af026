"""Log-in with rate limiting: failed attempts are counted per user name and per client
address in the cache, and further attempts are refused for a while once a limit is reached.

The counts live in Django's default cache, which is in PostgreSQL (web/settings.py), so every
`aftercare web` process sees the same counts.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from web.roles import home_url_name


def _limits() -> tuple[int, int, int]:
    """(failures per user name, failures per address, window in seconds)."""
    return (int(getattr(settings, "AFTERCARE_LOGIN_MAX_FAILURES_USER", 5)),
            int(getattr(settings, "AFTERCARE_LOGIN_MAX_FAILURES_IP", 30)),
            int(getattr(settings, "AFTERCARE_LOGIN_WINDOW_S", 900)))


def _key(kind: str, value: str) -> str:
    # Hashed: user names and addresses do not belong in cache keys in clear text.
    return "login-fail:" + kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:32]


def _client_ip(request: HttpRequest | None) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wants it to be.
    return "" if request is None else str(request.META.get("REMOTE_ADDR", ""))


def login_blocked(*, username: str, ip: str) -> bool:
    per_user, per_ip, _ = _limits()
    return (int(cache.get(_key("user", username.lower()), 0)) >= per_user
            or int(cache.get(_key("ip", ip), 0)) >= per_ip)


def login_failed(*, username: str, ip: str) -> None:
    _, _, window_s = _limits()
    for key in (_key("user", username.lower()), _key("ip", ip)):
        if not cache.add(key, 1, timeout=window_s):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=window_s)


def login_succeeded(*, username: str) -> None:
    cache.delete(_key("user", username.lower()))


class RateLimitedAuthenticationForm(AuthenticationForm):
    """The standard form, refusing to check passwords while the limit is reached."""

    blocked = False

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username", ""))
        ip = _client_ip(self.request)
        if login_blocked(username=username, ip=ip):
            self.blocked = True
            _, _, window_s = _limits()
            raise ValidationError(
                f"Too many failed log-ins. Try again in {window_s // 60} minutes.",
                code="rate_limited")
        try:
            cleaned = super().clean()
        except ValidationError:
            login_failed(username=username, ip=ip)
            raise
        login_succeeded(username=username)
        return cleaned


class LoginView(auth_views.LoginView):
    form_class = RateLimitedAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "blocked", False):
            response.status_code = 429
        return response

    def get_default_redirect_url(self) -> str:
        name = home_url_name(self.request.user)
        return reverse(name) if name else super().get_default_redirect_url()


class LogoutView(auth_views.LogoutView):
    """Django's log-out, telling the browser to drop what it kept for this user.

    ``Clear-Site-Data`` empties the HTTP cache and the site's storage: the field view's service
    worker caches and offline queue (field.js asks before discarding unsent changes), so
    nothing of one user stays on a shared phone or desk PC for the next one."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = '"cache", "storage"'
        return response

