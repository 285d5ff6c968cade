"""Reflection (v1alpha, and v1 for newer clients) and a dynamic client built from it driving the
runbook's grpcurl bodies."""

from __future__ import annotations

import json

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from kit import AUTH


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

    # The runbook's bodies verbatim.
    read = call("GetScriptEnv", '{"name":"invoice-parser"}')
    assert read["env"] == {"LEGACY_MODEL": "gpt-3.5", "MODEL": "gpt-4o"}
    # The runbook's body (split across two string literals only to fit the line).
    body = '{ "name":"invoice-parser", "set":{"MODEL":"gpt-4.1","TEMPERATURE":"0.0"}, '
    body += '"delete":["LEGACY_MODEL"] }'
    updated = call("UpdateScriptEnv", body)
    assert updated["env"] == {"MODEL": "gpt-4.1", "TEMPERATURE": "0.0"}
    created = call(
        "CreateThread",
        '{"script_name":"invoice-parser","version":4,"input_json":"{\\"invoice\\":\\"INV-1\\"}","load_env":true}',
    )
    assert str(created["thread_id"]).startswith("thr_")


def test_reflection_v1_is_served_too(channel: grpc.Channel) -> None:
    # grpc.reflection.v1 has the same messages as v1alpha: a v1 client gets the same answers.
    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    (reply,) = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {service.name for service in reply.list_services_response.service}
    assert "dodil.scriptum.v1.ScriptumService" in names
