"""The session's client-VAD side: audio through the client-turns controller, the floor
(the AgentSession's interruption rules), hand-overs of turn detection and the reconnect.

``TurnTakingSession`` is the upstream session plus this glue; ``RealtimeSession`` (in
``realtime.py``) adds the ``session.update`` negotiation and decides, through
``_sync_turn_taking``, when client VAD runs. Everything here only carries out what
:class:`._client_turns.ClientTurns` decides.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, Literal

import aiohttp
from livekit import rtc
from livekit.agents import llm, utils
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from . import wire
from ._client_turns import TURN_RESPONSE_PREFIX, ClientTurns, Effects, TurnEffect
from ._framework import Floor
from ._socket import ServerSocket, is_gate_event
from ._upstream import UpstreamRealtimeSession
from .log import logger
from .speculation import PreemptiveOptions, Verdict
from .turn_detection import ClientVad, TurnDetection

__all__ = ["TurnTakingSession"]

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


class TurnTakingSession(UpstreamRealtimeSession):
    """The upstream session with client-VAD turn taking (see the module docstring)."""

    def _init_turn_taking(self, client_vad: ClientVad | None) -> None:
        """Called before upstream's ``__init__`` (which already sends)."""
        self._client_vad_opts = client_vad
        self._turns = ClientTurns()
        self._floor = Floor()
        self._socket: ServerSocket | None = None  # the current connection's
        self._server_turn_open = False  # the server's VAD heard speech it has not ended yet
        # when the client-VAD turn being sent started / stopped (wall clock), and per commit
        # not yet confirmed by the server, in order; then per conversation item
        self._turn_started_at = self._turn_stopped_at = 0.0
        self._commit_times: collections.deque[tuple[float, float]] = collections.deque()
        self._stopped_at: dict[str, float] = {}

    def _effective_turn_detection(self) -> TurnDetection | None:
        """What the server runs (``RealtimeSession`` knows)."""
        raise NotImplementedError

    def _on_turn_event(self, kind: Any, event: dict[str, Any]) -> None:
        """A server event about responses and turns."""
        if kind == "response.created":
            self._turns.on_response_created()
        elif kind == "input_audio_buffer.committed":
            self._server_turn_open = False
            self._turns.on_committed(event.get("item_id"))
            self._stamp_turn(event.get("item_id"))
        elif kind in _SERVER_TURN_EVENTS:
            self._server_turn_open = _SERVER_TURN_EVENTS[kind]
        elif kind == "response.done":
            self._carry_out(self._turns.on_response_done())

    def _on_create_refused(self, event_id: Any) -> None:
        """An ``error`` answered the client event ``event_id``."""
        if isinstance(event_id, str) and event_id.startswith(_RESPONSE_CREATE_PREFIXES):
            self._carry_out(self._turns.on_response_refused())

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
            effects = self._turns.push(
                f.data,
                generation_active=self.has_active_generation,
                preemptive=self._preemptive_options,
            )
            if effects:
                self._carry_out(effects)

    def on(self, event: Any, callback: Any = None) -> Any:
        if callback is not None and event == "input_speech_started":
            self._floor.attach(callback)  # the AgentActivity driving this session, if any
        return super().on(event, callback)

    def _carry_out(self, effects: Effects) -> None:
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
            elif effect is TurnEffect.PREEMPT:
                self._append_audio(self._bstream.flush())
                self.send_event(wire.input_audio_commit_event())
                self.send_event(data)  # the speculative response.create
                self._pushed_duration_s = 0
                stopped = time.time() - self._turns.quiet_bytes / _BYTES_PER_S
                self._commit_times.append((self._turn_started_at, stopped))
            elif effect is TurnEffect.UNDO:
                for event in data:
                    self.send_event(event)
            elif effect is TurnEffect.RELEASE:
                # committed at the pause point: the held reply goes upstream now, in order
                if self._socket is not None:
                    self._socket.release(data.held)
                self._floor.end_of_utterance(time.time() - self._turn_stopped_at)

    def _screen_server_event(self, event: dict[str, Any], frame: aiohttp.WSMessage) -> bool:
        """Before upstream sees a server event: hand it on now (True), or keep it (held for a
        preemptive reply, or dropped as part of an undone one)."""
        try:
            verdict, undo = self._turns.speculation.on_server_event(event, frame)
        except Exception:  # a malformed server event must not end the session
            logger.exception("failed to screen a server event", extra={"type": event["type"]})
            return True
        for client_event in undo:
            self.send_event(client_event)
        return verdict is Verdict.PASS

    def _preemptive_options(self) -> PreemptiveOptions:
        """``turn_handling["preemptive_generation"]`` of the AgentSession driving this session;
        off when no AgentSession consumes its replies."""
        opts = self._floor.preemptive_generation() if self._floor.attached else None
        if opts is None:
            return PreemptiveOptions(enabled=False)
        return PreemptiveOptions.from_turn_handling(opts)

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
            # what was sent before the onset (the prefix, or a gap in noise) is not speech
            padding_s = silence_s + self._turns.lead_bytes / _BYTES_PER_S
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
