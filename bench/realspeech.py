"""Turn detection on real recorded speech with pauses, distractors and noise, offline.

``python -m bench.realspeech`` builds the corpus (``bench.realspeech_corpus``, into
``bench/_work``), runs novad's ``ClientTurnDetector`` and upstream's Silero VAD path
(``silero.VAD.load(min_silence_duration=0.5)`` stream, START/END_OF_SPEECH) over the same audio
of every condition, writes ``bench/realspeech.json`` and puts the table into
``bench/RESULTS.md`` between its markers (``python -m bench.run`` measures it too and renders
it with the rest).

Everything is measured in audio time: the audio is pushed as fast as the detectors take it in
10 ms frames, and each decision is the stream position of the frame that produced it, so the
figures do not depend on the machine or its load.

Scoring, against the ground truth of the corpus (speech regions of the clean sources):

* a detected turn spans from its start decision - 100 ms to its end decision - the 500 ms
  window (where it last heard speech); it *covers* every true turn that span overlaps;
* a true turn covered by no detected turn is **missed**, by two or more is **split**; a
  detected turn covering two or more true turns is **merged**; a detected turn covering none
  is a **false turn**, "on distractors" when its span overlaps one;
* a turn still open when the audio ends (1 s after the last true turn) ends there, as the
  call would, for both implementations (in loud noise the last turn's end may not be heard
  within that second; it was heard, so it is not missed);
* end-of-turn latency: the end decision of the last turn covering a true turn minus the
  turn's last speech sample (missed and merged turns excluded, and a turn the end of the
  audio closed: that end is not a decision);
* committed audio: novad commits exactly what its gate sent in each turn; upstream appends
  everything and each commit carries all audio since the previous commit;
* upstream runs ``UPSTREAM_RUNS`` times per condition and each figure is the median of its
  runs: its stream does not repeat itself (the 24 -> 16 kHz ``rtc.AudioResampler`` gives
  int16 that differs by 1-2 LSB from run to run, so Silero's first window already scores
  differently), while novad's detector is deterministic and runs once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import realspeech_corpus as corpus
from .metrics import percentile

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "_work" / "realspeech"
RESULTS_JSON = BENCH / "realspeech.json"
SR = corpus.SR
FRAME = SR // 100
WINDOW_S = 0.5
_LEAD_S = 0.1
IMPLS = ("novad", "upstream")
UPSTREAM_RUNS = 3
_RUN_KEYS = ("split", "merged", "false", "eot_p95")  # each upstream run's, kept in the results
SECTION_START = "<!-- realspeech:start -->"
SECTION_END = "<!-- realspeech:end -->"

Run = tuple[list[tuple[int, int]], list[tuple[int, int]]]  # (turns: start, end), committed


def _novad(pcm: bytes) -> Run:
    import livekit_plugins_openai_novad as novad
    from livekit_plugins_openai_novad.client_vad import ClientTurnDetector, GateAction

    det = ClientTurnDetector(novad.ClientVad(silence_duration_ms=int(WINDOW_S * 1000)))
    turns: list[tuple[int, int]] = []
    sent: list[tuple[int, int]] = []
    start = 0
    first = False
    step = 2 * FRAME
    for i in range(0, len(pcm), step):
        end = (i + step) // 2
        for action, data in det.push(pcm[i : i + step]):
            n = len(data) // 2
            if action is GateAction.SPEECH_STARTED:
                start, first = end, True
            elif action is GateAction.SEND and first:
                # a turn's first release is the held audio up to the end of what was pushed
                sent.append((end - n, end))
                first = False
            elif action is GateAction.SEND:
                sent[-1] = (sent[-1][0], sent[-1][1] + n)
            elif action is GateAction.SPEECH_STOPPED:
                turns.append((start, end))
    if det.speaking:
        turns.append((start, len(pcm) // 2))
    return turns, sent


async def _upstream(pcm: bytes) -> Run:
    from livekit import rtc
    from livekit.agents import vad as agents_vad
    from livekit.plugins import silero

    stream = silero.VAD.load(min_silence_duration=WINDOW_S).stream()
    turns: list[tuple[int, int]] = []
    committed: list[tuple[int, int]] = []
    start: int | None = None

    async def read() -> None:
        nonlocal start
        async for ev in stream:
            pos = int(ev.samples_index * SR / 16000)  # samples_index counts at 16 kHz
            if ev.type == agents_vad.VADEventType.START_OF_SPEECH:
                start = pos
            elif ev.type == agents_vad.VADEventType.END_OF_SPEECH and start is not None:
                turns.append((start, pos))
                committed.append((committed[-1][1] if committed else 0, pos))
                start = None

    reader = asyncio.create_task(read())
    step = 2 * FRAME
    for n, i in enumerate(range(0, len(pcm), step)):
        frame = pcm[i : i + step]
        stream.push_frame(
            rtc.AudioFrame(
                data=frame, sample_rate=SR, num_channels=1, samples_per_channel=len(frame) // 2
            )
        )
        if n % 50 == 0:
            await asyncio.sleep(0)  # let the inference task keep up
    stream.end_input()
    await reader
    await stream.aclose()
    if start is not None:
        end = len(pcm) // 2
        turns.append((start, end))
        committed.append((committed[-1][1] if committed else 0, end))
    return turns, committed


def _overlaps(a: int, b: int, c: int, d: int) -> bool:
    return a < d and c < b


def score(conv: corpus.Conversation, run: Run) -> dict[str, Any]:
    turns, committed = run
    covers: list[list[int]] = []  # per detected turn: the true turns it covers
    for s, e in turns:
        a, b = s - int(_LEAD_S * SR), max(s, e - int(WINDOW_S * SR))
        covers.append([i for i, (ts, te) in enumerate(conv.turns) if _overlaps(a, b + 1, ts, te)])
    by_true: list[list[int]] = [[] for _ in conv.turns]
    for j, cov in enumerate(covers):
        for i in cov:
            by_true[i].append(j)
    false = [j for j, cov in enumerate(covers) if not cov]
    on_distractor = [
        j
        for j in false
        if any(
            _overlaps(turns[j][0] - int(_LEAD_S * SR), turns[j][1], a, b)
            for a, b, _ in conv.distractors
        )
    ]
    merged = [j for j, cov in enumerate(covers) if len(cov) > 1]
    latency = [
        (turns[js[-1]][1] - conv.turns[i][1]) / SR
        for i, js in enumerate(by_true)
        if js and len(covers[js[-1]]) == 1 and turns[js[-1]][1] < len(conv.clean)
    ]
    mask = np.zeros(len(conv.clean) + SR, bool)
    for a, b in committed:
        mask[a:b] = True
    speech_in = sum(int(mask[a:b].sum()) for a, b in conv.speech)
    false_kinds: dict[str, int] = {}
    for j in on_distractor:
        for a, b, kind in conv.distractors:
            if _overlaps(turns[j][0] - int(_LEAD_S * SR), turns[j][1], a, b):
                false_kinds[kind] = false_kinds.get(kind, 0) + 1
    return {
        "true": len(conv.turns),
        "detected": len(turns),
        "missed": sum(1 for js in by_true if not js),
        "split": sum(1 for js in by_true if len(js) > 1),
        "merged": len(merged),
        "false": len(false),
        "false_on_distractors": len(on_distractor),
        "false_by_kind": false_kinds,
        "distractors": len(conv.distractors),
        "eot_p50": percentile(latency, 50),
        "eot_p95": percentile(latency, 95),
        "speech_committed": speech_in / conv.speech_samples,
        "committed_per_speech": sum(b - a for a, b in committed) / conv.speech_samples,
    }


def measure(n_turns: int = 96, seed: int = 1, log: Any = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    turn_pool, babble_pool = corpus.load_prompts(WORK / "prompts")
    conv = corpus.build(turn_pool, n_turns, seed)
    noises = {
        "pink": corpus.pink(len(conv.clean), seed + 1),
        "babble": corpus.babble(len(conv.clean), babble_pool, seed + 2),
    }
    res: dict[str, Any] = {
        "seed": seed,
        "turns": n_turns,
        "audio_s": len(conv.clean) / SR,
        "speech_s": conv.speech_samples / SR,
        "prompts": {"turn_pool": len(turn_pool), "babble_pool": len(babble_pool)},
        "conditions": {},
    }
    for name, kind, snr in corpus.CONDITIONS:
        pcm = corpus.with_noise(conv, None if kind is None else noises[kind], snr)
        runs = [score(conv, asyncio.run(_upstream(pcm))) for _ in range(UPSTREAM_RUNS)]
        row = {
            "novad": score(conv, _novad(pcm)),
            "upstream": _median(runs),
            "upstream_runs": [{k: r[k] for k in _RUN_KEYS} for r in runs],
        }
        res["conditions"][name] = row
        n, u = row["novad"], row["upstream"]
        log(
            f"{name}: novad false {n['false']} split {n['split']} missed {n['missed']} "
            f"merged {n['merged']} p50 {_ms(n['eot_p50'])} p95 {_ms(n['eot_p95'])} | "
            f"upstream false {u['false']} split {u['split']} missed {u['missed']} "
            f"merged {u['merged']} p50 {_ms(u['eot_p50'])} p95 {_ms(u['eot_p95'])}"
        )
    res["total_s"] = time.perf_counter() - t0
    return res


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure of ``score`` as the median over ``runs`` (by kind, for false turns)."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        if key == "false_by_kind":
            kinds = sorted({k for r in runs for k in r[key]})
            counts = {k: int(np.median([r[key].get(k, 0) for r in runs])) for k in kinds}
            out[key] = {k: v for k, v in counts.items() if v}
        elif isinstance(first, int):
            out[key] = int(np.median([r[key] for r in runs]))
        else:
            values = [r[key] for r in runs if r[key] is not None]
            out[key] = float(np.median(values)) if values else None
    return out


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 1000:.0f} ms"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def _targets(name: str, n: dict[str, Any], u: dict[str, Any]) -> list[str]:
    """The targets this condition misses, each with by how much."""
    out = []
    for key in ("missed", "merged"):
        if n[key]:
            out.append(f"{key} {n[key]} (target 0)")
    if n["speech_committed"] < 1.0:
        out.append(f"speech committed {n['speech_committed'] * 100:.3f} % (target 100 %)")
    if n["false"] * 2 > u["false"]:
        out.append(f"false turns {n['false']} > half of upstream's {u['false']}")
    if n["split"] > u["split"] or (name == "clean" and n["split"]):
        out.append(f"splits {n['split']} (target ≤ {0 if name == 'clean' else u['split']})")
    if name == "clean" and (n["eot_p50"] or 0) > WINDOW_S + 0.020:
        out.append(f"end of turn p50 {_ms(n['eot_p50'])} > {_ms(WINDOW_S + 0.020)}")
    if "10 dB" in name and (n["eot_p95"] or 0) > (u["eot_p95"] or 0):
        out.append(f"end of turn p95 {_ms(n['eot_p95'])} > upstream's {_ms(u['eot_p95'])}")
    return out


def render(res: dict[str, Any]) -> str:
    """The RESULTS.md section (markdown, between its markers)."""
    w = [
        SECTION_START,
        "## Real speech: turns, pauses, distractors, noise (offline)",
        "",
        f"Produced by `python -m bench.realspeech` (seed {res['seed']}; "
        f"{res['total_s']:.0f} s to run). One conversation of {res['turns']} turns "
        f"({res['audio_s'] / 60:.1f} min, {res['speech_s']:.0f} s of speech) built from "
        "recorded telephone prompts (Spanish, Russian, French: the Debian asterisk prompt "
        f"packages; {res['prompts']['turn_pool']} prompts for turns, "
        f"{res['prompts']['babble_pool']} other ones for babble): turns of 1-3 prompts with "
        "150-350 ms pauses inside, 1.5-3 s gaps, every other gap holding a synthesised "
        "distractor (cough, beep, keyboard, noise burst, music-like tones, breath). The same "
        "audio per condition for novad (`ClientTurnDetector`, default `ClientVad`, 500 ms "
        "window) and upstream (`silero.VAD.load(min_silence_duration=0.5)` stream). Measured in "
        "audio time (10 ms pushes, as fast as the detector takes them), so load does not "
        "change a figure. How turns are scored: `bench/realspeech.py`. Upstream's figures "
        f"are medians of {UPSTREAM_RUNS} runs of each condition: its stream does not repeat "
        "itself (its 24 -> 16 kHz resampler's int16 output differs by 1-2 LSB from run to "
        "run); novad's detector is deterministic.",
        "",
        "| condition | impl | turns detected / true | missed | split | merged | false turns "
        "(on distractors) | end of turn p50 / p95 | speech committed | committed s / speech s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in res["conditions"].items():
        for impl in IMPLS:
            r = row[impl]
            w.append(
                f"| {name} | {impl} | {r['detected']} / {r['true']} | {r['missed']} | "
                f"{r['split']} | {r['merged']} | {r['false']} ({r['false_on_distractors']} of "
                f"{r['distractors']}) | {_ms(r['eot_p50'])} / {_ms(r['eot_p95'])} | "
                f"{r['speech_committed'] * 100:.2f} % | {r['committed_per_speech']:.2f} |"
            )
        n, u = row["novad"], row["upstream"]
        w.append(
            f"| {name} | **ratio** | | | {_ratio(n['split'], u['split'])} | | "
            f"{_ratio(n['false'], u['false'])} | {_ratio(n['eot_p50'], u['eot_p50'])} / "
            f"{_ratio(n['eot_p95'], u['eot_p95'])} | | "
            f"{_ratio(n['committed_per_speech'], u['committed_per_speech'])} |"
        )
    w += [
        "",
        "Targets (every condition: missed 0, merged 0, 100 % of speech committed, false "
        "turns ≤ half of upstream's, splits ≤ upstream's and 0 on clean speech; clean p50 ≤ "
        "window + 20 ms; 10 dB p95 ≤ upstream's):",
        "",
    ]
    for name, row in res["conditions"].items():
        missed = _targets(name, row["novad"], row["upstream"])
        w.append(f"- {name}: " + ("all met" if not missed else "**not met**: " + "; ".join(missed)))
    w += ["", "Upstream's runs (split / merged / false / end of turn p95):", ""]
    for name, row in res["conditions"].items():
        runs = row.get("upstream_runs") or []
        w.append(
            f"- {name}: "
            + ", ".join(
                f"{r['split']} / {r['merged']} / {r['false']} / {_ms(r['eot_p95'])}" for r in runs
            )
        )
    kinds: dict[str, dict[str, int]] = {impl: {} for impl in IMPLS}
    for row in res["conditions"].values():
        for impl in IMPLS:
            for k, v in row[impl]["false_by_kind"].items():
                kinds[impl][k] = kinds[impl].get(k, 0) + v
    w += [
        "",
        "False turns on distractors by kind, all conditions: "
        + "; ".join(
            f"{impl} " + (", ".join(f"{k} {v}" for k, v in sorted(kinds[impl].items())) or "none")
            for impl in IMPLS
        )
        + ".",
        SECTION_END,
    ]
    return "\n".join(w) + "\n"


def splice(markdown: str, section: str) -> str:
    """``markdown`` with its real-speech section replaced by ``section`` (appended if absent)."""
    pattern = re.compile(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END) + "\n?", re.S)
    if pattern.search(markdown):
        return pattern.sub(lambda _: section, markdown)
    return markdown.rstrip("\n") + "\n\n" + section


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.realspeech", description=__doc__)
    ap.add_argument("--turns", type=int, default=96, help="turns in the conversation")
    ap.add_argument("--seed", type=int, default=1, help="corpus seed")
    ap.add_argument("--out", default=str(BENCH), help="where RESULTS.md/realspeech.json go")
    args = ap.parse_args(argv)
    res = measure(args.turns, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_JSON.name).write_text(json.dumps(res, indent=1) + "\n")
    md = out / "RESULTS.md"
    md.write_text(splice(md.read_text() if md.exists() else "", render(res)))
    print(render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
