"""Room-less audio I/O for driving a real ``AgentSession`` in tests and benchmarks.

``WavAudioInput`` plays PCM16 audio into the session at real-time pace and remembers when
each sample was pushed; ``RealtimeAudioOutput`` plays the agent's audio against the clock
(as a speaker would) and reports the real playback position when interrupted.
"""

from __future__ import annotations

import asyncio
import math
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

from livekit import rtc
from livekit.agents.voice import io

__all__ = ["WavAudioInput", "RealtimeAudioOutput", "PlayedSegment", "read_wav"]

SAMPLE_RATE = 24000
TICK_S = 0.010  # LiveKit's audio device pulls every remote track once per 10 ms


def read_wav(path: str | Path) -> bytes:
    """PCM16 mono 24 kHz frames of a WAV file (the format of the test fixtures)."""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: expected 24 kHz mono PCM16")
        return w.readframes(w.getnframes())


class WavAudioInput(io.AudioInput):
    """Feeds queued PCM16 (24 kHz mono) at real-time pace in ``frame_ms`` frames.

    Between clips it feeds digital silence, like an open microphone. ``push_times[i]`` is
    the ``time.perf_counter()`` at which the frame holding sample ``i * frame_samples`` of
    the whole stream (silence included) was handed to the session.

    ``shared_clock``: the first frame falls due on the process's 10 ms tick (a multiple of
    10 ms on ``time.perf_counter()``), as LiveKit delivers the remote audio of a process: one
    audio device pulls every track each 10 ms, and a track's stream hands over a frame each
    ``frame_ms`` of those pulls (RoomIO's default is 50 ms). So 10 ms frames of every input
    fall due at the same instants, and longer frames on one of the tick's phases, picked by
    when the input started. Without it, the first frame goes out at once and each input
    keeps the phase its session happened to start at.
    """

    def __init__(
        self, *, frame_ms: int = 10, label: str = "wav-input", shared_clock: bool = False
    ) -> None:
        super().__init__(label=label)
        self._frame_samples = SAMPLE_RATE * frame_ms // 1000
        self._frame_s = frame_ms / 1000
        self._shared_clock = shared_clock
        self._queue = bytearray()
        self._closed = False
        self._t0: float | None = None
        self._n = 0
        self.samples_pushed = 0
        self.clip_starts: list[int] = []  # stream sample index where each play() clip began
        self.push_times: list[float] = []
        self._drained = asyncio.Event()

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    def play(self, pcm16: bytes) -> int:
        """Queue a clip; returns the stream sample index at which it will start."""
        start = self.samples_pushed + len(self._queue) // 2
        self.clip_starts.append(start)
        self._queue += pcm16
        self._drained.clear()
        return start

    async def wait_drained(self) -> None:
        """Until every queued clip has been pushed."""
        await self._drained.wait()

    def close(self) -> None:
        self._closed = True

    @property
    def started_at(self) -> float | None:
        """When the first frame fell due (``time.perf_counter()``); None before it."""
        return self._t0

    def time_of_sample(self, index: int) -> float:
        """When the frame holding stream sample ``index`` was pushed."""
        return self.push_times[index // self._frame_samples]

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        if self._t0 is None:
            now = time.perf_counter()
            self._t0 = math.ceil(now / TICK_S) * TICK_S if self._shared_clock else now
        # real-time pacing of a microphone, not a test wait
        delay = self._t0 + self._n * self._frame_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        n_bytes = self._frame_samples * 2
        chunk = bytes(self._queue[:n_bytes])
        del self._queue[:n_bytes]
        if len(chunk) < n_bytes:
            chunk += b"\x00" * (n_bytes - len(chunk))
        if not self._queue:
            self._drained.set()
        self._n += 1
        self.samples_pushed += self._frame_samples
        self.push_times.append(time.perf_counter())
        return rtc.AudioFrame(
            data=chunk,
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            samples_per_channel=self._frame_samples,
        )


@dataclass
class PlayedSegment:
    started_at: float
    captured_s: float = 0.0
    played_s: float | None = None  # set when the segment finished (interrupted or not)
    interrupted: bool = False
    audio: bytearray = field(default_factory=bytearray)


class RealtimeAudioOutput(io.AudioOutput):
    """A speaker simulated against the clock: audio plays at real time from its first frame."""

    def __init__(self, *, label: str = "realtime-output") -> None:
        super().__init__(
            label=label,
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=SAMPLE_RATE,
        )
        self.segments: list[PlayedSegment] = []
        self._current: PlayedSegment | None = None
        self._interrupt = asyncio.Event()
        self._wait_task: asyncio.Task[None] | None = None
        self.segment_finished = asyncio.Event()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._current = PlayedSegment(started_at=time.perf_counter())
            self.segments.append(self._current)
            self._interrupt.clear()
            self.on_playback_started(created_at=time.time())
        self._current.captured_s += frame.duration
        self._current.audio += frame.data.tobytes()

    def flush(self) -> None:
        super().flush()
        if self._current is None:
            return
        seg, self._current = self._current, None
        self._wait_task = asyncio.create_task(self._play_out(seg))

    def clear_buffer(self) -> None:
        if self._current is not None:
            seg, self._current = self._current, None
            self._wait_task = asyncio.create_task(self._play_out(seg))
        self._interrupt.set()

    async def _play_out(self, seg: PlayedSegment) -> None:
        remaining = seg.started_at + seg.captured_s - time.perf_counter()
        interrupted = False
        if remaining > 0 and not self._interrupt.is_set():
            try:
                await asyncio.wait_for(self._interrupt.wait(), remaining)
                interrupted = True
            except asyncio.TimeoutError:
                pass
        elif self._interrupt.is_set() and remaining > 0:
            interrupted = True
        played = min(seg.captured_s, max(0.0, time.perf_counter() - seg.started_at))
        seg.played_s = played
        seg.interrupted = interrupted
        self._interrupt.clear()
        self.on_playback_finished(playback_position=played, interrupted=interrupted)
        self.segment_finished.set()
