"""Bearer token and organization checks, shared by both transports.

A call carries `authorization: Bearer <token>` and `x-organization-id` and/or
`x-organization-name` (the platform's docs disagree on which one the gateway needs, so the dev
server accepts either; when both are sent both must name the token's organization). The token
never appears in an error message.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import grpc

from ._errors import ApiError

__all__ = ["AUTHENTICATION_FAILED", "UNAUTHENTICATED_METHODS", "Authenticator"]

AUTHENTICATION_FAILED = "authentication failed: missing or invalid bearer token"
# docs: /scriptum/api-reference — the only methods without an auth annotation.
UNAUTHENTICATED_METHODS = frozenset({"HealthCheck", "ListTemplates", "GetTemplate"})


class Authenticator:
    """Maps `authorization` + the org headers to the organization (its id) a call acts for.

    `principals` maps each accepted token to an organization id; `org_names` maps an
    organization id to its name (default: the name is the id).
    """

    def __init__(self, principals: Mapping[str, str], org_names: Mapping[str, str] | None = None) -> None:
        if not principals:
            raise ValueError("at least one principal (token -> organization) is required")
        for token, org in principals.items():
            if not token or not org:
                raise ValueError("principal tokens and organizations must be non-empty")
        # Bytes, so compare_digest accepts any characters.
        self._principals = [(token.encode(), org) for token, org in principals.items()]
        self._names = dict(org_names or {})

    def org_name(self, org: str) -> str:
        """The organization's name (its id unless one was configured)."""
        return self._names.get(org, org)

    def authenticate(
        self, authorization: str | None, organization_id: str | None, organization_name: str | None = None
    ) -> str:
        """The organization id of a valid call, else ApiError UNAUTHENTICATED / PERMISSION_DENIED."""
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
        if not organization_id and not organization_name:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                "authorization failed: missing x-organization-id (or x-organization-name) header",
            )
        if organization_id and organization_id != token_org:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"authorization failed: token is not valid for organization {organization_id!r}",
            )
        if organization_name and organization_name != self.org_name(token_org):
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"authorization failed: token is not valid for organization {organization_name!r}",
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
