"""Desk pages for service operations (issue 16): planned visits (drop one), work-order
charges, invoice drafts (approve), sales orders and the webhook delivery log (replay); each
page role-checked, each action audited, nothing for engineers or customers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from service_crm import models as m
from service_crm.models.choices import (
    DeliveryStatus,
    InvoiceStatus,
    Outcome,
    PlannedVisitStatus,
    WorkOrderStatus,
)
from service_crm.services.billing import invoice_drafts_build
from service_crm.services.offers import offer_decide
from service_crm.services.planned_maintenance import planned_visits_generate
from service_crm.services.webhooks import outbox_emit
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests import factories as f
from tests.support.web import billable_job
from tests.support.world import ServedWorld
from web.roles import Role, assign_role

pytestmark = pytest.mark.db
H = dt.timedelta(hours=1)


def _plan(world: ServedWorld) -> m.PlannedVisit:
    c = m.MaintenanceContract.objects.get(account=world.north.account)
    c.start, c.interval_days = world.now.date() - dt.timedelta(days=10), 30
    c.save()
    planned_visits_generate(now=world.now)
    return m.PlannedVisit.objects.get(asset=world.north.asset)


def _billable_job(world: ServedWorld) -> m.Invoice:
    """The north compressor's contract covers nothing: the part and the labour are billed."""
    billable_job(world)
    assert invoice_drafts_build(now=world.now + 3 * H) == 2
    return m.Invoice.objects.get()


def _sales(world: ServedWorld) -> Any:
    user = f.UserFactory(username="sally")
    assign_role(user=user, role=Role.SALES_MANAGER)
    return f.fresh(user)


