"""Query-parameter filters for list endpoints, validated by Django form fields so a bad value
answers 400 naming the parameter instead of being silently ignored."""

from __future__ import annotations

import datetime as dt
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
    # Ids are PostgreSQL bigints: a larger number names nothing and is refused as such.
    return QueryFilter(param, lookup, forms.IntegerField(min_value=1, max_value=2**63 - 1))


class StrictBooleanField(forms.Field):
    """true/false (also 1/0, yes/no, on/off); anything else is an error. Django's
    NullBooleanField reads an unknown word as "not given", so a typo silently changed nothing."""

    TRUE = frozenset({"true", "1", "yes", "on"})
    FALSE = frozenset({"false", "0", "no", "off"})

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        word = str(value).strip().lower()
        if word in self.TRUE:
            return True
        if word in self.FALSE:
            return False
        raise DjangoValidationError("Give true or false.", code="invalid")


def boolean(param: str, lookup: str) -> QueryFilter:
    return QueryFilter(param, lookup, StrictBooleanField(required=False))


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
        if isinstance(value, dt.datetime):
            # Python accepts offsets up to 24 h, PostgreSQL up to 16 h: send UTC.
            value = value.astimezone(dt.UTC)
        if value is not None:
            values[f.lookup] = value
    if errors:
        raise ValidationError(errors)
    return values


def apply(
    qs: QuerySet[M], params: Mapping[str, Any], filters: Iterable[QueryFilter]
) -> QuerySet[M]:
    return qs.filter(**parse(params, filters))
