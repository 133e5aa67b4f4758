"""Client-side turn detection with Silero, and the audio gate that rides on it.

Runs while the server is not detecting turns. Audio is cut into 32 ms windows of the
24 kHz stream the server receives; each window is scored by Silero (at 16 kHz, after an exact
3:2 interpolation, so a window boundary in the VAD is a sample boundary on the wire). The
gate decisions are therefore sample exact: a turn sends ``prefix_padding_ms`` before the
detected onset, every speech sample, and exactly ``silence_duration_ms`` of trailing silence;
the silence between turns is never sent. Bytes are forwarded unmodified and in order.

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


_F32_SCALE = np.float32(1.0 / 32768.0)


def _to_16k(window: bytes) -> np.ndarray:
    """24 kHz -> 16 kHz for one window: sample 1.5*n, linear between neighbours."""
    x = np.frombuffer(window, dtype=np.int16).astype(np.float32) * _F32_SCALE
    y = np.empty(WINDOW_SAMPLES * 2 // 3, dtype=np.float32)
    y[0::2] = x[0::3]
    y[1::2] = (x[1::3] + x[2::3]) * 0.5
    return y


class ClientTurnDetector:
    """Feeds 24 kHz PCM16 through Silero and returns what the gate must do, in order."""

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
        self.reset()

    def reset(self) -> None:
        """Forget any turn in progress (the gate closes) and Silero's recurrent state."""
        reset = getattr(self._score, "reset", None)
        if reset is not None:
            reset()
        self._pending = bytearray()  # not yet a whole window
        self._ring = bytearray()  # recent audio while idle: the next turn's prefix padding
        self._voiced_run = 0  # consecutive voiced windows while idle
        self._speaking = False
        self._silence_sent = 0  # trailing silence bytes already sent in this turn
        self.last_probability = 0.0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def take_turn_tail(self) -> bytes:
        """Mid-turn, the turn's audio not yet released (under one window, waiting to be
        scored), removed from the gate; empty between turns. For when the server's VAD takes
        the turn over: these bytes are part of it."""
        if not self._speaking:
            return b""
        tail = bytes(self._pending)
        self._pending.clear()
        return tail

    def push(self, pcm16: bytes) -> list[tuple[GateAction, bytes]]:
        actions: list[tuple[GateAction, bytes]] = []
        self._pending += pcm16
        n_windows = len(self._pending) // WINDOW_BYTES
        for i in range(n_windows):
            window = bytes(self._pending[i * WINDOW_BYTES : (i + 1) * WINDOW_BYTES])
            self._window(window, actions)
        del self._pending[: n_windows * WINDOW_BYTES]
        return actions

    def _window(self, window: bytes, actions: list[tuple[GateAction, bytes]]) -> None:
        p = float(self._score(_to_16k(window)))
        self.last_probability = p
        voiced = p >= self._opts.threshold

        if not self._speaking:
            self._ring += window
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self._onset_windows:
                onset = len(self._ring) - self._voiced_run * WINDOW_BYTES
                start = max(0, onset - self._prefix_bytes)
                actions.append((GateAction.SPEECH_STARTED, b""))
                actions.append((GateAction.SEND, bytes(self._ring[start:])))
                self._ring.clear()
                self._voiced_run = 0
                self._speaking = True
                self._silence_sent = 0
            else:
                keep = self._prefix_bytes + self._onset_windows * WINDOW_BYTES
                if len(self._ring) > keep:
                    del self._ring[: len(self._ring) - keep]
            return

        if voiced:
            self._silence_sent = 0
            actions.append((GateAction.SEND, window))
            return

        # trailing silence: send exactly silence_duration_ms of it, then end the turn
        room = self._silence_bytes - self._silence_sent
        if len(window) < room:
            self._silence_sent += len(window)
            actions.append((GateAction.SEND, window))
            return
        if room > 0:
            actions.append((GateAction.SEND, window[:room]))
        actions.append((GateAction.SPEECH_STOPPED, b""))
        self._speaking = False
        self._silence_sent = 0
        # what is left of the window is silence before the next turn: it may be its prefix
        self._ring = bytearray(window[room:])
        self._voiced_run = 0
