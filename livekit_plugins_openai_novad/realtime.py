"""LiveKit glue: ``RealtimeModel`` / ``RealtimeSession`` subclasses of the upstream plugin.

What changes against upstream:

* every ``session.update`` is built by :mod:`.wire` (``turn_detection: null`` is explicit on
  both wires, initial and reconnect updates carry it, later updates are sparse);
* each ``session.updated`` / ``error`` is matched to the update it answers (FIFO by send order,
  by ``event_id`` for errors) and the echoed turn detection is verified;
* turn detection can change mid-call, with ``set_turn_detection`` awaiting the confirmation;
* while the server is not detecting turns, Silero detects them here and gates the audio.
"""

from __future__ import annotations

import asyncio
import collections
import json
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import aiohttp
from livekit import rtc
from livekit.agents import APIError, llm, utils
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import is_given
from pydantic import TypeAdapter

from . import wire
from ._upstream import (
    DEFAULT_VOICE,
    UpstreamRealtimeModel,
    UpstreamRealtimeSession,
    to_audio_transcription,
    to_noise_reduction,
    to_oai_tool_choice,
)
from .client_vad import ClientTurnDetector, GateAction
from .log import logger
from .server_socket import ServerSocket
from .speculation import SPECULATION_PREFIX, UNDO_PREFIX, PreemptiveOptions, Speculation, Verdict
from .turn_detection import (
    ClientVad,
    TurnDetection,
    TurnDetectionInput,
    TurnDetectionMismatch,
    TurnDetectionRejected,
    coerce_turn_detection,
    echo_matches,
    turn_detection_from_wire,
)

__all__ = ["RealtimeModel", "RealtimeSession", "TurnDetectionConfirmed", "TurnTakingMode"]

TurnTakingMode = Literal["server", "client_vad", "push_to_talk", "framework"]
"""Who decides when the user's turn ends, for one session:
``server`` (server_vad / semantic_vad), ``client_vad`` (Silero here, server VAD off),
``push_to_talk`` (nobody: the app commits), ``framework`` (the AgentSession's own VAD or
turn detector, because the user configured one)."""

_DEFAULT_CLIENT_VAD = ClientVad()
_TURN_RESPONSE_PREFIX = "turn_response_"  # event ids of the response.create client VAD sends
assert SPECULATION_PREFIX.startswith(_TURN_RESPONSE_PREFIX)  # a speculative one is one too
_MIN_COMMIT_S = 0.1  # the server rejects commits under 100 ms (input_audio_buffer_commit_empty)

_UPSTREAM_TD_ADAPTER: TypeAdapter[Any] | None = None


def _to_upstream_td(td: TurnDetection | None) -> Any:
    """Our type -> openai-python's GA model, for upstream code that reads ``_opts``."""
    global _UPSTREAM_TD_ADAPTER
    if td is None:
        return None
    if _UPSTREAM_TD_ADAPTER is None:
        from openai.types.realtime import RealtimeAudioInputTurnDetection

        _UPSTREAM_TD_ADAPTER = TypeAdapter(RealtimeAudioInputTurnDetection)
    return _UPSTREAM_TD_ADAPTER.validate_python(td.to_wire())


def _server_answers(td: TurnDetection | None) -> bool:
    return td is not None and td.create_response is not False


def _answers_turns(td: TurnDetection | None) -> bool:
    """``capabilities.turn_detection``: the session (server, client VAD, or the app in
    push-to-talk) answers turns itself, so the AgentSession must not add its default VAD; it
    can still take turn taking over (``turn_detection_disabled``) when the user configures it."""
    return td is None or _server_answers(td)


def _check_client_vad(client_vad: Any) -> None:
    if client_vad is not None and not isinstance(client_vad, ClientVad):
        raise ValueError("client_vad must be a novad.ClientVad or None (push-to-talk)")


def _wire_of(opts: Any) -> wire.Wire:
    return "beta" if opts.is_azure and opts.api_version else "ga"


