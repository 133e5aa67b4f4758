"""One Silero window's arithmetic: the 24 kHz PCM16 window the wire carries, as Silero's
16 kHz input, and the level of each of its thirds (I/O-free, buffers made once)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["WINDOW_SAMPLES", "WINDOW_BYTES", "WindowMath"]

WINDOW_SAMPLES = 768  # 32 ms at 24 kHz = Silero's 512-sample window at 16 kHz
WINDOW_BYTES = WINDOW_SAMPLES * 2
_F32_SCALE = np.float32(1.0 / 32768.0)
_HALF = np.float32(0.5)
_HALF_F32_SCALE = np.float32(0.5 / 32768.0)
_THIRD = WINDOW_SAMPLES // 3
_THIRD_POWER_TO_DB = -20.0 * math.log10(32768.0) - 10.0 * math.log10(_THIRD)
_SILENT_DB = -180.0  # an all-zero third (what 1e-9 of full scale would give)


class WindowMath:
    """The per-window arithmetic in buffers made once: 24 kHz int16 -> 16 kHz, and dB.

    The 24 -> 16 kHz step takes sample 1.5*n, linear between (an exact 3:2 interpolation).
    For a scorer that takes floats (full scale 1) it fills ``y``; for one that takes int16
    (``pcm16``, the native runtime) it fills ``y16`` with ``y`` rounded to int16 half to even,
    the rounding that scorer would apply to ``y`` itself. int16 values and their pairwise
    sums are exact in float32, so no step rounds anything else. Few, small numpy calls: at
    ~31 windows a second per session they are a large share of the session's cost.
    """

    def __init__(self, *, pcm16: bool) -> None:
        self.pcm16 = pcm16
        self.window = np.empty(WINDOW_SAMPLES, dtype=np.int16)  # the 24 kHz window, loaded
        self.window_bytes = self.window.data.cast("B")
        self._thirds = self.window.reshape(3, _THIRD)
        self.y = np.empty(WINDOW_SAMPLES * 2 // 3, dtype=np.float32)  # float scorers
        self.y16 = np.empty(WINDOW_SAMPLES * 2 // 3, dtype=np.int16)  # pcm16 scorers
        self._sum = np.empty(WINDOW_SAMPLES // 3, dtype=np.float32)

    def levels(self) -> list[float]:
        """The levels of ``window``'s thirds, in dBFS."""
        # exact integer power per third (256 * 32768**2 needs 64 bits)
        power = np.einsum("ij,ij->i", self._thirds, self._thirds, dtype=np.int64).tolist()
        return [10.0 * math.log10(p) + _THIRD_POWER_TO_DB if p else _SILENT_DB for p in power]

    def resample(self) -> np.ndarray:
        """Fill ``y16`` (``pcm16``) or ``y`` from ``window``, and return it."""
        window = self.window
        np.add(window[1::3], window[2::3], out=self._sum, dtype=np.float32)
        if self.pcm16:
            np.copyto(self.y16[0::2], window[0::3])
            np.multiply(self._sum, _HALF, out=self._sum)
            np.rint(self._sum, out=self.y16[1::2], casting="unsafe")
            return self.y16
        np.multiply(window[0::3], _F32_SCALE, out=self.y[0::2], dtype=np.float32)
        np.multiply(self._sum, _HALF_F32_SCALE, out=self.y[1::2])
        return self.y
