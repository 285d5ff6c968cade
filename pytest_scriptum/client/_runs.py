"""Following a thread and reading its result, on either transport.

``watch``: WatchThread until an event shows the thread terminal or PAUSED. A dropped stream is
re-subscribed (the thread keeps running on the platform; the first event of a new subscription is
its current status); a refused stream (UNIMPLEMENTED, or no such method on the server) falls back
to GetThread polling with a modest backoff, as the platform CLI does. A caller's cancel event
aborts the stream, cancels the thread (CancelThread; an UNIMPLEMENTED answer is logged and named
in the error) and raises ScriptumError CANCELLED. Past its deadline the watch cancels the thread
and raises DEADLINE_EXCEEDED.

``result``: GetThreadResult, and StreamThreadResult when the unary answer says
``output_truncated``; chunks are reassembled in ``chunk_index`` order and checked (a missing or
repeated chunk, a missing final chunk, or a size / digest that differs is DATA_LOSS).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._limits import LARGE_OUTPUT_BYTES
from .._memory import keep_large_blocks_returnable
from ._errors import ScriptumError, cancelled_error
from ._records import Step, Thread, ThreadOutput, enum_value

if TYPE_CHECKING:
    from ._base import ClientBase

__all__ = ["POLL_FIRST_S", "POLL_MAX_S", "OutputAssembly", "result", "result_of", "watch"]

log = logging.getLogger("pytest_scriptum.client")

# GetThread polling: start fast (most smoke runs are short), back off to a modest rate.
POLL_FIRST_S = 0.05
POLL_MAX_S = 0.5
_POLL_GROWTH = 1.5
# Codes after which a dropped WatchThread stream is subscribed again.
_RESUBSCRIBE = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})
# A large output may take longer than one ordinary call to arrive.
_MIN_STREAM_TIMEOUT_S = 60.0


def _cancel_note(client: ClientBase, thread_id: str) -> str:
    """Cancel the thread, best effort; what the caller's error should add about it."""
    try:
        client.cancel_thread(thread_id)
    except ScriptumError as exc:
        if exc.code == "UNIMPLEMENTED":
            log.warning("CancelThread is not implemented by this platform: thread %s keeps running until "
                        "its own timeout", thread_id)
            return "; CancelThread is UNIMPLEMENTED here: the thread keeps running until its own timeout"
        log.warning("could not cancel thread %s: %s", thread_id, exc)
        return f"; cancelling thread {thread_id} failed: {exc.code}: {exc.message}"
    return f"; thread {thread_id} cancelled"


def _cancelled(client: ClientBase, thread_id: str, method: str) -> ScriptumError:
    return cancelled_error(method, _cancel_note(client, thread_id))


def _past_deadline(client: ClientBase, thread_id: str, budget_s: float, method: str) -> Thread:
    # The platform should have ended the thread by its own timeout; one last look, then give up.
    thread = client.get_thread(thread_id)
    if thread.settled:
        return thread
    note = _cancel_note(client, thread_id)
    raise ScriptumError("DEADLINE_EXCEEDED", f"thread {thread_id} still {thread.status} {budget_s:g}s after "
                        f"the watch began (its timeout plus the client's margin){note}", method)


def watch(client: ClientBase, thread_id: str, budget_s: float, cancel: threading.Event | None) -> Thread:
    """The thread once terminal or PAUSED (see the module docstring)."""
    deadline = time.monotonic() + budget_s
    retries = client._settings.retry.retries
    failures = 0  # subscriptions in a row that broke without delivering an event
    early_ends = 0  # subscriptions in a row that ended cleanly before the thread settled
    while True:
        if cancel is not None and cancel.is_set():
            raise _cancelled(client, thread_id, "WatchThread")
        if time.monotonic() >= deadline:
            return _past_deadline(client, thread_id, budget_s, "WatchThread")
        thread, progressed, error = _follow(client, thread_id, deadline, cancel)
        if thread is not None:
            return thread
        if cancel is not None and cancel.is_set():
            raise _cancelled(client, thread_id, "WatchThread")
        if time.monotonic() >= deadline:
            return _past_deadline(client, thread_id, budget_s, "WatchThread")
        if error is None:
            # The docs call WatchThread "Partial": a server whose stream keeps ending before the
            # thread settles is followed by polling instead of being asked again and again.
            early_ends += 1
            if early_ends > retries:
                log.info("WatchThread of %s keeps ending early; following it by GetThread polling", thread_id)
                return _poll(client, thread_id, deadline, budget_s, cancel)
            error = ScriptumError("UNAVAILABLE", "the stream ended before the thread settled", "WatchThread")
        elif error.code == "UNIMPLEMENTED":
            log.info("WatchThread refused (%s); following thread %s by GetThread polling", error.message,
                     thread_id)
            return _poll(client, thread_id, deadline, budget_s, cancel)
        elif error.code not in _RESUBSCRIBE:
            raise error
        else:
            early_ends = 0
            # A subscription that delivered events made progress: the drop budget starts again.
            failures = 1 if progressed else failures + 1
            if failures > retries:
                raise ScriptumError(error.code, f"{error.message} (gave up after {failures} attempts)",
                                    "WatchThread", error.retry_after_s)
        delay = client._settings.retry.delay(max(failures, early_ends) - 1, error.retry_after_s)
        log.debug("WatchThread of %s: %s, subscribing again in %.3fs", thread_id, error.code, delay)
        client._wait(min(delay, max(deadline - time.monotonic(), 0.0)), cancel)


