from __future__ import annotations

from django.apps import AppConfig


class ServiceCrmConfig(AppConfig):
    name = "service_crm"
    verbose_name = "Service CRM"
    default_auto_field = "django.db.models.BigAutoField"
