"""Client turns: what the session does with the user's audio while client VAD decides turns.

I/O-free: the session pushes the microphone's audio and reports the server's response
events; the controller answers with :class:`TurnEffect` steps the session carries out on the
socket and as session events, in order.

Invariants:

* the bytes of every ``SEND`` since the last ``SPEECH_STARTED`` are the turn; its end is
  one ``SPEECH_STOPPED`` (``HELD_STOP`` for a turn that was held) followed by exactly one
  ``COMMIT`` (the turn is answered) or one ``DISCARD`` (it is not: too short for the server,
  a false interruption, or cleared by the app);
* every ``COMMIT`` is answered by exactly one ``REPLY``: at once, or, while another response
  is active on the server, when that response is done;
* a held onset (speech over a reply the session may not simply cancel, see :meth:`hold`)
  becomes ``BARGE_IN`` once the turn is long enough to hold ``min_duration`` of speech, and
  only then is the framework told the user started (``SPEECH_STARTED`` is never emitted for
  it); a held turn that ends shorter is a false interruption (``DISCARD``);
* at most one ``response.cancel`` per response: ``cancel_sent`` is set by :meth:`cancel`
  and cleared by the server's ``response.done`` or a new turn's reply;
* the unanswered turn is the last committed turn until its reply is done; it survives
  :meth:`reset` so a reconnect can send it again (:meth:`take_unanswered`);
* with a preemptive reply (:mod:`.speculation`), a ``PREEMPT`` commits the turn so far at the
  detector's pause point and asks for its reply; the audio after it is held back until the
  turn resumes (``UNDO``, then that audio as a ``SEND``) or ends (``SPEECH_STOPPED`` then
  ``RELEASE`` instead of ``COMMIT``: the held silence is dropped). There is no speculation
  while any other response is active, requested or pending, or for a held onset.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from .client_vad import ClientTurnDetector, GateAction
from .speculation import SPECULATION_PREFIX, PreemptiveOptions, Speculation
from .turn_detection import ClientVad
from .wire import SAMPLE_RATE

__all__ = ["ClientTurns", "Effects", "TurnEffect", "TURN_RESPONSE_PREFIX", "MIN_COMMIT_BYTES"]

TURN_RESPONSE_PREFIX = "turn_response_"  # event ids of the response.create sent for a turn
assert SPECULATION_PREFIX.startswith(TURN_RESPONSE_PREFIX)  # a preemptive reply is one too
_BYTES_PER_S = SAMPLE_RATE * 2
# the server rejects commits under 100 ms (input_audio_buffer_commit_empty)
MIN_COMMIT_BYTES = _BYTES_PER_S // 10
# quiet this long at a hand-over: the turn is over (its trailing silence has begun); shorter
# is a pause between words, and the turn goes on under the server's VAD
TRAILING_SILENCE_BYTES = _BYTES_PER_S * 15 // 100


class TurnEffect(Enum):
    SEND = "send"  # append these bytes to the server's input buffer
    SPEECH_STARTED = "speech_started"  # tell the framework the user started speaking
    SPEECH_STOPPED = "speech_stopped"  # ...and stopped
    HELD_START = "held_start"  # speech over a reply: the user speaks, nothing is cut yet
    BARGE_IN = "barge_in"  # the held speech is long enough: interrupt the reply now
    HELD_STOP = "held_stop"  # a held turn ended (data: its audio; the framework was never
    # told it started)
    COMMIT = "commit"  # commit the buffer (data: the turn's audio)
    REPLY = "reply"  # ask for the committed turn's reply
    DISCARD = "discard"  # clear the server's buffer: the turn is not answered
    PREEMPT = "preempt"  # commit the buffer, send this speculative response.create (data)
    UNDO = "undo"  # send these client events (data): they undo the speculative reply
    RELEASE = "release"  # the turn ended: hand the held reply upstream (data: a Release)


Effects = list[tuple[TurnEffect, Any]]


class ClientTurns:
    """The client-VAD turn state of one session (invariants in the module docstring).

    The response bookkeeping runs in every mode (one cancel per response, replies deferred
    while another response is active); the audio path only between :meth:`start` and
    :meth:`stop`.
    """

    def __init__(self) -> None:
        self._detector: ClientTurnDetector | None = None
        self._lead_bytes = 0  # the turn's audio before its onset (not speech)
        self._silence_bytes = 0
        self._turn_audio = bytearray()
        self.ended_quiet_bytes = 0  # at the last turn's end: its audio after the last speech
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
        self._clear_turn_audio()
        self.speculation.reset()  # nothing held on the old socket will arrive
        self._held = False  # the turn's onset is held (see hold())
        self._hooked = False  # ...or was: its start and end go to the framework's VAD path
        self._barge_in_bytes: int | None = None  # turn length that confirms a held onset
        self._min_speech_bytes = 0
        self.response_requested = False  # our response.create is out, response.created not in
        self.response_active = False  # the server has a response in progress
        self.reply_pending = False  # a committed turn waits for the active response to end
        self.cancel_sent = False  # a response.cancel is out for the current response

    @property
    def running(self) -> bool:
        """Client VAD decides the turns (else the server, the framework or the app does)."""
        return self._detector is not None

    def start(self, detector: ClientTurnDetector, opts: ClientVad) -> None:
        """Client VAD takes over; nothing pushed before is part of a turn."""
        self._detector = detector
        self._silence_bytes = opts.silence_duration_ms * _BYTES_PER_S // 1000
        self._clear_turn_audio()
        self._held = self._hooked = False

    def stop(self) -> None:
        """Client VAD hands over (mid-turn, every byte of the turn has been sent already)."""
        self._detector = None
        self._clear_turn_audio()
        self._held = self._hooked = False

    @property
    def speaking(self) -> bool:
        return self._detector is not None and self._detector.speaking

    @property
    def lead_bytes(self) -> int:
        """How much of the last turn to start was sent before its onset (not speech)."""
        return self._lead_bytes

    @property
    def turn_bytes(self) -> int:
        """How much of the turn in progress has been sent."""
        return len(self._turn_audio)

    # -- the user's audio -------------------------------------------------------------------

    def push(
        self,
        pcm16: bytes | memoryview,
        *,
        generation_active: bool = False,
        preemptive: Callable[[], PreemptiveOptions] | None = None,
    ) -> Effects:
        """Feed microphone audio. ``generation_active``: a reply is being generated or was
        asked for by someone else (the app), so a turn ending now waits for it.
        ``preemptive``: the options to speculate by, asked at a pause point (None: never)."""
        assert self._detector is not None, "push() while client VAD is not running"
        effects: Effects = []
        for action, data in self._detector.push(pcm16):
            if action is GateAction.SEND:
                if self.speculation.hold_audio(data):
                    continue  # after a speculative commit: kept until the turn resumes
                self._add_turn_audio(data)
                effects.append((TurnEffect.SEND, data))
                if self._held and self._barge_in_bytes is not None:
                    if self._confirms_barge_in():
                        self._held = False
                        effects.append((TurnEffect.BARGE_IN, b""))
            elif action is GateAction.SPEECH_STARTED:
                self._lead_bytes = self._detector.lead_bytes
                self._clear_turn_audio()
                self._held = self._hooked = False
                effects.append((TurnEffect.SPEECH_STARTED, b""))
            elif action is GateAction.PAUSED:
                effects.extend(self._pause(generation_active, preemptive))
            elif action is GateAction.RESUMED:
                effects.extend(self._resume())
            else:
                # the detector ends a turn exactly one silence window after its speech end
                effects.extend(self._end_turn(generation_active, self._silence_bytes))
        return effects

    def _pause(
        self, generation_active: bool, preemptive: Callable[[], PreemptiveOptions] | None
    ) -> Effects:
        """The detector's pause point: speculate (commit the turn so far, ask its reply)?"""
        if preemptive is None or self._detector is None or self._hooked:
            return []
        spec = self.speculation
        spec.opts = preemptive()
        busy = (
            generation_active
            or self.response_active
            or self.response_requested
            or self.reply_pending
        )
        if self._since_commit < MIN_COMMIT_BYTES or not spec.should_speculate(
            speech_s=self._detector.speech_s, other_response_active=busy
        ):
            return []
        create = spec.start()
        self._since_commit = 0
        # a reconnect before the reply is released answers the turn as committed so far
        self.unanswered_turn = bytes(self._turn_audio)
        self.unanswered_item = None
        self.response_requested = True
        self.cancel_sent = False
        return [(TurnEffect.PREEMPT, create)]

    def _resume(self) -> Effects:
        """Voice again inside the window: undo the speculation, the turn goes on."""
        undo, held = self.speculation.cancel()
        effects: Effects = []
        if undo:
            self.response_requested = False
            effects.append((TurnEffect.UNDO, undo))
        if held:
            self._add_turn_audio(held)  # it belongs to the turn
            effects.append((TurnEffect.SEND, held))
        return effects

    def hold(self, min_duration_s: float | None) -> Effects:
        """The onset just reported (``SPEECH_STARTED``) is over a reply the session may not
        simply cancel: with ``min_duration_s``, it interrupts only once the detector has heard
        that much speech (at the latest once the turn is lead + min_duration + silence long;
        a turn ending sooner is measured as it ends); with
        ``None`` (the reply is not interruptible) it never does. Replaces the
        ``SPEECH_STARTED`` with ``HELD_START``."""
        self._held = self._hooked = True
        if min_duration_s is None:
            self._barge_in_bytes = None
            return [(TurnEffect.HELD_START, b"")]
        self._min_speech_bytes = int(min_duration_s * _BYTES_PER_S)
        self._barge_in_bytes = self._lead_bytes + self._min_speech_bytes + self._silence_bytes
        if self._confirms_barge_in():
            self._held = False
            return [(TurnEffect.HELD_START, b""), (TurnEffect.BARGE_IN, b"")]
        return [(TurnEffect.HELD_START, b"")]

    def _confirms_barge_in(self) -> bool:
        """The held onset has ``min_duration`` of speech: from the detector as it hears it,
        or at the latest once the turn is as long as a turn with that much speech."""
        assert self._barge_in_bytes is not None
        if len(self._turn_audio) >= self._barge_in_bytes:
            return True
        speech_s = self._detector.speech_s if self._detector is not None else 0.0
        return speech_s * _BYTES_PER_S >= self._min_speech_bytes

    def clear_turn(self) -> Effects:
        """The app threw the turn in progress away (``clear_audio``): it ends here, and a
        speculative reply with it."""
        was_speaking, held = self.speaking, self._hooked
        if self._detector is not None:
            self._detector.reset()
        self._clear_turn_audio()
        self._held = self._hooked = False
        undo, _ = self.speculation.cancel()
        self.speculation.end_turn()
        effects: Effects = []
        if undo:
            self.response_requested = False
            effects.append((TurnEffect.UNDO, undo))
        if was_speaking:
            effects.append((TurnEffect.HELD_STOP if held else TurnEffect.SPEECH_STOPPED, b""))
        return effects

    def hand_over(self, *, generation_active: bool = False) -> Effects:
        """Turn detection moves to the server. A turn in its trailing silence is finished
        here (committed and answered: the server's VAD would never see it end); a turn still
        spoken goes on, every byte of it already sent, for the server's VAD to end."""
        # a speculative reply is out: the turn was heard ending (committed at its pause point)
        quiet = self._quiet_bytes()
        ending = self.speculation.pending or quiet >= TRAILING_SILENCE_BYTES
        if not self.speaking or not ending:
            return []
        assert self._detector is not None
        self._detector.reset()  # the turn ends here, whatever comes next
        return self._end_turn(generation_active, quiet)

    def _end_turn(self, generation_active: bool, quiet: int) -> Effects:
        # quiet: how long ago the speech stopped (the held audio of a speculation included)
        self.ended_quiet_bytes = quiet
        release = self.speculation.confirm()  # the held silence after the commit is dropped
        self.speculation.end_turn()
        if release is not None:
            self._clear_turn_audio()
            self._held = self._hooked = False
            effects: Effects = [(TurnEffect.SPEECH_STOPPED, b""), (TurnEffect.RELEASE, release)]
            if not release.needs_reply:
                return effects
            # the server refused the speculative response.create: ask again, as for any turn
            if self.response_active or generation_active:
                self.reply_pending = True
                return effects
            return [*effects, *self._reply()]
        turn = bytes(self._turn_audio)
        self._clear_turn_audio()
        held, self._held = self._held, False
        hooked, self._hooked = self._hooked, False
        stop = (TurnEffect.HELD_STOP, turn) if hooked else (TurnEffect.SPEECH_STOPPED, b"")
        if held and self._barge_in_bytes is not None:
            speech = len(turn) - self._lead_bytes - self._silence_bytes
            if speech < self._min_speech_bytes:
                return [stop, (TurnEffect.DISCARD, b"")]  # a false interruption
            return [(TurnEffect.BARGE_IN, b""), stop, *self._commit(turn, generation_active)]
        if len(turn) < MIN_COMMIT_BYTES:
            return [stop, (TurnEffect.DISCARD, b"")]
        return [stop, *self._commit(turn, generation_active)]

    def _clear_turn_audio(self) -> None:
        self._turn_audio.clear()
        self._since_commit = 0

    def _add_turn_audio(self, data: bytes) -> None:
        self._turn_audio += data
        self._since_commit += len(data)

    def _quiet_bytes(self) -> int:
        # the detector's own speech end: the one its silence window is counted from
        return self._detector.quiet_bytes if self._detector is not None else 0

    @property
    def quiet_bytes(self) -> int:
        """The turn's scored audio after its last speech (its trailing silence, or a pause;
        audio a speculation holds back included), as of the end of the last push."""
        return self._quiet_bytes()

    def _commit(self, turn: bytes, generation_active: bool) -> Effects:
        self.unanswered_turn = turn
        self.unanswered_item = None  # known once the server's committed event names it
        if self.response_active or generation_active:
            self.reply_pending = True
            return [(TurnEffect.COMMIT, turn)]
        return [(TurnEffect.COMMIT, turn), *self._reply()]

    def _reply(self) -> Effects:
        self.reply_pending = False
        self.response_requested = True
        self.cancel_sent = False
        return [(TurnEffect.REPLY, b"")]

    def committed(self, turn: bytes) -> Effects:
        """Commit ``turn`` and ask its reply: a turn sent again, whole (after a reconnect), or
        the server's VAD turn at a hand-over (``b""``: the server holds its audio)."""
        return self._commit(turn, False)

    def take_unanswered(self) -> bytes | None:
        turn, self.unanswered_turn = self.unanswered_turn, None
        self.reply_pending = False
        return turn

    # -- responses --------------------------------------------------------------------------

    def cancel(self, *, generation_active: bool) -> bool:
        """Should a ``response.cancel`` go out now? Once per response; never for a held
        speculative reply (nothing of it plays: the user's voice or the turn's end settles it)."""
        if self.speculation.pending and not generation_active:
            return False
        if self.cancel_sent or not (generation_active or self.response_requested):
            return False
        self.cancel_sent = True
        return True

    def on_response_created(self) -> None:
        self.response_requested = False
        self.response_active = True

    def on_response_refused(self) -> Effects:
        """An ``error`` answered a ``response.create`` (ours, or the app's)."""
        self.response_requested = False
        return self._reply() if self.reply_pending and not self.response_active else []

    def on_committed(self, item_id: object) -> None:
        # the first commit after ours is ours: the server answers in order
        if self.unanswered_turn is not None and self.unanswered_item is None:
            if isinstance(item_id, str):
                self.unanswered_item = item_id

    def on_response_done(self) -> Effects:
        self.response_active = False
        self.cancel_sent = False
        if self.reply_pending:
            return self._reply()  # the turn that waited for this response is answered now
        self.unanswered_turn = None
        self.unanswered_item = None
        return []
