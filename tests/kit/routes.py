"""The proto's HTTP routes, read from its ``google.api.http`` annotations (the one source of truth the
gateway serves), never from the server's own tables, so a route the server forgot is still tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.api import annotations_pb2  # type: ignore[import-untyped]  # no stubs

from pytest_scriptum._proto import scriptum_pb2 as pb

__all__ = ["ADMIN_SERVICE", "SERVICE", "Route", "proto_routes"]

SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumService"]
ADMIN_SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumDevAdmin"]


@dataclass(frozen=True)
class Route:
    """One HTTP binding of an RPC: ``verb`` in upper case, ``template`` such as
    ``/v1/scriptum/threads/{thread_id}``, ``body`` "*" when the request's remaining fields go in a
    JSON body (else in the query), ``streaming`` for a server stream (newline-delimited JSON)."""

    rpc: str
    verb: str
    template: str
    body: str
    streaming: bool

    @property
    def path_fields(self) -> tuple[str, ...]:
        """Field names in the template, in order: ``("name", "version")``."""
        return tuple(part[1:-1] for part in self.template.split("/") if part.startswith("{"))


def proto_routes() -> list[Route]:
    """Every binding (additional ones included) of every ScriptumService RPC, from the descriptors."""
    routes = []
    for method in SERVICE.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        for binding in (rule, *rule.additional_bindings):
            verb = binding.WhichOneof("pattern")
            assert verb is not None and verb != "custom", method.name
            template = getattr(binding, verb)
            routes.append(Route(method.name, verb.upper(), template, binding.body, method.server_streaming))
    return routes
