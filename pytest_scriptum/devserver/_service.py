"""gRPC side: one interceptor (auth, counters, faults, errors) and thin servicers over ScriptumApi."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

from ._api import ScriptumApi
from ._auth import Authenticator
from ._errors import ApiError

__all__ = ["ADMIN_SERVICE", "SCRIPTUM_SERVICE", "AdminServicer", "ApiInterceptor", "ScriptumServicer"]

SCRIPTUM_SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumService"].full_name
ADMIN_SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumDevAdmin"].full_name

_log = logging.getLogger("pytest_scriptum.devserver")
# The organization the interceptor authenticated, for the servicer running in the same thread.
_current_org: contextvars.ContextVar[str] = contextvars.ContextVar("scriptum_org")
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:  # grpc's runtime class is not generic; only its stubs are
    _ServerInterceptor = grpc.ServerInterceptor


class ApiInterceptor(_ServerInterceptor):
    """Applies auth, call counting, fault injection and ApiError mapping to every API call.

    Health and reflection pass through untouched; faults touch ScriptumService only.
    """

    def __init__(self, api: ScriptumApi, auth: Authenticator) -> None:
        self._api = api
        self._auth = auth

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        if handler is None or service not in (SCRIPTUM_SERVICE, ADMIN_SERVICE) or handler.unary_unary is None:
            return handler
        metadata = {
            key.lower(): value
            for key, value in handler_call_details.invocation_metadata
            if isinstance(value, str)
        }
        inner: Callable[[Any, grpc.ServicerContext], Any] = handler.unary_unary
        is_api = service == SCRIPTUM_SERVICE
        deserialize = handler.request_deserializer

        def lenient_deserialize(data: bytes) -> Any:
            # grpc answers a deserializer's exception with INTERNAL; malformed bytes are the
            # caller's mistake, reported as INVALID_ARGUMENT once the caller is authenticated.
            try:
                return deserialize(data) if deserialize is not None else data
            except Exception as exc:
                return _Malformed(f"malformed {method} request: {exc}")

        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            if is_api:
                self._api.stats.count_call(method)
            try:
                org = self._auth.authenticate(
                    metadata.get("authorization"), metadata.get("x-organization-id")
                )
                if isinstance(request, _Malformed):
                    raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                if is_api:
                    self._apply_faults(method, context)
                token = _current_org.set(org)
                try:
                    response = inner(request, context)
                finally:
                    _current_org.reset(token)
            except ApiError as error:
                _abort(context, error)
            except Exception:
                _log.exception("unexpected error in %s", method)
                context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} (see the server log)")
            skew = self._api.faults.version_skew(method) if is_api else 0
            if skew and isinstance(response, pb.Thread):
                response.version += skew
            return response

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=lenient_deserialize,
            response_serializer=handler.response_serializer,
        )

    def _apply_faults(self, method: str, context: grpc.ServicerContext) -> None:
        decision = self._api.faults.decide(method)
        stopping = self._api.stopping
        if decision.latency_s > 0:
            stopping.wait(decision.latency_s)
        if decision.stall:
            ended = threading.Event()
            if context.add_callback(ended.set):
                # Hang until the client's deadline/cancel ends the RPC, or the server stops.
                while not ended.wait(0.05) and not stopping.is_set():
                    pass
            raise ApiError(grpc.StatusCode.UNAVAILABLE, f"injected fault (stall) on {method}")
        if decision.error is not None:
            raise decision.error


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, message: str) -> None:
        self.message = message


def _abort(context: grpc.ServicerContext, error: ApiError) -> None:
    if error.retry_after_s is not None:
        context.set_trailing_metadata((("retry-after-ms", str(round(error.retry_after_s * 1000))),))
    context.abort(error.code, error.message)


def _org() -> str:
    return _current_org.get()


class ScriptumServicer(pb_grpc.ScriptumServiceServicer):
    """ScriptumService over ScriptumApi (auth and errors are the interceptor's job)."""

    def __init__(self, api: ScriptumApi) -> None:
        self._api = api

    def ImportTenantEnv(
        self, request: pb.ImportTenantEnvRequest, context: grpc.ServicerContext
    ) -> pb.ImportTenantEnvResponse:
        return self._api.import_tenant_env(_org(), request)

    def GetTenantEnv(self, request: pb.GetTenantEnvRequest, context: grpc.ServicerContext) -> pb.EnvEntry:
        return self._api.get_tenant_env(_org(), request)

    def ListTenantEnv(
        self, request: pb.ListTenantEnvRequest, context: grpc.ServicerContext
    ) -> pb.ListTenantEnvResponse:
        return self._api.list_tenant_env(_org(), request)

    def GetScriptEnv(self, request: pb.GetScriptEnvRequest, context: grpc.ServicerContext) -> pb.ScriptEnv:
        return self._api.get_script_env(_org(), request)

    def UpdateScriptEnv(
        self, request: pb.UpdateScriptEnvRequest, context: grpc.ServicerContext
    ) -> pb.ScriptEnv:
        return self._api.update_script_env(_org(), request)

    def CreateDraft(self, request: pb.CreateDraftRequest, context: grpc.ServicerContext) -> pb.Draft:
        return self._api.create_draft(_org(), request)

    def PublishDraft(self, request: pb.PublishDraftRequest, context: grpc.ServicerContext) -> pb.Version:
        return self._api.publish_draft(_org(), request)

    def ListScripts(
        self, request: pb.ListScriptsRequest, context: grpc.ServicerContext
    ) -> pb.ListScriptsResponse:
        return self._api.list_scripts(_org(), request)

    def GetScript(self, request: pb.GetScriptRequest, context: grpc.ServicerContext) -> pb.Script:
        return self._api.get_script(_org(), request)

    def ListVersions(
        self, request: pb.ListVersionsRequest, context: grpc.ServicerContext
    ) -> pb.ListVersionsResponse:
        return self._api.list_versions(_org(), request)

    def GetVersion(self, request: pb.GetVersionRequest, context: grpc.ServicerContext) -> pb.Version:
        return self._api.get_version(_org(), request)

    def ActivateVersion(self, request: pb.ActivateVersionRequest, context: grpc.ServicerContext) -> pb.Script:
        return self._api.activate_version(_org(), request)

    def RollbackVersion(self, request: pb.RollbackVersionRequest, context: grpc.ServicerContext) -> pb.Script:
        return self._api.rollback_version(_org(), request)

    def RunThread(self, request: pb.RunThreadRequest, context: grpc.ServicerContext) -> pb.Thread:
        client_gone = threading.Event()
        # Fires when the RPC ends for any reason; before the run finishes that means the client
        # cancelled or its deadline passed, so the run is cancelled.
        context.add_callback(client_gone.set)
        return self._api.run_thread(_org(), request, client_gone)

    def GetThread(self, request: pb.GetThreadRequest, context: grpc.ServicerContext) -> pb.Thread:
        return self._api.get_thread(_org(), request)

    def CancelThread(self, request: pb.CancelThreadRequest, context: grpc.ServicerContext) -> pb.Thread:
        return self._api.cancel_thread(_org(), request)


class AdminServicer(pb_grpc.ScriptumDevAdminServicer):
    """ScriptumDevAdmin over ScriptumApi."""

    def __init__(self, api: ScriptumApi) -> None:
        self._api = api

    def GetFaults(self, request: pb.GetFaultsRequest, context: grpc.ServicerContext) -> pb.Faults:
        return self._api.get_faults(_org(), request)

    def SetFaults(self, request: pb.Faults, context: grpc.ServicerContext) -> pb.Faults:
        return self._api.set_faults(_org(), request)

    def GetStats(self, request: pb.GetStatsRequest, context: grpc.ServicerContext) -> pb.Stats:
        return self._api.get_stats(_org(), request)

    def ResetStats(self, request: pb.ResetStatsRequest, context: grpc.ServicerContext) -> pb.Stats:
        return self._api.reset_stats(_org(), request)
