"""Log-in with rate limiting per (user name, client address) pair and per address, counted
exactly under row locks in PostgreSQL (:mod:`service_crm.services.login_throttle`), so every
`aftercare web` process shares the counts and parallel attempts cannot slip past the limit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from service_crm import conf
from service_crm.services.login_throttle import (
    LoginLimits,
    login_attempt_begin,
    login_attempt_succeeded,
)
from web.roles import home_url_name


def login_limits() -> LoginLimits:
    return LoginLimits(
        per_pair=int(settings.AFTERCARE_LOGIN_MAX_FAILURES_USER),
        per_address=int(settings.AFTERCARE_LOGIN_MAX_FAILURES_IP),
        window_s=conf.login_window_s(),
        backoff_s=int(settings.AFTERCARE_LOGIN_BACKOFF_S),
        max_backoff_s=int(settings.AFTERCARE_LOGIN_MAX_BACKOFF_S))


def client_ip(request: HttpRequest | None) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wants it to be.
    return "" if request is None else str(request.META.get("REMOTE_ADDR", ""))


class RateLimitedAuthenticationForm(AuthenticationForm):
    """The standard form; the password is checked only after an attempt has been reserved."""

    blocked = False
    retry_after_s = 0

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username", ""))
        ip = client_ip(self.request)
        limits = login_limits()
        decision = login_attempt_begin(username=username, ip=ip, limits=limits)
        if not decision.allowed:
            self.blocked, self.retry_after_s = True, decision.retry_after_s
            wait = (f"{decision.retry_after_s} seconds" if decision.retry_after_s < 120
                    else f"{-(-decision.retry_after_s // 60)} minutes")
            raise ValidationError(f"Too many failed log-ins. Try again in {wait}.",
                                  code="rate_limited")
        cleaned = super().clean()  # a wrong password raises: the reservation stays counted
        login_attempt_succeeded(username=username, ip=ip, limits=limits)
        return cleaned


class LoginView(auth_views.LoginView):
    form_class = RateLimitedAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "blocked", False):
            response.status_code = 429
            response["Retry-After"] = str(getattr(form, "retry_after_s", 0))
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



class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by email (the answer is the same whether the address exists), limited
    like log-ins per (address asked for, client): a stranger cannot flood a mailbox."""

    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form: Any) -> HttpResponse:
        decision = login_attempt_begin(username="password-reset:" + form.cleaned_data["email"],
                                       ip=client_ip(self.request), limits=login_limits())
        if not decision.allowed:  # the same page as a sent link: nothing to learn from it
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
