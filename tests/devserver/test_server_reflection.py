"""The reflection-based client acceptance check: the runbook's grpcurl bodies through a dynamic client."""

from __future__ import annotations

import json

import grpc
from devserver_kit import AUTH
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def test_reflection_lists_services_and_drives_the_runbook_calls(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {
        "dodil.scriptum.v1.ScriptumService",
        "dodil.scriptum.v1.ScriptumDevAdmin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("dodil.scriptum.v1.ScriptumService")

    def call(method_name: str, body: str) -> dict[str, object]:
        method = service.methods_by_name[method_name]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        rpc = channel.unary_unary(
            f"/{service.full_name}/{method_name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        response = rpc(json_format.Parse(body, request_class()), metadata=AUTH, timeout=10)
        return json.loads(json_format.MessageToJson(response, preserving_proto_field_name=True))

    # The runbook's bodies verbatim (script name aside: the fixture seed has "echo").
    read = call("GetScriptEnv", '{"name":"echo"}')
    assert [e["key"] for e in read["overlay"]] == ["LEGACY_MODEL", "MODEL"]  # type: ignore[index]
    updated = call(
        "UpdateScriptEnv",
        '{ "name":"echo", "set":{"MODEL":"gpt-4.1","TEMPERATURE":"0.0"}, "delete":["LEGACY_MODEL"] }',
    )
    assert [e["key"] for e in updated["overlay"]] == ["MODEL", "TEMPERATURE"]  # type: ignore[index]
    assert "gpt-4.1" not in json.dumps(updated)