def _full_session_fields(opts: Any, instructions: str | None) -> dict[str, Any]:
    """Every session field the plugin owns, for the initial and each reconnect update."""
    fields: dict[str, Any] = {
        "model": opts.model,
        "modalities": list(opts.modalities),
        "voice": opts.voice,
        "speed": opts.speed,
        "audio_format": "pcm16",
        "transcription": opts.input_audio_transcription,
        "noise_reduction": opts.input_audio_noise_reduction,
        "tool_choice": to_oai_tool_choice(opts.tool_choice),
        "max_output_tokens": opts.max_response_output_tokens,
    }
    if opts.tracing is not None:
        fields["tracing"] = opts.tracing
    if instructions is not None:
        fields["instructions"] = instructions
    if opts.truncation is not None:
        fields["truncation"] = opts.truncation
    if opts.reasoning is not None:
        fields["reasoning"] = opts.reasoning
    return fields


@dataclass
class TurnDetectionConfirmed:
    """Payload of the ``turn_detection_confirmed`` session event."""

    requested: TurnDetection | None
    confirmed: TurnDetection | None


@dataclass
class _SentUpdate:
    """A ``session.update`` and who waits for its answer."""

    event_id: str
    carries_turn_detection: bool
    expected: TurnDetection | None  # the turn detection the server should hold after it
    waiters: list[asyncio.Future[TurnDetection | None]] = field(default_factory=list)
    # what it changed on our side, as (object, attribute, before, after): a rejection undoes
    # it, so the session does not believe in (or restate on reconnect) a value never taken
    rollback: list[tuple[Any, str, Any, Any]] = field(default_factory=list)


