"""Billable charge lines gathered into invoice drafts; the desk approves; the ERP is told."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.models.choices import (
    InvoiceStatus,
)
from service_crm.services.billing import invoice_approve, invoice_drafts_build
from service_crm.services.housekeeping import housekeeping_run
from tests import factories as f
from tests.support.crm import completed_job, race
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
H = dt.timedelta(hours=1)


def test_billable_lines_gather_on_one_draft_per_account(world: World) -> None:
    world.cover_by_contract(covers_parts=False, covers_labour=True)
    completed_job(world, at=NOW)
    completed_job(world, at=NOW + dt.timedelta(days=2))
    assert invoice_drafts_build(now=NOW + dt.timedelta(days=3)) == 2  # two parts, no labour
    assert invoice_drafts_build(now=NOW + dt.timedelta(days=3)) == 0  # each line once
    draft = m.Invoice.objects.get()
    assert draft.status == InvoiceStatus.DRAFT
    assert draft.total == Decimal("169.00")
    assert not m.WorkOrderCharge.objects.filter(covered=True, invoice__isnull=False).exists()


def test_desk_approves_and_the_erp_is_told(world: World, desk_agent: Any) -> None:
    completed_job(world, at=NOW)  # not covered at all: parts and labour billable
    report = housekeeping_run(now=NOW + dt.timedelta(days=1))
    assert report.invoice_lines_drafted == 2
    draft = m.Invoice.objects.get()
    sales = f.UserFactory(username="sales")
    with pytest.raises(ValidationError) as err:
        invoice_approve(invoice=draft, actor=sales, now=NOW)
    assert "approved_by" in err.value.message_dict

    from service_crm.selectors.access import Role
    from web.roles import assign_role

    assign_role(user=desk_agent, role=Role.DESK_AGENT)
    desk = f.fresh(desk_agent)
    inv = invoice_approve(invoice=draft, actor=desk, now=NOW + dt.timedelta(days=1))
    assert (inv.status, inv.approved_by_id) == (InvoiceStatus.APPROVED, desk.pk)
    event = m.OutboxEvent.objects.get(topic="invoice.approved")
    assert event.payload["total"] == "179.50"  # 84.50 part + 1 h at 95.00
    assert [ln["kind"] for ln in event.payload["lines"]] == ["part", "labour"]
    with pytest.raises(ValidationError):
        invoice_approve(invoice=draft, actor=desk, now=NOW + dt.timedelta(days=1))

    completed_job(world, at=NOW + dt.timedelta(days=5))
    invoice_drafts_build(now=NOW + dt.timedelta(days=6))
    assert m.Invoice.objects.filter(status=InvoiceStatus.DRAFT).count() == 1  # a new draft


@pytest.mark.django_db(transaction=True)
def test_concurrent_builders_put_each_line_on_one_invoice(world: World) -> None:
    completed_job(world, at=NOW)
    results = race([lambda: invoice_drafts_build(now=NOW + H * 5)] * 4)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert sum(results) == 2
    assert m.Invoice.objects.count() == 1


def test_admin_approves_a_draft_through_the_service(world: World, client: Any) -> None:
    completed_job(world, at=NOW)
    invoice_drafts_build(now=NOW + H * 5)
    draft = m.Invoice.objects.get()
    boss = f.UserFactory(username="boss", is_superuser=True, is_staff=True)
    client.force_login(boss)
    assert client.get(f"/admin/service_crm/invoice/{draft.pk}/change/").status_code == 200
    resp = client.post("/admin/service_crm/invoice/",
                       {"action": "approve_invoices", "_selected_action": [draft.pk]})
    assert resp.status_code == 302
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.APPROVED
    assert m.AuditLog.objects.get(action="invoice.approve").actor_label == "boss"


def test_accepted_offer_becomes_a_sales_order_with_the_po_reference(world: World) -> None:
    from service_crm.services.offers import offer_create_renewal, offer_decide, offer_send

    contract = world.cover_by_contract(end=dt.date(2026, 12, 31))
    offer = offer_create_renewal(contract=contract, actor=None, now=NOW,
                                 discount_pct=Decimal("5"))
    offer_send(offer=offer, actor=None, now=NOW)
    offer_decide(offer=offer, accepted=True, actor=None, now=NOW, po_reference=" PO-4711 ")
    order = m.SalesOrder.objects.get()
    assert (order.offer_id, order.account_id, order.po_reference) == (
        offer.pk, world.account.pk, "PO-4711")
    event = m.OutboxEvent.objects.get(topic="order.created")
    assert (event.payload["lines_total"], event.payload["total"]) == ("4800.00", "4560.00")
    assert event.payload["po_reference"] == "PO-4711"
    assert m.AuditLog.objects.filter(action="order.create").count() == 1


def test_declined_offer_makes_no_order(world: World) -> None:
    from service_crm.services.offers import offer_create_renewal, offer_decide, offer_send

    offer = offer_create_renewal(contract=world.cover_by_contract(), actor=None, now=NOW)
    offer_send(offer=offer, actor=None, now=NOW)
    offer_decide(offer=offer, accepted=False, actor=None, now=NOW)
    assert not m.SalesOrder.objects.exists()
    assert not m.OutboxEvent.objects.filter(topic="order.created").exists()
