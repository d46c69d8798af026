"""Top-level pages: the home page sends each user to their own workspace."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from web.roles import home_url_name


@login_required
def home(request: HttpRequest) -> HttpResponse:
    name = home_url_name(request.user)
    if name:
        return HttpResponseRedirect(reverse(name))
    # Signed in but without a role: nothing to show until an administrator assigns one.
    return render(request, "home.html", {})


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin log-in goes through the rate-limited form; the admin itself still checks
    that the user is staff."""
    next_url = request.GET.get("next", reverse("admin:index"))
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("admin:index")
    return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': next_url})}")


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and the demo launcher: the database answers."""
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
