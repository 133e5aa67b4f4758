"""Client-side turn detection with Silero, and the audio gate that rides on it.

Runs while the server is not detecting turns. Audio is cut into 32 ms windows of the
24 kHz stream the server receives; each window is scored by Silero (at 16 kHz, after an exact
3:2 interpolation, so a window boundary in the VAD is a sample boundary on the wire). The
gate decisions are therefore sample exact: a turn sends ``prefix_padding_ms`` before the
detected onset of the sound, every speech sample, and ``silence_duration_ms`` of trailing
silence counted from the last speech sound (dated by energy against the noise, where the noise
leaves room for it); the silence between turns is not sent, except where the noise could
bury a word's quiet edge: then a turn also takes the gap before it (up to 4 s), so a tail or a
start nobody heard is committed, not dropped. Bytes are forwarded unmodified
and in order, and the result does not depend on how the audio is split into pushes.

Inference runs inline, on the runtime ``silero_runtime`` picks (~0.03 ms a window natively).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import numpy as np

from . import silero_runtime
from ._babble import BabbleGuard
from ._noise import MIN_NOISE_DB, NoiseTracker
from ._window import WINDOW_BYTES, WINDOW_SAMPLES, WindowMath
from .turn_detection import ClientVad
from .wire import SAMPLE_RATE

__all__ = ["ClientTurnDetector", "GateAction", "WINDOW_SAMPLES", "WINDOW_BYTES"]

_SAMPLES_PER_MS = SAMPLE_RATE // 1000


def _silero_scorer() -> Callable[[np.ndarray], float]:
    return silero_runtime.new_scorer()


class GateAction(Enum):
    SEND = "send"  # forward these bytes to the server
    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"  # the turn is over: commit what was sent
    PAUSED = "paused"  # preemptive_after_ms into the trailing silence (the turn may end)
    RESUMED = "resumed"  # a speech sound after PAUSED: the turn goes on


_STEP_BYTES = 10 * _SAMPLES_PER_MS * 2  # 10 ms: the gate's decision granularity
_SUBFRAME_BYTES = WINDOW_BYTES // 3  # ~10.7 ms: the resolution of the speech end
_ABOVE_NOISE_DB = 6.0  # a third this far over the noise is a sound (loud)...
_BELOW_PEAK_DB = 40.0  # ...unless it is this far below the turn's loudest sound
_ONSET_OVER_NOISE_DB = 3.0  # a window that may start a turn has a third this far over it
_MEAN_ROOM_DB = 6.0  # ...over the noise's mean level, which counts up to this far over its floor
_ONSET_QUIET_WINDOWS = 5  # this many quiet windows in a row end a sound (a short dip does not)
_GROUP_QUIET_WINDOWS = 12  # ...and a group of them: a turn is sent from the group's start (a
# pause inside a turn is shorter; a word before it that Silero did not vote for is not dropped)
_MAX_LAG_WINDOWS = 6  # Silero stays sure at most this long after a sound
_TRUST_SILERO_BELOW = 3 * WINDOW_BYTES  # a lag this short: energy cannot see the speech end
_ROOM_DB = (20.0, 40.0)  # energy room under the peak where it dates the end: not at all .. fully
_STRONG_OVER_NOISE_DB = 12.0  # a sound this far over the noise...
_STRONG_BELOW_PEAK_DB = 20.0  # ...and this close to the turn's peak keeps a turn going
_STRONG_MAX_BYTES = 32 * WINDOW_BYTES  # ...for up to ~1 s after Silero last heard speech
_REVIVE_BYTES = 10 * WINDOW_BYTES  # a sound this soon after the last voiced window is speech
_LOOKBACK_BYTES = 32 * WINDOW_BYTES  # how far back a loud run may date a turn's onset
# idle, this soon after a sound this far over the noise's mean, a window is the sound's tail:
# it votes at the unlifted threshold and does not teach the noise Silero's score (in babble
# Silero may score a loud word low and only its soft end high, while the word lifts the noise)
_TAIL_BYTES = 16 * WINDOW_BYTES
_TAIL_OVER_NOISE_DB = 6.0
# where the noise is within this of the speech's peak, a word's quiet start or end may be
# under it (speech counts down to _BELOW_PEAK_DB under the peak, a sound needs _ABOVE_NOISE_DB)
_BURIED_ROOM_DB = _BELOW_PEAK_DB + _ABOVE_NOISE_DB
_GAP_HOLD_BYTES = 125 * WINDOW_BYTES  # ...then a turn also takes the gap before it, up to 4 s
# the held audio is trimmed in ~0.5 s pieces, at window ends (where it is trimmed decides how
# far back a turn can reach, so it must not depend on how the audio is pushed)
_TRIM_SLACK_BYTES = 16 * WINDOW_BYTES


class ClientTurnDetector:
    """Feeds 24 kHz PCM16 through Silero and returns what the gate must do, in order.

    Positions are absolute byte offsets in the stream pushed so far. Silero scores fixed
    32 ms windows; its probability is smoothed (``smoothing``) and read with hysteresis
    (``threshold`` to start, ``stop_threshold`` to keep going). Each window's three ~10.7 ms
    thirds are also measured in dBFS against estimates of the noise (``NoiseTracker``, learnt
    from every window that is not speech), whose Silero score lifts both thresholds (babble).

    * idle: audio is held. A turn starts after ``min_speech_ms`` of windows at or above
      ``threshold``, at least half of them standing out of the noise's mean level (so
      noise Silero half-believes does not start one; within ``_TAIL_BYTES`` after a sound
      ``_TAIL_OVER_NOISE_DB`` over that mean, a window votes at the unlifted ``threshold``
      and counts as standing out: a loud word Silero scores low in babble still starts a
      turn by its soft end; in babble, only soon after a periodic window, a vowel's (or a
      tone's), or one well over the noise, ``BabbleGuard``); it is sent from ``prefix_padding_ms``
      before where its group of sounds began (after the last ~0.4 s with neither energy nor
      Silero's vote, at most ``_LOOKBACK_BYTES`` back), and where the noise could bury a
      word's quiet edge (``_buried``), from where the last turn's audio ended (at most
      ``_GAP_HOLD_BYTES`` back); its onset, for ``speech_s``, is where its own sound began;
    * in a turn, every byte is forwarded as soon as it is pushed (scoring decides only
      where the turn ends);
    * the speech end is the end of the last *loud* third (over the noise, within
      ``_BELOW_PEAK_DB`` of the turn's peak) of a voiced window, and at least a sure window's
      end minus Silero's lag (``_lag_bytes``: long where the energy can see the real end,
      none in noise that buries it). A window between the thresholds is voiced if it is loud
      or the noise hides the speech. After the last voiced window, a loud third within
      ``_REVIVE_BYTES``, or a sound near the turn's level within ``_STRONG_MAX_BYTES``, moves
      the speech end too (a soft ending, a sibilant Silero does not take for speech). In
      babble, none of this moves it once ``BabbleGuard`` has heard nothing over the noise
      for 1 s (Silero scores babble as speech: the gap before the next turn is not a pause);
    * the turn ends exactly ``silence_duration_ms`` after the speech end, checked every 10 ms
      of audio (once the window holding it is scored, if a sound is going on: Silero may take
      it for speech); any later speech sound moves that deadline before it passes;
    * with ``preemptive_after_ms`` shorter than the window, ``PAUSED`` marks that point of
      the trailing silence once the window holding it is scored (everything before it has
      been sent, nothing after it; while paused, audio is released a window at a time), and a
      speech sound after the point gives ``RESUMED``; each pause
      ends in one of the two or in ``SPEECH_STOPPED``. ``speech_s`` is the turn's length from
      its onset to its speech end.

    Invariants: the bytes sent are the pushed bytes, unmodified and in order, each at most
    once; the decisions depend only on the audio, not on how it is split into pushes.
    """

    def __init__(
        self,
        opts: ClientVad,
        *,
        scorer: Callable[[np.ndarray], float] | None = None,
    ) -> None:
        self._opts = opts
        self._score = scorer or _silero_scorer()
        # a scorer with ``pcm16`` takes the 16 kHz window as int16 (no float round trip)
        self._score_pcm16: Callable[[np.ndarray], float] | None = getattr(
            self._score, "pcm16", None
        )
        self._math = WindowMath(pcm16=self._score_pcm16 is not None)
        self._prefix_bytes = opts.prefix_padding_ms * _SAMPLES_PER_MS * 2
        self._silence_bytes = opts.silence_duration_ms * _SAMPLES_PER_MS * 2
        self._onset_windows = max(1, -(-opts.min_speech_ms // 32))
        self._start_p = opts.threshold
        self._stop_p = opts.effective_stop_threshold
        self._keep = 1.0 - opts.smoothing
        self._hold_bytes = self._prefix_bytes + self._onset_windows * WINDOW_BYTES + _LOOKBACK_BYTES
        self._trim_at = self._hold_bytes + _TRIM_SLACK_BYTES  # audio held before a trim
        pre = opts.preemptive_after_ms
        self._pause_bytes: int | None = None
        if pre is not None and pre < opts.silence_duration_ms:
            self._pause_bytes = pre * _SAMPLES_PER_MS * 2
        self.reset()

    def reset(self) -> None:
        """Forget any turn in progress (the gate closes) and Silero's recurrent state."""
        reset = getattr(self._score, "reset", None)
        if reset is not None:
            reset()
        self._buf = bytearray()  # pushed audio from _buf_start on (unscored tail included)
        self._buf_start = 0
        self._scored = 0  # end of the audio Silero has scored
        self._sent = 0  # end of the audio released to the server
        self._prob = 0.0  # smoothed speech probability
        self._noise = NoiseTracker()
        self._babble = BabbleGuard()
        self._lifted = self._start_p, self._stop_p  # the thresholds, lifted by the noise
        self._voiced_run = 0  # idle: consecutive windows at or above threshold
        self._loud_in_run = 0  # ...and how many of them stand out of the noise
        self._loud_from = 0  # idle: where the current sound began
        self._group_from = 0  # idle: ...and the group of sounds it belongs to
        self._quiet_run = 0  # idle: consecutive windows with nothing over the noise
        self._tail_from = -_TAIL_BYTES - 1  # idle: where the last loud sound's tail begins
        self._speaking = False
        self._voiced_end = 0  # in a turn: end of the last voiced window
        self._speech_end = 0  # in a turn: where the last speech sound ended
        self._sounding = False  # in a turn: a sound after the speech end in the last window
        self._peak_db = MIN_NOISE_DB
        self._onset = 0  # in a turn: where its sound began
        self._lead = 0  # in a turn: how much of it was sent before its onset
        self._last_peak_db = MIN_NOISE_DB  # the last turn's loudest third
        self._gap_peak_db = MIN_NOISE_DB  # idle: the loudest third since the gap began
        self._pause_at: int | None = None  # in a turn: where PAUSED is due (nothing sent past it)
        self._paused_at: int | None = None  # PAUSED given here, not yet settled

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def speech_s(self) -> float:
        """The current turn's length from its onset to its speech end (0 when idle)."""
        if not self._speaking:
            return 0.0
        return max(0, self._speech_end - self._onset) / (2 * SAMPLE_RATE)

    @property
    def lead_bytes(self) -> int:
        """How much of the last turn to start was sent before its onset: the prefix padding,
        before it the rest of its group of sounds, and in noise that may bury a word's edges,
        the gap since the turn before (kept after the turn ends: a push may hold both)."""
        return self._lead

    @property
    def quiet_bytes(self) -> int:
        """Audio released after the turn's speech end: its trailing silence so far (at the
        turn's end, the whole window; 0 after :meth:`reset`)."""
        # only scored audio: Silero may yet hear speech in the window being filled
        return max(0, min(self._sent, self._scored) - self._speech_end)

    def push(self, pcm16: bytes | memoryview) -> list[tuple[GateAction, bytes]]:
        actions: list[tuple[GateAction, bytes]] = []
        size = len(pcm16) if isinstance(pcm16, bytes) else memoryview(pcm16).nbytes
        # the turn's end is checked at every 10 ms of the stream (absolute positions), so the
        # decisions are the same however the audio is split into pushes
        offset = (self._buf_start + len(self._buf)) % _STEP_BYTES
        if size == _STEP_BYTES and not offset:
            self._step(pcm16, actions, True)  # one 10 ms frame, the usual push
            return actions
        data = memoryview(pcm16).cast("B")
        i = 0
        while i < size:
            n = min(_STEP_BYTES - offset, size - i)
            self._step(data[i : i + n], actions, offset + n == _STEP_BYTES)
            i += n
            offset = 0
        return actions

    def _step(
        self, pcm16: bytes | memoryview, actions: list[tuple[GateAction, bytes]], check: bool
    ) -> None:
        """Take in audio up to (``check``: exactly to) the next 10 ms position of the stream."""
        self._buf += pcm16
        end = self._buf_start + len(self._buf)
        while self._scored + WINDOW_BYTES <= end:
            self._window(actions)
            if self._scored - self._buf_start > self._trim_at:
                self._trim()
        if self._speaking:
            deadline = self._speech_end + self._silence_bytes
            upto = min(end, deadline)
            # nothing after a pause point before PAUSED, and while paused only what is scored,
            # so PAUSED and RESUMED fall on the same bytes however the audio is pushed
            if self._paused_at is not None:
                upto = min(upto, self._scored)
            elif self._pause_at is not None:
                upto = min(upto, self._pause_at)
            self._release(upto, actions)
            # a sound still going at the deadline: Silero scores the window holding it first
            if check and end >= deadline and (self._scored >= deadline or not self._sounding):
                self._release(deadline, actions)
                self._end_turn(actions)

    def _bytes(self, start: int, stop: int) -> bytes:
        # one copy (slicing the bytearray first would make two); the view ends here
        with memoryview(self._buf) as view:
            return bytes(view[start - self._buf_start : stop - self._buf_start])

    def _release(self, upto: int, actions: list[tuple[GateAction, bytes]]) -> None:
        if upto > self._sent:
            actions.append((GateAction.SEND, self._bytes(self._sent, upto)))
            self._sent = upto

    def _window(self, actions: list[tuple[GateAction, bytes]]) -> None:
        start = self._scored
        self._scored = start + WINDOW_BYTES
        levels = self._math.load(self._buf, start - self._buf_start)
        loudest = max(levels)
        if not self._speaking and loudest < MIN_NOISE_DB:
            # no sound at all: Silero is not asked, the window counts as one it scored 0 (its
            # state was settled by the silence that ended the last turn, which it did score)
            p = 0.0
        else:
            y = self._math.resample()
            p = self._score(y) if self._score_pcm16 is None else self._score_pcm16(y)
        self._prob += self._keep * (float(p) - self._prob)
        noise = self._noise
        start_p, stop_p = self._lifted
        if not self._speaking or self._prob < stop_p:
            # (a window that starts a tail is not quiet either: it stands out of the noise)
            tail = not self._speaking and self._scored - self._tail_from <= _TAIL_BYTES
            quiet = loudest < noise.floor_db + _ABOVE_NOISE_DB and not tail
            noise.learn(sum(levels) / 3.0, p, quiet=quiet)
            # what Silero gives the noise alone does not count as a vote for speech
            self._lifted = noise.lift(self._start_p), noise.lift(self._stop_p)
        above_noise = noise.floor_db + _ABOVE_NOISE_DB
        # over the noise's mean, not its floor: a noise whose level swings (babble) does not
        # stand out of itself (at most _MEAN_ROOM_DB over the floor: a mean first learnt
        # from speech, after a reset mid-turn, must not hide the rest of the turn)
        ref = min(max(noise.floor_db, noise.mean_db), noise.floor_db + _MEAN_ROOM_DB)

        if not self._speaking:
            if loudest >= ref + _TAIL_OVER_NOISE_DB:
                self._tail_from = self._scored
            tail = self._scored - self._tail_from <= _TAIL_BYTES
            voted = self._prob >= (self._start_p if tail else start_p)
            self._gap_peak_db = max(self._gap_peak_db, loudest)
            loud = loudest >= ref + _ONSET_OVER_NOISE_DB
            heard = loudest >= noise.floor_db + _ONSET_OVER_NOISE_DB
            # the sound began after the last few windows in a row with neither energy over the
            # noise nor Silero's vote (a soft syllable between louder ones does not end it)
            quiet = not heard and self._prob < stop_p and not voted
            self._quiet_run = self._quiet_run + 1 if quiet else 0
            if self._quiet_run >= _ONSET_QUIET_WINDOWS:
                self._loud_from = self._scored
            if self._quiet_run >= _GROUP_QUIET_WINDOWS:
                self._group_from = self._scored
            if voted:
                self._voiced_run += 1
                self._loud_in_run += loud or tail
            else:
                self._voiced_run = self._loud_in_run = 0
            may_start = self._babble.may_start(self._math, loudest, ref, noise.p, self._scored)
            if (
                self._voiced_run >= self._onset_windows
                and 2 * self._loud_in_run >= self._voiced_run
                and may_start
            ):
                self._start_turn(actions)
            return

        self._peak_db = max(self._peak_db, loudest)
        loud_end = self._last_at_or_above(levels, max(above_noise, self._peak_db - _BELOW_PEAK_DB))
        lag = self._lag_bytes()
        if not self._babble.holds(loudest, ref, noise.p, self._scored):
            pass  # babble, long after the last sound heard: only the silence window runs
        elif self._prob >= start_p or (
            # in between the thresholds: speech if it is heard, or if noise hides it
            self._prob >= stop_p and (loud_end or lag < _TRUST_SILERO_BELOW)
        ):
            self._voiced_end = self._scored
            self._speech_end = max(self._speech_end, loud_end, self._scored - lag)
        elif loud_end and loud_end <= self._voiced_end + _REVIVE_BYTES:
            self._speech_end = max(self._speech_end, loud_end)
        else:
            # a sound near the turn's level, well over the noise, before the turn ends:
            # speech Silero does not recognise (a sibilant, a soft onset), not a pause
            strong = max(
                noise.floor_db + _STRONG_OVER_NOISE_DB, self._peak_db - _STRONG_BELOW_PEAK_DB
            )
            strong_end = self._last_at_or_above(levels, strong)
            if strong_end <= self._voiced_end + _STRONG_MAX_BYTES:
                self._speech_end = max(self._speech_end, strong_end)
        self._sounding = loud_end > self._speech_end
        if self._pause_bytes is not None:
            self._pause_point(actions)

    def _pause_point(self, actions: list[tuple[GateAction, bytes]]) -> None:
        if self._paused_at is not None:
            if self._speech_end <= self._paused_at:
                return  # every speech sound is before the point: the pause holds
            self._paused_at = None  # speech after the point: the turn goes on
            self._release(self._scored, actions)
            actions.append((GateAction.RESUMED, b""))
        assert self._pause_bytes is not None
        # never a point already sent (nothing past the scored audio is, see _step)
        pause_at = max(self._speech_end + self._pause_bytes, self._scored)
        if pause_at >= self._speech_end + self._silence_bytes:
            self._pause_at = None  # too late to pause this silence: the turn simply ends
        elif self._scored >= pause_at:
            self._release(pause_at, actions)
            actions.append((GateAction.PAUSED, b""))
            self._pause_at = None
            self._paused_at = pause_at
        else:
            self._pause_at = pause_at

    def _last_at_or_above(self, levels: list[float], db: float) -> int:
        """End of the window's last third at or above ``db`` (0 if none)."""
        for i in (2, 1, 0):
            if levels[i] >= db:
                return self._scored - WINDOW_BYTES + (i + 1) * _SUBFRAME_BYTES
        return 0

    def _lag_bytes(self) -> int:
        """How far before a sure window's end the sound may have ended.

        Silero stays sure for up to ``_MAX_LAG_WINDOWS`` after a sound; where the noise leaves
        enough room under the turn's peak, the energy finds the real end inside that lag. In
        noise the end of the speech is buried, and Silero's own end is the better date.
        """
        room = self._peak_db - self._noise.floor_db - _ABOVE_NOISE_DB
        share = min(1.0, max(0.0, (room - _ROOM_DB[0]) / (_ROOM_DB[1] - _ROOM_DB[0])))
        return int(round(share * _MAX_LAG_WINDOWS)) * WINDOW_BYTES

    def _buried(self) -> bool:
        """Could the noise hide a word's quiet edge (judged by the loudest sound since the
        last turn began)? Then the gap between turns may hold speech nobody heard."""
        peak = max(self._last_peak_db, self._gap_peak_db)
        return peak > MIN_NOISE_DB and peak - self._noise.floor_db < _BURIED_ROOM_DB

    def _gap_start(self) -> int:
        # idle, nothing is sent: where the sent audio ends, the last turn's audio ended
        return max(self._sent, self._scored - _GAP_HOLD_BYTES)

    def _start_turn(self, actions: list[tuple[GateAction, bytes]]) -> None:
        back = self._scored - self._onset_windows * WINDOW_BYTES - _LOOKBACK_BYTES
        onset = max(self._loud_from, back)
        release = max(min(onset, self._group_from), back) - self._prefix_bytes
        if self._buried():
            # sent, not dropped: the last turn's buried tail and this one's buried start
            release = min(release, self._gap_start())
        # never re-send what an earlier turn already took as its trailing silence
        self._sent = max(self._sent, self._buf_start, release)
        self._lead = max(0, onset - self._sent)
        self._speaking = True
        self._voiced_run = self._loud_in_run = 0
        self._tail_from = -_TAIL_BYTES - 1  # a tail is the idle gap's own
        self._voiced_end = self._scored
        self._speech_end = self._scored
        self._onset = onset
        self._sounding = False
        self._pause_at = None
        self._paused_at = None
        self._peak_db = MIN_NOISE_DB
        self._babble.start_turn(self._scored)
        actions.append((GateAction.SPEECH_STARTED, b""))

    def _end_turn(self, actions: list[tuple[GateAction, bytes]]) -> None:
        actions.append((GateAction.SPEECH_STOPPED, b""))
        self._speaking = False
        self._last_peak_db, self._gap_peak_db = self._peak_db, MIN_NOISE_DB
        self._pause_at = None
        self._paused_at = None
        self._voiced_run = self._loud_in_run = 0
        self._loud_from = self._group_from = self._scored

    def _trim(self) -> None:
        # keep what the next turn may need: its prefix padding, onset windows and look-back,
        # and where the noise may bury a word's edge, the gap since the last turn
        keep_from = self._scored - self._hold_bytes
        if self._speaking:
            keep_from = min(keep_from, self._sent)
        elif self._buried():
            keep_from = min(keep_from, self._gap_start())
        drop = keep_from - self._buf_start
        if drop > 0:
            del self._buf[:drop]
            self._buf_start += drop