class RealtimeModel(UpstreamRealtimeModel):
    """OpenAI Realtime for ``AgentSession(llm=...)``; turn detection really reaches the wire.

    ``turn_detection``: ``None`` (the default) turns server VAD off with an explicit
    ``"turn_detection": null``; ``novad.ServerVad(...)`` / ``novad.SemanticVad(...)`` (or a
    dict / openai-python model) turns it on. ``client_vad``: how turns are detected on the
    client while server VAD is off (``None`` = push-to-talk: the app commits).
    The other arguments are upstream's.
    """

    def __init__(
        self,
        *,
        model: str = "gpt-realtime",
        voice: str = DEFAULT_VOICE,
        modalities: NotGivenOr[list[Literal["text", "audio"]]] = NOT_GIVEN,
        turn_detection: TurnDetectionInput | None = None,
        client_vad: ClientVad | None = _DEFAULT_CLIENT_VAD,
        tool_choice: NotGivenOr[llm.ToolChoice | None] = NOT_GIVEN,
        base_url: NotGivenOr[str] = NOT_GIVEN,
        input_audio_transcription: NotGivenOr[Any] = NOT_GIVEN,
        input_audio_noise_reduction: NotGivenOr[Any] = NOT_GIVEN,
        speed: NotGivenOr[float] = NOT_GIVEN,
        tracing: NotGivenOr[Any] = NOT_GIVEN,
        truncation: NotGivenOr[Any] = NOT_GIVEN,
        reasoning: NotGivenOr[Any] = NOT_GIVEN,
        api_key: str | None = None,
        http_session: aiohttp.ClientSession | None = None,
        azure_deployment: str | None = None,
        entra_token: str | None = None,
        api_version: str | None = None,
        max_session_duration: NotGivenOr[float | None] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        temperature: NotGivenOr[float] = NOT_GIVEN,
    ) -> None:
        td = coerce_turn_detection(turn_detection)  # ValueError before anything else
        _check_client_vad(client_vad)
        upstream_args: dict[str, Any] = dict(
            model=model,
            voice=voice,
            modalities=modalities,
            tool_choice=tool_choice,
            base_url=base_url,
            input_audio_transcription=input_audio_transcription,
            input_audio_noise_reduction=input_audio_noise_reduction,
            turn_detection=_to_upstream_td(td),
            speed=speed,
            tracing=tracing,
            truncation=truncation,
            reasoning=reasoning,
            api_key=api_key,
            http_session=http_session,
            azure_deployment=azure_deployment,
            entra_token=entra_token,
            max_session_duration=max_session_duration,
            conn_options=conn_options,
            temperature=temperature,
        )
        if api_version:
            upstream_args["api_version"] = api_version
        super().__init__(**upstream_args)
        self._turn_detection: TurnDetection | None = td
        self._client_vad = client_vad
        # fail on what the chosen wire cannot express (e.g. idle_timeout_ms on Azure legacy)
        wire.session_update_payload(
            wire=self.wire, turn_detection=td, **_full_session_fields(self._opts, None)
        )
        self._capabilities.turn_detection = _answers_turns(td)
        self._capabilities.can_disable_turn_detection = True

    @property
    def wire(self) -> wire.Wire:
        """``"ga"``, or ``"beta"`` for Azure's legacy ``api_version`` endpoint."""
        return _wire_of(self._opts)

    @property
    def turn_detection(self) -> TurnDetection | None:
        return self._turn_detection

    @property
    def client_vad(self) -> ClientVad | None:
        return self._client_vad

    @classmethod
    def with_azure(  # type: ignore[override]
        cls,
        *,
        azure_deployment: str,
        turn_detection: TurnDetectionInput | None = None,
        client_vad: ClientVad | None = _DEFAULT_CLIENT_VAD,
        **kwargs: Any,
    ) -> RealtimeModel:
        """Azure OpenAI (see upstream ``with_azure``); turn detection defaults to off here too."""
        td = coerce_turn_detection(turn_detection)
        _check_client_vad(client_vad)
        model = super().with_azure(
            azure_deployment=azure_deployment, turn_detection=_to_upstream_td(td), **kwargs
        )
        model._client_vad = client_vad
        # upstream's with_azure pins this to False once a turn detection is given
        model._capabilities.can_disable_turn_detection = True
        return cast(RealtimeModel, model)

    def update_options(
        self,
        *,
        turn_detection: NotGivenOr[TurnDetectionInput | None] = NOT_GIVEN,
        **kwargs: Any,
    ) -> None:
        """Upstream's options, plus ``turn_detection`` applied to every session of this model.

        Sessions whose turns the AgentSession drives (it opened them with
        ``turn_detection_disabled``) keep server VAD off.
        """
        td: TurnDetection | None = None
        if is_given(turn_detection):
            td = coerce_turn_detection(turn_detection)
            wire.session_update_payload(wire=self.wire, turn_detection=td)
        super().update_options(**kwargs)
        if not is_given(turn_detection):
            return
        self._turn_detection = td
        self._opts.turn_detection = _to_upstream_td(td)
        self._capabilities.turn_detection = _answers_turns(td)
        for sess in list(self._sessions):
            if isinstance(sess, RealtimeSession) and sess.turn_taking_mode != "framework":
                sess.update_options(turn_detection=td)
            elif td is not None:
                logger.warning(
                    "turn detection not changed on a session whose turns the AgentSession "
                    "drives (its own VAD / turn detector is configured)"
                )

    def session(self, *, turn_detection_disabled: bool = False) -> RealtimeSession:
        sess = RealtimeSession(self, turn_detection_disabled=turn_detection_disabled)
        self._sessions.add(sess)
        return sess


