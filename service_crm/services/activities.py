"""Activities and follow-up tasks: office staff log a call, visit, meeting or note on an
account (and a contact, asset or ticket of it), optionally with a follow-up task for someone;
due tasks are emailed to their assignee once; completing one goes on the timeline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm.models import Account, Asset, Contact, FollowUpTask, Interaction, Ticket
from service_crm.models.choices import InteractionKind
from service_crm.selectors.access import STAFF_ROLES, has_role
from service_crm.services import notifications
from service_crm.services.audit import audit_record, interaction_record, snapshot

K = InteractionKind
LOGGABLE = (K.CALL, K.VISIT, K.MEETING, K.NOTE, K.EMAIL)


@dataclass(frozen=True)
class FollowUp:
    title: str
    assignee: Any
    due: dt.date


def _check_staff(actor: Any) -> None:
    if not has_role(user=actor, roles=STAFF_ROLES):
        raise ValidationError({"actor": "Only office staff log activities and tasks."})


@transaction.atomic(durable=True)
def activity_log(*, account: Account, kind: str, summary: str, actor: Any, body: str = "",
                 contact: Contact | None = None, asset: Asset | None = None,
                 ticket: Ticket | None = None, follow_up: FollowUp | None = None,
                 at: dt.datetime | None = None,
                 now: dt.datetime | None = None) -> Interaction:
    """Put a call, visit, meeting, note or email on the account's timeline (``at`` defaults to
    now, not in the future), with a follow-up task when given. Audited."""
    now = now or timezone.now()
    at = at or now
    _check_staff(actor)
    errors: dict[str, str] = {}
    if kind not in LOGGABLE:
        errors["kind"] = "Log a call, visit, meeting, note or email."
    if not summary.strip():
        errors["summary"] = "Say in a line what happened."
    if at > now + dt.timedelta(minutes=5):
        errors["at"] = "An activity is logged after it happened, not ahead."
    for name, obj, owner in (("contact", contact, contact and contact.account_id),
                             ("asset", asset, asset and asset.site.account_id),
                             ("ticket", ticket, ticket and ticket.account_id)):
        if obj is not None and owner != account.pk:
            errors[name] = f"That {name} belongs to another account."
    if follow_up is not None:
        errors.update(_follow_up_errors(follow_up, today=now.date()))
    if errors:
        raise ValidationError(errors)
    entry = interaction_record(account=account, kind=kind, summary=summary.strip(),
                               body=body.strip(), contact=contact, asset=asset, ticket=ticket,
                               at=at, by=actor)
    audit_record(actor=actor, action=f"activity.{kind}", obj=entry, before=None, at=now)
    if follow_up is not None:
        task = FollowUpTask.objects.create(
            account=account, contact=contact, asset=asset, ticket=ticket, activity=entry,
            title=follow_up.title.strip(), assignee=follow_up.assignee, due=follow_up.due,
            created_at=now, created_by_id=actor.pk)
        audit_record(actor=actor, action="task.create", obj=task, before=None, at=now)
    return entry


def _follow_up_errors(f: FollowUp, *, today: dt.date) -> dict[str, str]:
    errors = {}
    if not f.title.strip():
        errors["follow_up_title"] = "Name the follow-up task."
    if f.due < today:
        errors["follow_up_due"] = "A follow-up is due today or later."
    if f.assignee is None or not has_role(user=f.assignee, roles=STAFF_ROLES):
        errors["follow_up_assignee"] = "Assign the task to someone in the office."
    return errors


@transaction.atomic(durable=True)
def task_complete(*, task: FollowUpTask, actor: Any,
                  now: dt.datetime | None = None) -> FollowUpTask:
    """Mark a follow-up done (its assignee or any office colleague); audited, on the
    timeline."""
    now = now or timezone.now()
    _check_staff(actor)
    t = FollowUpTask.objects.select_for_update().select_related("account").get(pk=task.pk)
    if t.done_at is not None:
        raise ValidationError({"done_at": f"Done already, on {t.done_at:%Y-%m-%d}."})
    before = snapshot(t)
    t.done_at, t.done_by_id = now, actor.pk
    t.save(update_fields=["done_at", "done_by"])
    audit_record(actor=actor, action="task.done", obj=t, before=before, at=now)
    interaction_record(account=t.account, contact=t.contact, asset=t.asset, ticket=t.ticket,
                       kind=K.NOTE, at=now, by=actor, summary=f"Follow-up done: {t.title}")
    return t


@transaction.atomic(durable=True)
def tasks_remind_due(*, now: dt.datetime | None = None) -> int:
    """Email each open task due today or earlier to its assignee, once; returns how many.
    SKIP LOCKED, so two housekeeping workers do not both remind."""
    now = now or timezone.now()
    due = list(FollowUpTask.objects.select_for_update(skip_locked=True)
               .filter(done_at__isnull=True, reminded_at__isnull=True, due__lte=now.date())
               .order_by("pk"))
    for t in due:
        FollowUpTask.objects.filter(pk=t.pk).update(reminded_at=now)
        notifications.notify("task.reminder", now=now, task_id=t.pk)
    return len(due)

