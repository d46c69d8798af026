"""Guarded reads of API tokens: a user sees their own, an admin everyone's."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from service_crm.models import ApiToken


def api_token_list_for_user(*, user: Any) -> QuerySet[ApiToken]:
    qs = ApiToken.objects.select_related("user")
    return qs if user.is_superuser else qs.filter(user=user)


def api_token_get_for_user(*, user: Any, pk: object) -> ApiToken:
    try:
        return api_token_list_for_user(user=user).get(pk=int(str(pk)))
    except (ApiToken.DoesNotExist, ValueError):
        raise Http404("No such token.") from None
