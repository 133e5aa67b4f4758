"""An in-process fake of the OpenAI Realtime WebSocket server (GA and Azure-legacy beta).

It follows the realtime wire reference (section numbers ``§n`` in comments). It is meant for
tests, offline demos and benchmarks with many concurrent connections, so the hot path stays
plain: ``json.loads`` in, dicts and ``json.dumps`` out, one writer task per connection, no
per-frame logging.

Fake-server simplifications are marked ``[fake]``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import math
import re
import socket
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from aiohttp import WSMsgType, web

from ._protocol import (
    BETA_CLIENT_EVENT_TYPES,
    DEFAULT_MODEL,
    GA_CLIENT_EVENT_TYPES,
    MISSING,
    JsonDict,
    ProtocolError,
    Wire,
    _quote_list,
    apply_session_update,
    default_session,
    error_event,
    input_bytes_per_ms,
    invalid_type,
    missing_parameter,
    new_id,
    session_text_only,
    session_transcription,
    session_turn_detection,
    update_paths,
)
from .audio import tone
from .timing import DEFAULT_REPLY_PACE, DEFAULT_TIME_TO_FIRST_AUDIO, INSTANT

__all__ = ["INSTANT", "FakeConnection", "FakeRealtimeServer", "ReplyContext", "ReplyFn"]

SAMPLE_RATE = 24000
_FRAME_MS = 20
_FRAME_SAMPLES = SAMPLE_RATE * _FRAME_MS // 1000  # 480
_FRAME_BYTES = _FRAME_SAMPLES * 2
_MIN_SPEECH_FRAMES = 2  # [fake] 40 ms of energy before speech_started, so clicks do not count
_CHUNK_BYTES = 4800  # 100 ms of PCM16 24 kHz per audio delta
_IDLE_BUFFER_CAP = 30 * SAMPLE_RATE * 2  # [fake] keep <= 30 s of idle audio while VAD is on
_IDLE_BUFFER_SLACK = 5 * SAMPLE_RATE * 2
# [fake] semantic_vad has no silence_duration_ms; end the turn after this much silence
_SEMANTIC_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 300}
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_WORDS = re.compile(r"\S+\s*")

BETA_HEADER_MESSAGE = (
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
)


@dataclass
class ReplyContext:
    """What a reply callable gets to build a response."""

    connection: FakeConnection
    audio: bytes  # the last committed input audio (PCM16 24 kHz mono), b"" if none yet
    trigger: str  # "client" | "server_vad" | "idle_timeout"
    response_id: str
    request: JsonDict = field(default_factory=dict)  # the response.create `response` object

    @property
    def audio_seconds(self) -> float:
        return len(self.audio) / (2 * SAMPLE_RATE)


ReplyResult = tuple[str, bytes | None]
ReplyFn = Callable[[ReplyContext], ReplyResult | Awaitable[ReplyResult]]

_default_reply_audio: bytes | None = None


def default_reply_audio() -> bytes:
    """0.5 s of a non-silent tone (440 Hz, -20 dBFS)."""
    global _default_reply_audio
    if _default_reply_audio is None:
        _default_reply_audio = tone(0.5, freq=440.0, dbfs=-20.0)
    return _default_reply_audio


# ---------------------------------------------------------------- event logs


class _Waiter:
    __slots__ = ("type", "predicate", "remaining", "future")

    def __init__(
        self,
        type: str | None,
        predicate: Callable[[JsonDict], bool] | None,
        remaining: int,
        future: asyncio.Future[JsonDict],
    ) -> None:
        self.type = type
        self.predicate = predicate
        self.remaining = remaining
        self.future = future

    def matches(self, event: JsonDict) -> bool:
        if self.type is not None and event.get("type") != self.type:
            return False
        return self.predicate is None or bool(self.predicate(event))


class _EventLog:
    """An append-only list of events with event-driven waiters (no polling)."""

    __slots__ = ("items", "record", "_waiters", "_seen")

    def __init__(self, record: bool) -> None:
        self.items: list[JsonDict] = []
        self.record = record
        self._waiters: list[_Waiter] = []
        self._seen = 0

    def add(self, event: JsonDict) -> None:
        self._seen += 1
        if self.record:
            self.items.append(event)
        if not self._waiters:
            return
        for w in list(self._waiters):
            if w.future.done():
                self._waiters.remove(w)
            elif w.matches(event):
                w.remaining -= 1
                if w.remaining <= 0:
                    self._waiters.remove(w)
                    w.future.set_result(event)

    async def wait(
        self,
        type: str | None,
        count: int,
        predicate: Callable[[JsonDict], bool] | None,
        timeout: float | None,
        what: str,
    ) -> JsonDict:
        remaining = count
        for ev in self.items:
            if (type is None or ev.get("type") == type) and (predicate is None or predicate(ev)):
                remaining -= 1
                if remaining <= 0:
                    return ev
        fut: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(type, predicate, remaining, fut)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            seen = [ev.get("type") for ev in self.items[-20:]]
            raise asyncio.TimeoutError(
                f"timed out after {timeout}s waiting for {what} {type!r} (#{count}); "
                f"last seen: {seen}"
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)


# ---------------------------------------------------------------- responses


class _Response:
    __slots__ = (
        "id",
        "record",
        "conv",
        "text_only",
        "metadata",
        "trigger",
        "request",
        "base",
        "item_id",
        "item_prev",
        "task",
        "item_added",
        "part_added",
        "sent_text",
        "audio_bytes",
        "truncated",
        "started_at",
        "done",
    )

    def __init__(
        self,
        rid: str,
        record: JsonDict,
        conv: bool,
        text_only: bool,
        metadata: Any,
        trigger: str,
        request: JsonDict,
        base: JsonDict,
    ) -> None:
        self.id = rid
        self.record = record
        self.conv = conv
        self.text_only = text_only
        self.metadata = metadata
        self.trigger = trigger
        self.request = request
        self.base = base
        self.item_id: str | None = None
        self.item_prev: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.item_added = False
        self.part_added = False
        self.sent_text = ""
        self.audio_bytes = 0
        self.truncated = False  # the client truncated the item while it streamed
        self.started_at = 0.0  # loop time of response.created
        self.done = False


class _Out:
    __slots__ = ("text", "event", "delay", "future", "close")

    def __init__(
        self,
        text: str | None,
        event: JsonDict | None,
        delay: float = 0.0,
        future: asyncio.Future[None] | None = None,
        close: tuple[int, str] | None = None,
    ) -> None:
        self.text = text
        self.event = event
        self.delay = delay
        self.future = future
        self.close = close


# ---------------------------------------------------------------- connection


class FakeConnection:
    """One accepted WebSocket (also kept after it closes, for inspection)."""

    def __init__(
        self,
        server: FakeRealtimeServer,
        request: web.Request,
        ws: web.WebSocketResponse,
        wire: Wire,
        model: str | None,
    ) -> None:
        self.server = server
        self.wire: Literal["ga", "beta"] = wire
        self.model = model
        self.path = request.path
        self.query: dict[str, str] = dict(request.query)
        self.headers: dict[str, str] = dict(request.headers)
        self.session: JsonDict = default_session(wire, model or DEFAULT_MODEL)
        self.conversation_id = new_id("conv")
        # conversation items in order (dicts are replaced, never mutated, once sent)
        self.conversation: list[JsonDict] = []
        self.input_audio = bytearray()
        self.appended_bytes = 0
        self.commits: list[bytes] = []
        self.responses: list[JsonDict] = []
        self.truncations: list[JsonDict] = []
        self.closed = False
        self.close_code: int | None = None
        self.handshake_error: JsonDict | None = None
        self.connected_at = time.monotonic()

        record = server.record_events
        self._client_log = _EventLog(record)
        self._sent_log = _EventLog(record)
        self.received_text_frames: list[str] = []
        self._ws = ws
        self._transport = request.transport
        self._queue: asyncio.Queue[_Out] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._closed_event = asyncio.Event()
        self._items: dict[str, JsonDict] = {}
        self._item_audio_ms: dict[str, float] = {}
        self._live: dict[str, _Response] = {}
        self._item_responses: dict[str, _Response] = {}  # in-progress item id -> its response
        self._active: _Response | None = None  # the default conversation's response
        self._last_commit = b""
        # VAD state (§5)
        self._td: JsonDict | None = None
        self._vad_rem = b""
        self._vad_pos = 0  # samples consumed by the VAD, since the connection started
        self._voiced_run = 0
        self._cand_start = 0
        self._in_speech = False
        self._speech_commit_start = 0
        self._silence_run = 0
        self._speech_item: str | None = None
        self._idle_deadline: int | None = None
        self._vad_configure()

    # ------------------------------------------------------------ public

    @property
    def client_events(self) -> list[JsonDict]:
        return self._client_log.items

    @property
    def sent_events(self) -> list[JsonDict]:
        return self._sent_log.items

    @property
    def turn_detection(self) -> JsonDict | None:
        return session_turn_detection(self.session, self.wire)

    @property
    def active_response(self) -> JsonDict | None:
        """The record of the default conversation's running response, if any."""
        return self._active.record if self._active is not None else None

    async def send_event(self, event: JsonDict) -> None:
        """Send any server event (in order with the server's own events); returns once sent."""
        await self._send_out(_DUMPS(event), event)

    async def send_text(self, text: str) -> None:
        """Send a raw text frame (e.g. malformed JSON)."""
        await self._send_out(text, None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close gracefully from the server side, after the events already queued."""
        if not self.closed:
            self._queue.put_nowait(_Out(None, None, close=(code, reason)))
        await self.wait_closed()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        if self.closed:
            return
        self._mark_closed()
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self, timeout: float | None = 5.0) -> None:
        await asyncio.wait_for(self._closed_event.wait(), timeout)

    async def wait_for_client_event(
        self,
        type: str | None,
        *,
        count: int = 1,
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float | None = 5.0,
    ) -> JsonDict:
        """The ``count``-th client event of ``type`` on this connection (past ones count)."""
        return await self._client_log.wait(type, count, predicate, timeout, "client event")

    async def wait_for_sent_event(
        self,
        type: str | None,
        *,
        count: int = 1,
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float | None = 5.0,
    ) -> JsonDict:
        """The ``count``-th event of ``type`` this connection sent to the client."""
        return await self._sent_log.wait(type, count, predicate, timeout, "server event")

    def __repr__(self) -> str:
        return f"<FakeConnection {self.wire} model={self.model!r} closed={self.closed}>"

    # ------------------------------------------------------------ writer

    async def _send_out(self, text: str, event: JsonDict | None) -> None:
        if self.closed:
            raise ConnectionResetError("connection closed")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Out(text, event, future=fut))
        await fut

    def _emit(self, event: JsonDict, delay: float = 0.0) -> None:
        if not self.closed:
            self._queue.put_nowait(_Out(_DUMPS(event), event, delay))

    async def _writer(self) -> None:
        ws = self._ws
        out: _Out | None = None
        try:
            while True:
                out = await self._queue.get()
                if out.delay > 0:
                    await asyncio.sleep(out.delay)
                if out.close is not None:
                    self._mark_closed()
                    await ws.close(code=out.close[0], message=out.close[1].encode())
                    return
                if out.text is not None:
                    await ws.send_str(out.text)
                if out.event is not None:
                    self._sent_log.add(out.event)
                if out.future is not None and not out.future.done():
                    out.future.set_result(None)
                out = None
        except (ConnectionError, RuntimeError):
            self._mark_closed()
        finally:
            # whatever was not sent fails (a close request counts as done)
            pending = [out] if out is not None else []
            while not self._queue.empty():
                pending.append(self._queue.get_nowait())
            for item in pending:
                if item.future is not None and not item.future.done():
                    if item.close is not None:
                        item.future.set_result(None)
                    else:
                        item.future.set_exception(ConnectionResetError("connection closed"))

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
        for r in list(self._live.values()):
            if r.task is not None:
                r.task.cancel()
        self._live.clear()
        self._item_responses.clear()
        self._active = None

    # ------------------------------------------------------------ lifecycle

    async def _run(self) -> None:
        ws = self._ws
        self._writer_task = asyncio.get_running_loop().create_task(self._writer())
        # §1: session.created is sent unprompted right after the upgrade
        self._emit(
            {"type": "session.created", "event_id": new_id("event"), "session": self.session}
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    # §6: a binary frame is not fatal
                    self._emit(
                        error_event(
                            "invalid_event",
                            "Binary frames are not supported; send JSON text frames.",
                        )
                    )
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._mark_closed()
            self.close_code = ws.close_code
            writer = self._writer_task
            if writer is not None and not writer.done():
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
            self._closed_event.set()

    async def _reject(self, code: str | None, message: str, close_code: int) -> None:
        # §1: auth/shape errors come after the 101 as one error event, then a close
        ev = error_event(code, message)
        self.handshake_error = ev["error"]
        reason = f"{ev['error']['type']}.{code}" if code else ev["error"]["type"]
        try:
            await self._ws.send_str(_DUMPS(ev))
            self._sent_log.add(ev)
            self.closed = True
            await self._ws.close(code=close_code, message=reason.encode())
        except (ConnectionError, RuntimeError):
            pass
        self.closed = True
        self.close_code = close_code
        self._closed_event.set()

    # ------------------------------------------------------------ dispatch

    def _on_text(self, data: str) -> None:
        server = self.server
        if server.record_events:
            self.received_text_frames.append(data)
            server.received_text_frames.append(data)
        try:
            event = json.loads(data)
        except ValueError:
            self._emit(
                error_event(
                    "invalid_json",
                    "We could not parse the JSON body of your request. Expected a JSON object.",
                )
            )
            return
        if not isinstance(event, dict):
            self._emit(error_event("invalid_event", "Expected the client event to be an object."))
            return
        self._client_log.add(event)
        server._client_log.add(event)
        event_id = event.get("event_id")
        client_event_id = event_id if isinstance(event_id, str) else None
        etype = event.get("type")
        if etype is None:
            self._emit(
                error_event("invalid_event", "The 'type' field is missing.", None, client_event_id)
            )
            return
        handler = _GA_DISPATCH.get(etype) if self.wire == "ga" else _BETA_DISPATCH.get(etype)
        if handler is None:
            known = GA_CLIENT_EVENT_TYPES if self.wire == "ga" else BETA_CLIENT_EVENT_TYPES
            self._emit(
                error_event(
                    "invalid_value",
                    f"Invalid value: '{etype}'. Supported values are: {_quote_list(known)}.",
                    "type",
                    client_event_id,
                )
            )
            return
        try:
            handler(self, event)
        except ProtocolError as e:
            self._emit(error_event(e.code, e.message, e.param, client_event_id, type=e.type))

    # ------------------------------------------------------------ session (§2)

    def _h_session_update(self, event: JsonDict) -> None:
        server = self.server
        update = event.get("session", MISSING)
        if server.reject_fields and update is not MISSING:
            paths = update_paths(update, "session")
            for rejected, (code, message) in server.reject_fields.items():
                prefix = rejected + "."
                if any(p == rejected or p.startswith(prefix) for p in paths):
                    raise ProtocolError(code, message, rejected)
        new = apply_session_update(
            self.session,
            update,
            self.wire,
            ignore_turn_detection_null=server.ignore_turn_detection_null,
        )
        self.session = new
        self._vad_configure()
        # §2: full effective session, no client event_id, only on success
        self._emit(
            {"type": "session.updated", "event_id": new_id("event"), "session": new},
            delay=server.echo_delay,
        )

    def _h_session_close(self, event: JsonDict) -> None:
        self._queue.put_nowait(_Out(None, None, close=(1000, "")))

    def _h_unsupported(self, event: JsonDict) -> None:
        raise ProtocolError(
            "unsupported_event",
            f"The fake realtime server does not implement '{event.get('type')}'.",
            "type",
        )

    # ------------------------------------------------------------ input audio (§4)

    def _h_append(self, event: JsonDict) -> None:
        audio = event.get("audio", MISSING)
        if audio is MISSING:
            raise missing_parameter("audio")
        if not isinstance(audio, str):
            raise invalid_type("audio", "string", audio)
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(
                "invalid_value", "Invalid 'audio'. Expected base64-encoded audio.", "audio"
            ) from None
        self.input_audio += pcm
        self.appended_bytes += len(pcm)
        if self._td is not None:
            self._vad_feed(pcm)

    def _h_commit(self, event: JsonDict) -> None:
        bpm = input_bytes_per_ms(self.session, self.wire)
        buffered_ms = len(self.input_audio) / bpm
        if buffered_ms < 100.0:
            raise ProtocolError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                None,
            )
        audio = bytes(self.input_audio)
        self.input_audio.clear()
        self._vad_reset_turn()
        self._commit(audio, new_id("item"))  # §4: a commit does not start a response

    def _h_clear(self, event: JsonDict) -> None:
        self.input_audio.clear()
        self._vad_reset_turn()
        self._emit({"type": "input_audio_buffer.cleared", "event_id": new_id("event")})

    def _commit(self, audio: bytes, item_id: str) -> None:
        self.commits.append(audio)
        self._last_commit = audio
        prev = self.conversation[-1]["id"] if self.conversation else None
        self._emit(
            {
                "type": "input_audio_buffer.committed",
                "event_id": new_id("event"),
                "previous_item_id": prev,
                "item_id": item_id,
            }
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._insert_item(item, len(self.conversation))
        self._emit_item_added(item, prev)
        transcript = self.server.input_transcript
        if transcript is not None and session_transcription(self.session, self.wire):
            text = transcript(audio) if callable(transcript) else transcript
            base = {"item_id": item_id, "content_index": 0}
            self._emit(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "event_id": new_id("event"),
                    **base,
                    "delta": text,
                }
            )
            completed: JsonDict = {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": new_id("event"),
                **base,
                "transcript": text,
            }
            if self.wire == "ga":
                completed["usage"] = {
                    "type": "duration",
                    "seconds": round(len(audio) / (2 * SAMPLE_RATE), 3),
                }
            self._emit(completed)

    # ------------------------------------------------------------ conversation items

    def _emit_item_added(self, item: JsonDict, prev: str | None) -> None:
        if self.wire == "ga":
            # §4: GA sends added then done for a finished item
            for etype in ("conversation.item.added", "conversation.item.done"):
                self._emit(
                    {
                        "type": etype,
                        "event_id": new_id("event"),
                        "previous_item_id": prev,
                        "item": item,
                    }
                )
        else:
            self._emit(
                {
                    "type": "conversation.item.created",
                    "event_id": new_id("event"),
                    "previous_item_id": prev,
                    "item": item,
                }
            )

    def _insert_item(self, item: JsonDict, index: int) -> None:
        self.conversation.insert(index, item)
        self._items[item["id"]] = item

    def _replace_item(self, item: JsonDict) -> None:
        old = self._items.get(item["id"])
        if old is None:
            return
        for i, it in enumerate(self.conversation):
            if it is old:
                self.conversation[i] = item
                break
        self._items[item["id"]] = item

    def _item_id_param(self, event: JsonDict) -> str:
        item_id = event.get("item_id", MISSING)
        if item_id is MISSING:
            raise missing_parameter("item_id")
        if not isinstance(item_id, str):
            raise invalid_type("item_id", "string", item_id)
        return item_id

    def _h_item_create(self, event: JsonDict) -> None:
        raw = event.get("item", MISSING)
        if raw is MISSING:
            raise missing_parameter("item")
        if not isinstance(raw, dict):
            raise invalid_type("item", "object", raw)
        item_id = raw.get("id") or new_id("item")
        if not isinstance(item_id, str):
            raise invalid_type("item.id", "string", item_id)
        if item_id in self._items:
            # [I] the code is the one LiveKit checks for
            raise ProtocolError(
                "item_create_duplicate_item_id",
                f"Item with id '{item_id}' already exists.",
                "item.id",
            )
        prev = event.get("previous_item_id")
        if prev is None:
            index = len(self.conversation)
        elif prev == "root":
            index = 0
        elif prev in self._items:
            index = self.conversation.index(self._items[prev]) + 1
        else:
            raise ProtocolError(  # [I] code
                "item_create_invalid_previous_item_id",
                f"Previous item with item_id '{prev}' not found.",
                "previous_item_id",
            )
        item: JsonDict = {"id": item_id, "object": "realtime.item"}
        item.update({k: v for k, v in raw.items() if k != "id"})
        if item.get("type") in ("message", "function_call") and "status" not in item:
            item["status"] = "completed"
        self._insert_item(item, index)
        actual_prev = self.conversation[index - 1]["id"] if index > 0 else None
        self._emit_item_added(item, actual_prev)

    def _h_item_delete(self, event: JsonDict) -> None:
        item_id = self._item_id_param(event)
        item = self._items.pop(item_id, None)
        if item is None:
            raise ProtocolError(  # [I] code
                "item_delete_invalid_item_id",
                f"Error deleting item: the item with id '{item_id}' does not exist.",
                "item_id",
            )
        self.conversation.remove(item)
        self._item_audio_ms.pop(item_id, None)
        self._emit(
            {"type": "conversation.item.deleted", "event_id": new_id("event"), "item_id": item_id}
        )

    def _h_item_retrieve(self, event: JsonDict) -> None:
        item_id = self._item_id_param(event)
        item = self._items.get(item_id)
        if item is None:
            raise ProtocolError(  # [I] code
                "item_retrieve_invalid_item_id",
                f"Error retrieving item: the item with id '{item_id}' does not exist.",
                "item_id",
            )
        self._emit(
            {"type": "conversation.item.retrieved", "event_id": new_id("event"), "item": item}
        )

    def _h_item_truncate(self, event: JsonDict) -> None:
        # §4: assistant audio items only; audio_end_ms must not exceed the audio
        item_id = self._item_id_param(event)
        content_index = event.get("content_index", MISSING)
        if content_index is MISSING:
            raise missing_parameter("content_index")
        if isinstance(content_index, bool) or not isinstance(content_index, int):
            raise invalid_type("content_index", "integer", content_index)
        audio_end_ms = event.get("audio_end_ms", MISSING)
        if audio_end_ms is MISSING:
            raise missing_parameter("audio_end_ms")
        if isinstance(audio_end_ms, bool) or not isinstance(audio_end_ms, int):
            raise invalid_type("audio_end_ms", "integer", audio_end_ms)
        if audio_end_ms < 0:
            raise ProtocolError(
                "integer_below_min_value",
                "Invalid 'audio_end_ms': integer below minimum value. "
                f"Expected a value >= 0, but got {audio_end_ms} instead.",
                "audio_end_ms",
            )
        item = self._items.get(item_id)
        if item is None:
            raise ProtocolError(  # [I] code
                "item_truncate_invalid_item_id",
                f"Error truncating item: the item with id '{item_id}' does not exist.",
                "item_id",
            )
        duration = self._item_audio_ms.get(item_id)
        content = item.get("content") or []
        if (
            item.get("role") != "assistant"
            or duration is None
            or content_index != 0
            or content_index >= len(content)
            or content[content_index].get("type") not in ("output_audio", "audio")
        ):
            raise ProtocolError(
                "unsupported_content_type", "Only model output audio messages can be truncated"
            )
        if audio_end_ms > duration:
            raise ProtocolError(  # [I] code; the message is [O]
                "invalid_value",
                f"Audio content of {int(duration)}ms is already shorter than {audio_end_ms}ms",
                "audio_end_ms",
            )
        self._item_audio_ms[item_id] = float(audio_end_ms)
        streaming = self._item_responses.get(item_id)
        if streaming is not None:
            streaming.truncated = True  # later deltas no longer extend the stored item
        # §4: the transcript is dropped
        new_content = [dict(c) for c in content]
        new_content[content_index]["transcript"] = ""
        self._replace_item({**item, "content": new_content})
        self.truncations.append(
            {
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
                "event_id": event.get("event_id"),
                "at": time.monotonic(),
            }
        )
        self._emit(
            {
                "type": "conversation.item.truncated",
                "event_id": new_id("event"),
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
            }
        )

    # ------------------------------------------------------------ responses (§4, §5)

    def _h_response_create(self, event: JsonDict) -> None:
        params = event.get("response", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise invalid_type("response", "object", params)
        conv = params.get("conversation", "auto") != "none"
        if conv and self._active is not None:
            raise self._already_active_error()
        self._start_response("client", params, conv)

    def _already_active_error(self) -> ProtocolError:
        rid = self._active.id if self._active is not None else "?"
        return ProtocolError(
            "conversation_already_has_active_response",
            f"Conversation already has an active response in progress: {rid}. "
            "Wait until the response is finished before creating a new one.",
            None,
        )

    def _h_response_cancel(self, event: JsonDict) -> None:
        rid = event.get("response_id")
        target = self._active if rid is None else self._live.get(rid)
        if target is None:
            raise ProtocolError(
                "response_cancel_not_active", "Cancellation failed: no active response found"
            )
        self._cancel_response(target, "client_cancelled")

    def _start_response(self, trigger: str, params: JsonDict, conv: bool = True) -> None:
        ga = self.wire == "ga"
        session = self.session
        mods_key = "output_modalities" if ga else "modalities"
        mods = params.get(mods_key)
        if isinstance(mods, list) and mods:
            text_only = "audio" not in mods
        else:
            text_only = session_text_only(session, self.wire)
        if text_only:
            modalities = ["text"]
        else:
            modalities = ["audio"] if ga else ["audio", "text"]
        rid = new_id("resp")
        metadata = params.get("metadata")
        if ga:
            out = session["audio"]["output"]
            base: JsonDict = {
                "conversation_id": self.conversation_id if conv else None,
                "output_modalities": modalities,
                "max_output_tokens": session.get("max_output_tokens", "inf"),
                "audio": {"output": {"format": out["format"], "voice": out["voice"]}},
            }
        else:
            base = {
                "conversation_id": self.conversation_id if conv else None,
                "modalities": modalities,
                "voice": session.get("voice"),
                "output_audio_format": session.get("output_audio_format"),
                "temperature": session.get("temperature"),
                "max_output_tokens": session.get("max_response_output_tokens", "inf"),
            }
        record: JsonDict = {
            "id": rid,
            "created_at": time.monotonic(),
            "status": "in_progress",
            "trigger": trigger,
            "status_details": None,
            "metadata": metadata,
            "conversation": conv,
            "output_modalities": modalities,
            "item_id": None,
            "text": "",
            "audio_bytes": 0,
            "done_at": None,
        }
        self.responses.append(record)
        r = _Response(rid, record, conv, text_only, metadata, trigger, params, base)
        r.started_at = asyncio.get_running_loop().time()
        self._live[rid] = r
        if conv:
            self._active = r
            self._idle_deadline = None
        self._emit(
            {
                "type": "response.created",
                "event_id": new_id("event"),
                "response": self._response_obj(r, "in_progress", None, [], None),
            }
        )
        if not ga:
            self._emit(self._rate_limits())  # §5: beta sent it right after response.created
        r.task = asyncio.get_running_loop().create_task(self._stream(r))

    def _response_obj(
        self,
        r: _Response,
        status: str,
        details: JsonDict | None,
        output: list[JsonDict],
        usage: JsonDict | None,
    ) -> JsonDict:
        return {
            "object": "realtime.response",
            "id": r.id,
            "status": status,
            "status_details": details,
            "output": output,
            **r.base,
            "usage": usage,
            "metadata": r.metadata,
        }

    def _rate_limits(self) -> JsonDict:
        return {
            "type": "rate_limits.updated",
            "event_id": new_id("event"),
            "rate_limits": [
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
            ],
        }

    def _event_names(self, text_only: bool) -> tuple[str, str, str]:
        """(delta name for text/transcript, done name, audio prefix) for this wire (§6)."""
        if self.wire == "ga":
            if text_only:
                return "response.output_text.delta", "response.output_text.done", ""
            return (
                "response.output_audio_transcript.delta",
                "response.output_audio_transcript.done",
                "response.output_audio",
            )
        if text_only:
            return "response.text.delta", "response.text.done", ""
        return "response.audio_transcript.delta", "response.audio_transcript.done", "response.audio"

    async def _stream(self, r: _Response) -> None:
        server = self.server
        loop = asyncio.get_running_loop()
        ctx = ReplyContext(self, self._last_commit, r.trigger, r.id, r.request)
        try:
            text, pcm = await server._make_reply(ctx)
        except Exception as e:  # a broken reply callable fails the response, not the socket
            error = {"type": "server_error", "code": None, "message": f"reply failed: {e!r}"}
            self._finish_response(r, "failed", {"type": "failed", "error": error})
            return
        if r.done:
            return
        if r.text_only:
            pcm = b""
        elif not pcm:
            pcm = default_reply_audio()
        # time to first audio counts from response.created; the model "thinks" before the
        # first output item, so a cancel in this window ends the response with no output
        if server.time_to_first_audio > 0:
            await _sleep_until(loop, r.started_at + server.time_to_first_audio)
        ga = self.wire == "ga"
        item_id = new_id("item")
        r.item_id = item_id
        r.record["item_id"] = item_id
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        ids = {"response_id": r.id, "item_id": item_id, "output_index": 0, "content_index": 0}
        self._emit(
            {
                "type": "response.output_item.added",
                "event_id": new_id("event"),
                "response_id": r.id,
                "output_index": 0,
                "item": item,
            }
        )
        if r.conv:
            r.item_prev = self.conversation[-1]["id"] if self.conversation else None
            self._insert_item(item, len(self.conversation))
            self._item_responses[item_id] = r
            if ga:
                self._emit(
                    {
                        "type": "conversation.item.added",
                        "event_id": new_id("event"),
                        "previous_item_id": r.item_prev,
                        "item": item,
                    }
                )
            else:
                self._emit(
                    {
                        "type": "conversation.item.created",
                        "event_id": new_id("event"),
                        "previous_item_id": r.item_prev,
                        "item": item,
                    }
                )
            self._item_audio_ms[item_id] = 0.0
        r.item_added = True
        part = {"type": "text", "text": ""} if r.text_only else {"type": "audio", "transcript": ""}
        self._emit(
            {
                "type": "response.content_part.added",
                "event_id": new_id("event"),
                **ids,
                "part": part,
            }
        )
        r.part_added = True
        # from here on the stored item holds its content part, so it can be truncated
        self._store_partial(r)
        delta_name = self._event_names(r.text_only)[0]
        words = _WORDS.findall(text)
        pace = server.reply_pace
        t0 = loop.time()
        if r.text_only:
            for i, word in enumerate(words):
                if pace > 0:
                    await _sleep_until(loop, t0 + i * 0.05 * pace)  # [fake] 50 ms per word
                self._emit({"type": delta_name, "event_id": new_id("event"), **ids, "delta": word})
                r.sent_text += word
                self._store_partial(r)
        else:
            audio_delta = self._event_names(False)[2] + ".delta"
            n_chunks = max(1, math.ceil(len(pcm) / _CHUNK_BYTES))
            sent_words = 0
            for i in range(n_chunks):
                if pace > 0:
                    await _sleep_until(loop, t0 + i * _CHUNK_BYTES / 48000 * pace)
                # transcript deltas interleaved with the audio, proportionally
                target = (i + 1) * len(words) // n_chunks
                while sent_words < target:
                    word = words[sent_words]
                    self._emit(
                        {"type": delta_name, "event_id": new_id("event"), **ids, "delta": word}
                    )
                    r.sent_text += word
                    sent_words += 1
                chunk = pcm[i * _CHUNK_BYTES : (i + 1) * _CHUNK_BYTES]
                self._emit(
                    {
                        "type": audio_delta,
                        "event_id": new_id("event"),
                        **ids,
                        "delta": base64.b64encode(chunk).decode("ascii"),
                    }
                )
                r.audio_bytes += len(chunk)
                if r.conv and not r.truncated:
                    self._item_audio_ms[item_id] = r.audio_bytes / 48
                    self._store_partial(r)
            if pace > 0:
                # the last chunk takes its share of generation time before response.done
                await _sleep_until(loop, t0 + len(pcm) / 48000 * pace)
        self._finish_response(r, "completed", None)

    def _content(self, r: _Response, transcript: str) -> list[JsonDict]:
        """The assistant item's content part (its transcript or text so far)."""
        ga = self.wire == "ga"
        if r.text_only:
            return [{"type": "output_text" if ga else "text", "text": transcript}]
        return [{"type": "output_audio" if ga else "audio", "transcript": transcript}]

    def _store_partial(self, r: _Response) -> None:
        """Replace the stored in-progress item with one holding the content streamed so far."""
        if not r.conv or r.item_id is None or r.truncated:
            return
        item = self._items.get(r.item_id)
        if item is not None:
            self._replace_item({**item, "content": self._content(r, r.sent_text)})

    def _cancel_response(self, r: _Response, reason: str) -> None:
        if r.done:
            return
        if r.task is not None and not r.task.done():
            r.task.cancel()
        self._finish_response(r, "cancelled", {"type": "cancelled", "reason": reason})

    def _finish_response(self, r: _Response, status: str, details: JsonDict | None) -> None:
        if r.done:
            return
        r.done = True
        self._live.pop(r.id, None)
        if self._active is r:
            self._active = None
        ga = self.wire == "ga"
        text = r.sent_text
        if r.part_added:
            ids = {"response_id": r.id, "item_id": r.item_id, "output_index": 0, "content_index": 0}
            done_name = self._event_names(r.text_only)[1]
            if r.text_only:
                self._emit({"type": done_name, "event_id": new_id("event"), **ids, "text": text})
                part: JsonDict = {"type": "text", "text": text}
            else:
                # §5: audio done, then transcript done, then content_part.done
                audio_done = self._event_names(False)[2] + ".done"
                self._emit({"type": audio_done, "event_id": new_id("event"), **ids})
                self._emit(
                    {"type": done_name, "event_id": new_id("event"), **ids, "transcript": text}
                )
                part = {"type": "audio", "transcript": text}
            self._emit(
                {
                    "type": "response.content_part.done",
                    "event_id": new_id("event"),
                    **ids,
                    "part": part,
                }
            )
        output: list[JsonDict] = []
        if r.item_added and r.item_id is not None:
            self._item_responses.pop(r.item_id, None)
            # a truncation mid-stream dropped the transcript: the finished item keeps it dropped
            content = self._content(r, "" if r.truncated else text)
            item = {
                "id": r.item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "completed" if status == "completed" else "incomplete",
                "role": "assistant",
                "content": content,
            }
            output.append(item)
            if r.conv:
                self._replace_item(item)
                if ga:
                    self._emit(
                        {
                            "type": "conversation.item.done",
                            "event_id": new_id("event"),
                            "previous_item_id": r.item_prev,
                            "item": item,
                        }
                    )
            self._emit(
                {
                    "type": "response.output_item.done",
                    "event_id": new_id("event"),
                    "response_id": r.id,
                    "output_index": 0,
                    "item": item,
                }
            )
        usage = self._usage(r)
        self._emit(
            {
                "type": "response.done",
                "event_id": new_id("event"),
                "response": self._response_obj(r, status, details, output, usage),
            }
        )
        if ga:
            self._emit(self._rate_limits())  # §5: GA sends it after response.done
        rec = r.record
        rec["status"] = status
        rec["status_details"] = details
        rec["text"] = text
        rec["audio_bytes"] = r.audio_bytes
        rec["done_at"] = time.monotonic()
        # §3 idle_timeout_ms: counts from response.done plus the playback time
        td = self._td
        if r.conv and td is not None and td.get("idle_timeout_ms"):
            self._idle_deadline = (
                self._vad_pos + r.audio_bytes // 2 + td["idle_timeout_ms"] * SAMPLE_RATE // 1000
            )

    def _usage(self, r: _Response) -> JsonDict:
        in_audio = int(len(self._last_commit) / 48 / 1000 * 10)
        in_text = len(str(self.session.get("instructions", ""))) // 4
        out_audio = int(r.audio_bytes / 48 / 1000 * 20)
        out_text = len(r.sent_text.split())
        return {
            "total_tokens": in_audio + in_text + out_audio + out_text,
            "input_tokens": in_audio + in_text,
            "output_tokens": out_audio + out_text,
            "input_token_details": {
                "text_tokens": in_text,
                "audio_tokens": in_audio,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    # ------------------------------------------------------------ fake server VAD (§5)

    def _vad_configure(self) -> None:
        td = session_turn_detection(self.session, self.wire)
        if td is not None and input_bytes_per_ms(self.session, self.wire) != 48:
            td = None  # [fake] the energy VAD only reads PCM16
        if td == self._td:
            return
        was_on = self._td is not None
        self._td = td
        self._vad_reset_turn()
        self._idle_deadline = None
        if td is not None and not was_on:
            # timestamps stay relative to all audio appended on this connection
            self._vad_pos = self.appended_bytes // 2
            self._vad_rem = b""

    def _vad_reset_turn(self) -> None:
        self._in_speech = False
        self._voiced_run = 0
        self._silence_run = 0
        self._speech_item = None

    def _buffer_start(self) -> int:
        """Absolute sample index of ``input_audio[0]``."""
        return (self.appended_bytes - len(self.input_audio)) // 2

    def _vad_feed(self, pcm: bytes) -> None:
        data = self._vad_rem + pcm if self._vad_rem else pcm
        n = len(data) // _FRAME_BYTES
        if n == 0:
            self._vad_rem = data
            return
        usable = n * _FRAME_BYTES
        self._vad_rem = data[usable:]
        frames = np.frombuffer(data, dtype="<i2", count=usable // 2).astype(np.float32)
        frames = frames.reshape(n, _FRAME_SAMPLES)
        mean_square = np.einsum("ij,ij->i", frames, frames) / (_FRAME_SAMPLES * 32768.0**2)
        td = self._td
        assert td is not None
        threshold_db = self.server.vad_energy_dbfs
        if td["type"] == "server_vad":
            # [fake] threshold 0.5 is vad_energy_dbfs; each 0.1 above/below moves it by 4 dB
            threshold_db += (float(td.get("threshold", 0.5)) - 0.5) * 40.0
        threshold_ms = 10.0 ** (threshold_db / 10.0)
        for voiced in (mean_square > threshold_ms).tolist():
            self._vad_step(voiced)
            if self._td is None or self.closed:
                return
        if not self._in_speech and len(self.input_audio) > _IDLE_BUFFER_CAP + _IDLE_BUFFER_SLACK:
            del self.input_audio[: len(self.input_audio) - _IDLE_BUFFER_CAP]

    def _vad_step(self, voiced: bool) -> None:
        start = self._vad_pos
        self._vad_pos = end = start + _FRAME_SAMPLES
        td = self._td
        assert td is not None
        if not self._in_speech:
            if voiced:
                if self._voiced_run == 0:
                    self._cand_start = start
                self._voiced_run += 1
                if self._voiced_run >= _MIN_SPEECH_FRAMES:
                    self._speech_started(self._cand_start)
            else:
                self._voiced_run = 0
                if self._idle_deadline is not None and end >= self._idle_deadline:
                    self._idle_timeout(end)
            return
        if voiced:
            self._silence_run = 0
            return
        self._silence_run += _FRAME_SAMPLES
        if td["type"] == "server_vad":
            silence_ms = td.get("silence_duration_ms", 200)
        else:
            silence_ms = _SEMANTIC_SILENCE_MS.get(td.get("eagerness", "auto"), 500)
        if self._silence_run * 1000 >= silence_ms * SAMPLE_RATE:
            self._speech_stopped(end)

    def _speech_started(self, speech_start: int) -> None:
        td = self._td
        assert td is not None
        prefix_ms = td.get("prefix_padding_ms", 300)
        # audio_start_ms includes prefix_padding_ms (it is where the committed audio starts)
        commit_start = max(self._buffer_start(), speech_start - prefix_ms * SAMPLE_RATE // 1000)
        self._in_speech = True
        self._silence_run = 0
        self._speech_commit_start = commit_start
        self._speech_item = item_id = new_id("item")
        self._idle_deadline = None
        self._emit(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": new_id("event"),
                "audio_start_ms": commit_start * 1000 // SAMPLE_RATE,
                "item_id": item_id,
            }
        )
        # §5.1: interrupt_response cancels the running response
        if td.get("interrupt_response", True) and self._active is not None:
            self._cancel_response(self._active, "turn_detected")

    def _speech_stopped(self, stop: int) -> None:
        td = self._td
        assert td is not None
        item_id = self._speech_item or new_id("item")
        self._vad_reset_turn()
        # audio_end_ms includes the silence duration (it is where the committed audio ends)
        self._emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "event_id": new_id("event"),
                "audio_end_ms": stop * 1000 // SAMPLE_RATE,
                "item_id": item_id,
            }
        )
        self._commit(self._take_buffer(self._speech_commit_start, stop), item_id)
        if td.get("create_response", True):
            self._auto_response("server_vad")

    def _idle_timeout(self, end: int) -> None:
        self._idle_deadline = None
        start = self._buffer_start()
        item_id = new_id("item")
        self._emit(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "event_id": new_id("event"),
                "audio_start_ms": start * 1000 // SAMPLE_RATE,
                "audio_end_ms": end * 1000 // SAMPLE_RATE,
                "item_id": item_id,
            }
        )
        self._commit(self._take_buffer(start, end), item_id)
        self._auto_response("idle_timeout")

    def _take_buffer(self, start: int, stop: int) -> bytes:
        """Audio [start, stop) in absolute samples; drops everything before ``stop``."""
        base = self._buffer_start()
        lo = max(0, (start - base) * 2)
        hi = max(lo, (stop - base) * 2)
        audio = bytes(self.input_audio[lo:hi])
        del self.input_audio[:hi]
        return audio

    def _auto_response(self, trigger: str) -> None:
        if self._active is not None:
            # §5: with interrupt_response false the automatic response may fail [I]
            e = self._already_active_error()
            self._emit(error_event(e.code, e.message, e.param))
            return
        self._start_response(trigger, {})


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


_Dispatch = dict[str, Callable[[FakeConnection, JsonDict], None]]

_COMMON_DISPATCH: _Dispatch = {
    "session.update": FakeConnection._h_session_update,
    "input_audio_buffer.append": FakeConnection._h_append,
    "input_audio_buffer.commit": FakeConnection._h_commit,
    "input_audio_buffer.clear": FakeConnection._h_clear,
    "conversation.item.create": FakeConnection._h_item_create,
    "conversation.item.delete": FakeConnection._h_item_delete,
    "conversation.item.retrieve": FakeConnection._h_item_retrieve,
    "conversation.item.truncate": FakeConnection._h_item_truncate,
    "response.create": FakeConnection._h_response_create,
    "response.cancel": FakeConnection._h_response_cancel,
}
_GA_DISPATCH: _Dispatch = {
    **_COMMON_DISPATCH,
    "session.input_audio_buffer.append": FakeConnection._h_append,
    "session.close": FakeConnection._h_session_close,
}
_BETA_DISPATCH: _Dispatch = {
    **_COMMON_DISPATCH,
    "transcription_session.update": FakeConnection._h_unsupported,
    "output_audio_buffer.clear": FakeConnection._h_unsupported,
}


# ---------------------------------------------------------------- server


class FakeRealtimeServer:
    """A local OpenAI Realtime WebSocket server for tests, demos and benchmarks.

    Fault knobs (``ignore_turn_detection_null``, ``echo_delay``, ``reject_fields``) and the
    reply settings (``reply_text``, ``reply_audio``, ``reply``, ``time_to_first_audio``,
    ``reply_pace``,
    ``vad_energy_dbfs``, ``input_transcript``) can be changed at runtime; they are read when
    used.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = "test-key",
        accept_beta_header: bool = False,
        ignore_turn_detection_null: bool = False,
        echo_delay: float = 0.0,
        reject_fields: dict[str, tuple[str, str]] | None = None,
        reply_text: str = "Hello from the fake realtime server.",
        reply_audio: bytes | ReplyFn | None = None,
        reply: ReplyFn | None = None,
        time_to_first_audio: float = DEFAULT_TIME_TO_FIRST_AUDIO,
        reply_pace: float = DEFAULT_REPLY_PACE,
        vad_energy_dbfs: float = -45.0,
        input_transcript: str | Callable[[bytes], str] | None = "hello",
        known_models: Collection[str] | None = None,
        record_events: bool = True,
        ping_interval: float | None = None,
    ) -> None:
        """
        Args:
            api_key: the accepted key (``None`` accepts any key, but one is still required).
            accept_beta_header: accept ``OpenAI-Beta: realtime=v1`` on the GA path and speak
                the beta shapes there (the real server rejects it, §0).
            ignore_turn_detection_null: fault, a ``turn_detection: null`` is ignored.
            echo_delay: fault, seconds to delay each ``session.updated`` (FIFO kept).
            reject_fields: fault, param path -> (code, message); an update containing the
                path (or one under it) is rejected whole.
            reply_text / reply_audio: the content of every response (PCM16 24 kHz mono;
                ``None`` synthesizes a 0.5 s tone). ``reply_audio`` may also be a callable.
            reply: ``ReplyContext -> (text, pcm | None)``, sync or async; overrides both.
            time_to_first_audio: seconds from ``response.created`` to the first output item
                (0 = none).
            reply_pace: wall seconds per second of reply audio: 0 sends the deltas at once,
                1.0 in real time, the default 1/3 at three times real time (the real server
                is faster than real time, so a client holds audio it has not played yet).
                ``time_to_first_audio=0, reply_pace=0`` (``INSTANT``) is the fast test mode.
            vad_energy_dbfs: the fake VAD's speech level for threshold 0.5.
            input_transcript: the input transcription sent when the session enables it
                (a callable gets the committed audio); ``None`` sends none.
            known_models: if given, other models get ``invalid_model`` (close 4000).
            record_events: keep every event in memory (turn off for long benchmarks; the
                waiters still see new events).
            ping_interval: send WebSocket pings this often (the real server: ~20 s).
        """
        self.host = host
        self.port = port
        self.api_key = api_key
        self.accept_beta_header = accept_beta_header
        self.ignore_turn_detection_null = ignore_turn_detection_null
        self.echo_delay = echo_delay
        self.reject_fields: dict[str, tuple[str, str]] = dict(reject_fields or {})
        self.reply_text = reply_text
        self.reply_audio = reply_audio
        self.reply = reply
        self.time_to_first_audio = time_to_first_audio
        self.reply_pace = reply_pace
        self.vad_energy_dbfs = vad_energy_dbfs
        self.input_transcript = input_transcript
        self.known_models = set(known_models) if known_models is not None else None
        self.record_events = record_events
        self.ping_interval = ping_interval

        self.connections: list[FakeConnection] = []
        self.received_text_frames: list[str] = []
        self._client_log = _EventLog(record_events)
        self._conn_waiters: list[tuple[int, asyncio.Future[FakeConnection]]] = []
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(256)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def aclose(self) -> None:
        runner = self._runner
        if runner is None:
            return
        self._runner = None
        open_conns = [c for c in self.connections if not c.closed]
        if open_conns:
            await asyncio.wait(
                [asyncio.ensure_future(c.close(1001, "server shutting down")) for c in open_conns],
                timeout=1.0,
            )
            for c in open_conns:
                c.abort()
        await runner.cleanup()
        for _, fut in self._conn_waiters:
            if not fut.done():
                fut.cancel()
        self._conn_waiters.clear()

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ urls

    @property
    def base_url(self) -> str:
        """OpenAI-style HTTP base URL (clients turn it into ws://.../v1/realtime?model=...)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def azure_base_url(self) -> str:
        """Azure-style base URL: /openai/realtime?api-version=..&deployment=.. (legacy beta)
        or /openai/v1/realtime?model=.. (Azure GA)."""
        return f"http://{self.host}:{self.port}/openai"

    def ws_url(self, model: str = DEFAULT_MODEL) -> str:
        return f"ws://{self.host}:{self.port}/v1/realtime?model={model}"

    def azure_ws_url(self, deployment: str = DEFAULT_MODEL, api_version: str | None = None) -> str:
        """Legacy (beta) URL with ``api_version``, else the Azure GA URL."""
        root = f"ws://{self.host}:{self.port}/openai"
        if api_version:
            return f"{root}/realtime?api-version={api_version}&deployment={deployment}"
        return f"{root}/v1/realtime?model={deployment}"

    # ------------------------------------------------------------ inspection

    @property
    def client_events(self) -> list[JsonDict]:
        """Every parsed client event, all connections, in arrival order."""
        return self._client_log.items

    @property
    def open_connections(self) -> list[FakeConnection]:
        return [c for c in self.connections if not c.closed]

    async def wait_for_client_event(
        self,
        type: str | None,
        *,
        count: int = 1,
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float | None = 5.0,
    ) -> JsonDict:
        """The ``count``-th client event of ``type`` over all connections (past ones count)."""
        return await self._client_log.wait(type, count, predicate, timeout, "client event")

    async def wait_for_connection(self, n: int = 1, timeout: float | None = 5.0) -> FakeConnection:
        """The ``n``-th accepted connection (1-based), once it exists."""
        if len(self.connections) >= n:
            return self.connections[n - 1]
        fut: asyncio.Future[FakeConnection] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._conn_waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"timed out after {timeout}s waiting for connection #{n} "
                f"({len(self.connections)} so far)"
            ) from None
        finally:
            if entry in self._conn_waiters:
                self._conn_waiters.remove(entry)

    def drop_connections(self) -> int:
        """Fault: abruptly drop every open socket (no close frame). Returns how many."""
        dropped = 0
        for conn in self.connections:
            if not conn.closed:
                conn.abort()
                dropped += 1
        return dropped

    # ------------------------------------------------------------ replies

    async def _make_reply(self, ctx: ReplyContext) -> tuple[str, bytes | None]:
        fn = self.reply
        if fn is None and callable(self.reply_audio):
            fn = self.reply_audio
        if fn is not None:
            result = fn(ctx)
            if inspect.isawaitable(result):
                result = await result
            text, pcm = result
            return text, pcm
        audio = self.reply_audio
        return self.reply_text, audio if isinstance(audio, (bytes, bytearray)) else None

    # ------------------------------------------------------------ handshake (§0, §1)

    def _handshake_check(
        self, request: web.Request
    ) -> tuple[Wire, str | None, tuple[str | None, str, int] | None]:
        path = request.path.rstrip("/")
        azure = path.startswith("/openai")
        wire: Wire = "beta" if path == "/openai/realtime" else "ga"
        headers = request.headers
        query = request.query
        if wire == "ga":
            model = query.get("model")
        else:
            model = query.get("deployment") or query.get("model")

        key: str | None = None
        auth = headers.get("Authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
        if key is None and azure:
            key = headers.get("api-key")
        if key is None:
            return wire, model, (None, "Missing bearer or basic authentication in header", 3000)
        if self.api_key is not None and key != self.api_key:
            masked = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 8 else "***"
            return (
                wire,
                model,
                (
                    "invalid_api_key",
                    f"Incorrect API key provided: {masked}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    3000,
                ),
            )
        if wire == "ga" and "realtime=v1" in headers.get("OpenAI-Beta", ""):
            if not self.accept_beta_header:
                return wire, model, ("beta_api_shape_disabled", BETA_HEADER_MESSAGE, 4000)
            wire = "beta"  # legacy mode: the old client expects the flat shapes
        if not model:
            return wire, model, ("missing_model", "You must provide a model parameter.", 4000)
        if self.known_models is not None and model not in self.known_models:
            return (
                wire,
                model,
                (
                    "invalid_model",
                    f"The model '{model}' does not exist or you do not have access to it.",
                    4000,
                ),
            )
        return wire, model, None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path not in ("/v1/realtime", "/realtime", "/openai/v1/realtime", "/openai/realtime"):
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(
            timeout=2.0,
            autoping=True,
            heartbeat=self.ping_interval,
            compress=False,
            max_msg_size=32 * 1024 * 1024,
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="expected a WebSocket upgrade")
        wire, model, failure = self._handshake_check(request)
        await ws.prepare(request)
        conn = FakeConnection(self, request, ws, wire, model)
        self.connections.append(conn)
        n = len(self.connections)
        for want, fut in list(self._conn_waiters):
            if want <= n and not fut.done():
                fut.set_result(self.connections[want - 1])
        if failure is not None:
            await conn._reject(*failure)
            return ws
        await conn._run()
        return ws
