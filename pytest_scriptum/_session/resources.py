"""This process's platform resources: where the platform is, and one client, runner, dispatcher and
redactor, created on first use.

One client (so one gRPC channel) per pytest process: the gate's owner uses it for preflight and
rollback, every xdist worker for its own runs. With ``--scriptum-endpoint=embedded`` the gate's
owner starts one local server for the whole session and hands its address and per-session token
to the workers through the xdist channel (``_session.xdist``; never on a command line).

Organization headers (DESIGN section 2): ``x-organization-id`` is sent when ``org`` is set,
``x-organization-name`` when ``org_name`` is set, nothing otherwise (the platform's docs disagree
on which one its gateway needs; the token may carry the organization on its own). The embedded
server's organization is always ``local``, sent as ``x-organization-id``.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_scriptum._options import ScriptumConfig
from pytest_scriptum.client import ScriptumClient
from pytest_scriptum.evidence.redaction import Redactor, SecretValues

if TYPE_CHECKING:
    import httpx

    from pytest_scriptum.client import ClientSettings
    from pytest_scriptum.devserver import DevServerProcess
    from pytest_scriptum.runner import Dispatcher, PinnedRunner

__all__ = [
    "EMBEDDED_ORG",
    "Connection",
    "EmbeddedServer",
    "PlatformUnavailable",
    "SessionResources",
    "remote_connection",
]

EMBEDDED_ORG = "local"


class PlatformUnavailable(Exception):
    """An xdist worker may not use the platform: the controller's preflight failed, it could not
    start the embedded server, or it did not answer in time. The message says which."""


@dataclass(frozen=True)
class Connection:
    """Where this session's platform is and how to authenticate (the token never prints)."""

    endpoint: str
    http_url: str | None
    org: str  # "" = no x-organization-id header
    token: str = field(repr=False)
    embedded: bool = False
    org_name: str = ""  # "" = no x-organization-name header

    @property
    def label(self) -> str:
        """What evidence shows as the endpoint: local runs always say ``embedded``."""
        return "embedded" if self.embedded else self.endpoint

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the xdist channel carries it to the workers, never a command line)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Connection:
        """The inverse of ``to_dict``."""
        return cls(**data)


def remote_connection(cfg: ScriptumConfig, *, embedded: bool = False) -> Connection:
    """The connection to a real endpoint; a UsageError says what is missing.

    ``embedded``: the endpoint is the embedded server of the session this one verifies a rollback
    for (its evidence must say "embedded" too, never look like a remote endpoint).
    """
    assert cfg.endpoint and not cfg.embedded
    if not cfg.token:
        where = (
            f"the environment variable {cfg.token_env}"
            if cfg.sources.get("token_env", "default") != "default"
            else "DODIL_TOKEN (or SCRIPTUM_TOKEN)"
        )
        raise pytest.UsageError(
            f"no bearer token for {cfg.endpoint}: export it in {where} "
            "(the token is never a command-line value; scriptum_token_env names another variable)"
        )
    if cfg.transport == "http" and not cfg.http_url:
        raise pytest.UsageError(
            "--scriptum-transport=http needs the gateway URL: pass --scriptum-http-url=URL"
        )
    if cfg.http_url:
        # Checked here, before any call: raised later (building the client) it was an INTERNALERROR.
        from pytest_scriptum.client._settings import check_http_url  # loads grpc and httpx

        try:
            check_http_url(cfg.http_url, insecure=cfg.insecure)
        except ValueError as exc:
            source = cfg.sources.get("http_url", "scriptum_http_url")
            raise pytest.UsageError(f"{exc} (from {source})") from None
    return Connection(
        endpoint=cfg.endpoint,
        http_url=cfg.http_url,
        org=cfg.org or "",
        org_name=cfg.org_name or "",
        token=cfg.token,
        embedded=embedded,
    )