class RealtimeSession(UpstreamRealtimeSession):
    """A Realtime session whose turn detection is explicit on the wire (in the first update
    and after every reconnect) and verified against the server's echo.

    Extra session events: ``turn_detection_confirmed`` (:class:`TurnDetectionConfirmed`) and
    ``turn_detection_mismatch`` (:class:`TurnDetectionMismatch`).
    """

    def __init__(self, realtime_model: RealtimeModel, *, turn_detection_disabled: bool = False):
        # upstream's __init__ builds the first session.update through our override, so the
        # state it reads is set first
        self._framework_turns = turn_detection_disabled
        self._requested: TurnDetection | None = (
            None if turn_detection_disabled else realtime_model.turn_detection
        )
        self._confirmed: TurnDetection | None = None
        self._confirmed_known = False
        self._mismatch = False
        self._client_vad_opts = realtime_model.client_vad
        self._detector: ClientTurnDetector | None = None
        self._built: dict[str, _SentUpdate] = {}
        self._inflight: collections.deque[_SentUpdate] = collections.deque()
        self._latest_td_update: _SentUpdate | None = None
        self._first_update_built = False  # the next full update is for a reconnect once True
        self._response_requested = False  # our response.create is out, response.created not in
        self._cancel_sent = False  # a response.cancel is out for the current response
        self._turn_audio = bytearray()  # the client-VAD turn being sent
        self._unanswered_turn: bytes | None = None  # a committed turn whose reply is not done
        # the server's conversation item for that turn (from its input_audio_buffer.committed)
        self._unanswered_item: str | None = None
        self._speculation: Speculation[aiohttp.WSMessage] = Speculation()
        self._socket: ServerSocket | None = None  # the current connection's
        self._driver: weakref.ref[Any] | None = None  # the AgentActivity consuming replies

        super().__init__(realtime_model, turn_detection_disabled=turn_detection_disabled)
        self._realtime_model: RealtimeModel = realtime_model
        self.on("openai_client_event_queued", self._on_client_event_sent)
        self.on("openai_server_event_received", self._on_server_event)
        self.on("session_reconnected", self._on_reconnected)
        self._sync_turn_taking(cleared=True)  # nothing pushed yet

    # -- public API -------------------------------------------------------------------------

    @property
    def wire(self) -> wire.Wire:
        return _wire_of(self._opts)

    @property
    def requested_turn_detection(self) -> TurnDetection | None:
        """What this session last asked the server for (``None`` = off)."""
        return self._requested

    @property
    def confirmed_turn_detection(self) -> TurnDetection | None:
        """The server's last confirmed turn detection, with the server's values (``None`` = off).

        From ``session.created`` until the first ``session.updated`` it is the server's default.
        """
        return self._confirmed

    @property
    def turn_detection_confirmed(self) -> bool:
        """True once the server's echo matches the request (no update still in flight)."""
        return (
            self._confirmed_known
            and not self._mismatch
            and self._latest_td_update is None
            and echo_matches(self._requested, _wire_dict(self._confirmed))
        )

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
            sent = self._latest_td_update
        if sent is None:
            if self._mismatch:
                raise TurnDetectionMismatch(self._requested, _wire_dict(self._confirmed))
            return self._confirmed
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
    ) -> _SentUpdate | None:
        opts = self._opts
        new_opts: dict[str, Any] = {}  # _opts attribute -> value, applied once all is valid
        fields: dict[str, Any] = {}  # what goes on the wire

        def change(attr: str, value: Any, wire_name: str) -> None:
            if getattr(opts, attr) != value:
                fields[wire_name] = value
            new_opts[attr] = value

        if is_given(tool_choice):
            if to_oai_tool_choice(tool_choice) != to_oai_tool_choice(opts.tool_choice):
                fields["tool_choice"] = to_oai_tool_choice(tool_choice)
            new_opts["tool_choice"] = tool_choice
        if is_given(voice):
            change("voice", voice, "voice")
        if is_given(speed):
            change("speed", speed, "speed")
        if is_given(max_response_output_tokens):
            value = "inf" if max_response_output_tokens is None else max_response_output_tokens
            change("max_response_output_tokens", value, "max_output_tokens")
        if is_given(input_audio_transcription):
            change(
                "input_audio_transcription",
                to_audio_transcription(input_audio_transcription),
                "transcription",
            )
        if is_given(input_audio_noise_reduction):
            change(
                "input_audio_noise_reduction",
                to_noise_reduction(input_audio_noise_reduction),
                "noise_reduction",
            )
        if is_given(tracing):
            change("tracing", tracing, "tracing")
        if is_given(truncation):
            change("truncation", truncation, "truncation")
        if is_given(reasoning):
            change("reasoning", reasoning, "reasoning")

        td_changed = False
        if is_given(turn_detection):
            if self._framework_turns and turn_detection is not None:
                raise ValueError(
                    "this session's turns are driven by the AgentSession (a VAD or turn detector "
                    "is configured there); server turn detection cannot be turned on for it"
                )
            td_changed = turn_detection != self._requested or self._mismatch

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
            if turn_detection is None and self._effective_turn_detection() is not None:
                # the server may hold part of a turn and an idle timer: start clean
                self.send_event(wire.input_audio_clear_event())
            self._requested = turn_detection
            self._mismatch = False
        sent = self._register(payload, carries_td=td_changed)
        sent.rollback = rollback
        self.send_event(payload)
        self._sync_turn_taking(cleared=True)
        return sent

    def _register(self, payload: dict[str, Any], *, carries_td: bool) -> _SentUpdate:
        sent = _SentUpdate(
            event_id=payload["event_id"],
            carries_turn_detection=carries_td,
            expected=self._requested,
        )
        self._built[sent.event_id] = sent
        if carries_td:
            self._latest_td_update = sent
        return sent

    def _create_session_update_event(self) -> dict[str, Any]:
        """The full update: upstream sends it first on every socket (initial and reconnect)."""
        reconnect, self._first_update_built = self._first_update_built, True
        carried: list[asyncio.Future[TurnDetection | None]] = []
        if reconnect:
            # the old socket's unanswered updates will never be answered; this one restates
            # everything, so whoever waited for them now waits for it
            for lost in self._inflight:
                carried.extend(lost.waiters)
            self._inflight.clear()
            self._reset_turn_state()
            self._drop_unanswered_item()

        payload = wire.session_update_payload(
            wire=self.wire,
            turn_detection=self._requested,
            **_full_session_fields(self._opts, self._instructions),
        )
        sent = self._register(payload, carries_td=True)
        sent.waiters.extend(carried)
        return payload

    def _create_tools_update_event(self, tools: list[llm.Tool]) -> dict[str, Any]:
        payload = wire.session_update_payload(
            wire=self.wire, tools=list(self._convert_tools_to_oai(tools))
        )
        self._register(payload, carries_td=False)
        return payload

    async def update_instructions(self, instructions: str) -> None:
        payload = wire.session_update_payload(wire=self.wire, instructions=instructions)
        sent = self._register(payload, carries_td=False)
        sent.rollback = [(self, "_instructions", self._instructions, instructions)]
        self.send_event(payload)
        self._instructions = instructions

    # -- matching the server's answers ------------------------------------------------------

    def _on_client_event_sent(self, event: dict[str, Any]) -> None:
        if event.get("type") != "session.update":
            return
        event_id = event.get("event_id") or ""
        sent = self._built.pop(event_id, None)
        if sent is None:  # a session.update the app sent itself through send_event
            session = event.get("session")
            present, value = wire.session_turn_detection(
                self.wire, session if isinstance(session, dict) else {}
            )
            try:
                expected = turn_detection_from_wire(value) if present else self._requested
            except ValueError:  # a type this package does not know: it cannot verify it
                present, expected = False, self._requested
            sent = _SentUpdate(event_id, carries_turn_detection=present, expected=expected)
        self._inflight.append(sent)

    def _on_server_event(self, event: dict[str, Any]) -> None:
        try:
            kind = event.get("type")
            if kind in ("session.created", "session.updated"):
                session = event.get("session")
                if isinstance(session, dict):
                    self._on_session_echo(kind == "session.updated", session)
            elif kind == "response.created":
                self._response_requested = False
            elif kind == "input_audio_buffer.committed":
                # the first commit after ours is ours: the server answers in order
                item_id = event.get("item_id")
                if (
                    self._unanswered_turn is not None
                    and self._unanswered_item is None
                    and isinstance(item_id, str)
                ):
                    self._unanswered_item = item_id
            elif kind == "response.done":
                self._cancel_sent = False
                self._unanswered_turn = None
                self._unanswered_item = None
        except Exception:  # a malformed server event must not end the session
            logger.exception("failed to read a server event", extra={"type": event.get("type")})

    def _on_session_echo(self, is_update: bool, session: dict[str, Any]) -> None:
        # every session.updated answers the oldest update in flight, whatever it holds
        sent = self._inflight.popleft() if is_update and self._inflight else None
        present, echoed = wire.session_turn_detection(self.wire, session)
        if not present:
            return
        try:
            self._confirmed = turn_detection_from_wire(echoed)
            self._confirmed_known = known = True
        except ValueError:  # a type this package does not know (e.g. a vendor's own)
            logger.warning("unknown turn detection in the server's echo: %s", json.dumps(echoed))
            known = False
        if sent is None or not sent.carries_turn_detection:
            return  # session.created (the server's defaults), or not about turn detection
        latest = sent is self._latest_td_update
        if latest:
            self._latest_td_update = None
        if known and echo_matches(sent.expected, echoed):
            if latest:
                self._mismatch = False
            self._sync_turn_taking()
            self._emit_extra(
                "turn_detection_confirmed",
                TurnDetectionConfirmed(requested=sent.expected, confirmed=self._confirmed),
            )
            for fut in sent.waiters:
                if not fut.done():
                    fut.set_result(self._confirmed)
            return

        mismatch = TurnDetectionMismatch(sent.expected, echoed)
        logger.warning(
            "turn detection mismatch: requested %s, server confirmed %s",
            "null" if sent.expected is None else json.dumps(sent.expected.to_wire()),
            json.dumps(echoed),
        )
        if latest and known:
            # the server runs what it echoed: follow it, so two VADs never run on one stream
            self._mismatch = True
            self._sync_turn_taking()
        self._emit_extra("turn_detection_mismatch", mismatch)
        for fut in sent.waiters:
            if not fut.done():
                fut.set_exception(mismatch)

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
        if isinstance(event_id, str) and event_id.startswith(_TURN_RESPONSE_PREFIX):
            self._response_requested = False  # our turn's response.create was refused
        sent = next((s for s in self._inflight if s.event_id == event_id), None)
        if error is None or sent is None:
            super()._handle_error(event)
            return
        self._inflight.remove(sent)
        for obj, attr, before, after in sent.rollback:
            if getattr(obj, attr) == after:  # unless a later update changed it again
                setattr(obj, attr, before)
        code, param = getattr(error, "code", None), getattr(error, "param", None)
        message = getattr(error, "message", "") or ""
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
            if sent is self._latest_td_update:
                # the server keeps its state: what an older update still in flight asks for,
                # else what it last confirmed; so do we
                older = self._newest_td_update()
                self._latest_td_update = older
                self._requested = older.expected if older is not None else self._confirmed
                self._mismatch = False
                self._sync_turn_taking()
            for fut in sent.waiters:
                if not fut.done():
                    fut.set_exception(exc)
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

    def _newest_td_update(self) -> _SentUpdate | None:
        """The newest turn-detection update not yet answered (sent, or queued to be)."""
        pending = [*self._inflight, *self._built.values()]
        return next((s for s in reversed(pending) if s.carries_turn_detection), None)

    def _emit_extra(self, name: str, payload: Any) -> None:
        self.emit(cast(Any, name), payload)

    # -- turn taking ------------------------------------------------------------------------

    def _effective_turn_detection(self) -> TurnDetection | None:
        """What the server runs: the request, unless its echo showed otherwise."""
        if self._framework_turns:
            return None
        return self._confirmed if self._mismatch else self._requested

    def _sync_turn_taking(self, *, cleared: bool = False) -> None:
        """Follow the effective turn detection: start or stop client VAD, set capabilities.

        ``cleared``: the caller already queued ``input_audio_buffer.clear`` (or there is no
        audio yet); otherwise entering client VAD clears the server's buffer here.
        """
        effective = self._effective_turn_detection()
        client = (
            not self._framework_turns and effective is None and self._client_vad_opts is not None
        )
        if client and self._detector is None:
            assert self._client_vad_opts is not None
            self._detector = ClientTurnDetector(self._client_vad_opts)
            if not cleared:
                self.send_event(wire.input_audio_clear_event())
            # what was pushed before the switch is gone from the server's buffer
            self._bstream.clear()
            self._turn_audio.clear()
            self._pushed_duration_s = 0
        elif not client and self._detector is not None:
            # the server gets continuous audio from here on (mid-turn, the gate has already
            # forwarded every byte of the turn, so the server's VAD finishes it without a gap)
            self._detector = None
        self._opts.turn_detection = _to_upstream_td(effective)
        self._capabilities.turn_detection = not self._framework_turns and _answers_turns(effective)

    def _reset_turn_state(self) -> None:
        self._speculation.reset()  # a new connection: nothing held on the old one arrives
        if self._detector is not None:
            self._detector.reset()
        self._bstream.clear()
        self._turn_audio.clear()
        self._pushed_duration_s = 0
        self._response_requested = False
        self._cancel_sent = False

    def _drop_unanswered_item(self) -> None:
        """Keep the unanswered turn out of the chat context the reconnect replays.

        ``_on_reconnected`` sends that turn's audio again. Upstream's reconnect also replays
        the chat context (built right after this full update), where the same turn is a user
        message holding its transcript: replayed as well, the new conversation would hold the
        user's turn twice. Called before that replay is built, so it leaves the turn out.
        """
        item_id = self._unanswered_item
        if (
            self._detector is not None  # the condition under which _on_reconnected re-sends
            and self._unanswered_turn
            and item_id is not None
            and self._remote_chat_ctx.get(item_id) is not None
        ):
            self._remote_chat_ctx.delete(item_id)

    def _on_reconnected(self, _: Any) -> None:
        turn, self._unanswered_turn = self._unanswered_turn, None
        if self._detector is None:
            return
        # Upstream emits this before its new send loop starts, so everything queued while the
        # socket was down is still queued. The gate's audio, commits and turn replies in it
        # belong to turns the new server session never saw whole: drop them (keeping every
        # other event, in order), then send the unanswered turn again, whole.
        kept: list[Any] = []
        while True:
            try:
                event = self._msg_ch.recv_nowait()
            except (utils.aio.channel.ChanEmpty, utils.aio.channel.ChanClosed):
                break
            if not _is_gate_event(event):
                kept.append(event)
        self.send_event(wire.input_audio_clear_event())
        for event in kept:
            self.send_event(event)
        if turn:
            logger.info("re-sending the last turn: its reply was lost with the connection")
            self._append_audio(self._bstream.write(turn))
            self._append_audio(self._bstream.flush())
            self._commit_turn(turn)

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        detector = self._detector
        if detector is None:
            super().push_audio(frame)
            return
        for f in self._resample_audio(frame):
            for action, data in detector.push(f.data):
                if action is GateAction.SEND:
                    if not self._speculation.hold_audio(data):
                        self._turn_audio += data
                        self._append_audio(self._bstream.write(data))
                elif action is GateAction.SPEECH_STARTED:
                    self._on_client_speech_started()
                elif action is GateAction.PAUSED:
                    self._on_client_pause(detector.speech_s)
                elif action is GateAction.RESUMED:
                    self._on_client_resume()
                else:
                    self._on_client_speech_stopped()

    def _on_client_speech_started(self) -> None:
        self._turn_audio.clear()
        self.interrupt()  # like the server's interrupt_response
        self.emit("input_speech_started", llm.InputSpeechStartedEvent())

    def _on_client_pause(self, speech_s: float) -> None:
        """The detector's pause point: commit the turn and request its reply now, held."""
        spec = self._speculation
        spec.opts = self._preemptive_options()
        busy = self.has_active_generation or self._response_requested
        if not spec.should_speculate(speech_s=speech_s, other_response_active=busy):
            return
        self._append_audio(self._bstream.flush())
        if self._pushed_duration_s < _MIN_COMMIT_S:
            return
        self.send_event(wire.input_audio_commit_event())
        self.send_event(spec.start())
        self._pushed_duration_s = 0
        self._response_requested = True
        self._cancel_sent = False
        # a reconnect before the reply is released answers the turn as committed so far
        self._unanswered_turn = bytes(self._turn_audio)
        self._unanswered_item = None

    def _on_client_resume(self) -> None:
        """The user spoke again inside the window: undo the held reply, the turn goes on."""
        undo, audio = self._speculation.cancel()
        for event in undo:
            self.send_event(event)
        if undo:
            self._response_requested = False
        if audio:
            self._turn_audio += audio
            self._append_audio(self._bstream.write(audio))

    def _on_client_speech_stopped(self) -> None:
        release = self._speculation.confirm()
        self._speculation.end_turn()
        if release is None:
            self._append_audio(self._bstream.flush())
        turn = bytes(self._turn_audio)
        self._turn_audio.clear()
        self.emit(
            "input_speech_stopped",
            llm.InputSpeechStoppedEvent(
                user_transcription_enabled=self._opts.input_audio_transcription is not None
            ),
        )
        if release is not None:
            # committed at the pause point; the silence held since is dropped
            if self._socket is not None:
                self._socket.release(release.held)
            if release.needs_reply:
                self.send_event(
                    wire.response_create_event(event_id=wire.new_event_id(_TURN_RESPONSE_PREFIX))
                )
                self._response_requested = True
            return
        if self._pushed_duration_s < _MIN_COMMIT_S:
            logger.debug("dropping a turn shorter than 100 ms instead of committing it")
            self.send_event(wire.input_audio_clear_event())
            self._pushed_duration_s = 0
            return
        self._commit_turn(turn)

    def _preemptive_options(self) -> PreemptiveOptions:
        """``turn_handling["preemptive_generation"]`` of the AgentSession driving this session
        (agent-level keys over session-level, as the framework resolves them); off when no
        AgentSession consumes its replies."""
        driver = self._driver() if self._driver is not None else None
        opts = getattr(driver, "preemptive_generation_opts", None)
        if driver is None or opts is None:
            return PreemptiveOptions(enabled=False)
        return PreemptiveOptions.from_turn_handling(opts)

    def on(self, event: Any, callback: Any = None) -> Any:
        # the AgentActivity subscribes its own methods to generation_created: that is how
        # this session finds the turn_handling options it must follow
        owner = getattr(callback, "__self__", None)
        if event == "generation_created" and hasattr(owner, "preemptive_generation_opts"):
            self._driver = weakref.ref(owner)
        return super().on(event, callback)

    def off(self, event: Any, callback: Any) -> None:
        owner = getattr(callback, "__self__", None)
        if event == "generation_created" and self._driver is not None and owner is self._driver():
            self._driver = None
        super().off(event, callback)

    def _screen_server_event(self, event: dict[str, Any], frame: aiohttp.WSMessage) -> bool:
        try:
            verdict, undo = self._speculation.on_server_event(event, frame)
        except Exception:  # a malformed server event must not end the session
            logger.exception("failed to screen a server event", extra={"type": event["type"]})
            return True
        for client_event in undo:
            self.send_event(client_event)
        return verdict is Verdict.PASS

    def _commit_turn(self, turn: bytes) -> None:
        self.send_event(wire.input_audio_commit_event())
        self.send_event(
            wire.response_create_event(event_id=wire.new_event_id(_TURN_RESPONSE_PREFIX))
        )
        self._pushed_duration_s = 0
        self._response_requested = True
        self._cancel_sent = False
        self._unanswered_turn = turn
        self._unanswered_item = None  # known once the server's committed event names it

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
        if self._cancel_sent:
            return
        if self.has_active_generation or self._response_requested:
            self.send_event(wire.response_cancel_event())
            self._cancel_sent = True

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
        if self._detector is not None:
            self._detector.reset()
            self._turn_audio.clear()

    async def _create_ws_conn(self) -> aiohttp.ClientWebSocketResponse:
        ws = await super()._create_ws_conn()
        self._socket = ServerSocket(ws, self._screen_server_event)
        return cast(aiohttp.ClientWebSocketResponse, self._socket)


def _is_gate_event(event: Any) -> bool:
    """An event the client-VAD gate queued: its audio, commits, clears and turn replies."""
    if not isinstance(event, dict):
        return False
    kind = event.get("type", "")
    if kind.startswith("input_audio_buffer."):
        return True
    event_id = str(event.get("event_id", ""))
    if event_id.startswith(UNDO_PREFIX):  # undoes a speculation the new server never had
        return True
    return kind == "response.create" and event_id.startswith(_TURN_RESPONSE_PREFIX)


def _wire_dict(td: TurnDetection | None) -> dict[str, Any] | None:
    return None if td is None else td.to_wire()