def _follow(client: ClientBase, thread_id: str, deadline: float,
            cancel: threading.Event | None) -> tuple[Thread | None, bool, ScriptumError | None]:
    """One subscription: the settled thread (None if the stream ended or broke first), whether any
    event came, and the error that broke it (None for a clean end)."""
    progressed = False
    try:
        request = client._request("WatchThread", {"thread_id": thread_id})
        stream = client._open_stream("WatchThread", request, deadline - time.monotonic())
        with client._aborter.watching(cancel, stream):
            try:
                for event in stream:
                    progressed = True
                    state = event.get("thread")
                    if state:
                        thread = Thread.from_dict(state)
                        if thread.settled:
                            return thread, True, None
                    if time.monotonic() > deadline:
                        break  # events keep coming (an HTTP read timeout is per read): the caller decides
            finally:
                stream.close()
    except ScriptumError as exc:
        return None, progressed, exc
    return None, progressed, None


def _poll(client: ClientBase, thread_id: str, deadline: float, budget_s: float,
          cancel: threading.Event | None) -> Thread:
    interval = POLL_FIRST_S
    while True:
        thread = client.get_thread(thread_id)
        if thread.settled:
            return thread
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _past_deadline(client, thread_id, budget_s, "GetThread")
        pause = min(interval, remaining)
        if cancel is not None:
            if cancel.wait(pause):
                raise _cancelled(client, thread_id, "GetThread")
        else:
            time.sleep(pause)
        interval = min(interval * _POLL_GROWTH, POLL_MAX_S)


def _bytes(value: Any, what: str, method: str) -> bytes:
    try:
        return base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ScriptumError("DATA_LOSS", f"{what} is not base64", method) from None


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def result(client: ClientBase, thread_id: str) -> ThreadOutput:
    """The thread's whole result, in two documented steps so that a large output never arrives
    twice or many at once (DESIGN section 6: memory stays bounded by the outputs in use):

    1. ``GetThreadResult{metadata_only}``: steps, yields, the output's size and whether the unary
       answer would be cut;
    2. the output: ``GetThreadResult{output_only}`` when it fits the unary answer, else
       ``StreamThreadResult`` (one streamed output at a time per client). An ``output_only``
       answer that is cut after all (a platform whose metadata answer does not say so: the docs
       do not promise it) is streamed too.
    """
    d = client._invoke("GetThreadResult", {"thread_id": thread_id, "metadata_only": True})
    total = _int(d.get("output_total_bytes"))
    if total >= LARGE_OUTPUT_BYTES:
        keep_large_blocks_returnable()
    streamed = bool(d.get("output_truncated", False))
    if not streamed:
        answer = client._invoke("GetThreadResult", {"thread_id": thread_id, "output_only": True})
        streamed = bool(answer.get("output_truncated", False))
        total = _int(answer.get("output_total_bytes")) or total
        encoded = answer.pop("output_data", None)
        del answer  # a cut answer's partial output must not stay alive while the whole one streams
    if streamed:
        encoded = None
        timeout_s = max(client._settings.call_timeout_s, _MIN_STREAM_TIMEOUT_S)
        with client._output_stream_lock:
            data = client._retrying(
                "StreamThreadResult", lambda: _stream_output(client, thread_id, timeout_s)
            )
        if total and len(data) != total:
            raise ScriptumError("DATA_LOSS", f"thread {thread_id}: the stream gave {len(data)} bytes, "
                                f"GetThreadResult said output_total_bytes={total}", "StreamThreadResult")
    else:
        data = _bytes(encoded, "output_data", "GetThreadResult")
        if total and len(data) != total:
            raise ScriptumError("DATA_LOSS", f"thread {thread_id}: output_data holds {len(data)} bytes "
                                f"of output_total_bytes={total}, yet output_truncated is false",
                                "GetThreadResult")
    return ThreadOutput(
        thread_id=d.get("thread_id", "") or thread_id,
        status=enum_value(d.get("status"), "THREAD_STATUS_"),
        output_data=data,
        output_total_bytes=total or len(data),
        steps=tuple(Step.from_dict(s) for s in d.get("steps", ())),
        yielded_values=tuple(str(v) for v in d.get("yielded_values", ())),
        streamed=streamed,
    )


