"""The demo's own data and logins: every workspace page renders for the seeded users."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from service_crm import models as m

pytestmark = pytest.mark.db


def test_demo_users_reach_their_workspaces(db: None) -> None:
    call_command("seed_demo", "--assets", "8", stdout=io.StringIO())
    users = get_user_model().objects

    desk = Client()
    desk.force_login(users.get(username="desk"))
    assert desk.get("/").url == "/desk/"
    asset = m.Asset.objects.first()
    account = m.Account.objects.first()
    assert asset is not None
    assert account is not None
    for url in ["/desk/", "/desk/panel/", "/desk/episodes/", "/desk/tickets/", "/desk/dispatch/",
                "/desk/accounts/", f"/desk/accounts/{account.pk}/", f"/desk/assets/{asset.pk}/",
                "/desk/offers/", "/desk/renewals/", "/desk/reports/",
                "/desk/devices/unclaimed/"]:
        assert desk.get(url).status_code == 200, url

    engineer = Client()
    engineer.force_login(users.get(username="engineer"))
    assert engineer.get("/").url == "/field/"
    assert engineer.get("/field/").status_code == 200

    customer = Client()
    customer.force_login(users.get(username="customer"))
    assert customer.get("/").url == "/portal/"
    assert customer.get("/portal/").status_code == 200
    assert customer.get("/desk/").status_code == 403
