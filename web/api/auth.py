"""``Authorization: Token <key>`` against the hashed, expiring, revocable API tokens
(:mod:`service_crm.services.api_tokens`)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request

from service_crm.services.api_tokens import api_token_authenticate


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's header format (so the schema and clients stay the same), our token store."""

    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        token = api_token_authenticate(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return token.user, token


def request_token(request: Request) -> Any:
    """The API token this request was authenticated with, or None (session log-in)."""
    from service_crm.models import ApiToken

    return request.auth if isinstance(request.auth, ApiToken) else None
