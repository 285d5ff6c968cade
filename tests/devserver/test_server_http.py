"""Every HTTP gateway route over a real socket; the runbook's curl lines; error mapping."""

from __future__ import annotations

import json

import httpx
from devserver_kit import HEADERS

from pytest_scriptum.devserver import ServerAddresses


def test_runbook_curl_lines(addresses: ServerAddresses) -> None:
    assert httpx.get(f"{addresses.http}/ready").json() == {"status": "ready"}
    assert httpx.get(f"{addresses.http}/health").json() == {"status": "SERVING"}
    url = f"{addresses.http}/v1/scriptum/scripts/echo/env"
    env = httpx.get(url, headers=HEADERS)
    assert env.status_code == 200 and [e["key"] for e in env.json()["overlay"]] == ["LEGACY_MODEL", "MODEL"]
    assert "gpt-4.1" not in env.text
    bare = httpx.get(url)
    assert bare.status_code == 401
    assert bare.json() == {
        "code": "UNAUTHENTICATED",
        "message": "authentication failed: missing or invalid bearer token",
    }


def test_env_and_tenant_routes(http: httpx.Client) -> None:
    imported = http.post("/v1/scriptum/tenant/env:import", json={"values": {"EXTRA": "1"}})
    assert imported.status_code == 200 and "EXTRA" in [e["key"] for e in imported.json()["entries"]]
    assert [e["key"] for e in http.get("/v1/scriptum/tenant/env").json()["entries"]][:2] == [
        "DB_HOST",
        "EXTRA",
    ]
    assert http.get("/v1/scriptum/tenant/env/EXTRA").json()["source"] == "TENANT"
    patched = http.patch(
        "/v1/scriptum/scripts/echo/env", json={"set": {"TEMPERATURE": "0.0"}, "delete": ["LEGACY_MODEL"]}
    )
    assert [e["key"] for e in patched.json()["overlay"]] == ["MODEL", "TEMPERATURE"]


def test_script_version_draft_routes(http: httpx.Client) -> None:
    assert [s["name"] for s in http.get("/v1/scriptum/scripts").json()["scripts"]] == ["echo", "tools"]
    script = http.get("/v1/scriptum/scripts/echo").json()
    assert script["active_version"] == 4 and script["rolled_back_from"] == []
    assert len(http.get("/v1/scriptum/scripts/echo/versions").json()["versions"]) == 5
    assert http.get("/v1/scriptum/scripts/echo/versions/2").json()["version"] == 2
    draft = http.put(
        "/v1/scriptum/scripts/new-one/draft", json={"source": "def handler(e, c):\n    return e\n"}
    )
    assert draft.status_code == 200 and draft.json()["name"] == "new-one"
    assert http.post("/v1/scriptum/scripts/new-one/draft:publish").json()["version"] == 1
    activated = http.post("/v1/scriptum/scripts/new-one/versions/1:activate", json={"reason": "promote"})
    assert activated.json()["active_version"] == 1
    rolled = http.post(
        "/v1/scriptum/scripts/echo:rollback", json={"toVersion": 3, "expected_active_version": 4}
    )
    assert rolled.status_code == 200 and rolled.json()["rolled_back_from"] == [4]
    conflict = http.post(
        "/v1/scriptum/scripts/echo:rollback", json={"to_version": 2, "expected_active_version": 4}
    )
    assert conflict.status_code == 409
    assert conflict.json() == {
        "code": "FAILED_PRECONDITION",
        "message": "active version is 3, not 4: someone else changed it",
    }


def test_thread_routes_and_integer_fidelity(http: httpx.Client) -> None:
    big = 2**70
    run = http.post(
        "/v1/scriptum/scripts/echo/threads", json={"version": 2, "input_json": json.dumps({"n": big})}
    )
    body = run.json()
    assert run.status_code == 200 and body["status"] == "SUCCEEDED" and body["version"] == 2
    assert json.loads(body["output_json"])["event"]["n"] == big
    assert http.get(f"/v1/scriptum/threads/{body['thread_id']}").json()["output_json"] == body["output_json"]
    slow = http.post(
        "/v1/scriptum/scripts/tools/threads",
        json={"version": 1, "input_json": '{"op": "sleep", "seconds": 30}', "no_wait": True},
    ).json()
    assert slow["status"] in ("QUEUED", "RUNNING")
    assert http.post(f"/v1/scriptum/threads/{slow['thread_id']}:cancel").json()["status"] == "CANCELLED"


def test_admin_routes(http: httpx.Client) -> None:
    assert http.get("/v1/scriptum/admin/faults").json()["error_status"] == "UNAVAILABLE"
    assert http.put("/v1/scriptum/admin/faults", json={"latency_ms": 1}).json()["latency_ms"] == 1
    http.get("/v1/scriptum/scripts")
    assert http.get("/v1/scriptum/admin/stats").json()["calls"]["ListScripts"] == 1
    assert http.post("/v1/scriptum/admin/stats:reset").json()["calls"] == {}


def test_bad_input_maps_to_status_and_server_keeps_serving(http: httpx.Client) -> None:
    cases = [
        (http.post("/v1/scriptum/scripts/echo/threads", content=b"{not json"), 400, "malformed JSON body"),
        (http.post("/v1/scriptum/scripts/echo/threads", json={"versoin": 2}), 400, "versoin"),
        (http.post("/v1/scriptum/scripts/echo/threads", json=[1]), 400, "must be a JSON object"),
        (http.post("/v1/scriptum/scripts/echo/threads", content=b"x" * (2 * 1024 * 1024 + 1)), 413, "2 MiB"),
        (
            http.post(
                "/v1/scriptum/scripts/echo/threads",
                json={"version": 2, "input_json": json.dumps("x" * 1024 * 1024)},
            ),
            413,
            "1 MiB",
        ),
        (
            http.post("/v1/scriptum/scripts/echo/threads", json={"version": 2, "input_json": "{"}),
            400,
            "input_json is not valid JSON",
        ),
        (http.get("/v1/scriptum/scripts/Bad_Name"), 400, "invalid script name"),
        (http.get("/v1/scriptum/scripts/echo/versions/abc"), 400, "'abc' is not a version number"),
        (http.get("/v1/scriptum/scripts/echo/versions/99"), 404, "no version 99"),
        (http.get("/v1/scriptum/threads/nope"), 404, "thread 'nope' not found"),
        (http.get("/v1/scriptum/nowhere"), 404, "no route GET /v1/scriptum/nowhere"),
        (http.delete("/v1/scriptum/scripts/echo"), 405, "allowed: GET"),
        (http.options("/v1/scriptum/scripts/echo"), 405, "OPTIONS is not supported"),
    ]
    for response, status, needle in cases:
        assert response.status_code == status, response.text
        assert needle in response.json()["message"], response.text
    assert http.get("/v1/scriptum/scripts/echo").status_code == 200
