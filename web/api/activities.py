"""API for the operational CRM: log a call, visit, meeting, note or email on an account (with
a follow-up task), list an account's timeline, list follow-up tasks and mark them done. Office
staff only; reads through the scoped selectors, writes through the audited services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from service_crm.models import FollowUpTask, Interaction
from service_crm.models.choices import InteractionKind
from service_crm.selectors import access
from service_crm.selectors import activities as sel
from service_crm.selectors.access import STAFF_ROLES
from service_crm.services import activities as services
from web.api import filters as f
from web.api.erp import StrictCharField, StrictIntegerField
from web.api.views import ReadOnlyScoped, require_role


class ActivitySerializer(serializers.ModelSerializer[Interaction]):
    class Meta:
        model = Interaction
        fields = ["id", "account", "kind", "summary", "body", "contact", "asset", "ticket",
                  "at", "by"]
        read_only_fields = fields


class FollowUpInSerializer(serializers.Serializer[Any]):
    title = StrictCharField(max_length=200)
    assignee = StrictIntegerField(min_value=1, max_value=2_147_483_647,
                                  help_text="user id of an office colleague")
    due = serializers.DateField()


class ActivityInSerializer(serializers.Serializer[Any]):
    account = StrictIntegerField(min_value=1, max_value=2_147_483_647)
    kind = serializers.ChoiceField(choices=[(k, str(InteractionKind(k).label))
                                            for k in services.LOGGABLE])
    summary = StrictCharField(max_length=300)
    body = StrictCharField(required=False, default="", allow_blank=True, max_length=10_000)
    contact = StrictIntegerField(required=False, allow_null=True, default=None, min_value=1,
                                 max_value=2_147_483_647)
    at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                   help_text="when it happened; empty = now")
    follow_up = FollowUpInSerializer(required=False, allow_null=True, default=None)


class TaskSerializer(serializers.ModelSerializer[FollowUpTask]):
    class Meta:
        model = FollowUpTask
        fields = ["id", "account", "contact", "activity", "title", "assignee", "due",
                  "created_at", "reminded_at", "done_at", "done_by"]
        read_only_fields = fields


def _in_scope(getter: Any, *, user: Any, pk: Any, field: str) -> Any:
    """A referenced object the caller may see, or a 400 naming the field (not a 404: the
    URL was right, the body was not)."""
    try:
        return getter(user=user, pk=pk)
    except Http404:
        raise ValidationError({field: f"No {field} {pk} that you may see."}) from None


class ActivityViewSet(mixins.CreateModelMixin, ReadOnlyScoped):
    """Account timelines (office staff): filter by `account`, `kind`; POST logs an activity,
    optionally with a `follow_up` task."""

    serializer_class = ActivitySerializer
    list_selector = staticmethod(sel.activity_list_for_user)
    get_selector = staticmethod(sel.activity_get_for_user)
    filters = (f.integer("account", "account_id"),
               f.choice("kind", "kind", InteractionKind.choices))

    @extend_schema(request=ActivityInSerializer, responses={201: ActivitySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        require_role(request, STAFF_ROLES)
        body = ActivityInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, user = body.validated_data, request.user
        account = _in_scope(access.account_get_for_user, user=user, pk=data["account"],
                            field="account")
        contact = (_in_scope(access.contact_get_for_user, user=user, pk=data["contact"],
                             field="contact") if data["contact"] else None)
        follow_up = None
        if data["follow_up"]:
            fu = data["follow_up"]
            follow_up = services.FollowUp(
                title=fu["title"], due=fu["due"],
                assignee=sel.staff_users().filter(pk=fu["assignee"]).first())
        entry = services.activity_log(account=account, kind=data["kind"],
                                      summary=data["summary"], body=data["body"],
                                      contact=contact, at=data["at"], follow_up=follow_up,
                                      actor=user)
        return Response(ActivitySerializer(entry).data, status=201)


class TaskViewSet(ReadOnlyScoped):
    """Follow-up tasks (office staff): filter by `account`, `assignee`, `open` (true/false);
    `done` marks one done."""

    serializer_class = TaskSerializer
    list_selector = staticmethod(sel.task_list_for_user)
    get_selector = staticmethod(sel.task_get_for_user)
    filters = (f.integer("account", "account_id"), f.integer("assignee", "assignee_id"),
               f.boolean("open", "done_at__isnull"))

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    def done(self, request: Request, pk: str) -> Response:
        require_role(request, STAFF_ROLES)
        task = services.task_complete(task=self.get_object(), actor=request.user)
        return Response(TaskSerializer(task).data)


def register(router: Any) -> None:
    router.register("activities", ActivityViewSet, basename="activity")
    router.register("tasks", TaskViewSet, basename="followuptask")

