"""HTTP routes of the Scriptum API, read from the bundled proto's ``google.api.http`` annotations.

One source of truth: the proto says ``post: "/v1/scriptum/threads/{thread_id}/cancel" body: "*"``,
and ``http_request`` turns a request message into that verb, path (path parameters filled from the
request), query (the remaining fields of a body-less call) and pbjson body (camelCase names, int64
as strings, bytes as base64; path parameters removed), as grpc-gateway transcodes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from google.api import annotations_pb2  # type: ignore[import-untyped]  # no stubs
from google.protobuf import json_format
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from ._wire import bundled_service

__all__ = ["ROUTES", "HttpRequest", "Route", "http_request", "routes_of"]

# "{thread_id}" or "{name=scripts/*}": a path parameter and its optional sub-pattern.
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=[^}]*)?\}")


@dataclass(frozen=True)
class Route:
    """One method's primary HTTP binding."""

    verb: str
    template: str
    body: str  # "" (no body), "*" (every field not in the path) or a field name

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(m.group(1) for m in _PARAM.finditer(self.template))


@dataclass(frozen=True)
class HttpRequest:
    """What to send: verb, path (parameters filled and quoted), query parameters, JSON body."""

    verb: str
    path: str
    params: tuple[tuple[str, str], ...]
    body: Any


def routes_of(service: ServiceDescriptor) -> dict[str, Route]:
    """Method name -> Route, from each method's google.api.http option (methods without one are left out)."""
    found: dict[str, Route] = {}
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule = options.Extensions[annotations_pb2.http]
        pattern = rule.WhichOneof("pattern")
        if pattern is None:
            continue
        if pattern == "custom":
            verb, template = rule.custom.kind.upper(), rule.custom.path
        else:
            verb, template = pattern.upper(), getattr(rule, pattern)
        found[method.name] = Route(verb, template, rule.body)
    return found


ROUTES: Mapping[str, Route] = MappingProxyType(routes_of(bundled_service()))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(prefix: str, value: Any, into: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    elif isinstance(value, list):
        for item in value:
            _flatten(prefix, item, into)
    else:
        into.append((prefix, _text(value)))


def http_request(route: Route, message: Message) -> HttpRequest:
    """The HTTP form of ``message`` on ``route`` (see the module docstring)."""
    pbjson = json_format.MessageToDict(message)  # camelCase names, int64 as strings, bytes base64
    fields = message.DESCRIPTOR.fields_by_name
    values: dict[str, str] = {}
    for name in route.path_fields:
        values[name] = quote(_text(getattr(message, name)), safe="")
        pbjson.pop(fields[name].json_name, None)
    path = _PARAM.sub(lambda m: values[m.group(1)], route.template)
    body: Any = None
    if route.body == "*":
        body, pbjson = pbjson, {}
    elif route.body:
        body = pbjson.pop(fields[route.body].json_name, None)
    params: list[tuple[str, str]] = []
    for key, value in pbjson.items():
        _flatten(key, value, params)
    return HttpRequest(route.verb, path, tuple(params), body)
