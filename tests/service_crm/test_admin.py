"""Every CRM model has a working admin: list (with search), add form and change form."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client

from service_crm.services.alerts import alert_ingest
from tests import factories as f
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def test_admin_pages_render_for_every_model(world: World, client: Client) -> None:
    world.cover_by_contract()
    alert_ingest(event=make_event(), now=NOW)
    alert_ingest(event=make_event(failure_mode="leak"), now=NOW)
    boss = f.UserFactory(username="admin", is_staff=True, is_superuser=True)
    client.force_login(boss)
    registered = list(apps.get_app_config("service_crm").get_models())
    assert all(model in admin.site._registry for model in registered)
    for model in registered:
        base = f"/admin/service_crm/{model._meta.model_name}/"
        assert client.get(base + "?q=a").status_code == 200, base
        if admin.site._registry[model].has_add_permission(client.request().wsgi_request):
            assert client.get(base + "add/").status_code == 200, base
        obj = model._default_manager.first()
        if obj is not None:
            assert client.get(f"{base}{obj.pk}/change/").status_code == 200, base
