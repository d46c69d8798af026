"""Follow-up tasks: what someone at the office promised to do next for an account."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from service_crm.models.account import Account, Contact
from service_crm.models.asset import Asset
from service_crm.models.interaction import Interaction
from service_crm.models.ticket import Ticket


class FollowUpTask(models.Model):
    """A follow-up for an account ("send the retrofit quote", "call back after the audit"):
    who does it by when, usually after a logged call, visit or meeting. Due tasks are emailed to
    their assignee once; overdue ones are listed at the desk until done."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tasks")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="tasks")
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="tasks")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="tasks")
    activity = models.ForeignKey(Interaction, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="follow_ups")
    title = models.CharField(max_length=200)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="follow_up_tasks")
    due = models.DateField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    reminded_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["due", "pk"]
        indexes = [models.Index(fields=["done_at", "due"], name="task_open_due")]

    def __str__(self) -> str:
        return f"{self.title} ({self.account}, due {self.due})"

    @property
    def is_open(self) -> bool:
        return self.done_at is None
