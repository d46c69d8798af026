"""Query-parameter filters for list endpoints, validated by Django form fields so a bad value
answers 400 naming the parameter instead of being silently ignored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from rest_framework.exceptions import ValidationError

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class QueryFilter:
    """``?param=value`` narrows the list by ``lookup``; ``field`` parses and checks the value."""

    param: str
    lookup: str
    field: forms.Field


def choice(param: str, lookup: str, choices: Iterable[tuple[str, str]]) -> QueryFilter:
    return QueryFilter(param, lookup, forms.ChoiceField(choices=list(choices)))


def integer(param: str, lookup: str) -> QueryFilter:
    return QueryFilter(param, lookup, forms.IntegerField(min_value=1))


def boolean(param: str, lookup: str) -> QueryFilter:
    return QueryFilter(param, lookup, forms.NullBooleanField())


def text(param: str, lookup: str) -> QueryFilter:
    return QueryFilter(param, lookup, forms.CharField(max_length=200))


def instant(param: str, lookup: str) -> QueryFilter:
    return QueryFilter(param, lookup, forms.DateTimeField())


def parse(params: Mapping[str, Any], filters: Iterable[QueryFilter]) -> dict[str, Any]:
    """Cleaned values by lookup for the parameters present; 400 naming each bad parameter."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for f in filters:
        raw = params.get(f.param)
        if raw is None or raw == "":
            continue
        try:
            value = f.field.clean(raw)
        except DjangoValidationError as exc:
            errors[f.param] = list(exc.messages)
            continue
        if value is not None:
            values[f.lookup] = value
    if errors:
        raise ValidationError(errors)
    return values


def apply(
    qs: QuerySet[M], params: Mapping[str, Any], filters: Iterable[QueryFilter]
) -> QuerySet[M]:
    return qs.filter(**parse(params, filters))
