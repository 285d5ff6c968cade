"""The handler runtime with real worker processes: outcomes and error codes, step frames, env,
isolation (one organization per worker, no reuse after a run that changed the worker),
concurrency, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pytest_scriptum.devserver._runtime import HandlerRuntime, RunOutcome, RunRequest
from pytest_scriptum.devserver._runtime_worker import WorkerProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks processes via /proc")


@pytest.fixture
def runtime() -> Iterator[HandlerRuntime]:
    with HandlerRuntime(max_concurrency=4, warm_workers=1) as rt:
        yield rt


@pytest.fixture
def single() -> Iterator[HandlerRuntime]:
    """One worker only, so consecutive runs land in the same process."""
    with HandlerRuntime(max_concurrency=1, warm_workers=1) as rt:
        yield rt


class Ran:
    """A run's outcome and the frames it streamed."""

    def __init__(self, outcome: RunOutcome, frames: list[Mapping[str, Any]]) -> None:
        self.outcome = outcome
        self.frames = frames
        self.status = outcome.status
        self.error = outcome.error
        self.code = outcome.error_code

    @property
    def steps(self) -> list[tuple[str, str, str]]:
        """(path, name, final status) of every step, in start order."""
        names = {f["path"]: f["name"] for f in self.frames if f["kind"] == "step_start"}
        ends = {f["path"]: f["status"] for f in self.frames if f["kind"] == "step"}
        return [(path, name, ends.get(path, "RUNNING")) for path, name in names.items()]


def _run(
    rt: HandlerRuntime,
    source: str,
    event: Any = None,
    *,
    org: str = "acme",
    env: Mapping[str, str] | None = None,
    timeout_s: float = 20.0,
    cancel: threading.Event | None = None,
    answers: tuple[Any, ...] = (),
) -> Ran:
    frames: list[Mapping[str, Any]] = []
    request = RunRequest(
        org, textwrap.dedent(source), json.dumps({} if event is None else event), env, timeout_s, answers
    )
    return Ran(rt.run(request, frames.append, cancel), frames)


def _output(ran: Ran) -> Any:
    assert ran.status == "COMPLETED", ran.error
    assert ran.error == "" and ran.code == ""
    return json.loads(ran.outcome.output_json)


