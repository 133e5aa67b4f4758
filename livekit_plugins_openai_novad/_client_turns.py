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
  :meth:`reset` so a reconnect can send it again (:meth:`take_unanswered`).
"""

from __future__ import annotations

from enum import Enum

from .client_vad import ClientTurnDetector, GateAction
from .wire import SAMPLE_RATE

__all__ = ["ClientTurns", "TurnEffect", "TURN_RESPONSE_PREFIX", "MIN_COMMIT_BYTES"]

TURN_RESPONSE_PREFIX = "turn_response_"  # event ids of the response.create sent for a turn
# the server rejects commits under 100 ms (input_audio_buffer_commit_empty)
MIN_COMMIT_BYTES = SAMPLE_RATE * 2 // 10


class TurnEffect(Enum):
    SEND = "send"  # append these bytes to the server's input buffer
    SPEECH_STARTED = "speech_started"  # tell the framework the user started speaking
    SPEECH_STOPPED = "speech_stopped"  # ...and stopped
    COMMIT = "commit"  # commit the buffer and ask for a reply (data: the turn's audio)
    DISCARD = "discard"  # clear the server's buffer: the turn is not answered


Effects = list[tuple[TurnEffect, bytes]]


class ClientTurns:
    """The client-VAD turn state of one session (invariants in the module docstring).

    The response bookkeeping runs in every mode (one cancel per response); the audio path
    only between :meth:`start` and :meth:`stop`.
    """

    def __init__(self) -> None:
        self._detector: ClientTurnDetector | None = None
        self._turn_audio = bytearray()
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

    def push(self, pcm16: bytes | memoryview) -> Effects:
        assert self._detector is not None, "push() while client VAD is not running"
        effects: Effects = []
        for action, data in self._detector.push(pcm16):
            if action is GateAction.SEND:
                self._turn_audio += data
                effects.append((TurnEffect.SEND, data))
            elif action is GateAction.SPEECH_STARTED:
                self._turn_audio.clear()
                effects.append((TurnEffect.SPEECH_STARTED, b""))
            else:
                effects.extend(self._end_turn())
        return effects

    def clear_turn(self) -> None:
        """The app threw the turn in progress away (``clear_audio``)."""
        if self._detector is not None:
            self._detector.reset()
        self._turn_audio.clear()

    def _end_turn(self) -> Effects:
        turn = bytes(self._turn_audio)
        self._turn_audio.clear()
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
