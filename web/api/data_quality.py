"""API for the data-quality report: each check with its count and the records to fix (the
first 50 of each), for office staff; others get 403."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from service_crm.selectors.access import STAFF_ROLES
from service_crm.selectors.data_quality import data_quality_report
from web.api.views import require_role


class FindingSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["account", "contact", "site", "asset"])
    id = serializers.IntegerField()
    account_id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    problem = serializers.CharField()


class CheckSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    title = serializers.CharField()
    count = serializers.IntegerField()
    findings = FindingSerializer(many=True)


class DataQualityViewSet(viewsets.ViewSet):
    """Master data to fix: accounts without a site or contact, sites without an address,
    contacts without a phone or with an invalid email or phone, assets without a serial or
    under a line at another site, likely duplicate accounts and contacts."""

    @extend_schema(responses=CheckSerializer(many=True))
    def list(self, request: Request) -> Response:
        require_role(request, STAFF_ROLES)
        return Response(CheckSerializer(data_quality_report(user=request.user),
                                        many=True).data)


def register(router: Any) -> None:
    router.register("data-quality", DataQualityViewSet, basename="dataquality")
