"""Episode housekeeping that runs on a timer."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from service_crm.models import Episode
from service_crm.models.choices import EpisodeStatus
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
