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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import aiohttp
from livekit.agents import APIError, llm
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from . import wire
from ._ledger import SentUpdate, UpdateLedger
from ._options import (
    answers_turns,
    full_session_fields,
    option_changes,
    to_upstream_td,
    wire_of,
)
from ._socket import ServerSocket
from ._turn_session import TurnTakingSession
from .client_vad import ClientTurnDetector
from .log import logger
from .turn_detection import (
    TurnDetection,
    TurnDetectionInput,
    TurnDetectionRejected,
    coerce_turn_detection,
)

if TYPE_CHECKING:
    from .model import RealtimeModel

__all__ = ["RealtimeSession", "TurnDetectionConfirmed", "TurnTakingMode"]

# the session events this class reads itself, and its handler of each. They are dispatched by
# ``emit`` directly instead of through ``on()``: rtc.EventEmitter inspects a listener's
# signature on every call, and the two openai_* events fire for every message on the socket.
_OWN_LISTENERS: dict[str, str] = {
    "openai_client_event_queued": "_on_client_event_sent",
    "openai_server_event_received": "_on_server_event",
    "session_reconnected": "_on_reconnected",
    "input_audio_transcription_completed": "_on_user_transcript",
}

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


class RealtimeSession(TurnTakingSession):
    """A Realtime session whose turn detection is explicit on the wire (in the first update
    and after every reconnect) and verified against the server's echo.

    Two I/O-free state machines hold the state: the update ledger (:mod:`._ledger`: what was
    asked, confirmed, in flight), fed here, and the client turns (:mod:`._client_turns`: the
    turn being gated, the reply it waits for), fed by :class:`._turn_session.TurnTakingSession`.
    The overrides feed them and carry out what they say.

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
        self._init_turn_taking(realtime_model.client_vad)
        self._first_update_built = False  # the next full update is for a reconnect once True
        self._own_listeners: dict[str, Callable[..., None]] = {
            event: getattr(self, handler) for event, handler in _OWN_LISTENERS.items()
        }

        super().__init__(realtime_model, turn_detection_disabled=turn_detection_disabled)
        self._realtime_model: RealtimeModel = realtime_model
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

    def emit(self, event: Any, *args: Any) -> None:
        """Our own handler first (as a listener registered in ``__init__`` was), then the
        listeners registered with ``on()``."""
        handler = self._own_listeners.get(event)
        if handler is not None:
            try:
                handler(*args)
            except Exception:  # as rtc.EventEmitter does for a listener
                logger.exception("failed to handle session event %s", event)
        super().emit(event, *args)

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
            else:
                self._on_turn_event(kind, event)
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
        self._on_create_refused(event_id)
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

    async def _create_ws_conn(self) -> aiohttp.ClientWebSocketResponse:
        ws = await super()._create_ws_conn()
        self._socket = ServerSocket(ws, self._screen_server_event)
        return cast(aiohttp.ClientWebSocketResponse, self._socket)
