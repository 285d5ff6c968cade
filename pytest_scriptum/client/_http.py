"""HttpClient: ScriptumClient over the HTTP gateway (the documented routes, pbjson bodies).

Routes come from the bundled proto's ``google.api.http`` annotations (``_routes``). Responses are
parsed into the bundled message classes (unknown fields ignored) and rendered as dicts of proto
field names, exactly as the gRPC client renders the server's messages, so both transports return
identical records. Server streams arrive as newline-delimited JSON: one ``{"result": <message>}``
per line, an error as a final ``{"error": {"code", "status", "message"}}`` line.
"""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message

from ._base import ClientBase, Sleep, log
from ._errors import ScriptumError, code_of_error_body, redact
from ._routes import ROUTES, HttpRequest, http_request
from ._settings import ClientSettings, check_http_url, is_loopback
from ._streams import Stream
from ._wire import Wire, to_dict

__all__ = ["HttpClient", "make_http_client"]

_MAX_ERROR_TEXT = 500
_BUNDLED_DETAIL = ("the HTTP gateway has no reflection: the descriptors bundled with the plugin are used "
                   "(extensions assumed)")


def make_http_client(settings: ClientSettings) -> httpx.Client:
    """An httpx client on the gateway: base URL, auth headers and the call timeout set.

    ValueError when there is no URL, or it is plaintext to a non-loopback host without ``insecure``.
    """
    settings.require_credentials()
    if not settings.http_url:
        raise ValueError("no Scriptum HTTP gateway URL: pass --scriptum-http-url=URL")
    url = check_http_url(settings.http_url, insecure=settings.insecure)
    return httpx.Client(
        # As text: check_http_url imports httpx itself, on first use, and an in-process pytester
        # run that restores sys.modules can leave it holding another copy of the module.
        base_url=str(url),
        headers=dict(settings.auth_metadata()),
        timeout=settings.call_timeout_s,
        # Proxy env vars are for the outside world; a loopback gateway is reached directly.
        trust_env=not is_loopback(url.host),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32),
    )


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class _HttpStream(Stream):
    def __init__(self, client: HttpClient, method: str, response_type: type[Message],
                 reply: httpx.Response) -> None:
        self._client = client
        self._method = method
        self._type = response_type
        self._reply = reply
        self._aborted = False
        self._done = False
        # abort() runs on the canceller's thread: once the reader is done the connection may be
        # back in the pool serving another call, so it must not be touched any more.
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self._reply.iter_lines():
                if line.strip():
                    yield self._client._stream_message(self._method, self._type, line)
        except httpx.TimeoutException as exc:
            raise ScriptumError("DEADLINE_EXCEEDED", f"the stream went silent ({type(exc).__name__})",
                                self._method) from None
        except (httpx.TransportError, httpx.StreamError) as exc:
            if self._aborted:
                raise ScriptumError("CANCELLED", "the stream was aborted", self._method) from None
            raise ScriptumError("UNAVAILABLE", redact(f"the stream broke: {type(exc).__name__}: {exc}",
                                                      self._client._settings.token), self._method) from None
        finally:
            self.close()

    def abort(self) -> None:
        # httpx cannot interrupt a blocking read from another thread; shutting the socket down can.
        with self._lock:
            if self._done:
                return
            self._aborted = True
            stream = self._reply.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed: the reader has stopped anyway

    def close(self) -> None:
        with self._lock:
            self._done = True
        self._reply.close()


