"""Production settings: web.settings plus HTTPS everywhere.

Use with ``DJANGO_SETTINGS_MODULE=web.settings_production`` (``aftercare web`` and
``manage``-style commands honour it). Aftercare is served behind a TLS-terminating reverse
proxy that sets ``X-Forwarded-Proto`` (and strips it from clients); ``python -m django check
--deploy`` is clean under these settings (SECURITY.md).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from web.settings import *  # noqa: F403
from web.settings import DEBUG

if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be false with web.settings_production")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
# The load balancer's liveness probe may speak plain HTTP to the app.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
