"""Both Silero runtimes, native and the plugin's onnxruntime, on real speech: same turns."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES
from gate_trace import gate_marks

from livekit_plugins_openai_novad import ClientVad, silero_runtime
from livekit_plugins_openai_novad.client_vad import ClientTurnDetector, GateAction
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(60)
FIXTURE_NAMES = ("one_turn.wav", "three_turns.wav", "long_turn.wav", "short_word.wav")
STEP = 480  # 10 ms frames


def gate(pcm: bytes, runtime: str, opts: ClientVad) -> tuple[bytes, list[tuple[GateAction, int]]]:
    det = ClientTurnDetector(opts, scorer=silero_runtime.new_scorer(runtime))
    return gate_marks(det, pcm, STEP)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("silence_ms", [300, 500])
def test_native_and_onnx_runtimes_take_the_same_turns(name: str, silence_ms: int) -> None:
    pcm = read_wav(FIXTURES / name)
    opts = ClientVad(silence_duration_ms=silence_ms)
    native = gate(pcm, "native", opts)
    onnx = gate(pcm, "onnx", opts)
    assert any(a is GateAction.SPEECH_STOPPED for a, _ in onnx[1]), "the fixture has no turn"
    assert native[1] == onnx[1]
    assert native[0] == onnx[0]


class FloatOnly:
    """The native scorer seen through the float call shape only (no ``pcm16``)."""

    def __init__(self) -> None:
        self._inner = silero_runtime.new_scorer("native")

    def __call__(self, window: np.ndarray) -> float:
        return self._inner(window)

    def reset(self) -> None:
        self._inner.reset()


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_int16_windows_decide_as_the_float_windows_do(name: str) -> None:
    # the detector hands the native runtime int16 windows; they must be the float windows
    # as that runtime rounds them, so every decision and every byte sent is the same
    pcm = read_wav(FIXTURES / name)
    opts = ClientVad()
    results = [
        gate_marks(ClientTurnDetector(opts, scorer=scorer), pcm, STEP)
        for scorer in (silero_runtime.new_scorer("native"), FloatOnly())
    ]
    assert any(a is GateAction.SPEECH_STOPPED for a, _ in results[1][1])
    assert results[0] == results[1]


def test_scores_agree_and_reset_restores_the_first_answer() -> None:
    pcm = read_wav(FIXTURES / "one_turn.wav")
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    windows = [x[i : i + 512] for i in range(0, 16000 * 3, 512)]  # any 512 samples will do
    scores = {}
    for runtime in silero_runtime.RUNTIMES:
        scorer = silero_runtime.new_scorer(runtime)
        first = [scorer(w) for w in windows]
        scorer.reset()
        assert [scorer(w) for w in windows] == first, runtime
        scores[runtime] = np.array(first)
    assert float(np.abs(scores["native"] - scores["onnx"]).max()) < 0.02


def test_the_environment_picks_the_runtime_and_a_bad_name_is_refused() -> None:
    code = (
        "from livekit_plugins_openai_novad import silero_runtime as r; "
        "print(r.default_runtime(), type(r.new_scorer()).__name__)"
    )

    def run(value: str) -> subprocess.CompletedProcess[str]:
        env = {**_clean_env(), silero_runtime.ENV_VAR: value}
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )

    assert run("onnx").stdout.split() == ["onnx", "OnnxScorer"]
    assert run("native").stdout.split() == ["native", "NativeScorer"]
    assert run("").stdout.split() == ["native", "NativeScorer"]  # the default where it exists
    bad = run("tensorrt")
    assert bad.returncode != 0
    assert "ValueError" in bad.stderr and silero_runtime.ENV_VAR in bad.stderr
    with pytest.raises(ValueError, match="runtime"):
        silero_runtime.new_scorer("tensorrt")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != silero_runtime.ENV_VAR}
