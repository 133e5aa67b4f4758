"""Client-side turn detection with Silero, and the audio gate that rides on it.

Runs while the server is not detecting turns. Audio is cut into 32 ms windows of the
24 kHz stream the server receives; each window is scored by Silero (at 16 kHz, after an exact
3:2 interpolation, so a window boundary in the VAD is a sample boundary on the wire). The
gate decisions are therefore sample exact: a turn sends ``prefix_padding_ms`` before the
detected onset, every speech sample, and ``silence_duration_ms`` of trailing silence counted
from where the speech energy ended (at least Silero's lag, one to four windows, for windows
shorter than that); the silence between turns is never sent. Bytes are forwarded unmodified
and in order, and the result does not depend on how the audio is split into pushes.

Inference runs inline: one Silero window costs ~0.1 ms, less than a thread hop would add.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

# imported here, on the main thread: LiveKit plugins refuse to register from a job thread
from livekit.plugins.silero import onnx_model

from .log import logger
from .turn_detection import ClientVad
from .wire import SAMPLE_RATE

__all__ = ["prewarm", "ClientTurnDetector", "GateAction"]

WINDOW_SAMPLES = 768  # 32 ms at 24 kHz = Silero's 512-sample window at 16 kHz
WINDOW_BYTES = WINDOW_SAMPLES * 2
_SAMPLES_PER_MS = SAMPLE_RATE // 1000

_shared_session: Any = None
_shared_lock = threading.Lock()


def prewarm(proc: Any = None) -> None:
    """Load Silero once for this process (call it from a worker's ``prewarm_fnc``).

    Sessions share the ONNX inference session; each keeps only its own recurrent state.
    """
    _inference_session()


def _inference_session() -> Any:
    global _shared_session
    if _shared_session is None:
        with _shared_lock:
            if _shared_session is None:
                _shared_session = onnx_model.new_inference_session(force_cpu=True)
                logger.debug("loaded Silero VAD for client-side turn detection")
    return _shared_session


def _silero_scorer() -> Callable[[np.ndarray], float]:
    model = onnx_model.OnnxModel(onnx_session=_inference_session(), sample_rate=16000)
    return model


class GateAction(Enum):
    SEND = "send"  # forward these bytes to the server
    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"  # the turn is over: commit what was sent
    PAUSED = "paused"  # preemptive_after_ms into the trailing silence (the turn may end)
    RESUMED = "resumed"  # voice again after PAUSED: the turn goes on


_F32_SCALE = np.float32(1.0 / 32768.0)


def _to_16k(x: np.ndarray) -> np.ndarray:
    """24 kHz -> 16 kHz for one window (float, full scale 1): sample 1.5*n, linear between."""
    y = np.empty(WINDOW_SAMPLES * 2 // 3, dtype=np.float32)
    y[0::2] = x[0::3]
    y[1::2] = (x[1::3] + x[2::3]) * 0.5
    return y


class ClientTurnDetector:
    """Feeds 24 kHz PCM16 through Silero and returns what the gate must do, in order.

    Positions are absolute byte offsets in the stream pushed so far. Silero scores fixed
    32 ms windows; the gate works at byte precision:

    * idle: audio is held (``prefix_padding_ms`` of it plus the onset windows); after
      ``min_speech_ms`` of voiced windows the turn starts ``prefix_padding_ms`` before the
      first of them, and the held audio is released;
    * in a turn, every byte is forwarded as soon as it is pushed (scoring decides only
      where the turn ends);
    * at the first unvoiced window the trailing silence is dated from where the speech
      energy really ended (Silero stays above threshold for a few windows after the last
      sound), and the turn ends exactly ``silence_duration_ms`` later, checked on every push,
      unless a voiced window comes first;
    * with ``preemptive_after_ms`` shorter than the window, ``PAUSED`` marks that point of
      the trailing silence (everything before it has been sent, nothing after it), and a
      voiced window after it gives ``RESUMED``; each pause ends in one of the two or in
      ``SPEECH_STOPPED``, and ``speech_s`` is the turn's length up to the silence.
    """

    def __init__(
        self,
        opts: ClientVad,
        *,
        scorer: Callable[[np.ndarray], float] | None = None,
    ) -> None:
        self._opts = opts
        self._score = scorer or _silero_scorer()
        self._prefix_bytes = opts.prefix_padding_ms * _SAMPLES_PER_MS * 2
        self._silence_bytes = opts.silence_duration_ms * _SAMPLES_PER_MS * 2
        self._onset_windows = max(1, -(-opts.min_speech_ms // 32))
        pre = opts.preemptive_after_ms
        self._pause_bytes = (
            pre * _SAMPLES_PER_MS * 2
            if pre is not None and pre < opts.silence_duration_ms
            else None
        )
        self.reset()

    def reset(self) -> None:
        """Forget any turn in progress (the gate closes) and Silero's recurrent state."""
        reset = getattr(self._score, "reset", None)
        if reset is not None:
            reset()
        self._buf = bytearray()  # pushed audio from _buf_start on (unscored tail included)
        self._buf_start = 0
        self._scored = 0  # end of the audio Silero has scored
        self._sent = 0  # end of the audio released to the server
        self._voiced_run = 0  # consecutive voiced windows while idle
        self._speaking = False
        self._deadline: int | None = None  # in trailing silence: where the turn ends
        self._pause_at: int | None = None  # in trailing silence: where PAUSED is due
        self._paused = False  # PAUSED given, neither RESUMED nor SPEECH_STOPPED yet
        self._onset = 0  # where the turn's first voiced window began
        self._loud_end = 0  # end of the last 10 ms of the turn above the energy threshold
        self._peak_db = _FLOOR_DB

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def speech_s(self) -> float:
        """The current turn's length from its onset to the start of the trailing silence
        (to now while voiced)."""
        if not self._speaking:
            return 0.0
        end = self._scored if self._deadline is None else self._deadline - self._silence_bytes
        return max(0, end - self._onset) / (2 * SAMPLE_RATE)

    def push(self, pcm16: bytes | memoryview) -> list[tuple[GateAction, bytes]]:
        actions: list[tuple[GateAction, bytes]] = []
        data = memoryview(pcm16).cast("B")
        # in 10 ms steps, so a long push decides exactly as the same audio in 10 ms frames
        for i in range(0, len(data), _STEP_BYTES):
            self._step(data[i : i + _STEP_BYTES], actions)
        self._trim()
        return actions

    def _step(self, pcm16: memoryview, actions: list[tuple[GateAction, bytes]]) -> None:
        self._buf += pcm16
        end = self._buf_start + len(self._buf)
        while self._scored + WINDOW_BYTES <= end:
            self._window(actions)
        if self._speaking:
            upto = end if self._deadline is None else min(end, self._deadline)
            if self._pause_at is not None:
                upto = min(upto, self._pause_at)  # nothing after a pause point before PAUSED
            self._release(upto, actions)
            if self._deadline is not None and end >= self._deadline:
                self._release(self._deadline, actions)
                self._end_turn(actions)

    def _bytes(self, start: int, stop: int) -> bytes:
        return bytes(self._buf[start - self._buf_start : stop - self._buf_start])

    def _release(self, upto: int, actions: list[tuple[GateAction, bytes]]) -> None:
        if upto > self._sent:
            actions.append((GateAction.SEND, self._bytes(self._sent, upto)))
            self._sent = upto

    def _window(self, actions: list[tuple[GateAction, bytes]]) -> None:
        start = self._scored
        window = self._bytes(start, start + WINDOW_BYTES)
        self._scored = start + WINDOW_BYTES
        x = np.frombuffer(window, dtype=np.int16).astype(np.float32) * _F32_SCALE
        voiced = float(self._score(_to_16k(x))) >= self._opts.threshold

        if not self._speaking:
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self._onset_windows:
                onset = self._scored - self._voiced_run * WINDOW_BYTES
                # never re-send what an earlier turn already took as its trailing silence
                self._sent = max(self._sent, self._buf_start, onset - self._prefix_bytes)
                self._onset = onset
                self._speaking = True
                self._deadline = None
                self._voiced_run = 0
                self._loud_end = self._scored
                self._peak_db = _FLOOR_DB
                actions.append((GateAction.SPEECH_STARTED, b""))
            return

        levels = _subframe_db(x)
        self._peak_db = max(self._peak_db, float(levels.max()))
        threshold = max(_FLOOR_DB, self._peak_db - _BELOW_PEAK_DB)
        loud = np.flatnonzero(levels >= threshold)
        if loud.size:
            self._loud_end = start + (int(loud[-1]) + 1) * _SUBFRAME_BYTES
        if voiced:
            self._deadline = None
            self._pause_at = None
            self._loud_end = max(self._loud_end, self._scored - _MAX_TAIL_BYTES)
            if self._paused:
                self._paused = False
                self._release(self._scored, actions)  # up to the voiced window, exactly
                actions.append((GateAction.RESUMED, b""))
        else:
            if self._deadline is None:
                # Silero lags the sound by a few windows: date the silence from the energy
                start = max(self._loud_end, self._scored - WINDOW_BYTES - _MAX_TAIL_BYTES)
                self._deadline = start + self._silence_bytes
                if self._pause_bytes is not None:
                    # not before this window: what was sent before it cannot be held back
                    pause_at = max(start + self._pause_bytes, self._scored)
                    self._pause_at = pause_at if pause_at < self._deadline else None
            # a pause point counts once the window holding it is heard unvoiced
            if self._pause_at is not None and self._scored >= self._pause_at:
                self._release(self._pause_at, actions)
                actions.append((GateAction.PAUSED, b""))
                self._pause_at = None
                self._paused = True

    def _end_turn(self, actions: list[tuple[GateAction, bytes]]) -> None:
        actions.append((GateAction.SPEECH_STOPPED, b""))
        self._speaking = False
        self._deadline = None
        self._pause_at = None
        self._paused = False
        self._voiced_run = 0

    def _trim(self) -> None:
        # keep what the next turn may need: its prefix padding and its onset windows
        keep_from = self._scored - self._prefix_bytes - self._onset_windows * WINDOW_BYTES
        if self._speaking:
            keep_from = min(keep_from, self._sent)
        drop = keep_from - self._buf_start
        if drop > 0:
            del self._buf[:drop]
            self._buf_start += drop


_STEP_BYTES = 10 * _SAMPLES_PER_MS * 2  # 10 ms: the gate's decision granularity
_SUBFRAME_BYTES = WINDOW_BYTES // 3  # ~10.7 ms: the resolution of the silence start
_FLOOR_DB = -50.0  # quieter than this is silence, however quiet the speaker
_BELOW_PEAK_DB = 35.0  # ...and so is anything this far below the turn's loudest sound
_MAX_TAIL_BYTES = 4 * WINDOW_BYTES  # how far back the energy may date the silence


def _subframe_db(x: np.ndarray) -> np.ndarray:
    """dBFS of the window's three ~10.7 ms thirds (``x`` at full scale 1)."""
    thirds = x.reshape(3, -1)
    rms = np.sqrt(np.mean(thirds * thirds, axis=1))
    return np.asarray(20.0 * np.log10(rms + 1e-9))
