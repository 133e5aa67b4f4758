"""Small PCM16 helpers for tests (24 kHz mono, little-endian, as the Realtime API uses)."""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 24000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 48


def silence(duration_s: float, sample_rate: int = SAMPLE_RATE) -> bytes:
    """``duration_s`` seconds of digital silence."""
    return bytes(2 * int(round(duration_s * sample_rate)))


def tone(
    duration_s: float,
    *,
    freq: float = 440.0,
    dbfs: float = -20.0,
    sample_rate: int = SAMPLE_RATE,
    fade_ms: float = 5.0,
) -> bytes:
    """A sine tone whose RMS level is ``dbfs`` (0 dBFS = RMS of a full-scale square wave)."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    amplitude = math.sqrt(2.0) * (10.0 ** (dbfs / 20.0))
    wave = amplitude * np.sin(2.0 * math.pi * freq * t)
    fade = min(n // 2, int(sample_rate * fade_ms / 1000.0))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float64)
        wave[:fade] *= ramp
        wave[n - fade :] *= ramp[::-1]
    pcm = np.clip(np.round(wave * 32767.0), -32768, 32767).astype("<i2")
    return pcm.tobytes()


def rms_dbfs(pcm: bytes) -> float:
    """RMS level of PCM16 audio in dBFS (-inf for silence)."""
    usable = len(pcm) - len(pcm) % 2
    if usable == 0:
        return float("-inf")
    arr = np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float64) / 32768.0
    mean_square = float(np.mean(arr * arr))
    return 10.0 * math.log10(mean_square) if mean_square > 0 else float("-inf")


def duration_ms(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> float:
    return len(pcm) / 2 / sample_rate * 1000.0
