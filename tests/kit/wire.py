"""Scriptum servers whose wire format differs from the bundled proto, for tests on real sockets.

The platform publishes no .proto file, so our field numbers are a guess (DESIGN section 5): the
plugin must address every field by name. ``scriptum_pool`` builds a descriptor pool of the bundled
proto with every field number moved and/or some fields or methods removed; ``renumbered_text_pool``
builds the renumbered service again from the proto *text* with protoc. ``GrpcProxy`` serves such a
pool in front of a real embedded server, transcoding by field name, with or without reflection.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection

from kit.constants import MIB, PROTO
from pytest_scriptum._proto import scriptum_pb2 as pb

__all__ = ["SERVICE", "GrpcProxy", "renumber_proto_text", "renumbered_text_pool", "scriptum_pool"]

SERVICE = "dodil.scriptum.v1.ScriptumService"

# A field line: `[repeated|optional] TYPE name = N;` or `map<K, V> name = N;` (never an enum value,
# whose line is `NAME = N;` without a type).
_FIELD = re.compile(
    r"^(?P<head>\s*(?:(?:repeated|optional)\s+)?(?:map<[^>]+>|[A-Za-z_][\w.]*)\s+[a-z_]\w*\s*=\s*)"
    r"(?P<number>\d+)(?P<tail>\s*(?:\[[^\]]*\])?\s*;)",
    re.MULTILINE,
)


def renumber_proto_text(text: str, offset: int) -> str:
    """The proto text with every message field number raised by ``offset`` (enum values keep
    theirs: proto3 needs the zero value first, and the client reads enums by name anyway)."""
    renumbered, count = _FIELD.subn(
        lambda m: f"{m.group('head')}{int(m.group('number')) + offset}{m.group('tail')}", text
    )
    assert count > 100, f"expected every field of the proto to be renumbered, got {count}"
    return renumbered


def renumbered_text_pool(offset: int) -> descriptor_pool.DescriptorPool:
    """A pool of the service compiled by protoc from the proto text with every field renumbered."""
    import grpc_tools
    from google.api import annotations_pb2
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    googleapis = Path(annotations_pb2.__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = root / "dodil" / "scriptum" / "v1" / "scriptum.proto"
        target.parent.mkdir(parents=True)
        target.write_text(renumber_proto_text(PROTO.read_text(encoding="utf-8"), offset), encoding="utf-8")
        out = root / "set.pb"
        code = protoc.main([
            "protoc", f"-I{root}", f"-I{include}", f"-I{googleapis}", "--include_imports",
            f"--descriptor_set_out={out}", "dodil/scriptum/v1/scriptum.proto",
        ])
        assert code == 0, "protoc rejected the renumbered proto"
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


# ---- descriptor pools: the bundled proto, renumbered, or with fields removed --------------------------


def _add_with_dependencies(
    pool: descriptor_pool.DescriptorPool, file: FileDescriptor, done: set[str]
) -> None:
    for dependency in file.dependencies:
        if dependency.name not in done:
            _add_with_dependencies(pool, dependency, done)
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    pool.Add(proto)
    done.add(file.name)


def _edit_messages(
    messages: Iterable[descriptor_pb2.DescriptorProto], offset: int, drop: Mapping[str, set[str]], prefix: str
) -> None:
    for message in messages:
        if message.options.map_entry:
            continue  # map entries are key = 1, value = 2 by definition
        full = f"{prefix}.{message.name}"
        keep = [f for f in message.field if f.name not in drop.get(message.name, set())]
        del message.field[:]
        message.field.extend(keep)
        for f in message.field:
            f.number += offset
        _edit_messages(message.nested_type, offset, drop, full)


def scriptum_pool(
    *, offset: int = 0, drop: Mapping[str, set[str]] | None = None, drop_methods: set[str] | None = None
) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding the bundled scriptum.proto with every field number moved by ``offset``,
    the fields ``drop[message]`` removed and the methods ``drop_methods`` removed."""
    proto = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(proto)
    _edit_messages(proto.message_type, offset, drop or {}, proto.package)
    for service in proto.service:
        keep = [m for m in service.method if m.name not in (drop_methods or set())]
        del service.method[:]
        service.method.extend(keep)
    pool = descriptor_pool.DescriptorPool()
    done: set[str] = set()
    for dependency in pb.DESCRIPTOR.dependencies:
        _add_with_dependencies(pool, dependency, done)
    pool.Add(proto)
    return pool


