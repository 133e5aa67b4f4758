"""Which runtime scores the client VAD's Silero windows.

Both runtimes run the same Silero model, one 512-sample 16 kHz window per call, each scorer
keeping its own recurrent state:

* ``"native"``: ``livekit.local_inference.VAD``, LiveKit's compiled Silero (a dependency of
  livekit-agents, the runtime behind ``livekit.agents.inference.VAD``). It takes int16 PCM,
  shares one model per process, releases the GIL, and costs ~0.03 ms a window: cheap enough
  to stay inline on the event loop (a hop to a worker thread would cost more than that).
* ``"onnx"``: the Silero plugin's onnxruntime session, shared by every scorer of the process.
  The reference, and the fallback where the native runtime is absent; 0.1-0.25 ms a window.

On the test fixtures the two give the same probabilities within 0.002 and the same turns
(``tests/test_silero_runtime.py``). ``NOVAD_SILERO_RUNTIME=onnx`` (or ``native``) picks one
for the process; by default the native runtime is used where it imports.

A scorer is ``scorer(window_16k_float32) -> float`` with ``reset()``, the shape
:class:`~livekit_plugins_openai_novad.client_vad.ClientTurnDetector` calls; one that also has
``pcm16(window_16k_int16) -> float`` (the native one) is given int16 windows instead.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import numpy as np

# imported here, on the main thread: LiveKit plugins refuse to register from a job thread
from livekit.plugins.silero import onnx_model

from .log import logger

try:  # present with livekit-agents 1.8, but a compiled wheel: not on every platform
    from livekit import local_inference as _native
except ImportError:  # pragma: no cover - depends on the platform
    _native = None  # type: ignore[assignment]

__all__ = ["RUNTIMES", "ENV_VAR", "Scorer", "default_runtime", "prewarm", "new_scorer"]

RUNTIMES = ("native", "onnx")
ENV_VAR = "NOVAD_SILERO_RUNTIME"
WINDOW_16K = 512  # Silero's window at 16 kHz (32 ms)
_INT16_SCALE = np.float32(32768.0)


class Scorer(Protocol):
    def __call__(self, window: np.ndarray) -> float: ...

    def reset(self) -> None: ...


def default_runtime() -> str:
    """The runtime new scorers use: ``NOVAD_SILERO_RUNTIME`` if set, else native if present."""
    chosen = os.environ.get(ENV_VAR, "").strip().lower()
    if chosen:
        if chosen not in RUNTIMES:
            raise ValueError(f"{ENV_VAR} must be one of {', '.join(RUNTIMES)}, not {chosen!r}")
        if chosen == "native" and _native is None:
            raise ValueError(f"{ENV_VAR}=native but livekit.local_inference does not import here")
        return chosen
    return "native" if _native is not None else "onnx"


def prewarm(runtime: str | None = None) -> None:
    """Load the model of ``runtime`` (default: :func:`default_runtime`) once for the process."""
    runtime = runtime or default_runtime()
    if runtime == "native":
        _native.init_vad()
    else:
        _onnx_session()


def new_scorer(runtime: str | None = None) -> Scorer:
    """A scorer with fresh recurrent state, on ``runtime`` (default: :func:`default_runtime`)."""
    runtime = runtime or default_runtime()
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    return NativeScorer() if runtime == "native" else OnnxScorer()


class NativeScorer:
    """``livekit.local_inference.VAD`` behind the float call shape.

    :meth:`pcm16` scores an int16 window as it is; a float window (full scale 1) is rounded
    to int16 (half to even) in buffers owned by the scorer first, so a window allocates
    nothing but the result.
    """

    def __init__(self) -> None:
        if _native is None:
            raise ValueError("the native Silero runtime (livekit.local_inference) is not installed")
        self._vad = _native.VAD()
        self._f32 = np.empty(WINDOW_16K, dtype=np.float32)
        self._i16 = np.empty(WINDOW_16K, dtype=np.int16)

    def __call__(self, window: np.ndarray) -> float:
        np.multiply(window, _INT16_SCALE, out=self._f32)
        np.clip(self._f32, -32768.0, 32767.0, out=self._f32)
        np.rint(self._f32, out=self._f32)
        self._i16[:] = self._f32
        return float(self._vad.predict(self._i16))

    def pcm16(self, window: np.ndarray) -> float:
        return float(self._vad.predict(window))

    def reset(self) -> None:
        self._vad.reset()


_shared_session: Any = None
_shared_lock = threading.Lock()


def _onnx_session() -> Any:
    global _shared_session
    if _shared_session is None:
        with _shared_lock:
            if _shared_session is None:
                _shared_session = onnx_model.new_inference_session(force_cpu=True)
                logger.debug("loaded Silero VAD (onnxruntime) for client-side turn detection")
    return _shared_session


class OnnxScorer:
    """The Silero plugin's model on the process's shared onnxruntime session."""

    def __init__(self) -> None:
        self.reset()

    def __call__(self, window: np.ndarray) -> float:
        return float(self._model(window))

    def reset(self) -> None:
        # the plugin's model has no reset: its state is its own, so a new one is a reset
        self._model = onnx_model.OnnxModel(onnx_session=_onnx_session(), sample_rate=16000)
