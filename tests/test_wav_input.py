"""``WavAudioInput``'s clock: on a shared clock, inputs started at different moments hand over
their frames on the process's 10 ms grid (10 ms frames at the same instants, longer frames on
one of the grid's phases); on its own, an input starts at once."""

from __future__ import annotations

import pytest

from livekit_plugins_openai_novad.testing.agent_io import WavAudioInput

FRAME_S = 0.010


def _frames_from_grid(t: float) -> float:
    """How far ``t`` is from the 10 ms grid of ``time.perf_counter()``, in frames."""
    k = t / FRAME_S
    return abs(k - round(k))


@pytest.mark.timeout(10)
async def test_inputs_on_the_shared_clock_hand_over_frames_at_the_same_instants() -> None:
    a = WavAudioInput(shared_clock=True)
    b = WavAudioInput(shared_clock=True)
    a.play(bytes(2 * 240 * 8))
    b.play(bytes(2 * 240 * 8))
    for _ in range(3):  # b starts three frames of a later
        frame = await anext(a)
        assert frame.samples_per_channel == 240
    await anext(b)
    assert a.started_at is not None and b.started_at is not None
    for mic in (a, b):
        assert mic.started_at is not None
        assert _frames_from_grid(mic.started_at) < 1e-6
        assert mic.push_times[0] >= mic.started_at
    # the frames of one fall due exactly when frames of the other do
    offset = (b.started_at - a.started_at) / FRAME_S
    assert abs(offset - round(offset)) < 1e-6
    assert round(offset) >= 2  # b was started after a's third frame fell due


@pytest.mark.timeout(10)
async def test_longer_frames_on_the_shared_clock_start_on_the_10_ms_grid() -> None:
    mic = WavAudioInput(shared_clock=True, frame_ms=50)
    mic.play(bytes(2 * 1200 * 3))
    frames = [await anext(mic) for _ in range(3)]
    assert [f.samples_per_channel for f in frames] == [1200] * 3
    assert mic.started_at is not None
    assert _frames_from_grid(mic.started_at) < 1e-6  # on the 10 ms tick, not a 50 ms one
    assert mic.time_of_sample(1200 * 2 + 5) == mic.push_times[2]
    # frame i falls due 50 ms * i after the first, and none goes out before it is due
    t0 = mic.started_at
    assert all(t >= t0 + i * 0.050 - 0.001 for i, t in enumerate(mic.push_times))


@pytest.mark.timeout(10)
async def test_an_input_on_its_own_clock_starts_at_once() -> None:
    mic = WavAudioInput()
    mic.play(bytes(2 * 240))
    await anext(mic)
    assert mic.started_at is not None
    assert mic.started_at <= mic.push_times[0]
    assert mic.samples_pushed == 240
