"""Client turns: what the session does with the user's audio while client VAD decides turns.

I/O-free: the session pushes the microphone's audio and reports the server's response
events; the controller answers with :class:`TurnEffect` steps the session carries out on the
socket and as session events, in order.

Invariants:

* the bytes of every ``SEND`` since the last ``SPEECH_STARTED`` are the turn; a
  ``SPEECH_STOPPED`` is followed by exactly one ``COMMIT`` (the turn is answered) or one
  ``DISCARD`` (it is not: too short for the server to accept);
* at most one ``response.cancel`` per response: ``cancel_sent`` is set by :meth:`cancel`
  and cleared by the server's ``response.done`` or a new turn's commit;
* the unanswered turn is the last committed turn until its reply is done; it survives
  :meth:`reset` so a reconnect can send it again (:meth:`take_unanswered`);
* with a preemptive reply (:mod:`.speculation`), a ``PREEMPT`` commits the turn so far at the
  detector's pause point; the audio after it is held back until the turn resumes (``UNDO``,
  then that audio as a ``SEND``) or ends (``RELEASE`` instead of ``COMMIT``: the held
  silence is dropped). Every turn still ends in exactly one ``COMMIT``, ``RELEASE`` or
  ``DISCARD``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from .client_vad import ClientTurnDetector, GateAction
from .speculation import SPECULATION_PREFIX, PreemptiveOptions, Speculation
from .wire import SAMPLE_RATE

__all__ = ["ClientTurns", "Effects", "TurnEffect", "TURN_RESPONSE_PREFIX", "MIN_COMMIT_BYTES"]

TURN_RESPONSE_PREFIX = "turn_response_"  # event ids of the response.create sent for a turn
assert SPECULATION_PREFIX.startswith(TURN_RESPONSE_PREFIX)  # a preemptive reply is one too
# the server rejects commits under 100 ms (input_audio_buffer_commit_empty)
MIN_COMMIT_BYTES = SAMPLE_RATE * 2 // 10


class TurnEffect(Enum):
    SEND = "send"  # append these bytes to the server's input buffer
    SPEECH_STARTED = "speech_started"  # tell the framework the user started speaking
    SPEECH_STOPPED = "speech_stopped"  # ...and stopped
    COMMIT = "commit"  # commit the buffer and ask for a reply (data: the turn's audio)
    DISCARD = "discard"  # clear the server's buffer: the turn is not answered
    PREEMPT = "preempt"  # commit the buffer, send this speculative response.create (data)
    UNDO = "undo"  # send these client events (data): they undo the speculative reply
    RELEASE = "release"  # the turn ended: hand the held reply upstream (data: a Release)


Effects = list[tuple[TurnEffect, Any]]


class ClientTurns:
    """The client-VAD turn state of one session (invariants in the module docstring).

    The response bookkeeping runs in every mode (one cancel per response); the audio path
    only between :meth:`start` and :meth:`stop`.
    """

    def __init__(self) -> None:
        self._detector: ClientTurnDetector | None = None
        self._turn_audio = bytearray()
        self._since_commit = 0  # bytes of the turn sent since its last commit
        self.speculation: Speculation[Any] = Speculation()
        self.unanswered_turn: bytes | None = None  # a committed turn whose reply is not done
        # the server's conversation item for that turn (from its input_audio_buffer.committed)
        self.unanswered_item: str | None = None
        self.reset()

    def reset(self) -> None:
        """A new socket: no turn in progress, no response pending (the unanswered turn
        stays, for :meth:`take_unanswered`)."""
        if self._detector is not None:
            self._detector.reset()
        self._turn_audio.clear()
        self._since_commit = 0
        self.speculation.reset()  # nothing held on the old socket will arrive
        self.response_requested = False  # our response.create is out, response.created not in
        self.cancel_sent = False  # a response.cancel is out for the current response

    @property
    def running(self) -> bool:
        """Client VAD decides the turns (else the server, the framework or the app does)."""
        return self._detector is not None

    def start(self, detector: ClientTurnDetector) -> None:
        """Client VAD takes over; nothing pushed before is part of a turn."""
        self._detector = detector
        self._turn_audio.clear()

    def stop(self) -> None:
        """Client VAD hands over (mid-turn, every byte of the turn has been sent already)."""
        self._detector = None
        self._turn_audio.clear()

    @property
    def speaking(self) -> bool:
        return self._detector is not None and self._detector.speaking

    # -- the user's audio -------------------------------------------------------------------

    def push(
        self,
        pcm16: bytes | memoryview,
        *,
        generation_active: bool = False,
        preemptive: Callable[[], PreemptiveOptions] | None = None,
    ) -> Effects:
        """``generation_active``: a reply is being generated (no speculation then);
        ``preemptive``: the options to speculate by, asked at a pause point (None: never)."""
        assert self._detector is not None, "push() while client VAD is not running"
        effects: Effects = []
        for action, data in self._detector.push(pcm16):
            if action is GateAction.SEND:
                if not self.speculation.hold_audio(data):
                    self._sent(data, effects)
            elif action is GateAction.SPEECH_STARTED:
                self._turn_audio.clear()
                self._since_commit = 0
                effects.append((TurnEffect.SPEECH_STARTED, b""))
            elif action is GateAction.PAUSED:
                effects.extend(self._pause(generation_active, preemptive))
            elif action is GateAction.RESUMED:
                effects.extend(self._resume())
            else:
                effects.extend(self._end_turn())
        return effects

    def _sent(self, data: bytes, effects: Effects) -> None:
        self._turn_audio += data
        self._since_commit += len(data)
        effects.append((TurnEffect.SEND, data))

    def _pause(
        self, generation_active: bool, preemptive: Callable[[], PreemptiveOptions] | None
    ) -> Effects:
        spec = self.speculation
        if preemptive is None or self._detector is None:
            return []
        spec.opts = preemptive()
        busy = generation_active or self.response_requested
        if self._since_commit < MIN_COMMIT_BYTES or not spec.should_speculate(
            speech_s=self._detector.speech_s, other_response_active=busy
        ):
            return []
        create = spec.start()
        self.committed(bytes(self._turn_audio))  # a reconnect now answers the turn so far
        return [(TurnEffect.PREEMPT, create)]

    def _resume(self) -> Effects:
        undo, held = self.speculation.cancel()
        effects: Effects = []
        if undo:
            self.response_requested = False
            effects.append((TurnEffect.UNDO, undo))
        if held:
            self._sent(held, effects)  # it belongs to the turn, which goes on
        return effects

    def clear_turn(self) -> Effects:
        """The app threw the turn in progress away (``clear_audio``): a held reply is undone."""
        if self._detector is not None:
            self._detector.reset()
        self._turn_audio.clear()
        self._since_commit = 0
        undo, _ = self.speculation.cancel()
        if undo:
            self.response_requested = False
        self.speculation.end_turn()
        return [(TurnEffect.UNDO, undo)] if undo else []

    def _end_turn(self) -> Effects:
        turn = bytes(self._turn_audio)
        self._turn_audio.clear()
        self._since_commit = 0
        release = self.speculation.confirm()  # the held silence after the commit is dropped
        self.speculation.end_turn()
        if release is not None:
            if release.needs_reply:
                self.response_requested = True
            return [(TurnEffect.SPEECH_STOPPED, b""), (TurnEffect.RELEASE, release)]
        if len(turn) < MIN_COMMIT_BYTES:
            return [(TurnEffect.SPEECH_STOPPED, b""), (TurnEffect.DISCARD, b"")]
        self.committed(turn)
        return [(TurnEffect.SPEECH_STOPPED, b""), (TurnEffect.COMMIT, turn)]

    def committed(self, turn: bytes) -> None:
        """``turn`` is committed and its reply requested (a new turn, or one sent again)."""
        self.response_requested = True
        self.cancel_sent = False
        self.unanswered_turn = turn
        self.unanswered_item = None  # known once the server's committed event names it

    def take_unanswered(self) -> bytes | None:
        turn, self.unanswered_turn = self.unanswered_turn, None
        return turn

    # -- responses --------------------------------------------------------------------------

    def cancel(self, *, generation_active: bool) -> bool:
        """Should a ``response.cancel`` go out now? Once per response."""
        if self.cancel_sent or not (generation_active or self.response_requested):
            return False
        self.cancel_sent = True
        return True

    def on_response_created(self) -> None:
        self.response_requested = False

    def on_response_refused(self) -> None:
        """An ``error`` answered our turn's ``response.create``."""
        self.response_requested = False

    def on_committed(self, item_id: object) -> None:
        # the first commit after ours is ours: the server answers in order
        if self.unanswered_turn is not None and self.unanswered_item is None:
            if isinstance(item_id, str):
                self.unanswered_item = item_id

    def on_response_done(self) -> None:
        self.cancel_sent = False
        self.unanswered_turn = None
        self.unanswered_item = None
