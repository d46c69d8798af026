"""JSON errors that say what is wrong: services' ValidationErrors become 400s keyed by field,
with a one-line ``detail`` that names the field for people reading logs."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _summary(errors: Any) -> str:
    if isinstance(errors, dict):
        parts = []
        for field, messages in errors.items():
            text = " ".join(str(m) for m in messages) if isinstance(messages, list) \
                else str(messages)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(errors, list):
        return " ".join(str(m) for m in errors)
    return str(errors)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        detail: Any = (exc.message_dict if hasattr(exc, "error_dict")
                       else {"non_field_errors": exc.messages})
        exc = exceptions.ValidationError(detail=detail)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) \
            else {"non_field_errors": response.data}
        response.data = {"detail": _summary(errors), "errors": errors}
    return response
