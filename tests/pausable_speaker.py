"""A speaker that can pause (as a room's audio output can), played against the clock, and an
AgentSession harness around it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from agent_harness import AgentRun
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.voice import io

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import WavAudioInput

SAMPLE_RATE = 24000


@dataclass
class Segment:
    captured_s: float = 0.0
    pos_s: float = 0.0  # played up to the last pause / resume
    mark: float = field(default_factory=time.perf_counter)  # when playing (re)started
    played_s: float | None = None  # set when the segment finished
    interrupted: bool = False


class PausableSpeaker(io.AudioOutput):
    """Plays each segment in real time from its first frame; ``pause()`` stops the clock."""

    def __init__(self) -> None:
        super().__init__(
            label="pausable-speaker",
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=SAMPLE_RATE,
        )
        self.segments: list[Segment] = []
        self.paused = False
        self.pauses: list[float] = []  # played position of the segment at each pause
        self.resumes = 0
        self.listeners: list[Callable[[], None]] = []  # called on pause, resume and finish
        self._current: Segment | None = None
        self._playing: Segment | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def position(self, seg: Segment) -> float:
        running = 0.0 if self.paused else time.perf_counter() - seg.mark
        return min(seg.captured_s, seg.pos_s + running)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._current = Segment()
            self._playing = self._current
            self.segments.append(self._current)
            self.on_playback_started(created_at=time.time())
        self._current.captured_s += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._current is not None:
            seg, self._current = self._current, None
            task = asyncio.ensure_future(self._play_out(seg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def clear_buffer(self) -> None:
        seg = self._current or self._playing
        self._current = None
        if seg is not None and seg.played_s is None:
            self._finish(seg, interrupted=True)

    def pause(self) -> None:
        super().pause()
        if not self.paused:
            seg = self._playing
            if seg is not None:
                seg.pos_s = self.position(seg)
                self.pauses.append(seg.pos_s)
            self.paused = True
            self._changed.set()
            self._notify()

    def resume(self) -> None:
        super().resume()
        if self.paused:
            self.paused = False
            self.resumes += 1
            if self._playing is not None:
                self._playing.mark = time.perf_counter()
            self._changed.set()
            self._notify()

    async def _play_out(self, seg: Segment) -> None:
        while seg.played_s is None:
            self._changed.clear()
            remaining = 3600.0 if self.paused else seg.captured_s - self.position(seg)
            if remaining <= 0:
                self._finish(seg, interrupted=False)
                return
            with contextlib.suppress(asyncio.TimeoutError):
                # the segment's real-time playout, not a test wait
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _finish(self, seg: Segment, *, interrupted: bool) -> None:
        played = self.position(seg)
        seg.played_s, seg.interrupted = played, interrupted
        if self._playing is seg:
            self._playing = None
        self._changed.set()
        self.on_playback_finished(playback_position=played, interrupted=interrupted)
        self._notify()

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()


@dataclass
class PausableRun(AgentRun):
    speaker: PausableSpeaker  # type: ignore[assignment]
    session_events: list[tuple[str, Any]] = field(default_factory=list)

    def session_event(self, kind: str) -> list[Any]:
        return [ev for k, ev in self.session_events if k == kind]


@contextlib.asynccontextmanager
async def pausable_run(
    server: FakeRealtimeServer,
    session: AgentSession,
    *,
    client_vad: novad.ClientVad = novad.ClientVad(),
    **agent_kwargs: Any,
) -> AsyncIterator[PausableRun]:
    model = novad.RealtimeModel(
        base_url=server.base_url, api_key="test-key", client_vad=client_vad
    )
    mic = WavAudioInput()
    speaker = PausableSpeaker()
    session.input.audio = mic
    session.output.audio = speaker
    agent = Agent(instructions="You are a test agent.", llm=model, **agent_kwargs)
    events: list[tuple[str, Any]] = []
    for kind in (
        "user_state_changed",
        "agent_state_changed",
        "agent_false_interruption",
        "metrics_collected",
        "conversation_item_added",
    ):
        session.on(kind, lambda ev, kind=kind: events.append((kind, ev)))
    n_before = len(server.connections)
    await session.start(agent, record=False)
    conn = await server.wait_for_connection(n_before + 1)
    try:
        yield PausableRun(session, agent, model, mic, speaker, conn, session_events=events)  # type: ignore[arg-type]
    finally:
        mic.close()
        await session.aclose()
        await model.aclose()
