"""The noise as the client VAD hears it: its level and Silero's score on it (I/O-free).

``ClientTurnDetector`` feeds it the windows that are not speech, one call a window (a few
float operations, no numpy).
"""

from __future__ import annotations

__all__ = ["MIN_NOISE_DB", "NoiseTracker"]

MIN_NOISE_DB = -70.0  # the estimates never go below this (digital silence is -180)
_FLOOR_DOWN = 0.3  # per window: how fast the floor follows a quieter window
_FLOOR_UP = 0.03  # ...and a louder one (~1 s)
_MEAN_RATE = 0.03  # per window: how fast the mean level follows (~1 s)
_P_STEP = 0.01  # per window: how far the median of Silero's score moves (0.3 a second)
_MAX_P = 0.9  # a noise Silero takes for speech still leaves the thresholds some room


class NoiseTracker:
    """Running estimates of the noise, learnt from the windows that are not speech.

    * ``floor_db``: follows quieter windows fast and louder ones slowly, so a short sound
      barely lifts it while a noise that stays is learnt in about a second;
    * ``mean_db``: the mean level. Over a steady noise it is near the floor; over one whose
      level swings (babble) it is above it, and the floor alone would take the noise's own
      louder moments for sounds;
    * ``p``: the median of Silero's score on the windows whose energy is noise-like
      (``quiet``: not louder than the floor by a sound's margin). About 0 in silence and
      steady noise; in babble Silero half-believes the noise (a median of ~0.2-0.3 at 10 dB
      SNR), and :meth:`lift` raises a probability threshold by that much of its headroom, so
      a threshold means the same over the noise as over silence.
    """

    __slots__ = ("floor_db", "mean_db", "p", "_heard")

    def __init__(self) -> None:
        self.floor_db = MIN_NOISE_DB
        self.mean_db = MIN_NOISE_DB
        self.p = 0.0
        self._heard = False  # has a window been learnt yet

    def learn(self, level_db: float, p: float, *, quiet: bool) -> None:
        """Learn a window that is not speech: its mean level and Silero's score on it."""
        if quiet:
            # a median, not a mean: speech onsets and distractors do not pull it up
            self.p = min(_MAX_P, max(0.0, self.p + (_P_STEP if p > self.p else -_P_STEP)))
        if not self._heard:
            self.floor_db, self.mean_db = level_db, max(MIN_NOISE_DB, level_db)
            self._heard = True
        self.mean_db += _MEAN_RATE * (max(MIN_NOISE_DB, level_db) - self.mean_db)
        rate = _FLOOR_DOWN if level_db < self.floor_db else _FLOOR_UP
        self.floor_db = max(MIN_NOISE_DB, self.floor_db + rate * (level_db - self.floor_db))

    def lift(self, threshold: float) -> float:
        """``threshold`` raised by Silero's score on the noise: (p - noise) / (1 - noise)."""
        return 1.0 - (1.0 - threshold) * (1.0 - self.p)
