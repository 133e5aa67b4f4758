"""The detectors alone, offline: how much audio after the last voiced sample each one needs
before it ends the turn (no clock, no framework, no network).

Both detectors score 32 ms windows, so the answer depends on where the window boundaries fall
relative to the speech; every one of the 16 phases a 10 ms frame stream can take against a
32 ms window is measured (a leading silence of ``k`` frames, ``k = 0..15``).

* novad: ``ClientTurnDetector`` (the gate novad runs in ``push_audio``), 10 ms pushes; the
  turn ends at the frame whose push produces ``SPEECH_STOPPED``.
* upstream anchor: ``silero.VAD.load(min_silence_duration=0.5)`` stream, 10 ms frames; the
  turn ends at the ``END_OF_SPEECH`` event's ``samples_index`` (16 kHz).

Delay = (frame that ends the turn - frame holding the last voiced sample) x 10 ms, which is
what the live P1 figure measures in wall time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import rtc

from .agents import SILENCE_WINDOW_S, SR, Fixture
from .metrics import summary

__all__ = ["detector_floor"]

FRAME = SR // 100  # 10 ms at 24 kHz
PHASES = 16


def _ends(fx: Fixture, lead: int, loops: int) -> list[int]:
    return [lead + k * fx.num_samples + last for k in range(loops) for _, last in fx.segments]


def _novad_stops(pcm: bytes) -> list[int]:
    import livekit_plugins_openai_novad as novad
    from livekit_plugins_openai_novad.client_vad import ClientTurnDetector, GateAction

    det = ClientTurnDetector(novad.ClientVad(silence_duration_ms=int(SILENCE_WINDOW_S * 1000)))
    stops: list[int] = []
    for f in range(len(pcm) // (2 * FRAME)):
        for action, _ in det.push(pcm[f * 2 * FRAME : (f + 1) * 2 * FRAME]):
            if action is GateAction.SPEECH_STOPPED:
                stops.append(f)
    return stops


async def _silero_stops(pcm: bytes) -> list[int]:
    from livekit.agents import vad as agents_vad
    from livekit.plugins import silero

    model = silero.VAD.load(min_silence_duration=SILENCE_WINDOW_S)
    stream = model.stream()
    stops: list[int] = []

    async def read() -> None:
        async for ev in stream:
            if ev.type == agents_vad.VADEventType.END_OF_SPEECH:
                # samples_index is at the VAD's 16 kHz rate: the frame that ends the turn
                stops.append(int(ev.samples_index * SR / 16000) // FRAME)

    reader = asyncio.create_task(read())
    n = len(pcm) // (2 * FRAME)
    for f in range(n):
        stream.push_frame(
            rtc.AudioFrame(
                data=pcm[f * 2 * FRAME : (f + 1) * 2 * FRAME],
                sample_rate=SR,
                num_channels=1,
                samples_per_channel=FRAME,
            )
        )
        if f % 50 == 0:
            await asyncio.sleep(0)  # let the inference task keep up
    stream.end_input()
    await reader
    await stream.aclose()
    return stops


def _delays(fx: Fixture, lead: int, loops: int, stops: list[int]) -> tuple[list[float], int]:
    """Per turn: frames from the last voiced sample's frame to the stop, in seconds."""
    out: list[float] = []
    missing = 0
    for e in _ends(fx, lead, loops):
        f_end = e // FRAME
        after = [s for s in stops if s >= f_end]
        if not after:
            missing += 1
            continue
        out.append((after[0] - f_end) * FRAME / SR)
    return out, missing


async def detector_floor(fx: Fixture, loops: int = 2) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for impl in ("novad", "upstream"):
        delays: list[float] = []
        missing = 0
        for k in range(PHASES):
            lead = k * FRAME
            pcm = bytes(2 * lead) + fx.pcm * loops
            if impl == "novad":
                stops = _novad_stops(pcm)
            else:
                stops = await _silero_stops(pcm)
            d, m = _delays(fx, lead, loops, stops)
            delays += d
            missing += m
        res[impl] = {"delay": summary(delays), "turns": len(delays), "missing": missing}
    return res
