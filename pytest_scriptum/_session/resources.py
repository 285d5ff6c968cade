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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_scriptum._options import ScriptumConfig
from pytest_scriptum.client import ClientSettings, RetryPolicy, ScriptumClient, connect, make_http_client
from pytest_scriptum.client._settings import check_http_url
from pytest_scriptum.evidence.redaction import Redactor
from pytest_scriptum.runner import Dispatcher, PinnedRunner

__all__ = ["EMBEDDED_ORG", "Connection", "EmbeddedServer", "SessionResources", "remote_connection"]

EMBEDDED_ORG = "local"


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
    """The bundled devserver as a child process on a temporary data dir, with a random token."""

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
        self._org = cfg.org or EMBEDDED_ORG
        self._token = secrets.token_urlsafe(32)
        self._data_dir = Path(tempfile.mkdtemp(prefix="scriptum-embedded-"))
        self._process: Any = None

    def start(self) -> Connection:
        """Start the server and return how to reach it."""
        # Imported here: a session that never starts the embedded server never loads it.
        from pytest_scriptum.devserver import DevServerProcess

        self._process = DevServerProcess(
            data_dir=self._data_dir, seed=self._seed, token=self._token, org=self._org
        )
        addresses = self._process.start()
        return Connection(
            endpoint=addresses.grpc, http_url=addresses.http, org=self._org, token=self._token, embedded=True
        )

    def stop(self) -> None:
        """Stop the server and delete its data dir."""
        if self._process is not None:
            self._process.terminate()
            self._process = None
        shutil.rmtree(self._data_dir, ignore_errors=True)


class SessionResources:
    """This process's connection, client, pinned runner, dispatcher and redactor.

    The gate's owner connects (``connect``: the embedded server, or a remote endpoint); an xdist
    worker is given the controller's ``Connection``. Client, runner and dispatcher are created on first use.
    """

    def __init__(self, cfg: ScriptumConfig, connection: Connection | None = None) -> None:
        self.cfg = cfg
        self.connection = connection
        self._lock = threading.Lock()
        self._embedded: EmbeddedServer | None = None
        self._client: ScriptumClient | None = None
        self._http: httpx.Client | None = None
        self._runner: PinnedRunner | None = None
        self._dispatcher: Dispatcher | None = None

    def connect(self, remote: Connection | None = None) -> Connection:
        """Start the embedded server (``--scriptum-endpoint=embedded``), or use ``remote``."""
        if self.cfg.embedded:
            self._embedded = EmbeddedServer(self.cfg)
            self.connection = self._embedded.start()
        else:
            assert remote is not None
            self.connection = remote
        return self.connection

    @property
    def redactor(self) -> Redactor:
        """The one redactor of this process: masks every token it knows (the connection's, the
        configured one), in every evidence writer."""
        conn = self.connection
        return Redactor([conn.token if conn is not None else None, self.cfg.token])

    @property
    def endpoint_label(self) -> str | None:
        """The endpoint as evidence shows it (``embedded`` for a local server)."""
        return self.connection.label if self.connection is not None else self.cfg.endpoint

    def settings(self) -> ClientSettings:
        """Client settings for this session's connection."""
        # Where and who from the connection (endpoint, http_url, org, org_name, token), how from the options.
        connection = self.require_connection().to_dict()
        where = {name: value for name, value in connection.items() if name != "embedded"}
        return ClientSettings(
            **where,
            transport=self.cfg.transport,
            insecure=self.cfg.insecure,
            retry=RetryPolicy(retries=self.cfg.retries),
        )

    def require_connection(self) -> Connection:
        """The connection, or a clear error when no endpoint is configured."""
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
                self._http = make_http_client(self.settings())
            return self._http

    @property
    def runner(self) -> PinnedRunner:
        """The runner pinned to the candidate version."""
        version = self.cfg.version
        if version is None:
            raise pytest.UsageError(
                "smoke tests need a candidate version: pass --scriptum-version=N "
                "(or set SCRIPTUM_VERSION / scriptum_version)"
            )
        client = self.client
        with self._lock:
            if self._runner is None:
                self._runner = PinnedRunner(
                    client,
                    version=version,
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
        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = Dispatcher(runner, self.cfg.concurrency)
            return self._dispatcher

    def cancel_outstanding(self) -> int:
        """Cancel queued and in-flight runs (``-x``, ``--maxfail``, fail-fast, Ctrl-C)."""
        with self._lock:
            dispatcher = self._dispatcher
        return dispatcher.cancel_outstanding() if dispatcher is not None else 0

    def close(self) -> None:
        """Cancel what is outstanding, close the connections, then stop the embedded server."""
        with self._lock:
            dispatcher, client, http = self._dispatcher, self._client, self._http
            self._dispatcher = self._client = self._http = None
            embedded, self._embedded = self._embedded, None
        if dispatcher is not None:
            dispatcher.close()
        if http is not None:
            http.close()
        if client is not None:
            client.close()
        if embedded is not None:
            embedded.stop()