def _stream_output(client: ClientBase, thread_id: str, timeout_s: float) -> bytes:
    request = client._request("StreamThreadResult", {"thread_id": thread_id})
    stream = client._open_stream("StreamThreadResult", request, timeout_s)
    output = OutputAssembly(thread_id)
    try:
        for message in stream:
            output.add(message)
    finally:
        stream.close()
    return output.data()


class OutputAssembly:
    """StreamThreadResult's messages (dicts of proto field names) put back together as they
    arrive: each chunk is decoded on arrival and only its bytes are kept (never the transport's
    base64 text of every chunk at once), so a streamed output costs about its own size.

    ``data()`` is the output in ``chunk_index`` order; DATA_LOSS unless the meta came first and
    once, the chunks are exactly 0..n-1, the last is_final, and the size (and the digest, when
    the meta gives one) match the meta.
    """

    _METHOD = "StreamThreadResult"

    def __init__(self, thread_id: str) -> None:
        self._thread_id = thread_id
        self._meta: Mapping[str, Any] | None = None
        self._chunks: dict[int, bytes] = {}
        self._finals: list[int] = []

    def _loss(self, what: str) -> ScriptumError:
        return ScriptumError("DATA_LOSS", f"thread {self._thread_id}: {what}", self._METHOD)

    def add(self, message: Mapping[str, Any]) -> None:
        """One message of the stream: its ``meta`` or one ``chunk``."""
        if "meta" in message:
            if self._meta is not None or self._chunks:
                raise self._loss("a second ThreadOutputMeta, or one after the chunks")
            self._meta = message["meta"]
        elif "chunk" in message:
            chunk = message["chunk"]
            index = _int(chunk.get("chunk_index"))
            if index in self._chunks:
                raise self._loss(f"chunk {index} arrived twice")
            self._chunks[index] = _bytes(chunk.get("data"), f"chunk {index}", self._METHOD)
            if chunk.get("is_final"):
                self._finals.append(index)

    def data(self) -> bytes:
        """The whole output, checked against the meta (see the class)."""
        meta, chunks = self._meta, self._chunks
        if meta is None:
            raise self._loss("the stream sent no ThreadOutputMeta")
        missing = sorted(set(range(len(chunks))) - set(chunks))
        if missing or (chunks and max(chunks) != len(chunks) - 1):
            raise self._loss(f"chunk {missing[0] if missing else len(chunks)} is missing")
        expected_count = _int(meta.get("chunk_count"))
        if "chunk_count" in meta and expected_count != len(chunks):
            raise self._loss(f"{len(chunks)} chunks arrived, the meta announced {expected_count}")
        if chunks and sorted(self._finals) != [len(chunks) - 1]:
            raise self._loss(f"the last chunk is not marked final (final: {sorted(self._finals) or 'none'})")
        data = b"".join(chunks[i] for i in range(len(chunks)))
        chunks.clear()  # the joined copy is all that is kept
        total = _int(meta.get("output_total_bytes"))
        if len(data) != total:
            raise self._loss(
                f"the chunks hold {len(data)} bytes, the meta announced output_total_bytes={total}"
            )
        digest = meta.get("output_sha256", "")
        if digest and hashlib.sha256(data).hexdigest() != str(digest).lower():
            raise self._loss("the output's SHA-256 differs from the meta's")
        return data


def result_of(client: ClientBase, thread: Thread) -> ThreadOutput | None:
    """The result of a settled thread; None for a CANCELLED one the platform keeps no result of."""
    try:
        return result(client, thread.thread_id)
    except ScriptumError as exc:
        if thread.status == "CANCELLED" and exc.code in ("NOT_FOUND", "FAILED_PRECONDITION"):
            return None
        raise