class HttpClient(ClientBase):
    """ScriptumClient over the HTTP gateway; the same records as over gRPC."""

    transport = "http"

    def __init__(self, settings: ClientSettings, *, sleep: Sleep | None = None) -> None:
        super().__init__(settings, sleep=sleep)
        self._http = make_http_client(settings)
        self._bundled = Wire.bundled(_BUNDLED_DETAIL)

    def _close_transport(self) -> None:
        self._http.close()

    def _wire(self, method: str) -> Wire:
        return self._bundled

    def _error_from_response(self, method: str, response: httpx.Response) -> ScriptumError:
        message = ""
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = str(body.get("message", ""))
        code = code_of_error_body(body, response.status_code)
        if not message:
            text = response.text.strip()[:_MAX_ERROR_TEXT]
            message = f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")
        return ScriptumError(code, redact(message, self._settings.token), method, _retry_after_s(response))

    def _parse(self, method: str, response_type: type[Message], body: Any) -> dict[str, Any]:
        try:
            return to_dict(json_format.ParseDict(body, response_type(), ignore_unknown_fields=True))
        except (ValueError, json_format.ParseError) as exc:
            raise ScriptumError("INTERNAL", redact(
                f"unreadable {response_type.DESCRIPTOR.name} from the gateway: {exc}", self._settings.token),
                method) from None

    def _stream_message(self, method: str, response_type: type[Message], line: str) -> dict[str, Any]:
        try:
            envelope = json.loads(line)
        except ValueError:
            envelope = None
        if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
            error = envelope["error"]
            raise ScriptumError(code_of_error_body(error, 500), redact(str(error.get("message", "")),
                                                                        self._settings.token), method)
        if not isinstance(envelope, dict) or "result" not in envelope:
            raise ScriptumError("INTERNAL", redact(f"unreadable stream line from the gateway: {line[:200]!r}",
                                                   self._settings.token), method)
        return self._parse(method, response_type, envelope["result"])

    def _prepare(self, method: str, request: Message) -> tuple[HttpRequest, type[Message]]:
        route = ROUTES.get(method)
        if route is None:
            raise ScriptumError("UNIMPLEMENTED", f"{method} has no HTTP route in the proto", method)
        return http_request(route, request), self._bundled.method(method).response

    def _send(self, method: str, request: HttpRequest, timeout: httpx.Timeout, *,
              stream: bool) -> httpx.Response:
        # No local variable holds the token: pytest --showlocals prints the locals of this frame.
        timeout_s = timeout.read
        try:
            return self._http.send(self._http.build_request(
                request.verb, request.path, params=request.params,
                json=request.body, timeout=timeout), stream=stream)
        except httpx.TimeoutException as exc:
            raise ScriptumError("DEADLINE_EXCEEDED", redact(
                f"no response within {timeout_s:g}s ({type(exc).__name__})", self._settings.token),
                method) from None
        except httpx.TransportError as exc:  # refused, reset, DNS, TLS: the gateway is not reachable
            text = redact(f"{type(exc).__name__}: {exc}", self._settings.token)
            raise ScriptumError("UNAVAILABLE", text, method) from None
        except RuntimeError as exc:  # httpx raises it for a request on a closed client
            # The caller closed the client (session teardown): like a cancelled call, pointless to retry.
            raise ScriptumError("CANCELLED", f"the client is closed ({exc})", method) from None

    def _call(self, method: str, request: Message, timeout_s: float) -> dict[str, Any]:
        prepared, response_type = self._prepare(method, request)
        reply = self._send(method, prepared, httpx.Timeout(timeout_s), stream=False)
        if not reply.is_success:
            raise self._error_from_response(method, reply)
        try:
            body = reply.json()
        except ValueError as exc:
            raise ScriptumError("INTERNAL", redact(
                f"unreadable {response_type.DESCRIPTOR.name} from the gateway: {exc}", self._settings.token),
                method) from None
        return self._parse(method, response_type, body)

    def _open_stream(self, method: str, request: Message, timeout_s: float) -> Stream:
        prepared, response_type = self._prepare(method, request)
        # The read timeout is the whole stream's budget: a watched step may be silent for minutes.
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, self._settings.call_timeout_s))
        reply = self._send(method, prepared, timeout, stream=True)
        if not reply.is_success:
            try:
                reply.read()
            except httpx.HTTPError as exc:
                log.debug("%s: could not read the error body: %s", method, exc)
            finally:
                reply.close()
            raise self._error_from_response(method, reply)
        return _HttpStream(self, method, response_type, reply)
