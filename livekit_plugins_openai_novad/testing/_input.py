"""The input audio buffer and the fake server VAD that runs on it while turn detection is on.

I/O-free: ``append`` returns what the VAD decided, as signals, and the connection turns each
signal into wire events (docs/realtime-wire.md §5). Positions are absolute sample indices
since the connection started (PCM16 24 kHz mono), so ``audio_start_ms``/``audio_end_ms`` count
all audio ever appended, as on the real server.

Invariants:
- ``buffer`` holds the last ``len(buffer)`` bytes appended, so ``buffer[0]`` is at sample
  ``(appended_bytes - len(buffer)) // 2``;
- the VAD runs only while ``configure`` was given a turn detection; it sees every appended
  sample from then on, in 20 ms frames (a partial frame waits for the next append);
- a speech start is always followed by at most one stop; a committed turn (stop, idle timeout,
  manual commit, clear) removes its audio and everything before it from ``buffer``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._messages import (
    MISSING,
    JsonDict,
    ProtocolError,
    invalid_type,
    missing_parameter,
    new_id,
    server_event,
)

__all__ = [
    "SAMPLE_RATE",
    "InputAudio",
    "SpeechStarted",
    "SpeechStopped",
    "TimeoutTriggered",
    "decode_append",
    "transcription_events",
]

SAMPLE_RATE = 24000
_FRAME_MS = 20
_FRAME_SAMPLES = SAMPLE_RATE * _FRAME_MS // 1000  # 480
_FRAME_BYTES = _FRAME_SAMPLES * 2
_MIN_SPEECH_FRAMES = 2  # [fake] 40 ms of energy before speech_started, so clicks do not count
_IDLE_BUFFER_CAP = 30 * SAMPLE_RATE * 2  # [fake] keep <= 30 s of idle audio while VAD is on
_IDLE_BUFFER_SLACK = 5 * SAMPLE_RATE * 2
# [fake] semantic_vad has no silence_duration_ms; end the turn after this much silence
_SEMANTIC_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 300}
# [fake] server_vad threshold 0.5 is the energy level given to append(); each 0.1 above or
# below moves it by 4 dB
_DB_PER_THRESHOLD = 40.0
_MIN_COMMIT_MS = 100.0  # a shorter commit is refused (§4)


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


@dataclass(frozen=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int  # includes prefix_padding_ms: where the committed audio will start

    def event(self) -> JsonDict:
        return server_event(
            "input_audio_buffer.speech_started",
            audio_start_ms=self.audio_start_ms,
            item_id=self.item_id,
        )


@dataclass(frozen=True)
class SpeechStopped:
    """The end of a turn: its audio is committed, then a response if create_response."""

    trigger: ClassVar[str] = "server_vad"
    item_id: str  # the same as the speech start's
    audio_end_ms: int  # includes the silence duration: where the committed audio ends
    audio: bytes  # the committed turn

    def event(self) -> JsonDict:
        return server_event(
            "input_audio_buffer.speech_stopped",
            audio_end_ms=self.audio_end_ms,
            item_id=self.item_id,
        )


@dataclass(frozen=True)
class TimeoutTriggered:
    """No speech for idle_timeout_ms: the silence is committed and a response always follows."""

    trigger: ClassVar[str] = "idle_timeout"
    item_id: str
    audio_start_ms: int
    audio_end_ms: int
    audio: bytes  # the committed (silent) audio

    def event(self) -> JsonDict:
        return server_event(
            "input_audio_buffer.timeout_triggered",
            audio_start_ms=self.audio_start_ms,
            audio_end_ms=self.audio_end_ms,
            item_id=self.item_id,
        )


VadSignal = SpeechStarted | SpeechStopped | TimeoutTriggered


class InputAudio:
    """The buffer a connection appends to, plus the energy VAD (see the module invariants)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.appended_bytes = 0
        self._td: JsonDict | None = None
        self._rem = b""  # a partial frame, waiting for the next append
        self._pos = 0  # samples the VAD has consumed, since the connection started
        self._voiced_run = 0
        self._cand_start = 0
        self._in_speech = False
        self._commit_start = 0
        self._silence_run = 0
        self._speech_item: str | None = None
        self._idle_deadline: int | None = None

    @property
    def vad_on(self) -> bool:
        return self._td is not None

    def configure(self, td: JsonDict | None) -> None:
        """Run the VAD with this turn detection (``None`` = off); a change ends any turn."""
        if td == self._td:
            return
        was_on = self._td is not None
        self._td = td
        self._reset_turn()
        self._idle_deadline = None
        if td is not None and not was_on:
            self._pos = self.appended_bytes // 2
            self._rem = b""

    def arm_idle_timeout(self, after_samples: int) -> None:
        """Fire ``TimeoutTriggered`` once this many more samples pass without speech."""
        self._idle_deadline = self._pos + after_samples

    def disarm_idle_timeout(self) -> None:
        self._idle_deadline = None

    def take_all(self, bytes_per_ms: int) -> bytes:
        """A manual commit: the whole buffer, emptied; any turn in progress ends. Less than
        100 ms is refused, and then nothing changes."""
        buffered_ms = len(self.buffer) / bytes_per_ms
        if buffered_ms < _MIN_COMMIT_MS:
            raise ProtocolError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                None,
            )
        audio = bytes(self.buffer)
        self.buffer.clear()
        self._reset_turn()
        return audio

    def clear(self) -> None:
        self.buffer.clear()
        self._reset_turn()

    def append(self, pcm: bytes, energy_dbfs: float) -> list[VadSignal]:
        """Add audio; with the VAD on, return what it decided (in order)."""
        self.buffer += pcm
        self.appended_bytes += len(pcm)
        if self._td is None:
            return []
        data = self._rem + pcm if self._rem else pcm
        n = len(data) // _FRAME_BYTES
        if n == 0:
            self._rem = data
            return []
        usable = n * _FRAME_BYTES
        self._rem = data[usable:]
        frames = np.frombuffer(data, dtype="<i2", count=usable // 2).astype(np.float32)
        frames = frames.reshape(n, _FRAME_SAMPLES)
        mean_square = np.einsum("ij,ij->i", frames, frames) / (_FRAME_SAMPLES * 32768.0**2)
        threshold_db = energy_dbfs
        if self._td["type"] == "server_vad":
            threshold_db += (float(self._td.get("threshold", 0.5)) - 0.5) * _DB_PER_THRESHOLD
        threshold = 10.0 ** (threshold_db / 10.0)
        signals: list[VadSignal] = []
        for voiced in (mean_square > threshold).tolist():
            signal = self._step(voiced)
            if signal is not None:
                signals.append(signal)
        if not self._in_speech and len(self.buffer) > _IDLE_BUFFER_CAP + _IDLE_BUFFER_SLACK:
            del self.buffer[: len(self.buffer) - _IDLE_BUFFER_CAP]
        return signals

    # ------------------------------------------------------------ the state machine

    def _buffer_start(self) -> int:
        return (self.appended_bytes - len(self.buffer)) // 2

    def _reset_turn(self) -> None:
        self._in_speech = False
        self._voiced_run = 0
        self._silence_run = 0
        self._speech_item = None

    def _step(self, voiced: bool) -> VadSignal | None:
        start = self._pos
        self._pos = end = start + _FRAME_SAMPLES
        td = self._td
        assert td is not None
        if not self._in_speech:
            if voiced:
                if self._voiced_run == 0:
                    self._cand_start = start
                self._voiced_run += 1
                if self._voiced_run >= _MIN_SPEECH_FRAMES:
                    return self._speech_started(td)
            else:
                self._voiced_run = 0
                if self._idle_deadline is not None and end >= self._idle_deadline:
                    return self._idle_timeout(end)
            return None
        if voiced:
            self._silence_run = 0
            return None
        self._silence_run += _FRAME_SAMPLES
        if td["type"] == "server_vad":
            silence_ms = td.get("silence_duration_ms", 200)
        else:
            silence_ms = _SEMANTIC_SILENCE_MS.get(td.get("eagerness", "auto"), 500)
        if self._silence_run * 1000 >= silence_ms * SAMPLE_RATE:
            return self._speech_stopped(end)
        return None

    def _speech_started(self, td: JsonDict) -> SpeechStarted:
        prefix = td.get("prefix_padding_ms", 300) * SAMPLE_RATE // 1000
        self._commit_start = max(self._buffer_start(), self._cand_start - prefix)
        self._in_speech = True
        self._silence_run = 0
        self._speech_item = item_id = new_id("item")
        self._idle_deadline = None
        return SpeechStarted(item_id, _ms(self._commit_start))

    def _speech_stopped(self, stop: int) -> SpeechStopped:
        item_id = self._speech_item or new_id("item")
        self._reset_turn()
        return SpeechStopped(item_id, _ms(stop), self._take(self._commit_start, stop))

    def _idle_timeout(self, end: int) -> TimeoutTriggered:
        self._idle_deadline = None
        start = self._buffer_start()
        return TimeoutTriggered(new_id("item"), _ms(start), _ms(end), self._take(start, end))

    def _take(self, start: int, stop: int) -> bytes:
        """Audio [start, stop) in absolute samples; drops everything before ``stop``."""
        base = self._buffer_start()
        lo = max(0, (start - base) * 2)
        hi = max(lo, (stop - base) * 2)
        audio = bytes(self.buffer[lo:hi])
        del self.buffer[:hi]
        return audio


def decode_append(event: JsonDict) -> bytes:
    """The audio of an ``input_audio_buffer.append``."""
    audio = event.get("audio", MISSING)
    if audio is MISSING:
        raise missing_parameter("audio")
    if not isinstance(audio, str):
        raise invalid_type("audio", "string", audio)
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(
            "invalid_value", "Invalid 'audio'. Expected base64-encoded audio.", "audio"
        ) from None


def transcription_events(item_id: str, text: str, audio: bytes) -> list[JsonDict]:
    """The input transcription of a committed turn: one delta, then completed."""
    base = {"item_id": item_id, "content_index": 0}
    completed = server_event(
        "conversation.item.input_audio_transcription.completed", **base, transcript=text
    )
    # openai-python's models of both wires require the usage
    seconds = round(len(audio) / (2 * SAMPLE_RATE), 3)
    completed["usage"] = {"type": "duration", "seconds": seconds}
    delta = server_event("conversation.item.input_audio_transcription.delta", **base, delta=text)
    return [delta, completed]
