"""The in-process server: SQLite store + handler runtime + thread engine + gRPC + HTTP gateway."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._addresses import ServerAddresses
from ._api import ScriptumApi
from ._auth import Authenticator
from ._faults import FaultInjector, StatsBook
from ._gateway import GatewayServer, build_app
from ._runtime import HandlerRuntime
from ._seed import load_seed
from ._service import ADMIN_SERVICE, SCRIPTUM_SERVICE, Pipeline, grpc_handlers
from ._store import Store
from ._threads import ThreadEngine

__all__ = ["DevServer", "ServerAddresses"]

_log = logging.getLogger("pytest_scriptum.devserver")
_MAX_RECEIVE_BYTES = 4 * 1024 * 1024
# A GetThreadResult answer carries up to 4 MiB of output plus steps; a StreamThreadResult chunk
# up to 16 MiB (max_chunk_bytes' upper clamp). Clients raise their receive limit to match.
_MAX_SEND_BYTES = 32 * 1024 * 1024
# Server streams (WatchThread) hold a gRPC worker thread each while they wait for events.
_MIN_GRPC_THREADS = 256


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DevServer:
    """In-process Scriptum server: gRPC + HTTP gateway + SQLite + handler runtime.

    `principals` maps each accepted bearer token to the organization (id) it may act for;
    `org_names` maps an organization id to its name for `x-organization-name` (default: the id).
    The seed (applied only to a data directory without state) goes to the first principal's
    organization. `faults` are every organization's fault settings until it calls SetFaults.
    `max_workers` bounds the handler runs in flight (and the worker processes). `durable=False` is
    for a throwaway data directory: no fsync per commit. Port 0 binds a free port; `start()`
    returns the real addresses.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        seed: Path | None = None,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        principals: Mapping[str, str],
        org_names: Mapping[str, str] | None = None,
        faults: pb.Faults | None = None,
        max_workers: int = 64,
        durable: bool = True,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self._data_dir = Path(data_dir)
        self._seed = Path(seed) if seed is not None else None
        self._host = host
        self._grpc_port = grpc_port
        self._http_port = http_port
        self._auth = Authenticator(principals, org_names)
        self._seed_org = next(iter(principals.values()))
        self._faults = FaultInjector(faults)
        self._max_workers = max_workers
        self._durable = durable
        self._store: Store | None = None
        self._runtime: HandlerRuntime | None = None
        self._api: ScriptumApi | None = None
        self._engine: ThreadEngine | None = None
        self._grpc: grpc.Server | None = None
        self._health: health.HealthServicer | None = None
        self._gateway: GatewayServer | None = None
        self._addresses: ServerAddresses | None = None
        self._stopped = False

    @property
    def addresses(self) -> ServerAddresses:
        """The bound addresses (after start)."""
        if self._addresses is None:
            raise RuntimeError("DevServer is not started")
        return self._addresses

    def start(self) -> ServerAddresses:
        """Open the store (seeding it if new), start the runtime, gRPC and HTTP; return the addresses."""
        if self._addresses is not None:
            return self._addresses
        try:
            return self._start()
        except BaseException:
            self.stop(grace=0)
            raise

    def _start(self) -> ServerAddresses:
        store = self._store = Store(self._data_dir, durable=self._durable)
        if not store.is_initialized():
            # Validate the whole seed before writing anything, so a bad seed leaves no state.
            seed = load_seed(self._seed) if self._seed is not None else None
            store.initialize(self._seed_org, seed)
            _log.info("data directory %s initialised%s", self._data_dir, " from the seed" if seed else "")
        else:
            interrupted = store.fail_unfinished_threads()
            _log.info(
                "data directory %s already holds state: not seeding (%d unfinished thread(s) now FAILED"
                " PLATFORM_RESTART)",
                self._data_dir,
                interrupted,
            )
        stats = StatsBook()
        runtime = self._runtime = HandlerRuntime(
            max_concurrency=self._max_workers, on_worker_started=stats.worker_started
        )
        engine = self._engine = ThreadEngine(
            store, runtime, stats, self._faults.platform_failure, self._faults.fails_version
        )
        api = self._api = ScriptumApi(store, engine, stats, self._faults)
        pipeline = Pipeline(api, self._auth)

        server = self._grpc = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=max(_MIN_GRPC_THREADS, 4 * self._max_workers), thread_name_prefix="scriptum-grpc"
            ),
            handlers=grpc_handlers(pipeline),
            options=[
                # Never share a port with another process (grpc enables SO_REUSEPORT by default).
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", _MAX_RECEIVE_BYTES),
                ("grpc.max_send_message_length", _MAX_SEND_BYTES),
            ],
        )
        health_servicer = self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        _enable_reflection(
            server,
            (
                SCRIPTUM_SERVICE,
                ADMIN_SERVICE,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
        )
        grpc_port = server.add_insecure_port(_host_port(self._host, self._grpc_port))
        if grpc_port == 0:
            raise OSError(f"cannot bind gRPC on {_host_port(self._host, self._grpc_port)}")
        gateway = self._gateway = GatewayServer(
            build_app(pipeline, ready=lambda: self._addresses is not None), self._host, self._http_port
        )
        server.start()
        gateway.start()
        for service in ("", SCRIPTUM_SERVICE, ADMIN_SERVICE):
            health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        api.warm_up()
        self._addresses = ServerAddresses(
            grpc=_host_port(self._host, grpc_port), http=f"http://{_host_port(self._host, gateway.port)}"
        )
        return self._addresses

    def stop(self, grace: float = 1.0) -> None:
        """Cancel runs in flight, stop gRPC and HTTP, close the runtime and the store. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        if self._engine is not None:
            self._engine.stopping.set()  # streams and stalled calls return
        if self._runtime is not None:
            self._runtime.close()  # runs in flight end FAILED PLATFORM_RESTART
        if self._engine is not None:
            self._engine.shutdown()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self._gateway is not None:
            self._gateway.stop(timeout=max(grace, 0.0) + 3.0)
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _enable_reflection(server: grpc.Server, service_names: tuple[str, ...]) -> None:
    """Server reflection as grpc.reflection.v1alpha (what grpcurl 1.8.6 asks for) and v1 (newer
    clients): grpcio-reflection implements v1alpha only, and the two protocols are the same
    messages, so the v1 method is the v1alpha servicer under the other name."""
    servicer = reflection.ReflectionServicer(service_names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_REFLECTION_V1, {"ServerReflectionInfo": handler}),)
    )
