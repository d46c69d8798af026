"""Alert ingestion: the one place detector output becomes CRM objects.

``alert_ingest`` is idempotent by (alert_id, revision): an event whose revision is not newer
than the one stored changes nothing, so at-least-once delivery is safe. Alerts for one asset
are serialised by a row lock on the asset, which (with the partial unique constraint on live
episodes) keeps concurrent alerts from opening duplicate episodes or tickets.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import asdict, dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from aftercare.events import AlertEvent
from service_crm.models import Alert, Asset, Episode, FailureMode, Ticket, WorkOrder
from service_crm.models.choices import (
    Coverage,
    EpisodeStatus,
    Priority,
    Severity,
    TicketSource,
    WorkOrderStatus,
)
from service_crm.selectors.coverage import coverage_at
from service_crm.services.audit import (
    audit_record,
    interaction_record,
    records_batched,
    snapshot,
)
from service_crm.services.offers import offer_create_for_episode_internal
from service_crm.services.tickets import SEVERITY_PRIORITY, ticket_open_internal
from service_crm.services.work_orders import work_order_propose_internal

_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Outcome(enum.Enum):
    """What ingesting one event did."""

    DUPLICATE = "duplicate"          # revision already applied: nothing changed
    UNCLAIMED = "unclaimed"          # device not attached to any asset: alert stored only
    CLEARED = "cleared"              # the condition cleared
    ATTACHED = "attached"            # joined a live episode that already has a ticket
    SILENT = "silent"                # a work order is in progress on the asset: no new ticket
    TICKET = "ticket"                # a ticket was opened (new or reopened episode)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    alert_id: int | None = None
    episode_id: int | None = None
    ticket_id: int | None = None
    work_order_id: int | None = None
    offer_id: int | None = None


def failure_mode_code(name: str) -> str:
    """Detectors name failure modes in words ("bearing wear"), the simulator and the
    equipment catalogue as codes ("bearing_wear"): compare them in one form.

    >>> failure_mode_code("Leak or blockage"), failure_mode_code("bearing_wear")
    ('leak_or_blockage', 'bearing_wear')
    """
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:63] or "unknown"


def _json(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _upsert_alert(event: AlertEvent, asset: Asset | None) -> tuple[Alert, bool]:
    """Lock the alert row, creating it if new; True if this revision was applied before."""
    fields = dict(
        revision=event.revision, state=event.state, device_key=event.device, asset=asset,
        kind=event.kind, severity=event.severity,
        failure_mode_code=failure_mode_code(event.failure_mode),
        score=event.score, opened_at=event.opened_at, at=event.at,
        evidence=_json([asdict(e) for e in event.evidence]), detectors=dict(event.detectors),
        classified=event.classified,
    )
    alert = Alert.objects.select_for_update().filter(alert_id=event.alert_id).first()
    if alert is None:
        try:
            with transaction.atomic():  # savepoint: a racing first delivery may insert first
                return Alert.objects.create(alert_id=event.alert_id, **fields), False
        except IntegrityError:
            alert = Alert.objects.select_for_update().get(alert_id=event.alert_id)
    if alert.revision >= event.revision:
        return alert, True
    if alert.classified and not event.classified:
        # The desk classified it (or the worker did at an earlier revision): a later revision's
        # guess from a metric name does not undo that.
        fields.update(failure_mode_code=alert.failure_mode_code, classified=True)
    for k, v in fields.items():
        setattr(alert, k, v)
    alert.save()
    return alert, False


def _local_date(asset: Asset, at: dt.datetime) -> dt.date:
    return at.astimezone(ZoneInfo(asset.site.timezone)).date()


def _work_order_in_progress(asset: Asset) -> bool:
    return WorkOrder.objects.filter(ticket__asset=asset,
                                    status=WorkOrderStatus.IN_PROGRESS).exists()


def _open_ticket(episode: Episode) -> Ticket | None:
    return episode.tickets.open().order_by("-opened_at").first()


@transaction.atomic(durable=True)
def alert_ingest(*, event: AlertEvent, now: dt.datetime | None = None) -> IngestResult:
    """Apply one alert event: episode, triage, ticket, work order or offer, timeline, audit."""
    now = now or timezone.now()
    # Serialise everything that happens to this asset's alerts and episodes: lock the asset
    # the device is attached to (found and locked in one statement).
    asset: Asset | None = (
        Asset.objects.select_for_update(of=("self",))
        .select_related("site__account", "equipment_model")
        .filter(devices__device_key=event.device).first())
    alert, duplicate = _upsert_alert(event, asset)
    if duplicate:
        return IngestResult(Outcome.DUPLICATE, alert_id=alert.pk, episode_id=alert.episode_id)
    if asset is None:
        return IngestResult(Outcome.UNCLAIMED, alert_id=alert.pk)
    # The alert's savepoint is behind us: the audit and timeline rows of this event are
    # written together at the end (records_batched's rule).
    with records_batched():
        return _apply(event=event, asset=asset, alert=alert, now=now)


def _apply(*, event: AlertEvent, asset: Asset, alert: Alert, now: dt.datetime) -> IngestResult:
    account = asset.site.account
    code = alert.failure_mode_code

    live = Episode.objects.select_for_update().filter(
        asset=asset, failure_mode_code=code,
        status__in=[EpisodeStatus.OPEN, EpisodeStatus.WATCHING]).first()

    if event.state == "clear":
        if live is not None:
            alert.episode = live
            alert.save(update_fields=["episode"])
            interaction_record(account=account, asset=asset, at=now,
                               summary=f"Alert {event.alert_id} cleared on {event.device}")
        return IngestResult(Outcome.CLEARED, alert_id=alert.pk,
                            episode_id=None if live is None else live.pk)

    reopened = False
    if live is not None and live.status == EpisodeStatus.WATCHING:
        before = snapshot(live)
        if live.watch_until is None or event.at <= live.watch_until:
            live.status, live.watch_until = EpisodeStatus.OPEN, None
            live.reopened_count += 1
            reopened = True
            live.save()
            audit_record(actor=None, action="episode.reopen", obj=live, before=before, at=now)
            interaction_record(account=account, asset=asset, at=now,
                               summary=f"Episode {live.pk} reopened: {code} "
                                       "returned during the watch period")
        else:
            live.status, live.closed_at = EpisodeStatus.CLOSED, live.watch_until
            live.save()
            audit_record(actor=None, action="episode.close", obj=live, before=before, at=now)
            live = None

    opened = live is None
    if live is None:
        fm = FailureMode.objects.filter(equipment_model_id=asset.equipment_model_id,
                                        code=code).first()
        live = Episode.objects.create(
            asset=asset, failure_mode_code=code, failure_mode=fm,
            opened_at=event.opened_at, last_alert_at=event.at, peak_severity=event.severity)
        audit_record(actor=None, action="episode.open", obj=live, before=None, at=now)
    else:
        if _SEVERITY_RANK[Severity(event.severity)] > _SEVERITY_RANK[Severity(live.peak_severity)]:
            live.peak_severity = event.severity
        live.last_alert_at = max(live.last_alert_at, event.at)
        live.save(update_fields=["peak_severity", "last_alert_at"])
    alert.episode = live
    alert.save(update_fields=["episode"])

    if _work_order_in_progress(asset):
        return IngestResult(Outcome.SILENT, alert_id=alert.pk, episode_id=live.pk)
    # An episode opened just now has no tickets yet (its row is new in this transaction).
    existing = None if opened else _open_ticket(live)
    if existing is not None and not reopened:
        return IngestResult(Outcome.ATTACHED, alert_id=alert.pk, episode_id=live.pk,
                            ticket_id=existing.pk)

    interaction_record(
        account=account, asset=asset, at=now,
        summary=f"Alert {event.severity}: {code} on {asset.serial} "
                f"(device {event.device}, score {event.score:.2f})")
    return _triage(event=event, asset=asset, alert=alert, episode=live, reopened=reopened, now=now)


def _priority(event: AlertEvent) -> Priority:
    """An equipment alert's ticket priority follows its severity (how far the failure mode has
    progressed); a device problem (a sensor stuck or silent, a device offline) is low priority
    whatever its severity: the machine may be fine.

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> ev = AlertEvent(alert_id="a", revision=0, state="open", device="d", kind="device",
    ...                 severity="warning", failure_mode="no data", score=0.6, opened_at=t, at=t)
    >>> _priority(ev), _priority(replace(ev, kind="equipment"))
    (Priority.P3, Priority.P2)
    """
    return Priority.P3 if event.kind == "device" else SEVERITY_PRIORITY[event.severity]


def _triage(*, event: AlertEvent, asset: Asset, alert: Alert, episode: Episode, reopened: bool,
            now: dt.datetime) -> IngestResult:
    """Coverage at alert time decides: contract ticket + work order, warranty ticket, or a desk
    ticket with a draft offer."""
    cover = coverage_at(asset=asset, on=_local_date(asset, event.opened_at))
    name = episode.failure_mode.name if episode.failure_mode else event.failure_mode
    summary = f"{'Recurring: ' if reopened else ''}{name} on {asset.serial} ({asset.site.name})"
    ticket = ticket_open_internal(
        asset=asset, summary=summary, source=TicketSource.ALERT,
        priority=_priority(event), cover=cover, now=now, episode=episode)
    result = IngestResult(Outcome.TICKET, alert_id=alert.pk, episode_id=episode.pk,
                          ticket_id=ticket.pk)
    if cover.coverage == Coverage.CONTRACT:
        wo = work_order_propose_internal(ticket=ticket, now=now)
        return replace(result, work_order_id=wo.pk)
    if cover.coverage == Coverage.NONE:
        offer = offer_create_for_episode_internal(episode=episode, ticket=ticket, now=now)
        return replace(result, offer_id=offer.pk)
    return result
