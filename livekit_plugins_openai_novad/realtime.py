"""``RealtimeSession``: the upstream plugin's session with turn detection you can trust.

What changes against upstream:

* every ``session.update`` is built by :mod:`.wire` (``turn_detection: null`` is explicit on
  both wires, initial and reconnect updates carry it, later updates are sparse);
* each ``session.updated`` / ``error`` is matched to the update it answers (FIFO by send order,
  by ``event_id`` for errors) and the echoed turn detection is verified (:mod:`._ledger`);
* turn detection can change mid-call, with ``set_turn_detection`` awaiting the confirmation;
* while the server is not detecting turns, Silero detects them here and gates the audio
  (:mod:`._client_turns`).
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import aiohttp
from livekit import rtc
from livekit.agents import APIError, llm, utils
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from . import wire
from ._client_turns import TURN_RESPONSE_PREFIX, ClientTurns, TurnEffect
from ._framework import Floor
from ._ledger import SentUpdate, UpdateLedger
from ._options import (
    answers_turns,
    full_session_fields,
    option_changes,
    to_upstream_td,
    wire_of,
)
from ._socket import SanitizingWebSocket, is_gate_event
from ._upstream import (
    UpstreamRealtimeSession,
)
from .client_vad import ClientTurnDetector
from .log import logger
from .turn_detection import (
    ClientVad,
    TurnDetection,
    TurnDetectionInput,
    TurnDetectionRejected,
    coerce_turn_detection,
)

if TYPE_CHECKING:
    from .model import RealtimeModel

_MIN_COMMIT_S = 0.1  # the server rejects commits under 100 ms (input_audio_buffer_commit_empty)
_BYTES_PER_S = wire.SAMPLE_RATE * 2
# server events that open / close a turn of the server's VAD
_SERVER_TURN_EVENTS = {
    "input_audio_buffer.speech_started": True,
    "input_audio_buffer.speech_stopped": False,
    "input_audio_buffer.cleared": False,
}
# the response.create of a client-VAD turn, and upstream's generate_reply
_RESPONSE_CREATE_PREFIXES = (TURN_RESPONSE_PREFIX, "response_create_")

__all__ = ["RealtimeSession", "TurnDetectionConfirmed", "TurnTakingMode"]

TurnTakingMode = Literal["server", "client_vad", "push_to_talk", "framework"]
"""Who decides when the user's turn ends, for one session:
``server`` (server_vad / semantic_vad), ``client_vad`` (Silero here, server VAD off),
``push_to_talk`` (nobody: the app commits), ``framework`` (the AgentSession's own VAD or
turn detector, because the user configured one)."""


@dataclass
class TurnDetectionConfirmed:
    """Payload of the ``turn_detection_confirmed`` session event."""

    requested: TurnDetection | None
    confirmed: TurnDetection | None


class RealtimeSession(UpstreamRealtimeSession):
    """A Realtime session whose turn detection is explicit on the wire (in the first update
    and after every reconnect) and verified against the server's echo.

    Two I/O-free state machines hold the state: the update ledger (:mod:`._ledger`: what was
    asked, confirmed, in flight) and the client turns (:mod:`._client_turns`: the turn being
    gated, the reply it waits for). The overrides here feed them and carry out what they say.

    Extra session events: ``turn_detection_confirmed`` (:class:`TurnDetectionConfirmed`) and
    ``turn_detection_mismatch`` (:class:`TurnDetectionMismatch`).
    """

    def __init__(self, realtime_model: RealtimeModel, *, turn_detection_disabled: bool = False):
        # upstream's __init__ builds the first session.update through our override, so the
        # state it reads is set first
        self._framework_turns = turn_detection_disabled
        self._ledger = UpdateLedger(
            realtime_model.wire,
            None if turn_detection_disabled else realtime_model.turn_detection,
        )
        self._client_vad_opts = realtime_model.client_vad
        self._turns = ClientTurns()
        self._floor = Floor()
        self._server_turn_open = False  # the server's VAD heard speech it has not ended yet
        # when the client-VAD turn being sent started / stopped (wall clock), and per commit
        # not yet confirmed by the server, in order; then per conversation item
        self._turn_started_at = self._turn_stopped_at = 0.0
        self._commit_times: collections.deque[tuple[float, float]] = collections.deque()
        self._stopped_at: dict[str, float] = {}
        self._first_update_built = False  # the next full update is for a reconnect once True

        super().__init__(realtime_model, turn_detection_disabled=turn_detection_disabled)
        self._realtime_model: RealtimeModel = realtime_model
        self.on("openai_client_event_queued", self._on_client_event_sent)
        self.on("openai_server_event_received", self._on_server_event)
        self.on("session_reconnected", self._on_reconnected)
        self.on("input_audio_transcription_completed", self._on_user_transcript)
        self._sync_turn_taking(cleared=True)  # nothing pushed yet

    # -- public API -------------------------------------------------------------------------

    @property
    def wire(self) -> wire.Wire:
        return wire_of(self._opts)

    @property
    def requested_turn_detection(self) -> TurnDetection | None:
        """What this session last asked the server for (``None`` = off)."""
        return self._ledger.requested

    @property
    def confirmed_turn_detection(self) -> TurnDetection | None:
        """The server's last confirmed turn detection, with the server's values (``None`` = off).

        From ``session.created`` until the first ``session.updated`` it is the server's default.
        """
        return self._ledger.confirmed

    @property
    def turn_detection_confirmed(self) -> bool:
        """True once the server's echo matches the request (no update still in flight)."""
        return self._ledger.is_confirmed

    @property
    def turn_taking_mode(self) -> TurnTakingMode:
        if self._framework_turns:
            return "framework"
        if self._effective_turn_detection() is not None:
            return "server"
        return "client_vad" if self._client_vad_opts is not None else "push_to_talk"

    async def set_turn_detection(
        self, value: TurnDetectionInput | None, *, timeout: float = 5.0
    ) -> TurnDetection | None:
        """Change turn detection and wait until the server confirms it.

        Returns the confirmed value (server values filled in, ``None`` = off). Raises
        ``TurnDetectionMismatch`` when the echo differs, ``TurnDetectionRejected`` when the
        server answers with an error, ``asyncio.TimeoutError`` after ``timeout`` seconds.
        """
        sent = self._apply_options(turn_detection=coerce_turn_detection(value))
        if sent is None:
            sent = self._ledger.latest_td
        if sent is None:
            if self._ledger.mismatch:
                raise self._ledger.mismatch_error()
            return self._ledger.confirmed
        fut: asyncio.Future[TurnDetection | None] = asyncio.get_running_loop().create_future()
        sent.waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            if fut in sent.waiters:  # answered, or given up on after the timeout
                sent.waiters.remove(fut)

    def update_options(
        self,
        *,
        tool_choice: NotGivenOr[llm.ToolChoice | None] = NOT_GIVEN,
        voice: NotGivenOr[str] = NOT_GIVEN,
        turn_detection: NotGivenOr[TurnDetectionInput | None] = NOT_GIVEN,
        max_response_output_tokens: NotGivenOr[int | Literal["inf"] | None] = NOT_GIVEN,
        input_audio_transcription: NotGivenOr[Any] = NOT_GIVEN,
        input_audio_noise_reduction: NotGivenOr[Any] = NOT_GIVEN,
        speed: NotGivenOr[float] = NOT_GIVEN,
        tracing: NotGivenOr[Any] = NOT_GIVEN,
        truncation: NotGivenOr[Any] = NOT_GIVEN,
        reasoning: NotGivenOr[Any] = NOT_GIVEN,
        temperature: NotGivenOr[float] = NOT_GIVEN,  # deprecated upstream, unused
    ) -> None:
        """Change session options; only what changed is sent (nothing if nothing changed)."""
        self._apply_options(
            tool_choice=tool_choice,
            voice=voice,
            turn_detection=coerce_turn_detection(turn_detection)
            if is_given(turn_detection)
            else NOT_GIVEN,
            max_response_output_tokens=max_response_output_tokens,
            input_audio_transcription=input_audio_transcription,
            input_audio_noise_reduction=input_audio_noise_reduction,
            speed=speed,
            tracing=tracing,
            truncation=truncation,
            reasoning=reasoning,
        )

    # -- building and sending session.update -----------------------------------------------

    def _apply_options(
        self,
        *,
        turn_detection: NotGivenOr[TurnDetection | None] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice | None] = NOT_GIVEN,
        voice: NotGivenOr[str] = NOT_GIVEN,
        max_response_output_tokens: NotGivenOr[int | Literal["inf"] | None] = NOT_GIVEN,
        input_audio_transcription: NotGivenOr[Any] = NOT_GIVEN,
        input_audio_noise_reduction: NotGivenOr[Any] = NOT_GIVEN,
        speed: NotGivenOr[float] = NOT_GIVEN,
        tracing: NotGivenOr[Any] = NOT_GIVEN,
        truncation: NotGivenOr[Any] = NOT_GIVEN,
        reasoning: NotGivenOr[Any] = NOT_GIVEN,
    ) -> SentUpdate | None:
        opts = self._opts
        # _opts attribute -> value (applied once all is valid), and what goes on the wire
        new_opts, fields = option_changes(
            opts,
            tool_choice=tool_choice,
            voice=voice,
            max_response_output_tokens=max_response_output_tokens,
            input_audio_transcription=input_audio_transcription,
            input_audio_noise_reduction=input_audio_noise_reduction,
            speed=speed,
            tracing=tracing,
            truncation=truncation,
            reasoning=reasoning,
        )

        td_changed = False
        if is_given(turn_detection):
            if self._framework_turns and turn_detection is not None:
                raise ValueError(
                    "this session's turns are driven by the AgentSession (a VAD or turn detector "
                    "is configured there); server turn detection cannot be turned on for it"
                )
            td_changed = self._ledger.wants_change(turn_detection)

        if not fields and not td_changed:
            for attr, value in new_opts.items():
                setattr(opts, attr, value)
            return None

        # build first: a ValueError leaves the session untouched and the socket silent
        td_arg: Any = turn_detection if td_changed else wire.OMITTED
        payload = wire.session_update_payload(
            wire=self.wire,
            turn_detection=td_arg,
            **fields,
        )
        rollback = [(opts, attr, getattr(opts, attr), value) for attr, value in new_opts.items()]
        for attr, value in new_opts.items():
            setattr(opts, attr, value)
        if td_changed:
            assert is_given(turn_detection)
            self._hand_over(to_server=turn_detection is not None)
            self._ledger.request(turn_detection)
        sent = self._ledger.register(payload["event_id"], carries_td=td_changed)
        sent.rollback = rollback
        self.send_event(payload)
        self._sync_turn_taking(cleared=True)
        return sent

    def _create_session_update_event(self) -> dict[str, Any]:
        """The full update: upstream sends it first on every socket (initial and reconnect)."""
        reconnect, self._first_update_built = self._first_update_built, True
        carried: list[asyncio.Future[TurnDetection | None]] = []
        if reconnect:
            # the old socket's unanswered updates will never be answered; this one restates
            # everything, so whoever waited for them now waits for it
            carried = self._ledger.reset()
            self._drop_unanswered_item()  # step 1 of the reconnect (see _on_reconnected)

        payload = wire.session_update_payload(
            wire=self.wire,
            turn_detection=self._ledger.requested,
            **full_session_fields(self._opts, self._instructions),
        )
        sent = self._ledger.register(payload["event_id"], carries_td=True)
        sent.waiters.extend(carried)
        return payload

    def _create_tools_update_event(self, tools: list[llm.Tool]) -> dict[str, Any]:
        payload = wire.session_update_payload(
            wire=self.wire, tools=list(self._convert_tools_to_oai(tools))
        )
        self._ledger.register(payload["event_id"], carries_td=False)
        return payload

    async def update_instructions(self, instructions: str) -> None:
        payload = wire.session_update_payload(wire=self.wire, instructions=instructions)
        sent = self._ledger.register(payload["event_id"], carries_td=False)
        sent.rollback = [(self, "_instructions", self._instructions, instructions)]
        self.send_event(payload)
        self._instructions = instructions

    # -- matching the server's answers ------------------------------------------------------

    def _on_client_event_sent(self, event: dict[str, Any]) -> None:
        if event.get("type") == "session.update":
            self._ledger.on_queued(event)

    def _on_server_event(self, event: dict[str, Any]) -> None:
        try:
            kind = event.get("type")
            if kind in ("session.created", "session.updated"):
                session = event.get("session")
                if isinstance(session, dict):
                    self._on_session_echo(kind == "session.updated", session)
            elif kind == "response.created":
                self._turns.on_response_created()
            elif kind == "input_audio_buffer.committed":
                self._server_turn_open = False
                self._turns.on_committed(event.get("item_id"))
                self._stamp_turn(event.get("item_id"))
            elif kind in _SERVER_TURN_EVENTS:
                self._server_turn_open = _SERVER_TURN_EVENTS[kind]
            elif kind == "response.done":
                self._carry_out(self._turns.on_response_done())
        except Exception:  # a malformed server event must not end the session
            logger.exception("failed to read a server event", extra={"type": event.get("type")})

    def _on_session_echo(self, is_update: bool, session: dict[str, Any]) -> None:
        outcome = self._ledger.on_echo(is_update, session)
        if outcome.effective_changed:
            self._sync_turn_taking()
        if outcome.confirmed:
            assert outcome.sent is not None
            self._emit_extra(
                "turn_detection_confirmed",
                TurnDetectionConfirmed(
                    requested=outcome.sent.expected, confirmed=self._ledger.confirmed
                ),
            )
        elif outcome.mismatch is not None:
            self._emit_extra("turn_detection_mismatch", outcome.mismatch)

    def _handle_response_done(self, event: Any) -> None:
        generation = self._current_generation
        try:
            super()._handle_response_done(event)
        finally:
            # upstream fails the generation's done future when a response ends "failed" or
            # "incomplete" (e.g. max_output_tokens), but only awaits that future with
            # max_session_duration set: unretrieved, asyncio logs "Future exception was never
            # retrieved" when the generation is dropped. The failure itself is reported
            # (error event / log) by upstream, so mark it retrieved here.
            done = getattr(generation, "_done_fut", None)
            if isinstance(done, asyncio.Future) and done.done() and not done.cancelled():
                done.exception()

    def _handle_error(self, event: Any) -> None:
        error = getattr(event, "error", None)
        event_id = getattr(error, "event_id", None)
        if isinstance(event_id, str) and event_id.startswith(_RESPONSE_CREATE_PREFIXES):
            self._carry_out(self._turns.on_response_refused())
        code, param = getattr(error, "code", None), getattr(error, "param", None)
        message = getattr(error, "message", "") or ""
        answered = (
            None
            if error is None
            else self._ledger.on_error(event_id, code=code, param=param, message=message)
        )
        if answered is None:
            super()._handle_error(event)
            return
        sent, moved = answered
        if moved:
            self._sync_turn_taking()
        logger.error(
            "%s rejected session.update %s: %s (param %s): %s",
            self._realtime_model._provider_label,
            event_id,
            code,
            param,
            message,
        )
        exc: Exception
        if sent.carries_turn_detection:
            exc = TurnDetectionRejected(sent.expected, code=code, param=param, message=message)
        else:
            exc = APIError(
                f"session.update rejected: {code} (param {param}): {message}",
                body=error,
                retryable=True,
            )
        if self._is_fatal_error(error):
            super()._handle_error(event)
            return
        self._emit_error(exc, recoverable=True)

    def _emit_extra(self, name: str, payload: Any) -> None:
        self.emit(cast(Any, name), payload)

    # -- turn taking ------------------------------------------------------------------------

    def _effective_turn_detection(self) -> TurnDetection | None:
        """What the server runs: the request, unless its echo showed otherwise."""
        return None if self._framework_turns else self._ledger.effective

    def _sync_turn_taking(self, *, cleared: bool = False) -> None:
        """Follow the effective turn detection: start or stop client VAD, set capabilities.

        ``cleared``: the caller already queued ``input_audio_buffer.clear`` (or there is no
        audio yet); otherwise entering client VAD clears the server's buffer here.
        """
        effective = self._effective_turn_detection()
        client = (
            not self._framework_turns and effective is None and self._client_vad_opts is not None
        )
        if client and not self._turns.running:
            assert self._client_vad_opts is not None
            opts = self._client_vad_opts
            self._turns.start(ClientTurnDetector(opts), opts)
            if not cleared:
                self.send_event(wire.input_audio_clear_event())
            # what was pushed before the switch is gone from the server's buffer
            self._bstream.clear()
            self._pushed_duration_s = 0
        elif not client and self._turns.running:
            # the server gets continuous audio from here on (mid-turn, the gate has already
            # forwarded every byte of the turn, so the server's VAD finishes it without a gap)
            self._turns.stop()
        self._opts.turn_detection = to_upstream_td(effective)
        self._capabilities.turn_detection = not self._framework_turns and answers_turns(effective)

    def _stamp_turn(self, item_id: Any) -> None:
        """The server named the item of our oldest unconfirmed commit: the user's message
        gets the turn's times, as upstream gives them to a server-VAD turn."""
        if not self._commit_times or not isinstance(item_id, str):
            return
        started, stopped = self._commit_times.popleft()
        self._input_speech_started_at[item_id] = started
        self._stopped_at[item_id] = stopped

    def _on_user_transcript(self, ev: llm.InputTranscriptionCompleted) -> None:
        stopped = self._stopped_at.pop(ev.item_id, None) if ev.is_final else None
        if stopped is not None:
            # after the framework's own handler has built the user's message
            asyncio.get_running_loop().call_soon(self._floor.user_stopped_at, ev.item_id, stopped)

    def _hand_over(self, *, to_server: bool) -> None:
        """Before a turn-detection update leaves: no finished turn is lost to the switch."""
        if to_server:
            if self._turns.running:
                # a turn in its trailing silence is answered here, one still spoken goes on
                self._carry_out(self._turns.hand_over(generation_active=self.has_active_generation))
            return
        if self._effective_turn_detection() is None:
            return
        if self._server_turn_open and self._pushed_duration_s >= _MIN_COMMIT_S:
            # the server heard speech in the audio we sent and had not ended the turn yet:
            # answer what it holds (its buffer is that turn) instead of clearing it
            self._server_turn_open = False
            self._append_audio(self._bstream.flush())
            self._on_user_stopped(held=False, turn_bytes=0)
            self._carry_out(self._turns.committed(b""))
        else:
            # the server may hold stray audio and an idle timer: start clean
            self.send_event(wire.input_audio_clear_event())

    def _drop_unanswered_item(self) -> None:
        """Keep the unanswered turn out of the chat context the reconnect replays.

        ``_on_reconnected`` sends that turn's audio again. Upstream's reconnect also replays
        the chat context (built right after this full update), where the same turn is a user
        message holding its transcript: replayed as well, the new conversation would hold the
        user's turn twice. Called before that replay is built, so it leaves the turn out.
        """
        item_id = self._turns.unanswered_item
        if (
            self._turns.running  # the condition under which _on_reconnected re-sends
            and self._turns.unanswered_turn
            and item_id is not None
            and self._remote_chat_ctx.get(item_id) is not None
        ):
            self._remote_chat_ctx.delete(item_id)

    def _on_reconnected(self, _: Any) -> None:
        """The reconnect sequence, for the turn state.

        1. Building the new socket's full update (``_create_session_update_event``), the
           ledger hands the lost updates' waiters over to it and the unanswered turn leaves
           the chat context upstream replays (``_drop_unanswered_item``).
        2. Here, once upstream has replayed its state and before its new send loop starts
           (everything queued while the socket was down is still queued): the gate's audio,
           commits and turn replies in the queue belong to turns the new server session never
           saw whole, so they are dropped (every other event is kept, in order), the client
           turn state starts over, and the unanswered turn is sent again, whole.
        """
        turn = self._turns.take_unanswered()
        self._turns.reset()
        self._commit_times.clear()  # the old socket's commits are never confirmed
        self._stopped_at.clear()
        self._bstream.clear()
        self._pushed_duration_s = 0
        if not self._turns.running:
            return
        kept: list[Any] = []
        while True:
            try:
                event = self._msg_ch.recv_nowait()
            except (utils.aio.channel.ChanEmpty, utils.aio.channel.ChanClosed):
                break
            if not is_gate_event(event):
                kept.append(event)
        self.send_event(wire.input_audio_clear_event())
        for event in kept:
            self.send_event(event)
        if turn:
            logger.info("re-sending the last turn: its reply was lost with the connection")
            self._append_audio(self._bstream.write(turn))
            self._append_audio(self._bstream.flush())
            self._carry_out(self._turns.committed(turn))

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        if not self._turns.running:
            super().push_audio(frame)
            return
        for f in self._resample_audio(frame):
            effects = self._turns.push(f.data, generation_active=self.has_active_generation)
            if effects:
                self._carry_out(effects)

    def on(self, event: Any, callback: Any = None) -> Any:
        if callback is not None and event == "input_speech_started":
            self._floor.attach(callback)  # the AgentActivity driving this session, if any
        return super().on(event, callback)

    def _carry_out(self, effects: list[tuple[TurnEffect, bytes]]) -> None:
        """Do what the client-turns controller decided, in order."""
        for effect, data in effects:
            if effect is TurnEffect.SEND:
                self._append_audio(self._bstream.write(data))
            elif effect is TurnEffect.SPEECH_STARTED:
                self._on_user_onset()
            elif effect is TurnEffect.BARGE_IN:
                self._floor.barge_in()
            elif effect in (TurnEffect.SPEECH_STOPPED, TurnEffect.HELD_STOP):
                self._append_audio(self._bstream.flush())
                self._on_user_stopped(held=effect is TurnEffect.HELD_STOP, turn_bytes=len(data))
            elif effect is TurnEffect.COMMIT:
                self.send_event(wire.input_audio_commit_event())
                self._pushed_duration_s = 0
                if self._turns.running and data:
                    self._commit_times.append((self._turn_started_at, self._turn_stopped_at))
                    self._floor.end_of_utterance(time.time() - self._turn_stopped_at)
            elif effect is TurnEffect.REPLY:
                self.send_event(
                    wire.response_create_event(event_id=wire.new_event_id(TURN_RESPONSE_PREFIX))
                )
            elif effect is TurnEffect.DISCARD:
                logger.debug("not answering this turn: the server's buffer is cleared")
                self.send_event(wire.input_audio_clear_event())
                self._pushed_duration_s = 0

    def _on_user_onset(self) -> None:
        """Speech started: interrupt at once, or hold the onset by the session's rules."""
        self._turn_started_at = time.time()
        reply = self._floor.reply() if self._floor.attached else None
        if reply is not None:
            rules = self._floor.interruption()
            if not reply.allow_interruptions:
                self._floor.user_started()
                self._carry_out(self._turns.hold(None))
                return
            if rules["min_duration"] > 0:
                self._floor.user_started()  # pauses the playout when the session may resume it
                self._carry_out(self._turns.hold(float(rules["min_duration"])))
                return
        self.interrupt()  # like the server's interrupt_response
        self.emit("input_speech_started", llm.InputSpeechStartedEvent())

    def _on_user_stopped(self, *, held: bool, turn_bytes: int) -> None:
        self._turn_stopped_at = time.time() - self._turns.ended_quiet_bytes / _BYTES_PER_S
        if held:
            opts = self._client_vad_opts or ClientVad()
            silence_s = opts.silence_duration_ms / 1000
            padding_s = (opts.prefix_padding_ms + opts.silence_duration_ms) / 1000
            self._floor.user_stopped(
                speech_s=max(0.0, turn_bytes / _BYTES_PER_S - padding_s), silence_s=silence_s
            )
            return
        self.emit(
            "input_speech_stopped",
            llm.InputSpeechStoppedEvent(
                user_transcription_enabled=self._opts.input_audio_transcription is not None
            ),
        )

    def truncate(
        self,
        *,
        message_id: str,
        modalities: list[Literal["text", "audio"]],
        audio_end_ms: int,
        audio_transcript: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        if self._remote_chat_ctx.get(message_id) is None:
            # a reply cut short by a reconnect: the new server session never had that item,
            # truncating it would only earn an item_truncate_invalid_item_id error
            logger.debug("not truncating %s: the server does not hold it", message_id)
            return
        super().truncate(
            message_id=message_id,
            modalities=modalities,
            audio_end_ms=audio_end_ms,
            audio_transcript=audio_transcript,
        )

    def interrupt(self) -> None:
        # once per response: client VAD cancels at speech onset and the framework's own
        # interrupt follows; a second cancel would only earn response_cancel_not_active
        if self._turns.cancel(generation_active=self.has_active_generation):
            self.send_event(wire.response_cancel_event())

    def _append_audio(self, frames: list[rtc.AudioFrame]) -> None:
        for frame in frames:
            self.send_event(wire.input_audio_append_event(frame.data))
            self._pushed_duration_s += frame.duration

    def commit_audio(self) -> None:
        self._append_audio(self._bstream.flush())
        if self._pushed_duration_s >= _MIN_COMMIT_S:
            self.send_event(wire.input_audio_commit_event())
            self._pushed_duration_s = 0
        else:
            logger.debug(
                "not committing %.0f ms of audio: the server needs at least 100 ms",
                self._pushed_duration_s * 1000,
            )

    def clear_audio(self) -> None:
        super().clear_audio()
        # a turn in progress ends here: the user's speaking state with it
        self._carry_out(self._turns.clear_turn())

    async def _create_ws_conn(self) -> aiohttp.ClientWebSocketResponse:
        ws = await super()._create_ws_conn()
        return cast(aiohttp.ClientWebSocketResponse, SanitizingWebSocket(ws))
