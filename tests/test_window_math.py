"""The per-window arithmetic against its definition, computed the slow, obvious way."""

from __future__ import annotations

import math

import numpy as np
import pytest

from livekit_plugins_openai_novad._window import (
    DIGITAL_SILENCE,
    SILENT_LEVELS,
    WINDOW_SAMPLES,
    WindowMath,
)


def _reference(window: np.ndarray) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Levels of the thirds (dBFS), and the 16 kHz window as float (full scale 1) and int16."""
    levels = []
    for third in window.reshape(3, -1).astype(np.int64):
        power = int((third * third).sum())
        mean = power / (len(third) * 32768.0**2)
        levels.append(10.0 * math.log10(mean) if power else -180.0)
    groups = window.reshape(-1, 3).astype(np.int64)
    # sample 1.5*n of the 24 kHz stream: a group's first sample, then the mean of the others
    halves = np.stack([2 * groups[:, 0], groups[:, 1] + groups[:, 2]], axis=1).reshape(-1)
    as_float = (halves / 65536.0).astype(np.float32)
    as_int16 = np.rint(halves / 2.0).astype(np.int16)  # half to even
    return levels, as_float, as_int16


def _windows() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [np.zeros(WINDOW_SAMPLES, dtype=np.int16)]
    out.append(np.full(WINDOW_SAMPLES, -32768, dtype=np.int16))
    out.append(np.full(WINDOW_SAMPLES, 32767, dtype=np.int16))
    out += [rng.integers(-32768, 32768, WINDOW_SAMPLES).astype(np.int16) for _ in range(200)]
    out += [rng.integers(-3, 4, WINDOW_SAMPLES).astype(np.int16) for _ in range(200)]  # odd sums
    return out


@pytest.mark.parametrize("pcm16", [True, False])
def test_levels_and_resampling_are_exact(pcm16: bool) -> None:
    math_ = WindowMath(pcm16=pcm16)
    for window in _windows():
        math_.window[:] = window
        levels = math_.levels()
        got = math_.resample().copy()
        want_levels, want_float, want_int16 = _reference(window)
        assert levels == pytest.approx(want_levels, abs=1e-9)
        if pcm16:
            assert got.dtype == np.int16
            np.testing.assert_array_equal(got, want_int16)
        else:
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want_float)


@pytest.mark.parametrize("pcm16", [True, False])
def test_digital_silence_shortcut_gives_what_the_arithmetic_gives(pcm16: bool) -> None:
    math_ = WindowMath(pcm16=pcm16)
    math_.window[:] = 0
    assert math_.levels() == SILENT_LEVELS
    want = math_.resample().copy()
    math_.window[:] = 1000  # an earlier window's output must not leak into the shortcut
    math_.levels()
    assert math_.resample().any()
    assert math_.load(bytearray(3 * len(DIGITAL_SILENCE)), len(DIGITAL_SILENCE)) == SILENT_LEVELS
    got = math_.resample()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert bytes(math_.window_bytes) != DIGITAL_SILENCE  # the shortcut copied nothing