def test_desk_lists_planned_visits_and_drops_one_with_a_reason(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    visit = _plan(world)
    desk = browser_client(desk_agent)
    body = desk.get("/desk/planned-visits/?status=planned").content.decode()
    assert world.north.asset.serial in body
    assert f"WO-{visit.work_order_id:06d}" in body
    assert desk.get("/desk/planned-visits/?status=bogus").status_code == 400

    empty = desk.post(f"/desk/planned-visits/{visit.pk}/cancel/", {"reason": " "})
    assert empty.status_code == 400
    assert "This field is required." in empty.content.decode()
    resp = desk.post(f"/desk/planned-visits/{visit.pk}/cancel/",
                     {"reason": "Customer shut the line for a refit"})
    assert resp.status_code == 302
    visit.refresh_from_db()
    assert visit.status == PlannedVisitStatus.DROPPED
    assert m.WorkOrder.objects.get(pk=visit.work_order_id).status == WorkOrderStatus.CANCELLED
    audit = m.AuditLog.objects.get(action="planned_visit.drop")
    assert audit.actor_label == "desk"
    assert "refit" in desk.get(f"/desk/planned-visits/{visit.pk}/").content.decode()
    # The next planning pass does not bring a visit the desk dropped back.
    planned_visits_generate(now=world.now + H)
    visit.refresh_from_db()
    assert visit.status == PlannedVisitStatus.DROPPED
    again = desk.post(f"/desk/planned-visits/{visit.pk}/cancel/", {"reason": "twice"})
    assert again.status_code == 400
    assert "already" in again.content.decode()


def test_sales_sees_planned_visits_but_cannot_drop_them(
        world: ServedWorld, browser_client: Any) -> None:
    visit = _plan(world)
    sales = browser_client(_sales(world))
    page = sales.get(f"/desk/planned-visits/{visit.pk}/")
    assert page.status_code == 200
    assert "Drop the visit" not in page.content.decode()
    assert sales.post(f"/desk/planned-visits/{visit.pk}/cancel/",
                      {"reason": "x"}).status_code == 403
    visit.refresh_from_db()
    assert visit.status == PlannedVisitStatus.PLANNED


def test_engineers_and_customers_get_no_operations_pages(
        world: ServedWorld, field_engineer: Any, customer_user: Any, browser_client: Any) -> None:
    visit = _plan(world)
    invoice = _billable_job(world)
    for user in (field_engineer, customer_user):
        client = browser_client(user)
        for url in ("/desk/operations/", "/desk/planned-visits/",
                    f"/desk/planned-visits/{visit.pk}/", "/desk/charges/", "/desk/invoices/",
                    f"/desk/invoices/{invoice.pk}/", "/desk/orders/", "/desk/webhooks/"):
            assert client.get(url).status_code == 403, (user, url)
        assert client.post(f"/desk/invoices/{invoice.pk}/approve/").status_code == 403


def test_charges_page_says_covered_or_billable(world: ServedWorld, desk_agent: Any,
                                               browser_client: Any) -> None:
    invoice = _billable_job(world)
    desk = browser_client(desk_agent)
    body = desk.get("/desk/charges/?covered=no").content.decode()
    assert "BRG-6205 Bearing 6205" in body
    assert "Engineer labour" in body
    assert invoice.number in body
    assert "No charges." in desk.get("/desk/charges/?covered=yes").content.decode()
    assert desk.get("/desk/charges/?covered=maybe").status_code == 400


def test_desk_approves_an_invoice_draft_and_the_erp_is_told(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    invoice = _billable_job(world)
    desk = browser_client(desk_agent)
    listing = desk.get("/desk/invoices/?status=draft").content.decode()
    assert invoice.number in listing
    assert "179.50" in listing
    detail = desk.get(f"/desk/invoices/{invoice.pk}/").content.decode()
    assert "Approve and send to the ERP" in detail
    assert desk.post(f"/desk/invoices/{invoice.pk}/approve/").status_code == 302
    invoice.refresh_from_db()
    assert (invoice.status, invoice.approved_by_id) == (InvoiceStatus.APPROVED, desk_agent.pk)
    assert m.OutboxEvent.objects.filter(topic="invoice.approved").count() == 1
    assert m.AuditLog.objects.get(action="invoice.approve").actor_label == "desk"
    # Approving twice is refused by the service, shown on the page, nothing sent again.
    twice = desk.post(f"/desk/invoices/{invoice.pk}/approve/")
    assert twice.status_code == 400
    assert "already approved" in twice.content.decode()
    assert m.OutboxEvent.objects.filter(topic="invoice.approved").count() == 1


def test_sales_cannot_approve_invoices(world: ServedWorld, browser_client: Any) -> None:
    invoice = _billable_job(world)
    sales = browser_client(_sales(world))
    page = sales.get(f"/desk/invoices/{invoice.pk}/").content.decode()
    assert "Approve" not in page
    assert sales.post(f"/desk/invoices/{invoice.pk}/approve/").status_code == 403
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.DRAFT


def test_sales_order_pages_show_po_and_total(world: ServedWorld, desk_agent: Any,
                                             browser_client: Any) -> None:
    offer_decide(offer=world.north.offer, accepted=True, actor=None, now=world.now,
                 po_reference="PO-4711")
    order = m.SalesOrder.objects.get()
    desk = browser_client(desk_agent)
    assert order.number in desk.get("/desk/orders/?q=4711").content.decode()
    assert "No sales orders." in desk.get("/desk/orders/?q=nothing").content.decode()
    body = desk.get(f"/desk/orders/{order.pk}/").content.decode()
    assert "PO-4711" in body
    assert world.north.offer.number in body
    assert desk.get("/desk/orders/999999/").status_code == 404


def test_webhook_log_and_replay_for_managers_only(
        world: ServedWorld, desk_agent: Any, service_manager: Any, browser_client: Any) -> None:
    m.WebhookEndpoint.objects.create(name="ERP", url="https://erp.invalid/hook",
                                     secret="s3cret-not-shown")
    with transaction.atomic():
        outbox_emit(topic="contract.lapsed", data={"contract": "MC-1"}, now=world.now)
    d = m.WebhookDelivery.objects.get()
    m.WebhookDelivery.objects.filter(pk=d.pk).update(status=DeliveryStatus.DEAD, attempts=12,
                                                     last_error="connection refused")
    desk = browser_client(desk_agent)
    assert desk.get("/desk/webhooks/").status_code == 403
    assert desk.post(f"/desk/webhooks/{d.pk}/replay/").status_code == 403
    assert "Webhook deliveries" not in desk.get("/desk/operations/").content.decode()

    boss = browser_client(service_manager)
    listing = boss.get("/desk/webhooks/?status=dead").content.decode()
    assert "contract.lapsed" in listing
    assert "connection refused" in listing
    assert boss.get("/desk/webhooks/?status=nope").status_code == 400
    detail = boss.get(f"/desk/webhooks/{d.pk}/").content.decode()
    assert str(d.event_id) in detail
    assert "MC-1" in detail
    assert "s3cret-not-shown" not in detail
    assert boss.post(f"/desk/webhooks/{d.pk}/replay/").status_code == 302
    d.refresh_from_db()
    assert (d.status, d.attempts) == (DeliveryStatus.PENDING, 0)
    assert m.AuditLog.objects.get(action="webhook.replay").actor_label == "manager"


def test_operations_page_counts_what_waits(world: ServedWorld, service_manager: Any,
                                           browser_client: Any) -> None:
    _plan(world)
    _billable_job(world)
    body = browser_client(service_manager).get("/desk/operations/").content.decode()
    assert 'data-testid="ops-planned">1<' in body
    assert 'data-testid="ops-drafts">1<' in body
    assert 'data-testid="ops-dead">0<' in body


def test_desk_quotes_uncovered_work_from_the_charges_page(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    m.MaintenanceContract.objects.filter(account=world.north.account).update(
        covers_parts=False, covers_labour=False)
    wo, now = world.north.work_order, world.now
    work_order_schedule(work_order=wo, engineer=world.north.engineer, start=now + H,
                        end=now + 3 * H, actor=None, now=now)
    work_order_start(work_order=wo, actor=None, now=now + H)
    work_order_complete(work_order=wo, actor=None, report="Bearing replaced", time_spent_min=60,
                        outcome=Outcome.FAULT_CONFIRMED, now=now + 2 * H,
                        parts=[PartUsed(world.part, world.warehouse, 1)])
    desk = browser_client(desk_agent)
    assert "Quote instead of invoicing" in desk.get("/desk/charges/?covered=no").content.decode()
    resp = desk.post(f"/desk/work-orders/{wo.pk}/quote/")
    assert resp.status_code == 302
    offer = m.Offer.objects.get(account=world.north.account, title__startswith="Uncovered")
    assert resp["Location"] == f"/desk/offers/{offer.pk}/"
    assert offer.number in desk.get("/desk/charges/?covered=no").content.decode()
    assert invoice_drafts_build(now=now + 3 * H) == 0
    again = desk.post(f"/desk/work-orders/{wo.pk}/quote/", follow=True)
    assert "no uncovered work left" in again.content.decode()


def test_customer_cannot_quote_work(world: ServedWorld, customer_user: Any,
                                    browser_client: Any) -> None:
    wo = world.north.work_order
    assert browser_client(customer_user).post(
        f"/desk/work-orders/{wo.pk}/quote/").status_code == 403
