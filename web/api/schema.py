"""OpenAPI post-processing: every operation documents the errors it can answer.

DRF answers any endpoint with 400 (a bad parameter or body), 401 (no or a bad token), 403 (the
role may not), 405, 406, 415 (a method, Accept or content type it does not serve), a detail
route also with 404 (not in your scope, or not there) and the token exchange with 429 (log-in
limit). All carry ``{"detail": "...", "errors": {field: [...]}}`` (``errors`` on 400s only).
"""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "description": "What is wrong, in one line; `errors` names each bad field or parameter.",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "object",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["detail"],
}

COMMON = {"400": "Bad request: a parameter or a field is wrong (named in `errors`)",
          "401": "No token or session, or a token that is invalid, expired or revoked",
          "403": "Your role may not do this",
          "405": "Method not allowed",
          "406": "Not acceptable (the Accept header asks for what is not served)",
          "415": "Unsupported media type"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any,
                        public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = dict(COMMON)
            if "{" in path:
                codes["404"] = "Not found (or not in your scope)"
            if path.endswith("/token/") and method == "post":
                codes["429"] = "Too many failed log-ins: wait `Retry-After` seconds"
            for code, description in codes.items():
                operation["responses"].setdefault(code, _error(description))
    return result
