"""Another organization's scripts, threads and tenant env do not exist for a caller: every RPC and
every HTTP route that names a script, a thread or an env key answers NOT_FOUND / 404, and nothing
of ours changes. (Missing, wrong and non-bearer tokens and a foreign org header on every RPC and
route are tests/devserver/test_server_auth.py's table; this extends it to a valid caller of
another organization.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from security_kit import AUTH, ORG, OTHER_AUTH, OTHER_ORG, OTHER_TOKEN, TOKEN, write_alpha_beta_seed

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer
from pytest_scriptum.devserver._gateway import ROUTES

SCRIPT = "alpha"
_SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumService"]
_ADDRESSING = ("name", "thread_id", "key")


def _table(thread_id: str) -> dict[str, Message]:
    """A request of ours for every addressing RPC (CreateDraft is apart: it creates, in the caller's org)."""
    return {
        "GetTenantEnv": pb.GetTenantEnvRequest(key="REGION"),
        "GetScriptEnv": pb.GetScriptEnvRequest(name=SCRIPT),
        "UpdateScriptEnv": pb.UpdateScriptEnvRequest(name=SCRIPT, set={"TEAM": "hijacked"}),
        "PublishDraft": pb.PublishDraftRequest(name=SCRIPT),
        "GetScript": pb.GetScriptRequest(name=SCRIPT),
        "ListVersions": pb.ListVersionsRequest(name=SCRIPT),
        "GetVersion": pb.GetVersionRequest(name=SCRIPT, version=1),
        "ActivateVersion": pb.ActivateVersionRequest(name=SCRIPT, version=1),
        "RollbackVersion": pb.RollbackVersionRequest(
            name=SCRIPT, to_version=1, expected_active_version=1, reason="x"
        ),
        "RunThread": pb.RunThreadRequest(name=SCRIPT, version=1, input_json="{}"),
        "GetThread": pb.GetThreadRequest(thread_id=thread_id),
        "CancelThread": pb.CancelThreadRequest(thread_id=thread_id),
    }


def _state(stub: pb_grpc.ScriptumServiceStub, thread_id: str) -> tuple[bytes, ...]:
    calls: list[Message] = [
        stub.GetScript(pb.GetScriptRequest(name=SCRIPT), metadata=AUTH, timeout=10),
        stub.ListVersions(pb.ListVersionsRequest(name=SCRIPT), metadata=AUTH, timeout=10),
        stub.GetScriptEnv(pb.GetScriptEnvRequest(name=SCRIPT), metadata=AUTH, timeout=10),
        stub.ListTenantEnv(pb.ListTenantEnvRequest(), metadata=AUTH, timeout=10),
        stub.GetThread(pb.GetThreadRequest(thread_id=thread_id), metadata=AUTH, timeout=10),
    ]
    return tuple(message.SerializeToString(deterministic=True) for message in calls)


@pytest.fixture(scope="module")
def our_thread(stub: pb_grpc.ScriptumServiceStub) -> str:
    run = stub.RunThread(
        pb.RunThreadRequest(name=SCRIPT, version=1, input_json="{}"), metadata=AUTH, timeout=60
    )
    return run.thread_id


@pytest.fixture
def unchanged(stub: pb_grpc.ScriptumServiceStub, our_thread: str) -> Iterator[None]:
    before = _state(stub, our_thread)
    yield
    assert _state(stub, our_thread) == before


def test_the_table_covers_every_addressing_rpc() -> None:
    addressing = {m.name for m in _SERVICE.methods if set(_ADDRESSING) & set(m.input_type.fields_by_name)}
    assert set(_table("t")) | {"CreateDraft"} == addressing


def test_every_rpc_hides_another_orgs_objects(
    channel: grpc.Channel, our_thread: str, unchanged: None
) -> None:
    for method, request in _table(our_thread).items():
        call = channel.unary_unary(
            f"/{_SERVICE.full_name}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as raised:
            call(request, metadata=OTHER_AUTH, timeout=30)
        error = raised.value
        assert isinstance(error, grpc.Call)
        assert error.code() == grpc.StatusCode.NOT_FOUND, (method, error.details())


def test_every_route_hides_another_orgs_objects(server: DevServer, our_thread: str, unchanged: None) -> None:
    routes = {route.rpc: route for route in ROUTES}
    with httpx.Client(base_url=server.addresses.http, headers=dict(OTHER_AUTH), timeout=30) as http:
        for method, request in _table(our_thread).items():
            route = routes[method]
            body = json_format.MessageToDict(request, preserving_proto_field_name=True)
            path = route.template
            for field in (*_ADDRESSING, "version"):
                if "{" + field + "}" in path:
                    path = path.replace("{" + field + "}", str(body.pop(field)))
            response = http.request(route.verb, path, json=body if route.verb != "GET" else None)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["code"] == "NOT_FOUND", (method, response.text)


def test_a_draft_of_the_same_name_stays_in_its_own_org(tmp_path: Path) -> None:
    # A server of its own: the other org's "alpha" must not exist for the table tests above.
    principals = {TOKEN: ORG, OTHER_TOKEN: OTHER_ORG}
    with DevServer(
        data_dir=tmp_path / "data", seed=write_alpha_beta_seed(tmp_path / "seed"), principals=principals
    ) as dev:
        with grpc.insecure_channel(dev.addresses.grpc) as chan:
            stub = pb_grpc.ScriptumServiceStub(chan)
            thread = stub.RunThread(
                pb.RunThreadRequest(name=SCRIPT, version=1, input_json="{}"), metadata=AUTH
            )
            before = _state(stub, thread.thread_id)
            source = "def handler(event, context):\n    return 'theirs'\n"
            stub.CreateDraft(
                pb.CreateDraftRequest(name=SCRIPT, source=source), metadata=OTHER_AUTH, timeout=10
            )
            theirs = stub.PublishDraft(pb.PublishDraftRequest(name=SCRIPT), metadata=OTHER_AUTH, timeout=10)
            assert theirs.version == 1  # their own first version, not our v2
            assert _state(stub, thread.thread_id) == before
