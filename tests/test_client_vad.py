"""The client VAD gate on real speech with real Silero, byte by byte (no sockets)."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, speech_segments

from livekit_plugins_openai_novad import ClientVad
from livekit_plugins_openai_novad.client_vad import ClientTurnDetector, GateAction
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(60)
SR = 24000


@pytest.mark.parametrize("frame_ms", [10, 20, 7])
@pytest.mark.parametrize("silence_ms", [300, 500, 800])
def test_turns_are_exact_and_end_one_silence_window_after_the_speech(
    frame_ms: int, silence_ms: int
) -> None:
    pcm = read_wav(FIXTURES / "three_turns.wav")
    opts = ClientVad(silence_duration_ms=silence_ms)
    det = ClientTurnDetector(opts)
    step = SR * frame_ms // 1000 * 2
    sent = bytearray()
    turns: list[tuple[int, int, int]] = []  # (first sample sent, samples, decided at sample)
    turn_start = 0
    events: list[GateAction] = []
    for i in range(0, len(pcm), step):
        for action, data in det.push(pcm[i : i + step]):
            events.append(action)
            if action is GateAction.SEND:
                sent += data
            elif action is GateAction.SPEECH_STARTED:
                turn_start = len(sent)
            elif action is GateAction.SPEECH_STOPPED:
                piece = bytes(sent[turn_start:])
                pos = pcm.find(piece)
                assert pos >= 0, "a turn is not a contiguous piece of the input"
                turns.append((pos // 2, len(piece) // 2, (i + step) // 2))
    assert events.count(GateAction.SPEECH_STARTED) == 3
    assert events.count(GateAction.SPEECH_STOPPED) == 3
    for (first, last), (start, n, decided) in zip(
        speech_segments("three_turns.wav"), turns, strict=True
    ):
        end = start + n
        assert start <= first and end > last, "speech samples missing from the turn"
        assert n / SR <= (last - first + 1) / SR + (300 + silence_ms + 100) / 1000
        # ended one silence window after the last voiced sample, within a frame and a bit
        latency_ms = (decided - last) / SR * 1000
        assert silence_ms - 20 <= latency_ms <= silence_ms + frame_ms + 40, latency_ms
    # the silence between turns never went out, and nothing went out twice
    assert len(sent) == sum(n for _, n, _ in turns) * 2


def test_a_click_does_not_start_a_turn_and_silence_sends_nothing() -> None:
    det = ClientTurnDetector(ClientVad())
    out = det.push(bytes(SR * 2 * 3))  # 3 s of digital silence
    assert out == []
    click = (b"\xff\x7f" * 24) + bytes(SR * 2)  # 1 ms full-scale click, then silence
    assert [a for a, _ in det.push(click)] == []


def _gate_output(pcm: bytes, step_bytes: int) -> tuple[bytes, list[tuple[GateAction, int]]]:
    det = ClientTurnDetector(ClientVad())
    sent = bytearray()
    marks: list[tuple[GateAction, int]] = []  # (event, bytes sent before it)
    for i in range(0, len(pcm), step_bytes):
        for action, data in det.push(pcm[i : i + step_bytes]):
            if action is GateAction.SEND:
                sent += data
            else:
                marks.append((action, len(sent)))
    return bytes(sent), marks


def test_decisions_do_not_depend_on_push_size() -> None:
    pcm = read_wav(FIXTURES / "three_turns.wav")
    reference = _gate_output(pcm, 480)  # 10 ms frames
    for step in (2 * 7 * 24, 4800, 24000, 48000 * 3):  # 7 ms, 100 ms, 500 ms, 3 s pushes
        assert _gate_output(pcm, step) == reference, step
