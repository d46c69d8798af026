"""The timed rules in one pass, as the consumer and `crm_housekeeping` run them."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from service_crm import models as m
from service_crm.services.alerts import alert_ingest
from service_crm.services.housekeeping import housekeeping_run
from service_crm.services.offers import offer_send
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def test_one_pass_applies_every_timed_rule(world: World) -> None:
    world.cover_by_contract(end=(NOW + dt.timedelta(days=60)).date())
    covered = alert_ingest(event=make_event(severity="critical"), now=NOW)
    world.asset.contracts.clear()
    uncovered = alert_ingest(event=make_event(failure_mode="leak"), now=NOW)
    offer_send(offer=m.Offer.objects.get(pk=uncovered.offer_id), actor=None, now=NOW)

    report = housekeeping_run(now=NOW + dt.timedelta(days=40))
    assert report.sla_breached == 1  # the uncovered ticket has no SLA clock
    assert report.offers_expired == 1
    assert report.renewal_opportunities == 1
    assert m.Ticket.objects.get(pk=covered.ticket_id).resolution_breached
    again = housekeeping_run(now=NOW + dt.timedelta(days=40))
    assert (again.sla_breached, again.offers_expired) == (0, 0)


def test_management_command_prints_the_report(world: World) -> None:
    out = io.StringIO()
    call_command("crm_housekeeping", stdout=out)
    assert "SLA breached 0" in out.getvalue()
