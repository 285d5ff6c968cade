"""The wire format, resolved at run time: message classes built from a server's descriptors.

``Wire`` turns a request given as a dict of proto field names into a message of the server's own
request type, and a response message back into such a dict (``json_format`` by name, never by
field number: DESIGN section 5). It is built either from the descriptors the server publishes over
gRPC reflection (``Wire.reflected``) or from the proto bundled with the plugin (``Wire.bundled``),
and carries the ``ApiInfo`` of that resolution.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from pytest_scriptum._proto import scriptum_pb2

from ._contract import EXTENSIONS, METHODS, SERVICE, check_service
from ._errors import ScriptumError
from ._records import ApiInfo

__all__ = ["MethodWire", "Wire", "bundled_service", "to_dict"]

log = logging.getLogger("pytest_scriptum.client")


def bundled_service() -> ServiceDescriptor:
    """The ScriptumService of the proto bundled with the plugin."""
    return scriptum_pb2.DESCRIPTOR.services_by_name[SERVICE.rsplit(".", 1)[1]]


@dataclass(frozen=True)
class MethodWire:
    """One method as a server defines it: its gRPC path and its message classes."""

    name: str
    path: str
    request: type[Message]
    response: type[Message]
    server_streaming: bool
    descriptor: MethodDescriptor


def _is_default(value: Any) -> bool:
    return value in (None, "", 0, False) or (isinstance(value, (dict, list, tuple)) and not value)


class Wire:
    """Message classes of one ScriptumService descriptor, and dict <-> message by field name."""

    def __init__(self, service: ServiceDescriptor, info: ApiInfo) -> None:
        self.service = service
        self.info = info
        self._methods: dict[str, MethodWire] = {}
        for method in service.methods:
            self._methods[method.name] = MethodWire(
                name=method.name,
                path=f"/{service.full_name}/{method.name}",
                request=message_factory.GetMessageClass(method.input_type),
                response=message_factory.GetMessageClass(method.output_type),
                server_streaming=bool(getattr(method, "server_streaming", False)),
                descriptor=method,
            )

    @classmethod
    def bundled(cls, detail: str) -> Wire:
        """The bundled proto's wire. Its extensions are *assumed*, not the server's (``detail`` says why)."""
        service = bundled_service()
        check = check_service(service)
        info = ApiInfo(descriptors="bundled", extensions=check.extensions, problems=check.problems,
                       fallbacks=check.fallbacks, detail=detail)
        return cls(service, info)

    @classmethod
    def from_pool(cls, pool: descriptor_pool.DescriptorPool) -> Wire:
        """The wire of a pool holding the server's reflected descriptors (KeyError without the service)."""
        service = pool.FindServiceByName(SERVICE)
        check = check_service(service)
        info = ApiInfo(descriptors="reflection", extensions=check.extensions, problems=check.problems,
                       fallbacks=check.fallbacks,
                       detail=f"descriptors of {SERVICE} read from the server's reflection service")
        return cls(service, info)

    def method(self, name: str) -> MethodWire:
        """The server's method ``name``; ScriptumError UNIMPLEMENTED when its descriptors lack it."""
        found = self._methods.get(name)
        if found is None:
            raise ScriptumError("UNIMPLEMENTED", f"the server's {SERVICE} has no method {name}", name)
        return found

    def request(self, name: str, fields: Mapping[str, Any]) -> Message:
        """A request of method ``name`` from proto field names.

        An EXTENSION field the server lacks is dropped (``api_info`` lists the extensions present,
        so the caller knows); another missing field is dropped when its value is the default (the
        server reads it as the default anyway), else ScriptumError UNIMPLEMENTED naming it; a
        value the server's type cannot hold is ScriptumError UNIMPLEMENTED too, never a guess.
        """
        method = self.method(name)
        ours = METHODS[name].request if name in METHODS else method.request.DESCRIPTOR.name
        known = method.request.DESCRIPTOR.fields_by_name
        body: dict[str, Any] = {}
        for key, value in fields.items():
            if key in known:
                body[key] = value
            elif f"{ours}.{key}" in EXTENSIONS:
                if not _is_default(value):
                    log.debug("%s: the server has no %s.%s (an extension); not sent", name, ours, key)
            elif not _is_default(value):
                raise ScriptumError("UNIMPLEMENTED", f"the server's {method.request.DESCRIPTOR.name} has no "
                                    f"field {key}; the request cannot be sent faithfully", name)
        try:
            return json_format.ParseDict(body, method.request())
        except json_format.ParseError as exc:
            raise ScriptumError("UNIMPLEMENTED", f"the server's {method.request.DESCRIPTOR.name} does not "
                                f"accept this request: {exc}", name) from None

    def enum_name(self, method: str, field: str, value: str) -> str:
        """The server's name of a documented enum value of a request field
        (``"FAILED"`` -> ``"THREAD_STATUS_FAILED"``); ValueError when the server has none."""
        descriptor = self.method(method).request.DESCRIPTOR.fields_by_name.get(field)
        if descriptor is None or descriptor.enum_type is None:
            raise ValueError(f"{method}.{field} is not an enum on this server")
        for candidate in descriptor.enum_type.values:
            if candidate.name == value or candidate.name.endswith(f"_{value}"):
                return str(candidate.name)
        raise ValueError(f"the server's {descriptor.enum_type.name} has no value {value}")


def to_dict(message: Message) -> dict[str, Any]:
    """A message as a dict of proto field names (int64 as strings, bytes as base64, enums by name)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
