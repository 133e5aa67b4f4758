"""``FakeConnection``: the handlers of every client event, tied to the wire.

The handlers are thin: validation and state live in ``_protocol`` (the session), ``_input``
(the buffer and VAD), ``_items`` (the conversation) and ``_responses`` (one response each).
Which type reaches which handler is the table in ``_client_events``. ``§n`` in comments are
sections of docs/realtime-wire.md.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from ._client_events import CLIENT_EVENTS
from ._connection import ConnectionBase
from ._input import (
    SAMPLE_RATE,
    InputAudio,
    SpeechStarted,
    TimeoutTriggered,
    VadSignal,
    decode_append,
    transcription_events,
)
from ._items import Conversation, item_added_events, user_audio_item
from ._messages import (
    MISSING,
    JsonDict,
    ProtocolError,
    Wire,
    error_event,
    invalid_type,
    new_id,
    server_event,
)
from ._protocol import apply_session_update, update_paths
from ._responses import ResponseStream
from ._session import input_bytes_per_ms, session_transcription

if TYPE_CHECKING:
    from .fake_server import FakeRealtimeServer

__all__ = ["FakeConnection"]


class FakeConnection(ConnectionBase):
    """One accepted WebSocket (also kept after it closes, for inspection)."""

    def __init__(
        self,
        server: FakeRealtimeServer,
        request: web.Request,
        ws: web.WebSocketResponse,
        wire: Wire,
        model: str | None,
    ) -> None:
        super().__init__(server, request, ws, wire, model)
        self.commits: list[bytes] = []
        self.responses: list[JsonDict] = []
        self.truncations: list[JsonDict] = []
        self._conversation = Conversation()
        self._input = InputAudio()
        self._live: dict[str, ResponseStream] = {}
        self._active: ResponseStream | None = None  # the default conversation's response
        self._last_commit = b""
        self._configure_vad()

    @property
    def conversation_id(self) -> str:
        return self._conversation.id

    @property
    def conversation(self) -> list[JsonDict]:
        """The conversation items in order (an item dict is replaced, never mutated)."""
        return self._conversation.items

    @property
    def input_audio(self) -> bytearray:
        """The input audio buffer (uncommitted audio)."""
        return self._input.buffer

    @property
    def appended_bytes(self) -> int:
        return self._input.appended_bytes

    @property
    def active_response(self) -> JsonDict | None:
        """The record of the default conversation's running response, if any."""
        return self._active.record if self._active is not None else None

    def _on_closed(self) -> None:
        for r in list(self._live.values()):
            r.abandon()
        self._live.clear()
        self._active = None

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
        self.session = apply_session_update(
            self.session,
            update,
            self.wire,
            ignore_turn_detection_null=server.ignore_turn_detection_null,
        )
        self._configure_vad()
        # §2: the full effective session, no client event_id, only on success
        self._emit(
            server_event("session.updated", session=self.session),
            delay=server.echo_delay,
        )

    def _h_session_close(self, event: JsonDict) -> None:
        self._out.queue_close(1000, "")

    def _h_unsupported(self, event: JsonDict) -> None:
        raise ProtocolError(
            "unsupported_event",
            f"The fake realtime server does not implement '{event.get('type')}'.",
            "type",
        )

    # ------------------------------------------------------------ input audio (§4, §5)

    def _configure_vad(self) -> None:
        td = self.turn_detection
        if td is not None and input_bytes_per_ms(self.session, self.wire) != 48:
            td = None  # [fake] the energy VAD only reads PCM16
        self._input.configure(td)

    def _h_append(self, event: JsonDict) -> None:
        pcm = decode_append(event)
        for signal in self._input.append(pcm, self.server.vad_energy_dbfs):
            self._on_vad(signal)

    def _h_commit(self, event: JsonDict) -> None:
        audio = self._input.take_all(input_bytes_per_ms(self.session, self.wire))
        self._commit(audio, new_id("item"))  # §4: a commit does not start a response

    def _h_clear(self, event: JsonDict) -> None:
        self._input.clear()
        self._emit(server_event("input_audio_buffer.cleared"))

    def _on_vad(self, signal: VadSignal) -> None:
        td = self.turn_detection or {}
        self._emit(signal.event())
        if isinstance(signal, SpeechStarted):
            # §5: interrupt_response cancels the running response
            if td.get("interrupt_response", True) and self._active is not None:
                self._active.cancel("turn_detected")
            return
        self._commit(signal.audio, signal.item_id)
        if isinstance(signal, TimeoutTriggered) or td.get("create_response", True):
            self._auto_response(signal.trigger)

    def _commit(self, audio: bytes, item_id: str) -> None:
        self.commits.append(audio)
        self._last_commit = audio
        prev = self._conversation.last_id
        self._emit(
            server_event("input_audio_buffer.committed", previous_item_id=prev, item_id=item_id)
        )
        item = user_audio_item(item_id)
        for ev in item_added_events(self.wire, item, self._conversation.append(item)):
            self._emit(ev)
        transcript = self.server.input_transcript
        if transcript is not None and session_transcription(self.session, self.wire):
            text = transcript(audio) if callable(transcript) else transcript
            for ev in transcription_events(item_id, text, audio):
                self._emit(ev)

    # ------------------------------------------------------------ conversation items (§4)

    def _h_item_create(self, event: JsonDict) -> None:
        item, prev = self._conversation.create(event)
        for ev in item_added_events(self.wire, item, prev):
            self._emit(ev)

    def _h_item_delete(self, event: JsonDict) -> None:
        item_id = self._conversation.delete(event)
        self._emit(server_event("conversation.item.deleted", item_id=item_id))

    def _h_item_retrieve(self, event: JsonDict) -> None:
        item = self._conversation.retrieve(event)
        self._emit(server_event("conversation.item.retrieved", item=item))

    def _h_item_truncate(self, event: JsonDict) -> None:
        item_id, content_index, audio_end_ms = self._conversation.truncate(event)
        for r in self._live.values():
            if r.item_id == item_id:
                r.truncated = True  # later deltas no longer extend the stored item
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
            server_event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=content_index,
                audio_end_ms=audio_end_ms,
            )
        )

    # ------------------------------------------------------------ responses (§4, §5)

    def _h_response_create(self, event: JsonDict) -> None:
        params = event.get("response", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise invalid_type("response", "object", params)
        in_conversation = params.get("conversation", "auto") != "none"
        if in_conversation and self._active is not None:
            raise self._already_active_error()
        self._start_response("client", params, in_conversation)

    def _h_response_cancel(self, event: JsonDict) -> None:
        rid = event.get("response_id")
        target = self._active if rid is None else self._live.get(rid)
        if target is None:
            raise ProtocolError(
                "response_cancel_not_active", "Cancellation failed: no active response found"
            )
        target.cancel("client_cancelled")

    def _already_active_error(self) -> ProtocolError:
        rid = self._active.id if self._active is not None else "?"
        return ProtocolError(
            "conversation_already_has_active_response",
            f"Conversation already has an active response in progress: {rid}. "
            "Wait until the response is finished before creating a new one.",
            None,
        )

    def _auto_response(self, trigger: str) -> None:
        if self._active is not None:
            # §5: with interrupt_response false the automatic response may fail (inferred)
            e = self._already_active_error()
            self._emit(error_event(e.code, e.message, e.param))
            return
        self._start_response(trigger, {}, True)

    def _start_response(self, trigger: str, params: JsonDict, in_conversation: bool) -> None:
        r = ResponseStream(
            self,
            self._emit,
            self._conversation,
            self._response_done,
            trigger=trigger,
            request=params,
            in_conversation=in_conversation,
            last_commit=self._last_commit,
        )
        self.responses.append(r.record)
        self._live[r.id] = r
        if in_conversation:
            self._active = r
            self._input.disarm_idle_timeout()
        r.start()

    def _response_done(self, r: ResponseStream) -> None:
        self._live.pop(r.id, None)
        if self._active is r:
            self._active = None
        # §3 idle_timeout_ms: counts from response.done plus the playback time
        td = self.turn_detection
        if r.in_conversation and self._input.vad_on and td and td.get("idle_timeout_ms"):
            self._input.arm_idle_timeout(
                r.audio_bytes // 2 + td["idle_timeout_ms"] * SAMPLE_RATE // 1000
            )


FakeConnection.handlers = {
    wire: {
        row.type: getattr(FakeConnection, row.handler)
        for row in CLIENT_EVENTS
        if (row.ga if wire == "ga" else row.beta)
    }
    for wire in ("ga", "beta")
}
