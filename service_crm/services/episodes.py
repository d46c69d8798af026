"""Episodes: the housekeeping that runs on a timer, and the desk's classification of an
episode whose failure mode the detector could only guess."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ingest.decode import METRIC_NAME
from service_crm.models import Alert, Episode, FailureMode, MetricSpec
from service_crm.models.choices import EpisodeStatus
from service_crm.models.equipment import MetricRole
from service_crm.services.audit import audit_record, interaction_record, snapshot


@transaction.atomic(durable=True)
def episode_close_expired_watches(*, now: dt.datetime | None = None) -> int:
    """Episodes whose watch period passed without the anomaly returning count as fixed."""
    now = now or timezone.now()
    n = 0
    for ep in (Episode.objects.select_for_update(skip_locked=True)
               .select_related("asset__site__account")
               .filter(status=EpisodeStatus.WATCHING, watch_until__lt=now)):
        before = snapshot(ep)
        ep.status, ep.closed_at = EpisodeStatus.CLOSED, now
        ep.save()
        audit_record(actor=None, action="episode.close", obj=ep, before=before, at=now)
        interaction_record(account=ep.asset.site.account, asset=ep.asset, at=now,
                           summary=f"Episode {ep.pk} closed: no recurrence during watch period")
        n += 1
    return n


# Detectors whose evidence rows name a telemetry channel (the per-asset checks name a
# correlated group or a bearing band instead).
_CHANNEL_DETECTORS = frozenset({"limit", "baseline", "cusum"})


def lead_metric(alert: Alert) -> str | None:
    """The telemetry metric that leads an alert: its strongest channel evidence, if any.

    >>> lead_metric(Alert(evidence=[{"metric": "accel_x:bpfo", "detector": "spectral"},
    ...                             {"metric": "particles_ppm", "detector": "baseline"}]))
    'particles_ppm'
    """
    for e in alert.evidence or ():
        if isinstance(e, dict) and e.get("detector") in _CHANNEL_DETECTORS \
                and isinstance(e.get("metric"), str) and METRIC_NAME.fullmatch(e["metric"]):
            return str(e["metric"])
    return None


def _unclassified_metrics(alerts: list[Alert]) -> list[str]:
    """The metrics that lead the unclassified ones of `alerts`, sorted."""
    return sorted({m for a in alerts if not a.classified if (m := lead_metric(a)) is not None})


def _remember(metrics: list[str], *, model_id: int, role: str, failure_mode: str, actor: Any,
              now: dt.datetime) -> list[str]:
    """Save what the desk said of each metric into the equipment model (a metric spec with
    `role` and `failure_mode`, created if the model had none), audited; returns `metrics`."""
    for metric in metrics:
        spec = MetricSpec.objects.filter(equipment_model_id=model_id, metric=metric).first()
        before = None if spec is None else snapshot(spec)
        if spec is None:
            spec = MetricSpec(equipment_model_id=model_id, metric=metric)
        spec.role, spec.failure_mode = role, failure_mode
        spec.full_clean()
        spec.save()
        audit_record(actor=actor, action="metric_spec.classify", obj=spec, before=before,
                     at=now)
    return list(metrics)


@dataclass(frozen=True)
class Classified:
    """What classifying an episode did: the episode its alerts now belong to (the one given,
    or a live episode of the chosen failure mode it was merged into) and the metrics whose
    failure mode was saved into the equipment model."""

    episode: Episode
    merged: bool
    remembered: tuple[str, ...]


@transaction.atomic(durable=True)
def episode_classify(*, actor: Any, episode: Episode, code: str, remember: bool,
                     now: dt.datetime | None = None) -> Classified:
    """The desk names the failure mode of an episode the detector could only guess (its alerts
    led by metrics the equipment model does not name). The episode takes that failure mode, or
    joins the asset's live episode of that mode (alerts and tickets move there, this one
    closes); its alerts count as classified. With `remember`, each leading metric's failure mode
    is saved into the asset's equipment model (a metric spec: role evidence), which the detect
    worker reloads, so the next alert of that metric carries the mode. Audited."""
    now = now or timezone.now()
    ep = (Episode.objects.select_for_update().select_related("asset__site__account")
          .get(pk=episode.pk))
    asset = ep.asset
    model_id = asset.equipment_model_id
    fm = FailureMode.objects.filter(equipment_model_id=model_id, code=code).first()
    if fm is None:
        raise ValidationError({"failure_mode": f"{code!r} is not a failure mode of "
                                               f"{asset.equipment_model}."})
    alerts = list(ep.alerts.select_for_update())
    remembered = _remember(_unclassified_metrics(alerts), model_id=model_id,
                           role=MetricRole.EVIDENCE, failure_mode=code, actor=actor,
                           now=now) if remember else []
    target, merged = ep, False
    if code != ep.failure_mode_code and ep.status in (EpisodeStatus.OPEN, EpisodeStatus.WATCHING):
        live = (Episode.objects.select_for_update()
                .filter(asset=asset, failure_mode_code=code,
                        status__in=[EpisodeStatus.OPEN, EpisodeStatus.WATCHING])
                .exclude(pk=ep.pk).first())
        if live is not None:
            target, merged = live, True
    before = snapshot(ep)
    if merged:
        Alert.objects.filter(episode=ep).update(episode=target)
        ep.tickets.update(episode=target)
        ep.status, ep.closed_at = EpisodeStatus.CLOSED, now
        ep.save()
        t_before = snapshot(target)
        target.opened_at = min(target.opened_at, ep.opened_at)
        target.last_alert_at = max(target.last_alert_at, ep.last_alert_at)
        target.save(update_fields=["opened_at", "last_alert_at"])
        audit_record(actor=actor, action="episode.merge", obj=target, before=t_before, at=now)
    else:
        ep.failure_mode_code, ep.failure_mode = code, fm
        ep.save(update_fields=["failure_mode_code", "failure_mode"])
    audit_record(actor=actor, action="episode.classify", obj=ep, before=before, at=now)
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(failure_mode_code=code,
                                                               classified=True)
    interaction_record(
        account=asset.site.account, asset=asset, at=now,
        summary=f"Episode {ep.pk} classified as {fm.name}"
                + (f", merged into episode {target.pk}" if merged else "")
                + (f"; saved for {', '.join(remembered)} on {asset.equipment_model}"
                   if remembered else ""))
    return Classified(target, merged, tuple(remembered))


@transaction.atomic(durable=True)
def episode_not_a_fault(*, actor: Any, episode: Episode, remember: bool = True,
                        now: dt.datetime | None = None) -> Classified:
    """The desk's word on an episode the detector could only guess: not a fault, its leading
    metrics are operating inputs (the ambient temperature of a cold morning, a set-point, a
    supply the machine does not drive). The episode closes and its alerts count as
    classified; with `remember` (the point of it), each leading metric is saved into the
    asset's equipment model with the role "input", which the detect worker reloads: from then
    on the metric is watched as a sensor and related to the others, never evidence of a fault
    on any machine of that model. The episode's tickets stay for the desk to close. Audited."""
    now = now or timezone.now()
    ep = (Episode.objects.select_for_update().select_related("asset__site__account",
                                                             "asset__equipment_model")
          .get(pk=episode.pk))
    asset = ep.asset
    alerts = list(ep.alerts.select_for_update())
    metrics = _unclassified_metrics(alerts)
    if not metrics:
        raise ValidationError("This episode has no unclassified alert led by a metric: there is "
                              "nothing to call an operating input.")
    remembered = _remember(metrics, model_id=asset.equipment_model_id, role=MetricRole.INPUT,
                           failure_mode="", actor=actor, now=now) if remember else []
    before = snapshot(ep)
    if ep.status != EpisodeStatus.CLOSED:
        ep.status, ep.closed_at = EpisodeStatus.CLOSED, now
        ep.save(update_fields=["status", "closed_at"])
    audit_record(actor=actor, action="episode.not_a_fault", obj=ep, before=before, at=now)
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(classified=True)
    interaction_record(
        account=asset.site.account, asset=asset, at=now,
        summary=f"Episode {ep.pk} closed: not a fault ({', '.join(metrics)} "
                + ("an operating input" if len(metrics) == 1 else "operating inputs")
                + (f", saved on {asset.equipment_model}" if remembered else "") + ")")
    return Classified(ep, False, tuple(remembered))
