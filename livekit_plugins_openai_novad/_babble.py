"""Turn taking where the noise is other voices (babble): Silero's vote alone is not enough.

In babble Silero scores the noise itself as likely speech (0.6-0.8 for seconds at a time at
10 dB SNR), so a gap between turns can keep a turn going (two turns merge) or start a turn of
its own. Energy tells the talker from the noise only while they speak up, and a vowel of one
voice is periodic where many voices at once rarely are. So, only while the noise is babble
(Silero's median score on it at least ``BABBLE_P``):

* a turn starts only within ``_ONSET_RECENT_BYTES`` after a window that is periodic at a
  pitch lag of 80-400 Hz (``_VOICED``: a vowel, or a tone) or stands well out of the noise
  (``_STRONG_OVER_MEAN_DB``);
* Silero's vote keeps a turn going at most ``_HOLD_BYTES`` after the last window whose
  loudest third is ``_AUDIBLE_OVER_MEAN_DB`` over the noise's reference level (its mean,
  capped as ``ClientTurnDetector`` caps it): after that, only the
  silence window runs. A word's quiet end buried in the babble is still sent (it is within
  the turn's trailing audio, or, under ``ClientTurnDetector._buried``, with the next turn).

Measured on the real-speech bench (babble 10 dB, seed 1): harmonicity >= 0.9 in 26 % of
speech windows and 1.2 % of babble-only ones; the hold of 1 s, with the 500 ms window, ends a
turn at most 1.5 s after its last audible sound, the shortest gap of that corpus. I/O-free.
"""

from __future__ import annotations

from ._window import WINDOW_BYTES, WindowMath
from .wire import SAMPLE_RATE

__all__ = ["BABBLE_P", "BabbleGuard"]

BABBLE_P = 0.15  # Silero's median score on the noise from which it is babble
_VOICED = 0.9  # harmonicity of one voice's vowel (babble-only windows: 1.2 % reach it)
_STRONG_OVER_MEAN_DB = 12.0  # ...or a window's loudest third this far over the noise's mean
_ONSET_RECENT_BYTES = 16 * WINDOW_BYTES  # a turn starts within ~0.5 s after one of them
_AUDIBLE_OVER_MEAN_DB = 6.0  # in a turn: a third this far over the noise's mean is heard
_HOLD_BYTES = 1 * SAMPLE_RATE * 2  # ...and Silero alone keeps the turn going 1 s after it
_NEVER = -(10**12)


class BabbleGuard:
    """The two babble rules above, fed one window at a time by ``ClientTurnDetector``.

    Positions are the detector's absolute byte offsets (the end of the window just scored).
    Outside babble both rules let everything through and harmonicity is never computed.
    A detector's reset makes a new guard, as it makes a new ``NoiseTracker``.
    """

    __slots__ = ("_cue_at", "_heard_at")

    def __init__(self) -> None:
        self._cue_at = _NEVER  # idle: the last periodic or strong window
        self._heard_at = _NEVER  # in a turn: the last audible window

    def may_start(
        self, math: WindowMath, loudest: float, ref_db: float, noise_p: float, at: int
    ) -> bool:
        """Idle, every window: may a turn start here (if Silero and energy vote for one)?
        ``ref_db`` is the noise level a sound must stand out of."""
        if loudest >= ref_db + _STRONG_OVER_MEAN_DB:
            self._cue_at = at
        if noise_p < BABBLE_P:
            return True
        if math.harmonicity() >= _VOICED:
            self._cue_at = at
        return at - self._cue_at <= _ONSET_RECENT_BYTES

    def start_turn(self, at: int) -> None:
        self._heard_at = at  # the onset is heard
        self._cue_at = _NEVER  # a cue belongs to its own gap (a short window would outlive it)

    def holds(self, loudest: float, ref_db: float, noise_p: float, at: int) -> bool:
        """In a turn: may Silero's vote (or a sound near the noise) still move its speech end?"""
        if loudest >= ref_db + _AUDIBLE_OVER_MEAN_DB:
            self._heard_at = at
        return noise_p < BABBLE_P or at - self._heard_at <= _HOLD_BYTES
