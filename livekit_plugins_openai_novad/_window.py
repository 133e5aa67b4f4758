"""One Silero window's arithmetic: the 24 kHz PCM16 window the wire carries, as Silero's
16 kHz input, the level of each of its thirds, and (asked only in babble) how periodic it is
(I/O-free; the per-window path in buffers made once)."""

from __future__ import annotations

import math

import numpy as np

from .wire import SAMPLE_RATE

__all__ = ["WINDOW_SAMPLES", "WINDOW_BYTES", "DIGITAL_SILENCE", "SILENT_LEVELS", "WindowMath"]

WINDOW_SAMPLES = 768  # 32 ms at 24 kHz = Silero's 512-sample window at 16 kHz
WINDOW_BYTES = WINDOW_SAMPLES * 2
_THIRD = WINDOW_SAMPLES // 3
_THIRD_POWER_TO_DB = -20.0 * math.log10(32768.0) - 10.0 * math.log10(_THIRD)
# pitch lags of 80-400 Hz at 24 kHz, and the unbiased autocorrelation's correction for each
_LAGS = np.arange(SAMPLE_RATE // 400, SAMPLE_RATE // 80 + 1)
_UNBIAS = WINDOW_SAMPLES / (WINDOW_SAMPLES - _LAGS)
_SILENT_DB = -180.0  # an all-zero third (what 1e-9 of full scale would give)
DIGITAL_SILENCE = bytes(WINDOW_BYTES)  # a window of it (a muted mic) needs no arithmetic...
SILENT_LEVELS = [_SILENT_DB] * 3  # ...its levels (read only); resampled, it is zeros


class WindowMath:
    """The per-window arithmetic in buffers made once: 24 kHz int16 -> 16 kHz, and dB.

    :meth:`levels` first copies ``window`` to float64; :meth:`resample`, called after
    it for the same window, reads that copy. The 24 -> 16 kHz step takes sample 1.5*n,
    linear between (an exact 3:2 interpolation): each group of three samples ``(a, b, c)``
    gives ``(a, (b + c) / 2)``, one small matmul. For a scorer that takes floats (full scale
    1) it fills ``y``; for one that takes int16 (``pcm16``, the native runtime) it fills
    ``y16`` with ``y`` rounded to int16 half to even, the rounding that scorer would apply to
    ``y`` itself. int16 values, their squares' sums over a third (< 2**53) and their halves
    are exact in float64, so no step rounds anything else. As few numpy calls as possible:
    at ~31 windows a second per session, each call's fixed cost is most of the window's.
    """

    def __init__(self, *, pcm16: bool) -> None:
        self.pcm16 = pcm16
        self.window = np.empty(WINDOW_SAMPLES, dtype=np.int16)  # the 24 kHz window, loaded
        self.window_bytes = self.window.data.cast("B")
        self._x = np.empty(WINDOW_SAMPLES, dtype=np.float64)
        # the thirds as rows and as columns: their powers are one batched matmul
        self._rows = self._x.reshape(3, 1, _THIRD)
        self._cols = self._x.reshape(3, _THIRD, 1)
        self._power = np.empty((3, 1, 1), dtype=np.float64)
        self._groups = self._x.reshape(WINDOW_SAMPLES // 3, 3)
        pick = np.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.5]])  # (a, b, c) -> (a, (b + c) / 2)
        self._pick = pick if pcm16 else pick * (1.0 / 32768.0)
        self._y64 = np.empty((WINDOW_SAMPLES // 3, 2), dtype=np.float64)
        self.y = np.empty(WINDOW_SAMPLES * 2 // 3, dtype=np.float32)  # float scorers
        self.y16 = np.empty(WINDOW_SAMPLES * 2 // 3, dtype=np.int16)  # pcm16 scorers
        self._silent = False  # the window loaded last is digital silence

    def load(self, buf: bytearray, at: int) -> list[float]:
        """Load the window at ``at`` of ``buf`` and return its thirds' levels (dBFS).

        Digital silence (a muted or noise-cancelled microphone) is found with one memcmp and
        costs no numpy; otherwise the window is copied out of ``buf``, not viewed: numpy
        releases the GIL in its arithmetic, and an exported buffer must never be live when
        the bytearray is resized.
        """
        if buf.startswith(DIGITAL_SILENCE, at):
            self._silent = True
            return SILENT_LEVELS
        with memoryview(buf) as view:
            self.window_bytes[:] = view[at : at + WINDOW_BYTES]
        return self.levels()

    def levels(self) -> list[float]:
        """The levels of ``window``'s thirds, in dBFS."""
        self._silent = False
        np.copyto(self._x, self.window)
        power = np.matmul(self._rows, self._cols, out=self._power).ravel().tolist()
        return [10.0 * math.log10(p) + _THIRD_POWER_TO_DB if p else _SILENT_DB for p in power]

    def harmonicity(self) -> float:
        """How periodic the window :meth:`levels` read is at a voice's pitch: the peak of its
        normalised autocorrelation over lags of 80-400 Hz (about 1 for one voice's vowel or a
        tone, low for noise and for many voices at once). 30-55 us, allocating: asked only
        where the noise is babble."""
        if self._silent:
            return 0.0
        x = self._x - self._x.mean()
        ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * WINDOW_SAMPLES)) ** 2)
        if ac[0] <= 0.0:
            return 0.0
        return float((ac[_LAGS] * _UNBIAS).max() / ac[0])

    def resample(self) -> np.ndarray:
        """Fill ``y16`` (``pcm16``) or ``y`` from the window :meth:`levels` read, and return it."""
        if self._silent:
            out = self.y16 if self.pcm16 else self.y
            out.fill(0)
            return out
        y64 = np.matmul(self._groups, self._pick, out=self._y64).reshape(-1)
        if self.pcm16:
            np.rint(y64, out=self.y16, casting="unsafe")
            return self.y16
        np.copyto(self.y, y64, casting="same_kind")
        return self.y
