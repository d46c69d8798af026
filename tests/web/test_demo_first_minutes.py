"""Demo friction (issue 15, item 9): right after `seed_demo` every demo login has something to
do: the engineer a job booked today in their region, the customer a renewal offer to answer
and their contract as a PDF in the portal, the desk all of it on its pages. Seeding again adds
nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from service_crm import models as m
from service_crm.pdf import pdf_problem

pytestmark = pytest.mark.db


def test_every_demo_login_has_something_to_do_at_once(db: None, settings: Any,
                                                      tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    out = io.StringIO()
    call_command("seed_demo", "--assets", "40", stdout=out)
    assert "first minutes:" in out.getvalue()
    users = get_user_model().objects
    engineer = m.Engineer.objects.get(user__username="engineer")
    [wo] = m.WorkOrder.objects.filter(engineer=engineer, status="scheduled")
    assert wo.scheduled_start is not None
    assert 0 < (wo.scheduled_start - timezone.now()).total_seconds() <= 30 * 60  # in 30 min
    assert wo.ticket.asset.site.region == engineer.region
    field = Client()
    field.force_login(users.get(username="engineer"))
    assert f"/field/work-orders/{wo.pk}/" in field.get("/field/").content.decode()

    customer = m.Contact.objects.get(user__username="customer")
    [offer] = m.Offer.objects.filter(account=customer.account, status="sent")
    assert offer.renews is not None
    [doc] = m.ContractDocument.objects.filter(contract__account=customer.account)
    with doc.file.open("rb") as fh:
        assert pdf_problem(fh) is None
    portal = Client()
    portal.force_login(users.get(username="customer"))
    page = portal.get("/portal/").content.decode()
    assert f"/portal/offers/{offer.pk}/" in page
    assert "awaiting your answer" in page
    assert f"/portal/contract-documents/{doc.pk}/" in page
    assert portal.get(f"/portal/contract-documents/{doc.pk}/").status_code == 200

    counts = (m.WorkOrder.objects.count(), m.Offer.objects.count(),
              m.ContractDocument.objects.count(), m.Ticket.objects.count())
    call_command("seed_demo", "--assets", "40", stdout=io.StringIO())
    assert counts == (m.WorkOrder.objects.count(), m.Offer.objects.count(),
                      m.ContractDocument.objects.count(), m.Ticket.objects.count())
