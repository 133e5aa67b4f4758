"""Room-less ``AgentSession``s for both implementations, on the fake server.

* ``novad``: ``novad.RealtimeModel()`` (default ``ClientVad()``: 500 ms silence window,
  300 ms prefix padding) in a plain ``AgentSession()``.
* ``upstream`` (the anchor): ``livekit.plugins.openai.realtime.RealtimeModel(
  turn_detection=None)`` in ``AgentSession(vad=silero.VAD.load(min_silence_duration=0.5),
  turn_handling={"turn_detection": "vad"})``: the framework's Silero ends the turns.

Both sessions get ``aec_warmup_duration=None`` (the framework's echo-cancellation warm-up,
which replaces the user's audio with silence while the agent speaks, is off for both).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from livekit import rtc
from livekit.agents import AgentSession

from livekit_plugins_openai_novad.testing.agent_harness import RoomlessAgent, start_roomless
from livekit_plugins_openai_novad.testing.agent_io import (
    TICK_S,
    RealtimeAudioOutput,
    WavAudioInput,
    read_wav,
)

__all__ = [
    "Impl",
    "IMPLS",
    "SILENCE_WINDOW_S",
    "ROOM_FRAME_MS",
    "TICK_FRAME_MS",
    "FIXTURES",
    "Fixture",
    "load_fixture",
    "BenchSession",
    "MeteredAudioOutput",
    "start_session",
    "load_anchor_vad",
]

Impl = Literal["novad", "upstream"]
IMPLS: tuple[Impl, ...] = ("novad", "upstream")
SILENCE_WINDOW_S = 0.5  # novad's ClientVad default; passed to the anchor's Silero
ROOM_FRAME_MS = 50  # what a LiveKit room's input hands the agent: RoomIO's frame_size_ms
TICK_FRAME_MS = round(TICK_S * 1000)  # one audio-device tick: the finest frames a track gives
SR = 24000
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


@dataclass(frozen=True)
class Fixture:
    name: str
    pcm: bytes
    segments: list[tuple[int, int]]  # (first, last voiced sample), energy-measured

    @property
    def num_samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration_s(self) -> float:
        return self.num_samples / SR

    @property
    def speech_s(self) -> float:
        return sum(last - first + 1 for first, last in self.segments) / SR


def load_fixture(name: str = "three_turns.wav") -> Fixture:
    data = json.loads((FIXTURES / "speech_segments.json").read_text())
    segs = [(s["start_sample"], s["end_sample"]) for s in data["files"][name]["segments"]]
    return Fixture(name, read_wav(FIXTURES / name), segs)


class MeteredAudioOutput(RealtimeAudioOutput):
    """The real-time speaker, plus underrun accounting.

    An underrun is a reply frame that reaches the speaker after everything captured before it
    in the same segment has already played out (the speaker ran dry mid-reply).
    """

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0
        self.underruns = 0
        self.max_gap_s = 0.0
        self.t_window: float | None = None  # count only frames after this instant

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        now = time.perf_counter()
        cur = self._current
        if self.t_window is not None and now >= self.t_window:
            self.frames += 1
            if cur is not None:
                gap = now - (cur.started_at + cur.captured_s)
                if gap > 0:
                    self.underruns += 1
                    self.max_gap_s = max(self.max_gap_s, gap)
        await super().capture_frame(frame)


@dataclass
class BenchSession(RoomlessAgent):
    impl: Impl
    key: str
    speaker: MeteredAudioOutput

    def describe(self) -> dict[str, Any]:
        """How turns are taken in this session (checked, not assumed)."""
        rt = self.rt
        activity = getattr(self.agent, "_activity", None)
        recognition = getattr(activity, "_audio_recognition", None)
        wired = getattr(recognition, "_vad", None)
        out: dict[str, Any] = {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "agent_session_vad": _qualname(self.session.vad),
            "agent_session_default_vad": bool(getattr(self.session, "_using_default_vad", False)),
            "vad_wired_into_turn_taking": _qualname(wired),
            "rt_capabilities_turn_detection": bool(rt.capabilities.turn_detection),
        }
        mode = getattr(rt, "turn_taking_mode", None)
        if mode is not None:
            out["turn_taking_mode"] = mode
        return out


def _qualname(obj: Any) -> str | None:
    return None if obj is None else f"{type(obj).__module__}.{type(obj).__qualname__}"


def build_model(impl: Impl, base_url: str, key: str) -> Any:
    if impl == "novad":
        import livekit_plugins_openai_novad as novad

        return novad.RealtimeModel(base_url=base_url, api_key=key)
    from livekit.plugins.openai import realtime as upstream

    return upstream.RealtimeModel(turn_detection=None, base_url=base_url, api_key=key)


def load_anchor_vad() -> Any:
    """The anchor's Silero, as a worker's ``setup_fnc`` loads it (one per job process)."""
    from livekit.plugins import silero

    return silero.VAD.load(min_silence_duration=SILENCE_WINDOW_S)


def build_agent_session(impl: Impl, vad: Any = None) -> AgentSession:
    if impl == "novad":
        # P1-P4 measure the turn decision and one reply per turn: preemptive replies (which
        # ask for the reply inside the silence window) are measured on their own, in P5
        return AgentSession(
            aec_warmup_duration=None, turn_handling={"preemptive_generation": {"enabled": False}}
        )
    return AgentSession(
        vad=vad if vad is not None else load_anchor_vad(),
        turn_handling={"turn_detection": "vad"},
        aec_warmup_duration=None,
    )


async def start_session(
    impl: Impl,
    base_url: str,
    key: str,
    vad: Any = None,
    *,
    shared_clock: bool = True,
    frame_ms: int = TICK_FRAME_MS,
) -> BenchSession:
    """``vad``: the anchor's shared Silero (default: one loaded for this session).
    ``shared_clock``: the mic's frames fall due on the process's 10 ms grid, as a LiveKit
    worker receives room audio (``WavAudioInput``); False: on its own phase.
    ``frame_ms``: the mic's frame size (a LiveKit room's input hands over 50 ms frames)."""
    model = build_model(impl, base_url, key)
    speaker = MeteredAudioOutput()
    started = await start_roomless(
        model,
        session=build_agent_session(impl, vad),
        speaker=speaker,
        mic=WavAudioInput(shared_clock=shared_clock, frame_ms=frame_ms),
        instructions="You are a benchmark agent.",
    )
    return BenchSession(
        started.session, started.agent, model, started.mic, speaker, impl=impl, key=key
    )