# ---- a proxy in front of the embedded server: no reflection, or every field renumbered ---------------


class GrpcProxy:
    """Forwards every ScriptumService call to ``upstream`` (the embedded server), metadata included.

    With ``pool`` (e.g. ``scriptum_pool(offset=100)``) the proxy speaks that pool's wire format to
    its clients and transcodes by field name to the bundled one upstream — a copy of the service
    whose proto has every field renumbered — and serves reflection from that pool when
    ``reflection_on``. Without ``pool`` it passes bytes through unchanged.
    """

    def __init__(
        self, upstream: str, *, pool: descriptor_pool.DescriptorPool | None = None, reflection_on: bool = True
    ) -> None:
        self.upstream = grpc.insecure_channel(
            upstream, options=[("grpc.max_receive_message_length", 64 * MIB)]
        )
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32), options=[("grpc.max_send_message_length", 64 * MIB)]
        )
        front = (pool or scriptum_pool()).FindServiceByName(SERVICE)
        back = pb.DESCRIPTOR.services_by_name["ScriptumService"]
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for method in front.methods:
            convert_in = self._converter(
                method.input_type, back.methods_by_name[method.name].input_type, pool
            )
            convert_out = self._converter(
                back.methods_by_name[method.name].output_type, method.output_type, pool
            )
            path = f"/{SERVICE}/{method.name}"
            if method.server_streaming:
                methods[method.name] = grpc.unary_stream_rpc_method_handler(
                    self._streaming(path, convert_in, convert_out)
                )
            else:
                methods[method.name] = grpc.unary_unary_rpc_method_handler(
                    self._unary(path, convert_in, convert_out)
                )
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
        if reflection_on:
            reflection.enable_server_reflection(
                (SERVICE, reflection.SERVICE_NAME), self.server, pool=pool or scriptum_pool()
            )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{self.port}"

    @staticmethod
    def _converter(
        source: Any, target: Any, pool: descriptor_pool.DescriptorPool | None
    ) -> Callable[[bytes], bytes]:
        if pool is None:
            return lambda data: data
        source_type = message_factory.GetMessageClass(source)
        target_type = message_factory.GetMessageClass(target)

        def convert(data: bytes) -> bytes:
            message = source_type.FromString(data)
            as_dict = json_format.MessageToDict(message, preserving_proto_field_name=True)
            return json_format.ParseDict(as_dict, target_type()).SerializeToString()

        return convert

    @staticmethod
    def _forward_error(exc: grpc.RpcError, context: grpc.ServicerContext) -> None:
        if isinstance(exc, grpc.Call):
            context.set_trailing_metadata(exc.trailing_metadata() or ())
            context.abort(exc.code(), exc.details() or "")
        raise exc

    def _unary(
        self, path: str, convert_in: Callable[[bytes], bytes], convert_out: Callable[[bytes], bytes]
    ) -> Callable[..., bytes]:
        call = self.upstream.unary_unary(path, request_serializer=None, response_deserializer=None)

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return convert_out(
                    call(
                        convert_in(request),
                        metadata=context.invocation_metadata(),
                        timeout=context.time_remaining(),
                    )
                )
            except grpc.RpcError as exc:
                self._forward_error(exc, context)
                raise

        return forward

    def _streaming(
        self, path: str, convert_in: Callable[[bytes], bytes], convert_out: Callable[[bytes], bytes]
    ) -> Callable[..., Iterator[bytes]]:
        call = self.upstream.unary_stream(path, request_serializer=None, response_deserializer=None)

        def forward(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            responses = call(
                convert_in(request), metadata=context.invocation_metadata(), timeout=context.time_remaining()
            )
            context.add_callback(responses.cancel)  # the client went away: stop upstream too
            try:
                for response in responses:
                    yield convert_out(response)
            except grpc.RpcError as exc:
                self._forward_error(exc, context)

        return forward

    def __enter__(self) -> GrpcProxy:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)
        self.upstream.close()