def _wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def _process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` ('Z' for a zombie), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _dead(pid: int) -> bool:
    return _process_state(pid) in (None, "Z", "X")


PID_HANDLER = """
import os
def handler(event, context):
    return os.getpid()
"""


# ---- outcomes ---------------------------------------------------------------------------------


def test_success_keeps_json_types_exactly(runtime: HandlerRuntime) -> None:
    source = """
    def handler(event, context):
        return {"echo": event, "big": 2**70, "one": 1, "one_float": 1.0, "none": None, "t": (1, "x")}
    """
    event = {"n": 1, "f": 1.0, "huge": 123456789012345678901234567890, "s": "é"}
    ran = _run(runtime, source, event)
    out = _output(ran)
    assert out == {"echo": event, "big": 2**70, "one": 1, "one_float": 1.0, "none": None, "t": [1, "x"]}
    assert type(out["one"]) is int and type(out["one_float"]) is float
    assert type(out["echo"]["n"]) is int and type(out["echo"]["f"]) is float
    assert '"big": 1180591620717411303424' in ran.outcome.output_json
    assert '"huge": 123456789012345678901234567890' in ran.outcome.output_json
    assert ran.frames == [] and ran.outcome.duration_ms > 0 and ran.outcome.recycled == ""


def test_exception_fails_with_type_message_and_handler_line(runtime: HandlerRuntime) -> None:
    source = """
    def check(total):
        raise ValueError("bad total")

    def handler(event, context):
        with context.step("extract"):
            pass
        with context.step("validate"):
            check(event["total"])
    """
    outcome = _run(runtime, source, {"total": 3})
    assert (outcome.status, outcome.code) == ("FAILED", "SCRIPT_ERROR")
    assert outcome.outcome.output_json == ""
    assert outcome.outcome.recycled.startswith("the handler raised")
    first, *trace = outcome.error.splitlines()
    assert first == "ValueError: bad total"
    assert '  File "handler.py", line 9, in handler' in trace
    assert '  File "handler.py", line 3, in check' in trace
    assert '    raise ValueError("bad total")' in trace
    assert "_worker" not in outcome.error
    # Steps survive a failed run, so a postmortem sees how far it got.
    assert outcome.steps == [("1", "extract", "COMPLETED"), ("2", "validate", "FAILED")]
    failed = [f for f in outcome.frames if f["kind"] == "step" and f["status"] == "FAILED"]
    assert failed[0]["error"] == "ValueError: bad total"


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ("{1, 2}", "return value is a builtins.set"),
        ("{'rows': [1, object()]}", "return value['rows'][1] is a builtins.object"),
        ("{'x': float('nan')}", "return value['x'] is nan, which JSON cannot represent"),
        ("{1: 'a'}", "return value has a int key 1; JSON object keys must be strings"),
    ],
)
def test_non_json_return_value_fails_naming_where(
    runtime: HandlerRuntime, returned: str, problem: str
) -> None:
    outcome = _run(runtime, f"def handler(event, context):\n    return {returned}\n")
    assert (outcome.status, outcome.code) == ("FAILED", "SCRIPT_OUTPUT_INVALID")
    assert outcome.error == f"handler returned a value that is not JSON: {problem}"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def handler(event, context)\n    return 1\n", "SyntaxError: "),
        (
            "def main(event, context):\n    return 1\n",
            "handler.py defines no callable handler(event, context)",
        ),
        ("import no_such_module_xyz\n", "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    ],
)
def test_broken_source_fails_clearly(runtime: HandlerRuntime, source: str, error: str) -> None:
    outcome = _run(runtime, source)
    assert outcome.status == "FAILED"
    assert outcome.error.startswith(error)


def test_invalid_event_json_fails(runtime: HandlerRuntime) -> None:
    request = RunRequest("acme", "def handler(e, c):\n    return e\n", "{not json", None, 10.0)
    outcome = runtime.run(request, lambda frame: None)
    assert outcome.status == "FAILED"
    assert outcome.error.startswith("event is not valid JSON: ")


def test_os_exit_fails_and_runtime_stays_usable(single: HandlerRuntime) -> None:
    source = """
    import os
    def handler(event, context):
        with context.step("before"):
            pass
        os._exit(3)
    """
    outcome = _run(single, source)
    assert (outcome.status, outcome.code) == ("FAILED", "PLATFORM_RUNTIME_CRASH")
    assert outcome.error == "the handler's worker process died: it exited with code 3"
    assert outcome.steps == [("1", "before", "COMPLETED")]
    assert isinstance(_output(_run(single, PID_HANDLER)), int)


def test_segfault_fails_with_the_signal(single: HandlerRuntime) -> None:
    source = """
    import ctypes
    def handler(event, context):
        ctypes.string_at(0)
    """
    outcome = _run(single, source)
    assert (outcome.status, outcome.code) == ("FAILED", "PLATFORM_RUNTIME_CRASH")
    assert "was killed by signal 11 (SIGSEGV)" in outcome.error
    assert isinstance(_output(_run(single, PID_HANDLER)), int)


def test_sys_exit_fails_the_run_and_retires_the_worker(single: HandlerRuntime) -> None:
    pid = _output(_run(single, PID_HANDLER))
    outcome = _run(single, "import sys\ndef handler(event, context):\n    sys.exit(2)\n")
    assert (outcome.status, outcome.code) == ("FAILED", "SCRIPT_ERROR")
    assert outcome.error.splitlines()[0] == "SystemExit: handler called sys.exit(2)"
    assert _output(_run(single, PID_HANDLER)) != pid


def test_prints_and_stdin_reads_do_not_touch_the_protocol(runtime: HandlerRuntime) -> None:
    source = """
    import sys
    def handler(event, context):
        print("x" * 200_000)
        print("noise", file=sys.stderr)
        context.log("a log line")
        return {"stdin": sys.stdin.read()}
    """
    assert _output(_run(runtime, source)) == {"stdin": ""}


# ---- deadline and cancel ----------------------------------------------------------------------


def test_deadline_kills_the_handler_and_reports_steps_so_far(single: HandlerRuntime) -> None:
    (worker_pid,) = single.worker_pids()
    source = """
    import time
    def handler(event, context):
        with context.step("fast"):
            pass
        with context.step("slow"):
            time.sleep(60)
    """
    outcome = _run(single, source, timeout_s=0.5)
    assert (outcome.status, outcome.code) == ("FAILED", "SCRIPT_DEADLINE")
    assert outcome.error == "handler exceeded the thread's 0.5s deadline"
    assert outcome.outcome.output_json == "" and outcome.outcome.recycled == "killed"
    assert outcome.steps == [("1", "fast", "COMPLETED"), ("2", "slow", "RUNNING")]  # the server closes it
    assert _process_state(worker_pid) is None  # killed and reaped, no zombie
    assert _output(_run(single, PID_HANDLER)) != worker_pid


def test_context_reports_remaining_deadline(runtime: HandlerRuntime) -> None:
    remaining = _output(_run(runtime, "def handler(e, c):\n    return c.deadline_s\n", timeout_s=7.0))
    assert 0 < remaining <= 7.0


def test_cancel_kills_a_running_handler(tmp_path: Path, single: HandlerRuntime) -> None:
    started = tmp_path / "started"
    source = """
    import pathlib, time
    def handler(event, context):
        with context.step("wait"):
            pathlib.Path(event["started"]).write_text("yes")
            time.sleep(60)
    """
    cancel = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(_run, single, source, {"started": str(started)}, timeout_s=60.0, cancel=cancel)
        assert _wait_until(started.exists), "the handler never started"
        cancel.set()
        outcome = future.result(timeout=20)
    assert (outcome.status, outcome.code) == ("CANCELLED", "CANCELLED_BY_CALLER")
    assert outcome.error == "the thread was cancelled"
    assert outcome.steps == [("1", "wait", "RUNNING")]
    assert isinstance(_output(_run(single, PID_HANDLER)), int)


def test_cancel_set_before_start_never_runs_the_handler(tmp_path: Path, runtime: HandlerRuntime) -> None:
    marker = tmp_path / "ran"
    cancel = threading.Event()
    cancel.set()
    source = "import pathlib\ndef handler(e, c):\n    pathlib.Path(e['m']).touch()\n"
    outcome = _run(runtime, source, {"m": str(marker)}, cancel=cancel)
    assert (outcome.status, outcome.code) == ("CANCELLED", "CANCELLED_BY_CALLER")
    assert outcome.error == "cancelled before the handler started"
    assert not marker.exists()


# ---- steps --------------------------------------------------------------------------------------


def test_steps_get_hierarchical_paths_and_stream_as_frames(runtime: HandlerRuntime) -> None:
    source = """
    def handler(event, context):
        with context.step("extract"):
            with context.step("inner") as inner:
                inner.output({"rows": 2})
            with context.step("second"):
                with context.step("deep"):
                    context.log("deep down")
        try:
            with context.step("validate"):
                raise KeyError("total")
        except KeyError:
            pass
        with context.step("enrich") as step:
            context.yield_({"partial": 1})
            return step.path
    """
    ran = _run(runtime, source)
    assert _output(ran) == "3"
    assert ran.steps == [
        ("1", "extract", "COMPLETED"),
        ("1.0", "inner", "COMPLETED"),
        ("1.1", "second", "COMPLETED"),
        ("1.1.0", "deep", "COMPLETED"),
        ("2", "validate", "FAILED"),
        ("3", "enrich", "COMPLETED"),
    ]
    kinds = [(f["kind"], f.get("path", "")) for f in ran.frames][:4]
    assert kinds == [("step_start", "1"), ("step_start", "1.0"), ("step", "1.0"), ("step_start", "1.1")]
    outputs = {f["path"]: f["output_json"] for f in ran.frames if f["kind"] == "step"}
    assert json.loads(outputs["1.0"]) == {"rows": 2}
    assert {"kind": "log", "path": "1.1.0", "msg": "deep down", "run": ran.frames[0]["run"]} in ran.frames
    (yielded,) = [f for f in ran.frames if f["kind"] == "yield"]
    assert (yielded["index"], json.loads(yielded["value_json"])) == (0, {"partial": 1})
    starts = [f["at_ms"] for f in ran.frames if f["kind"] == "step_start"]
    assert starts == sorted(starts)


def test_ask_pauses_and_a_replay_with_the_answer_goes_on(runtime: HandlerRuntime) -> None:
    source = """
    def handler(event, context):
        with context.step("prepare"):
            pass
        answer = context.ask("Approve", prompt="ok?", type="text", options=["yes", "no"])
        return {"answer": answer}
    """
    paused = _run(runtime, source)
    assert (paused.status, paused.code, paused.outcome.output_json) == ("PAUSED", "", "")
    (ask,) = [f for f in paused.frames if f["kind"] == "ask"]
    assert (ask["path"], ask["label"], ask["prompt"], ask["type"], ask["options"]) == (
        "2",
        "Approve",
        "ok?",
        "text",
        ["yes", "no"],
    )
    assert paused.steps == [("1", "prepare", "COMPLETED"), ("2", "Approve", "PAUSED")]
    assert _output(_run(runtime, source, answers=({"value": "yes", "comment": "c"},))) == {"answer": "yes"}
    assert _output(_run(runtime, source, answers=("no",))) == {"answer": "no"}
    swallowed = _run(
        runtime,
        source.replace(
            "answer = context.ask(", "answer = None\n        try:\n            context.ask("
        ).replace(
            'options=["yes", "no"])',
            'options=["yes", "no"])\n        except BaseException:\n            pass',
        ),
    )
    assert swallowed.status == "PAUSED"  # catching the pause does not make the thread go on
    bad = _run(runtime, "def handler(e, c):\n    return c.ask('x', type='date')\n")
    assert bad.status == "FAILED" and "context.ask type must be one of text, number, boolean" in bad.error


def test_tools_are_steps_of_their_own(runtime: HandlerRuntime, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("hello")
    source = """
    def handler(event, context):
        echoed = context.tool("echo", a=1)
        read = context.tool("file_read", path=event["path"])
        return {"echoed": echoed, "read": read["content"]}
    """
    ran = _run(runtime, source, {"path": str(tmp_path / "in.txt")})
    assert _output(ran) == {"echoed": {"a": 1}, "read": "hello"}
    starts = [(f["path"], f["name"], f["tool"]) for f in ran.frames if f["kind"] == "step_start"]
    assert starts == [("1", "echo", "echo"), ("2", "file_read", "file_read")]
    unknown = _run(runtime, "def handler(e, c):\n    return c.tool('web_search')\n")
    assert unknown.status == "FAILED" and "unknown tool 'web_search'" in unknown.error


def test_bad_step_name_is_a_clear_handler_error(runtime: HandlerRuntime) -> None:
    outcome = _run(runtime, "def handler(e, c):\n    with c.step(''):\n        pass\n")
    assert outcome.status == "FAILED"
    assert outcome.error.startswith("ValueError: step name must be a non-empty string, got ''")


# ---- env ----------------------------------------------------------------------------------------

ENV_HANDLER = """
import os
def handler(event, context):
    return {"context_env": dict(context.env), "os_environ": dict(os.environ)}
"""


def test_env_given_is_visible_in_context_and_os_environ(runtime: HandlerRuntime) -> None:
    outcome = _run(runtime, ENV_HANDLER, env={"MODEL": "m-1", "DB_HOST": "db.internal"})
    out = _output(outcome)
    assert out["context_env"] == {"MODEL": "m-1", "DB_HOST": "db.internal"}
    assert out["os_environ"]["MODEL"] == "m-1" and out["os_environ"]["DB_HOST"] == "db.internal"


def test_env_none_shows_only_a_minimal_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTUM_SERVER_SECRET", "server-only")
    with HandlerRuntime(max_concurrency=1, warm_workers=0) as rt:
        outcome = _run(rt, ENV_HANDLER, env=None)
    out = _output(outcome)
    assert out["context_env"] == {}
    assert "SCRIPTUM_SERVER_SECRET" not in out["os_environ"]
    assert set(out["os_environ"]) <= {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"}


def test_context_env_is_read_only(runtime: HandlerRuntime) -> None:
    source = "def handler(e, c):\n    c.env['X'] = '1'\n"
    outcome = _run(runtime, source, env={"A": "1"})
    assert outcome.status == "FAILED"
    assert outcome.error.startswith("TypeError: ")


def test_a_clean_run_leaves_the_worker_for_the_next_run_of_its_org(single: HandlerRuntime) -> None:
    probe = """
    import os, sys
    COUNT = 0
    def handler(event, context):
        global COUNT
        COUNT += 1
        return {"pid": os.getpid(), "count": COUNT, "env": dict(os.environ), "context_env": dict(context.env)}
    """
    first = _output(_run(single, probe, env={"TENANT_A": "a"}))
    second = _output(_run(single, probe, env=None))
    assert first["pid"] == second["pid"], "a run that changed nothing keeps its worker"
    assert first["count"] == second["count"] == 1  # a fresh module every run
    assert "TENANT_A" in first["env"] and "TENANT_A" not in second["env"] and second["context_env"] == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("os.environ['LEAK'] = '1'", "os.environ"),
        ("os.chdir('/')", "working directory"),
        ("sys.path.append('/leaked')", "sys.path"),
        ("import wave", "loaded modules (_struct, struct, wave)"),
        ("threading.Thread(target=time.sleep, args=(30,), daemon=True).start()", "threads"),
        ("signal.signal(signal.SIGUSR1, lambda *a: None)", "signal handlers"),
        ("raise RuntimeError('x')", "the handler raised"),
    ],
)
def test_a_run_that_changed_the_worker_retires_it(single: HandlerRuntime, body: str, reason: str) -> None:
    source = f"""
    import os, signal, sys, threading, time
    def handler(event, context):
        {body}
        return os.getpid()
    """
    pid = _output(_run(single, PID_HANDLER))
    changed = _run(single, source)
    assert reason in changed.outcome.recycled, changed.outcome.recycled
    assert _wait_until(lambda: _dead(pid)), "the retired worker is killed"
    after = _output(_run(single, PID_HANDLER))
    assert after != pid


def test_a_worker_serves_one_organization_only() -> None:
    with HandlerRuntime(max_concurrency=2, warm_workers=1) as rt:
        acme = {_output(_run(rt, PID_HANDLER, org="acme")) for _ in range(3)}
        globex = {_output(_run(rt, PID_HANDLER, org="globex")) for _ in range(3)}
        assert len(acme) == len(globex) == 1 and not acme & globex
        assert rt.worker_pids("acme") == tuple(acme) and rt.worker_pids("globex") == tuple(globex)
        # A third organization: every process slot is taken, so an idle worker of another org is
        # retired to make room; it is never handed over.
        initech = _output(_run(rt, PID_HANDLER, org="initech"))
        assert initech not in acme | globex


def test_workers_started_are_counted_per_organization() -> None:
    started: list[str] = []
    with HandlerRuntime(max_concurrency=2, warm_workers=1, on_worker_started=started.append) as rt:
        _run(rt, PID_HANDLER, org="acme")
        _run(rt, PID_HANDLER, org="acme")
        _run(rt, "def handler(e, c):\n    raise ValueError()\n", org="acme")
        _run(rt, PID_HANDLER, org="acme")
    assert started == ["acme", "acme"]  # the first worker, and the one after the raise


# ---- concurrency --------------------------------------------------------------------------------


def test_32_runs_are_in_flight_at_once(tmp_path: Path) -> None:
    # Each handler waits until all 32 have arrived: this only passes if 32 run at the same time.
    source = """
    import os, pathlib, time
    def handler(event, context):
        arrived = pathlib.Path(event["dir"])
        start = time.time()
        (arrived / str(os.getpid())).touch()
        while len(os.listdir(arrived)) < event["n"] and context.deadline_s > 1:
            time.sleep(0.01)
        return {"pid": os.getpid(), "seen": len(os.listdir(arrived)), "start": start, "end": time.time()}
    """
    n = 32
    with HandlerRuntime(max_concurrency=n, warm_workers=2) as rt, ThreadPoolExecutor(n) as pool:
        event = {"dir": str(tmp_path), "n": n}
        outcomes = list(pool.map(lambda _: _run(rt, source, event, timeout_s=60.0), range(n)))
    results = [_output(outcome) for outcome in outcomes]
    assert all(result["seen"] == n for result in results)
    assert len({result["pid"] for result in results}) == n
    assert max(result["start"] for result in results) < min(result["end"] for result in results)


def test_runs_beyond_max_concurrency_wait_for_a_free_worker(single: HandlerRuntime) -> None:
    with ThreadPoolExecutor(4) as pool:
        pids = list(pool.map(lambda _: _output(_run(single, PID_HANDLER)), range(8)))
    assert len(set(pids)) == 1


# ---- lifecycle ----------------------------------------------------------------------------------


def test_close_leaves_no_child_processes(tmp_path: Path) -> None:
    grandchild_source = """
    import subprocess
    def handler(event, context):
        return subprocess.Popen(["sleep", "60"]).pid
    """
    started = tmp_path / "started"
    sleeper = """
    import pathlib, time
    def handler(event, context):
        pathlib.Path(event["started"]).touch()
        time.sleep(60)
    """
    rt = HandlerRuntime(max_concurrency=4, warm_workers=2)
    grandchild = _output(_run(rt, grandchild_source))
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(_run, rt, sleeper, {"started": str(started)}, timeout_s=60.0)
        assert _wait_until(started.exists), "the sleeping handler never started"
        workers = rt.worker_pids()
        assert len(workers) >= 2
        rt.close()
        outcome = in_flight.result(timeout=20)
    assert (outcome.status, outcome.code) == ("FAILED", "PLATFORM_RESTART")
    assert outcome.error == "the server stopped while the handler ran"
    for pid in workers:
        assert _process_state(pid) is None, f"worker {pid} survived close() (or is a zombie)"
    # The handler's own child was in the worker's process group: killed too (its new parent reaps it).
    assert _wait_until(lambda: _dead(grandchild)), f"grandchild {grandchild} survived close()"
    assert rt.worker_pids() == ()
    rt.close()  # idempotent
    closed = _run(rt, PID_HANDLER)
    assert (closed.status, closed.code) == ("FAILED", "PLATFORM_RESTART")


def test_worker_exits_on_eof_of_its_input() -> None:
    worker = WorkerProcess({"PATH": os.environ.get("PATH", "")}, str(Path.cwd()))
    try:
        worker.send({"run": 1, "source": PID_HANDLER, "event_json": "{}", "env": None, "timeout_s": 10.0})
        frame = worker.receive(20.0)
        assert frame is not None and frame["kind"] == "result" and frame["status"] == "COMPLETED"
        worker._proc.stdin.close()  # type: ignore[union-attr]
        assert worker._proc.wait(timeout=20) == 0
    finally:
        worker.dispose()


def test_workers_die_with_their_parent_even_mid_run(tmp_path: Path) -> None:
    # A parent server killed outright (no close()) while a handler sleeps: the worker notices.
    script = textwrap.dedent(
        """
        import json, os, pathlib, sys, threading
        from pytest_scriptum.devserver._runtime import HandlerRuntime, RunRequest
        started = pathlib.Path(sys.argv[1])
        rt = HandlerRuntime(max_concurrency=2, warm_workers=0)
        source = (
            "import pathlib, time\\n"
            "def handler(event, context):\\n"
            "    pathlib.Path(event['started']).touch()\\n"
            "    time.sleep(60)\\n"
        )
        request = RunRequest("acme", source, json.dumps({"started": str(started)}), None, 60.0)
        threading.Thread(target=rt.run, args=(request, lambda frame: None), daemon=True).start()
        while not started.exists():
            threading.Event().wait(0.01)
        print(json.dumps(rt.worker_pids()), flush=True)
        os._exit(0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "started")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    workers = json.loads(result.stdout)
    assert len(workers) == 1
    assert _wait_until(lambda: _dead(workers[0])), f"worker {workers[0]} outlived its parent"


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RunRequest("o", "", "{}", None, 0.0), "RunRequest.timeout_s must be > 0, got 0.0"),
        (RunRequest("o", "", "{}", None, float("inf")), "RunRequest.timeout_s must be a finite number"),
        (RunRequest("o", "", "{}", {"A=B": "x"}, 1.0), "RunRequest.env: key 'A=B' is not a valid"),
        (RunRequest("o", "", "{}", {"K": 1}, 1.0), r"RunRequest.env\['K'\]: value must be a str"),  # type: ignore[dict-item]
    ],
)
def test_bad_requests_are_rejected_clearly(
    runtime: HandlerRuntime, request_: RunRequest, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        runtime.run(request_, lambda frame: None)


def test_bad_env_value_is_not_echoed(runtime: HandlerRuntime) -> None:
    with pytest.raises(ValueError) as caught:
        runtime.run(RunRequest("o", "", "{}", {"TOKEN": "s3cr3t\0"}, 1.0), lambda frame: None)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be an int >= 1, got 0"),
        ({"warm_workers": -1}, "warm_workers must be an int >= 0, got -1"),
        (
            {"max_concurrency": 1, "warm_workers": 2},
            r"warm_workers \(2\) must not exceed max_concurrency \(1\)",
        ),
    ],
)
def test_bad_runtime_settings_are_rejected(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HandlerRuntime(**kwargs)
