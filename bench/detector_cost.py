"""What the client VAD's detector costs per window, offline.

``python -m bench.detector_cost`` pushes 64 s of ``tests/fixtures/three_turns.wav`` (the
fixture five times over) through a ``ClientTurnDetector`` in 10 ms pushes and prints the
process time per second of audio: all of it, and the share left once Silero's own scoring is
taken out (the same run with a scorer that returns a precomputed probability, so the detector
makes the same decisions). Best of ``--repeat`` runs, so a busy machine inflates it less. The
digest of the gate's output lets two builds be checked for identical decisions.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "three_turns.wav"
SR = 24000
AUDIO_S = 64.0
PUSH_BYTES = SR // 100 * 2


def _audio() -> bytes:
    from livekit_plugins_openai_novad.testing.agent_io import read_wav

    pcm = read_wav(FIXTURE)
    n = int(AUDIO_S * SR) * 2
    return (pcm * (n // len(pcm) + 1))[:n]


class _Replay:
    """A scorer that gives back the probabilities a real one gave, in order."""

    def __init__(self, probs: list[float]) -> None:
        self._probs = probs
        self._i = 0

    def __call__(self, window: np.ndarray) -> float:
        p = self._probs[self._i]
        self._i += 1
        return p

    def reset(self) -> None:
        self._i = 0


class _Pcm16Replay(_Replay):
    pcm16 = _Replay.__call__  # the int16 path, as the native runtime is fed


class _Recorder:
    def __init__(self, inner: Callable[[np.ndarray], float]) -> None:
        self.inner = inner
        self.probs: list[float] = []

    def __call__(self, window: np.ndarray) -> float:
        p = float(self.inner(window))
        self.probs.append(p)
        return p

    def reset(self) -> None:
        getattr(self.inner, "reset", lambda: None)()


class _Pcm16Recorder(_Recorder):
    def pcm16(self, window: np.ndarray) -> float:
        p = float(self.inner.pcm16(window))  # type: ignore[attr-defined]
        self.probs.append(p)
        return p


def _run(pcm: bytes, scorer: Callable[[np.ndarray], float] | None) -> tuple[float, str]:
    from livekit_plugins_openai_novad import ClientVad
    from livekit_plugins_openai_novad.client_vad import ClientTurnDetector

    det = ClientTurnDetector(ClientVad(), scorer=scorer)
    digest = hashlib.sha256()
    t0 = time.process_time()
    for i in range(0, len(pcm), PUSH_BYTES):
        for action, data in det.push(pcm[i : i + PUSH_BYTES]):
            digest.update(action.value.encode())
            digest.update(data)
    return time.process_time() - t0, digest.hexdigest()[:16]


def measure(repeat: int = 5) -> dict[str, float | str]:
    from livekit_plugins_openai_novad import silero_runtime

    pcm = _audio()
    inner = silero_runtime.new_scorer()
    # the onnx fallback takes floats only: replay it on the float path too
    pcm16 = hasattr(inner, "pcm16")
    recorder = _Pcm16Recorder(inner) if pcm16 else _Recorder(inner)
    _, digest = _run(pcm, recorder)
    full = min(_run(pcm, silero_runtime.new_scorer())[0] for _ in range(repeat))
    replay = _Pcm16Replay(recorder.probs) if pcm16 else _Replay(recorder.probs)
    own = []
    for _ in range(repeat):
        replay.reset()
        secs, replay_digest = _run(pcm, replay)
        own.append(secs)
        assert replay_digest == digest, "the replayed scorer made different decisions"
    return {
        "runtime": silero_runtime.default_runtime(),
        "ms_per_audio_s": full / AUDIO_S * 1000,
        "detector_ms_per_audio_s": min(own) / AUDIO_S * 1000,
        "digest": digest,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detector_cost", description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    r = measure(args.repeat)
    print(
        f"runtime {r['runtime']}: {r['ms_per_audio_s']:.2f} ms CPU per s of audio, "
        f"{r['detector_ms_per_audio_s']:.2f} ms of it outside Silero; decisions {r['digest']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
