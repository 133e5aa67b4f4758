"""The committed real-speech test fixture: ``python -m bench.realspeech_fixture``.

Writes ``tests/fixtures/real_turn.wav`` (24 kHz mono PCM16) and ``real_turn.json`` (its ground
truth, from the sources): one turn of two recorded prompts of the same voice with a 300 ms
pause between their speech regions, then a cough, then a short music-like burst, each well
after the turn (where a detector that ended the turn on time is idle again).
"""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np

from . import realspeech_corpus as corpus

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SR = corpus.SR
SEED = 1
VOICE = "es_MX_f_Allison/"


def build(seed: int) -> tuple[bytes, dict[str, Any]]:
    """The fixture's PCM16 and ground truth for ``seed``."""
    turn_pool, _ = corpus.load_prompts(
        Path(__file__).resolve().parent / "_work" / "realspeech" / "prompts"
    )
    rng = np.random.default_rng(seed)
    voice = [p for p in turn_pool if p.name.startswith(VOICE) and 1.0 <= _speech_s(p) <= 1.8]
    first, second = (voice[int(i)] for i in rng.choice(len(voice), size=2, replace=False))
    x = np.zeros(int(8.0 * SR))
    speech = []
    pos = int(0.6 * SR)
    for j, p in enumerate((first, second)):
        if j:
            pos += int(0.3 * SR)
        start = pos - p.speech[0]
        x[start : start + len(p.audio)] += p.audio
        speech.append((pos, start + p.speech[1]))
        pos = start + p.speech[1]
    mask = np.zeros(len(x), bool)
    for a, b in speech:
        mask[a:b] = True
    power = float(np.mean(x[mask] ** 2))
    distractors = []
    for kind, level_db in (("cough", -4.0), ("music", -6.0)):
        pos += int(0.9 * SR)
        y = corpus.DISTRACTORS[kind](rng)[: int(0.5 * SR)]
        x[pos : pos + len(y)] += y * np.sqrt(power * 10 ** (level_db / 10) / np.mean(y * y))
        distractors.append({"kind": kind, "start_sample": pos, "end_sample": pos + len(y)})
        pos += len(y)
    x = x[: pos + int(1.2 * SR)]
    pcm = np.asarray(np.clip(np.round(x * 32768.0), -32768, 32767), dtype="<i2").tobytes()
    truth = {
        "seed": seed,
        "sample_rate": SR,
        "sources": [first.name, second.name],
        "speech": [{"start_sample": a, "end_sample": b} for a, b in speech],
        "end_sample": "exclusive",
        "distractors": distractors,
    }
    return pcm, truth


def _speech_s(p: corpus.Prompt) -> float:
    return (p.speech[1] - p.speech[0]) / SR


def main() -> int:
    pcm, truth = build(SEED)
    with wave.open(str(OUT / "real_turn.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm)
    (OUT / "real_turn.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(json.dumps(truth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