class EmbeddedServer:
    """The bundled devserver as a child process on a temporary data dir, with a random token.

    Nothing runs until ``start_in_background`` (DESIGN section 3 "Run modes": a session with no
    smoke test selected starts no server) or ``wait``; the token exists from construction, so an
    xdist controller can hand it to its workers before the server is up.
    """

    def __init__(self, cfg: ScriptumConfig) -> None:
        if cfg.seed is None:
            raise pytest.UsageError(
                "--scriptum-endpoint=embedded needs a seed directory: "
                "pass --scriptum-seed=DIR or set scriptum_seed"
            )
        if not cfg.seed.is_dir():
            raise pytest.UsageError(
                f"scriptum seed directory not found: {cfg.seed} (from {cfg.sources.get('seed')})"
            )
        self._seed = cfg.seed
        self.org = cfg.org or EMBEDDED_ORG
        self.token = secrets.token_urlsafe(32)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._data_dir: Path | None = None
        self._process: Any = None
        self._connection: Connection | None = None
        self._error: BaseException | None = None

    @property
    def started(self) -> bool:
        """Whether a start was asked for (it may still be under way)."""
        return self._thread is not None

    def start_in_background(self) -> None:
        """Spawn the server in a thread and return at once (idempotent): pytest keeps collecting
        while the child starts (DESIGN section 6). ``wait`` joins it."""
        # Imported here, in the calling (main) thread: a session that never starts the embedded
        # server never loads it, and no module is imported (no logger created) in the launching
        # thread while pytest's logging plugin iterates the logger registry.
        from pytest_scriptum.devserver import DevServerProcess

        with self._lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._start, args=(DevServerProcess,), name="scriptum-embedded-start", daemon=True
                )
                thread.start()
                self._thread = thread

    def _start(self, launcher: type[DevServerProcess]) -> None:
        try:
            self._data_dir = Path(tempfile.mkdtemp(prefix="scriptum-embedded-"))
            self._process = launcher(
                data_dir=self._data_dir, seed=self._seed, token=self.token, org=self.org, throwaway=True
            )
            addresses = self._process.start()
            self._connection = Connection(
                endpoint=addresses.grpc,
                http_url=addresses.http,
                org=self.org,
                token=self.token,
                embedded=True,
            )
        except BaseException as exc:  # handed to wait(), in the thread that needs the server
            self._error = exc

    def wait(self) -> Connection:
        """Start the server if nobody did, wait until it is ready and return how to reach it.

        Raises pytest.UsageError when it cannot start (its message carries the server's stderr tail).
        """
        self.start_in_background()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise pytest.UsageError(f"the embedded Scriptum server did not start: {self._error}")
        assert self._connection is not None
        return self._connection

    def start(self) -> Connection:
        """Start the server and return how to reach it (``wait``)."""
        return self.wait()

    def stop(self) -> None:
        """Stop the server (waiting for a start under way first) and delete its data dir. Idempotent."""
        thread = self._thread
        if thread is not None:
            thread.join()
        if self._process is not None:
            # SIGTERM: the server stops at once (no durable store to flush: it is throwaway); a
            # server that has not exited within 5 s is killed, so pytest never hangs on it.
            self._process.terminate(timeout=5.0)
            self._process = None
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None


