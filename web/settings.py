"""Django settings, read from the environment through :mod:`aftercare.config`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from aftercare import config

BASE_DIR = Path(__file__).resolve().parent
_settings = config.load()

DEBUG = _settings.debug


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, or a random key kept (0600) in the data directory: never a
    well-known default, so a forgotten variable cannot make sessions forgeable."""
    if _settings.secret_key:
        return _settings.secret_key
    import secrets

    path = Path(_settings.data_dir).resolve() / "django-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = list(_settings.allowed_hosts) + (["testserver"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "service_crm",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "web.middleware.security_headers",
]

ROOT_URLCONF = "web.urls"
WSGI_APPLICATION = "web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context.nav",
            ],
        },
    },
]


def _database(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "aftercare",
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or 5432),
        "CONN_MAX_AGE": 60,
        "TEST": {"NAME": "test_" + (unquote(parts.path.lstrip("/")) or "aftercare")},
    }


DATABASES = {"default": _database(_settings.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A password-reset link works once, within an hour (Django's default is three days).
PASSWORD_RESET_TIMEOUT = 3600
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(_settings.data_dir).resolve() / "static"
# Uploaded files (contract documents). Not served by URL: each download is a view that checks
# who is asking (web/portal/views.py), so MEDIA_URL is never routed.
MEDIA_ROOT = Path(_settings.data_dir).resolve() / "media"
MEDIA_URL = "/media/"
# The size limit applies while an upload arrives (web/uploads.py), before anything is stored.
FILE_UPLOAD_HANDLERS = [
    "web.uploads.SizeLimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# WhiteNoise warns on every start-up when STATIC_ROOT is missing (before any collectstatic).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app directories too, so a checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True

# Security: secure cookies and headers; HTTPS-only flags follow DEBUG so local HTTP works.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG and not _settings.web_host.startswith("127.")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Everything is served by the app itself (sites run without internet): no third-party origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

# In PostgreSQL, shared by every web process (`aftercare web --workers N`): the dashboard's
# cached counts are computed once for all of them. The table is made by `aftercare db migrate`.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                      "LOCATION": "aftercare_cache"}}
# Log-in limiting (web.login, service_crm.services.login_throttle; counts in PostgreSQL under
# row locks): wrong passwords per (user name, client address) pair and per address before a
# block of BACKOFF_S, doubling with each further failure up to MAX_BACKOFF_S; WINDOW_S idle
# forgets.
AFTERCARE_LOGIN_MAX_FAILURES_USER = _settings.login_max_failures_user
AFTERCARE_LOGIN_MAX_FAILURES_IP = _settings.login_max_failures_ip
AFTERCARE_LOGIN_WINDOW_S = _settings.login_window_s
AFTERCARE_LOGIN_BACKOFF_S = _settings.login_backoff_s
AFTERCARE_LOGIN_MAX_BACKOFF_S = _settings.login_max_backoff_s

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "web.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "web.api.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "web.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aftercare API",
    "VERSION": "1",
    "DESCRIPTION": "Token authentication: `Authorization: Token <key>` (POST /api/v1/token/ "
                   "makes a named token that expires, 90 days by default; DELETE /api/v1/token/ "
                   "revokes the one you send; /api/v1/tokens/ lists, revokes and rotates). "
                   "Lists take `limit` (1-500, default 50), `offset` (0-1,000,000) and the "
                   "filters named per endpoint; a bad "
                   "value answers 400 naming the parameter.",
    # Swagger UI from our own static files (vendored, see static/vendor/README.md): no CDN.
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/static/vendor/swagger-ui/favicon-32x32.png",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "web.api.schema.add_error_responses"],
    # The schema and its docs page describe every endpoint: for signed-in users only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The schema document does not describe itself (its answers are YAML/JSON schema files).
    "SERVE_INCLUDE_SCHEMA": False,
    # Alerts' and episodes' severities are one choice set: one name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "SeverityEnum": "service_crm.models.choices.Severity",
        # Several models have a `kind`, each with its own choices: name each set.
        "ChargeKindEnum": "service_crm.models.choices.ChargeKind",
        "OfferLineKindEnum": "service_crm.models.choices.OfferLineKind",
        "InteractionKindEnum": "service_crm.models.choices.InteractionKind",
        "OpportunityKindEnum": "service_crm.models.choices.OpportunityKind",
        "OpportunityStageEnum": "service_crm.models.choices.OpportunityStage",
        # What staff may log on a timeline (InteractionKind without the automation).
        "ActivityKindEnum": "service_crm.services.activities.LOGGABLE",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"forbidden_without_traceback": {"()": "web.log.ForbiddenWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "filters": ["forbidden_without_traceback"]}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

# Email: SMTP from EMAIL_URL, or files under the data directory (demo, development).
DEFAULT_FROM_EMAIL = _settings.from_email
SERVER_EMAIL = _settings.from_email
AFTERCARE_DESK_EMAIL = _settings.desk_email
# Links in emails to customers (the offer's portal page): AFTERCARE_PUBLIC_URL, or this
# machine on WEB_PORT.
AFTERCARE_PUBLIC_URL = _settings.public_url
AFTERCARE_WEB_PORT = _settings.web_port
# The service CRM's tunables (service_crm.conf), each declared and validated in
# aftercare.config.VARIABLES; tests change them with override_settings.
AFTERCARE_CURRENCY = _settings.currency
AFTERCARE_LABOUR_RATE_EUR = _settings.labour_rate
AFTERCARE_DISCOUNT_APPROVAL_PCT = _settings.discount_approval_pct
AFTERCARE_OFFER_VALID_DAYS = _settings.offer_valid_days
AFTERCARE_RENEWAL_OFFER_DAYS = _settings.renewal_offer_days
AFTERCARE_WATCH_PERIOD_H = _settings.watch_period_h
AFTERCARE_SLA_AT_RISK_FRACTION = _settings.sla_at_risk_fraction
AFTERCARE_PLANNED_HORIZON_DAYS = _settings.planned_horizon_days
AFTERCARE_DEFAULT_PHONE_REGION = _settings.default_phone_region
AFTERCARE_WEBHOOK_ALLOW_HTTP = _settings.webhook_allow_http
AFTERCARE_WEBHOOK_MAX_ATTEMPTS = _settings.webhook_max_attempts
AFTERCARE_WEBHOOK_BACKOFF_S = _settings.webhook_backoff_s
AFTERCARE_WEBHOOK_TIMEOUT_S = _settings.webhook_timeout_s
AFTERCARE_DASHBOARD_CACHE_S = _settings.dashboard_cache_s
AFTERCARE_DASHBOARD_POLL_S = _settings.dashboard_poll_s
if _settings.email_url:
    from urllib.parse import unquote, urlsplit

    _mail = urlsplit(_settings.email_url)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or (465 if _mail.scheme == "smtps" else 587)
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_SSL = _mail.scheme == "smtps"
    EMAIL_USE_TLS = _mail.scheme == "smtp" and EMAIL_PORT != 25
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(Path(_settings.data_dir).resolve() / "mail")
