"""Bearer token and organization checks, shared by the gRPC interceptor and the HTTP gateway."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import grpc

from ._errors import ApiError

__all__ = ["AUTHENTICATION_FAILED", "Authenticator"]

AUTHENTICATION_FAILED = "authentication failed: missing or invalid bearer token"


class Authenticator:
    """Maps `authorization` + `x-organization-id` to the organization a call acts for."""

    def __init__(self, principals: Mapping[str, str]) -> None:
        if not principals:
            raise ValueError("at least one principal (token -> organization) is required")
        for token, org in principals.items():
            if not token or not org:
                raise ValueError("principal tokens and organizations must be non-empty")
        # Bytes, so compare_digest accepts any characters.
        self._principals = [(token.encode(), org) for token, org in principals.items()]

    def authenticate(self, authorization: str | None, organization: str | None) -> str:
        """The organization of a valid call, else ApiError UNAUTHENTICATED / PERMISSION_DENIED."""
        token = _bearer_token(authorization)
        if token is None:
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, AUTHENTICATION_FAILED)
        presented = token.encode()
        token_org: str | None = None
        # Compare against every principal (no early exit) so timing does not reveal which matched.
        for known, org in self._principals:
            if hmac.compare_digest(presented, known):
                token_org = org
        if token_org is None:
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, AUTHENTICATION_FAILED)
        if not organization:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                "authorization failed: missing x-organization-id header",
            )
        if organization != token_org:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"authorization failed: token is not valid for organization {organization!r}",
            )
        return token_org


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
