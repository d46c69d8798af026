"""Page sizes with a cap, and ``limit``/``offset`` checked: a bad value is a 400 that says
what is allowed, never a silently different page or a database error."""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

DIGITS = re.compile(r"[0-9]{1,19}")


def parse_count(params: Any, name: str, *, default: int, lowest: int, highest: int,
                hint: str = "") -> int:
    """``params[name]`` as a whole number in [lowest, highest], ``default`` when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw) if DIGITS.fullmatch(raw) else None
    if value is None or not lowest <= value <= highest:
        raise ValidationError({name: [f"A whole number from {lowest} to {highest}{hint}."]})
    return value


class CappedLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500
    # Beyond this, narrow the list with its filters: a deep OFFSET reads every row before it.
    max_offset = 1_000_000

    def get_limit(self, request: Request) -> int:
        return parse_count(request.query_params, self.limit_query_param,
                           default=self.default_limit, lowest=1, highest=self.max_limit)

    def get_offset(self, request: Request) -> int:
        return parse_count(request.query_params, self.offset_query_param, default=0,
                           lowest=0, highest=self.max_offset,
                           hint=" (narrow the list with its filters instead)")

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: {"minimum": 1, "maximum": self.max_limit,
                                           "default": self.default_limit},
                  self.offset_query_param: {"minimum": 0, "maximum": self.max_offset,
                                            "default": 0}}
        for param in params:
            param["schema"].update(bounds.get(param["name"], {}))
        return params