class SessionResources:
    """This process's connection, client, pinned runner, dispatcher and redactor.

    The gate's owner connects (``connect``: the embedded server, or a remote endpoint); an xdist
    worker is given the controller's ``Connection`` and ``awaiting``: a callable that waits for the
    controller to publish the connection to use instead (the embedded server starts only once a
    worker collected a smoke test) and raises PlatformUnavailable when the controller will not (its
    preflight failed, it could not start the server). Client, runner and dispatcher are created on
    first use.
    """

    def __init__(
        self,
        cfg: ScriptumConfig,
        connection: Connection | None = None,
        *,
        awaiting: Callable[[], Connection] | None = None,
    ) -> None:
        self.cfg = cfg
        self.connection = connection
        self._lock = threading.Lock()
        self._connect_lock = threading.Lock()  # apart from _lock: client creation holds that one
        self._awaiting = awaiting
        self._unavailable: str | None = None
        self._embedded: EmbeddedServer | None = None
        self._client: ScriptumClient | None = None
        self._http: httpx.Client | None = None
        self._runner: PinnedRunner | None = None
        self._dispatcher: Dispatcher | None = None
        self._baseline_dispatcher: Dispatcher | None = None
        self.baseline_target: int | None = None
        """The rollback target the paired baseline runs on (``--scriptum-baseline=paired``): set by
        the gate's owner after preflight, or read from the xdist controller's ``platform.json``."""
        # Secret env values this process has read (preflight; an xdist worker is given the
        # controller's): the redactor masks them with the tokens (DESIGN section 4 "Secrets").
        self.secrets = SecretValues(declared=cfg.secret_env)
        # The version this session published (``--scriptum-publish``, DESIGN section 8): set by the
        # gate's owner after PublishScriptDraft, or on an xdist worker from the controller's word.
        self.published: int | None = None

    def embedded_server(self) -> EmbeddedServer:
        """This session's embedded server, created (not started) on first call; UsageError for a
        missing seed directory."""
        with self._connect_lock:
            if self._embedded is None:
                self._embedded = EmbeddedServer(self.cfg)
            return self._embedded

    def embedded_started(self) -> bool:
        """Whether this session's embedded server was asked to start."""
        embedded = self._embedded
        return embedded is not None and embedded.started

    def start_embedded(self) -> None:
        """Start the embedded server in the background (the first smoke test was collected)."""
        self.embedded_server().start_in_background()

    def stop_unused_embedded(self) -> None:
        """No smoke test is selected after all: stop a server started while collecting."""
        with self._connect_lock:
            embedded = self._embedded if self.connection is None else None
        if embedded is not None:
            embedded.stop()

    def connect(self, remote: Connection | None = None) -> Connection:
        """Wait for the embedded server (``--scriptum-endpoint=embedded``; started now if it was
        not yet), or use ``remote``."""
        if self.cfg.embedded:
            self.connection = self.embedded_server().wait()
        else:
            assert remote is not None
            self.connection = remote
        return self.connection

    @property
    def redactor(self) -> Redactor:
        """The one redactor of this process: masks every token it knows (the connection's, the
        configured one) and every secret env value it has read, in every evidence writer."""
        conn = self.connection
        return Redactor([conn.token if conn is not None else None, self.cfg.token, *self.secrets])

    @property
    def endpoint_label(self) -> str | None:
        """The endpoint as evidence shows it (``embedded`` for a local server)."""
        return self.connection.label if self.connection is not None else self.cfg.endpoint

    def settings(self) -> ClientSettings:
        """Client settings for this session's connection."""
        # Where and who from the connection (endpoint, http_url, org, org_name, token), how from the options.
        connection = self.require_connection().to_dict()
        # Imported here, once there is a connection: the settings module loads grpc and httpx,
        # which a session that selects no smoke test never needs (DESIGN section 6).
        from pytest_scriptum.client import ClientSettings, RetryPolicy

        where = {name: value for name, value in connection.items() if name != "embedded"}
        return ClientSettings(
            **where,
            transport=self.cfg.transport,
            insecure=self.cfg.insecure,
            retry=RetryPolicy(retries=self.cfg.retries),
        )

    def forgo_platform(self, reason: str) -> None:
        """An xdist worker that selected no smoke test: the controller may publish no platform, so
        never wait for one; any use raises PlatformUnavailable(``reason``) at once."""
        with self._connect_lock:
            if self._awaiting is not None:
                self._awaiting = None
                self._unavailable = reason

    def platform_problem(self) -> str | None:
        """Why this process may not use the platform, else None: an xdist worker whose controller
        failed the preflight or did not publish the embedded server (waits for its answer)."""
        if self._awaiting is None and self._unavailable is None:
            return None
        try:
            self.require_connection()
        except PlatformUnavailable as exc:
            return str(exc)
        return None

    def require_connection(self) -> Connection:
        """The connection, or a clear error when no endpoint is configured (PlatformUnavailable
        when the xdist controller will not publish one)."""
        with self._connect_lock:
            if self._awaiting is not None:
                awaiting, self._awaiting = self._awaiting, None
                try:
                    self.connection = awaiting()
                except PlatformUnavailable as exc:
                    self._unavailable = str(exc)
            if self._unavailable is not None:
                raise PlatformUnavailable(self._unavailable)
        if self.connection is None:
            raise pytest.UsageError(
                "no Scriptum endpoint: pass --scriptum-endpoint=host:port "
                "(or 'embedded' with --scriptum-seed), "
                "or set scriptum_endpoint / SCRIPTUM_ENDPOINT"
            )
        return self.connection

    @property
    def client(self) -> ScriptumClient:
        """The session's authenticated client (one channel per process)."""
        with self._lock:
            if self._client is None:
                from pytest_scriptum.client import connect

                self._client = connect(self.settings())
            return self._client

    @property
    def http(self) -> httpx.Client:
        """An httpx client on the gateway with the auth headers set."""
        with self._lock:
            if self._http is None:
                if self.require_connection().http_url is None:
                    raise pytest.UsageError(
                        "no HTTP gateway URL: pass --scriptum-http-url=URL or set scriptum_http_url"
                    )
                from pytest_scriptum.client import make_http_client

                self._http = make_http_client(self.settings())
            return self._http

    @property
    def candidate(self) -> int | None:
        """The numbered version runs are pinned to: ``--scriptum-version=N``, or the version this
        session published; None while the candidate is the draft (or there is none)."""
        return self.published if self.published is not None else self.cfg.pinned_version

    @property
    def runner(self) -> PinnedRunner:
        """The runner pinned to the candidate version (or to the draft: ``--scriptum-version=draft``)."""
        client = self.client  # first: an xdist worker learns the published version with the connection
        version = self.candidate
        draft = version is None and self.cfg.draft
        if version is None and not draft:
            raise pytest.UsageError(
                "smoke tests need a candidate version: pass --scriptum-version=N "
                "(or set SCRIPTUM_VERSION / scriptum_version)"
            )
        # Imported with the first runner: a session that selects no smoke test never loads the
        # runner's machinery (DESIGN section 6).
        from pytest_scriptum.runner import PinnedRunner

        with self._lock:
            if self._runner is None:
                self._runner = PinnedRunner(
                    client,
                    version=version or 0,
                    draft=draft,
                    script=self.cfg.script,
                    timeout=self.cfg.timeout,
                    resolve_env=not self.cfg.no_env,
                )
            return self._runner

    def runs_started_here(self) -> int:
        """Runs the calling thread started through the pinned runner (0 before it exists: asking
        never creates it, so never connects)."""
        with self._lock:
            runner = self._runner
        return runner.started_here if runner is not None else 0

    @property
    def dispatcher(self) -> Dispatcher:
        """The bounded pool that starts smoke runs early."""
        runner = self.runner
        from pytest_scriptum.runner import Dispatcher  # loaded by ``runner`` above

        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = Dispatcher(runner, self.cfg.concurrency)
            return self._dispatcher

    @property
    def baseline_dispatcher(self) -> Dispatcher:
        """The paired baseline's dispatcher: runs pinned to ``baseline_target``, within the same
        in-flight limit as the candidate's (DESIGN section 8 "Paired baseline"). PlatformUnavailable
        when no target is known (the preflight then failed already)."""
        self.require_connection()  # an xdist worker learns the target with the connection
        target = self.baseline_target
        if target is None:
            raise PlatformUnavailable("--scriptum-baseline=paired: no rollback target is known to pair with")
        main, client = self.dispatcher, self.client  # both take the lock themselves
        from pytest_scriptum.runner import Dispatcher, PinnedRunner  # loaded by ``dispatcher`` above

        with self._lock:
            if self._baseline_dispatcher is None:
                runner = PinnedRunner(
                    client,
                    version=target,
                    script=self.cfg.script,
                    timeout=self.cfg.timeout,
                    resolve_env=not self.cfg.no_env,
                )
                self._baseline_dispatcher = Dispatcher(runner, self.cfg.concurrency, limit=main.limit)
            return self._baseline_dispatcher

    def concurrency_record(self) -> dict[str, Any] | None:
        """The in-flight limit's course (the bundle's ``concurrency``); None when no run was
        dispatched in this process."""
        with self._lock:
            dispatcher = self._dispatcher
        return dispatcher.limit.record() if dispatcher is not None else None

    def cancel_outstanding(self) -> int:
        """Cancel queued and in-flight runs (``-x``, ``--maxfail``, fail-fast, Ctrl-C)."""
        with self._lock:
            dispatcher, baseline = self._dispatcher, self._baseline_dispatcher
        cancelled = baseline.cancel_outstanding() if baseline is not None else 0
        return cancelled + (dispatcher.cancel_outstanding() if dispatcher is not None else 0)

    def close(self) -> None:
        """Cancel what is outstanding, close the connections, then stop the embedded server."""
        with self._lock:
            dispatcher, client, http = self._dispatcher, self._client, self._http
            self._dispatcher = self._client = self._http = None
            embedded, self._embedded = self._embedded, None
            baseline, self._baseline_dispatcher = self._baseline_dispatcher, None
        if baseline is not None:
            baseline.close()
        if dispatcher is not None:
            dispatcher.close()
        if http is not None:
            http.close()
        if client is not None:
            client.close()
        if embedded is not None:
            embedded.stop()
