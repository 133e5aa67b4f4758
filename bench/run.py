"""Run every benchmark, novad and the upstream anchor in the same run: ``python -m bench.run``.

Each measurement runs in a fresh worker process (``bench.worker``) with its own fake server
process. Writes ``bench/results.json`` (raw numbers) and ``bench/RESULTS.md`` (tables).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .agents import IMPLS, SILENCE_WINDOW_S, load_fixture
from .floor import detector_floor
from .p5 import cases as p5_cases
from .p5 import render_p5
from .report import render

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "_work"
DEFAULT_STEPS = (10, 25, 50, 75, 100, 125, 150, 175, 200)


def _log(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", flush=True)


def machine_info() -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "loadavg_at_start": list(os.getloadavg()),
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in (
        "livekit-agents",
        "livekit-plugins-openai",
        "livekit-plugins-silero",
        "livekit-plugins-openai-novad",
        "livekit",
        "onnxruntime",
        "aiohttp",
        "numpy",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=BENCH.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("+local changes" if dirty.stdout.strip() else "")


def run_worker(name: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One measurement in a fresh process; its output goes to ``_work/logs/<name>.log``."""
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = WORK / f"{name}.json"
    if out.exists():
        out.unlink()
    t = time.perf_counter()
    with open(logs / f"{name}.log", "w") as log:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.worker", json.dumps(spec), str(out)],
                cwd=BENCH.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            rc: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    elapsed = time.perf_counter() - t
    if rc == 0 and out.exists():
        result = json.loads(out.read_text())
    else:
        result = {"error": f"worker exit {rc}; see bench/_work/logs/{name}.log", "spec": spec}
    result["process_s"] = elapsed
    return result


def _p1_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return r["error"]
    lat = r["latency"]
    return (
        f"{r['turns_answered']}/{r['turns_expected']} turns, "
        f"p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms"
    )


def _p2_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return r["error"]
    return (
        f"CPU {r['cpu_percent']:.1f}% ({r['cpu_percent_per_session']:.2f}%/session), "
        f"lag p99 {r['loop_lag']['p99'] * 1000:.1f} ms max {r['loop_lag']['max'] * 1000:.0f} ms, "
        f"turns {r['turns_answered']}/{r['turns_expected']}, "
        f"input late {r['input_frames_late']} / >100ms {r['input_frames_underrun']}, "
        f"output underruns {r['output_underruns']}, "
        f"real time {'kept' if r['keeps_real_time'] else 'LOST'}"
        f"{'' if r['keeps_real_time_strict'] else ' (strict: lost)'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--p1-loops", type=int, default=10, help="fixture loops per P1 session")
    ap.add_argument("--p2-loops", type=int, default=2, help="fixture loops per P2 step")
    ap.add_argument(
        "--steps",
        default=",".join(map(str, DEFAULT_STEPS)),
        help="P2 session counts, ascending; an implementation stops at its first miss",
    )
    ap.add_argument("--switches", type=int, default=240, help="P3 switches per implementation")
    ap.add_argument("--profile-n", type=int, default=50, help="cProfile step size (0 = none)")
    ap.add_argument("--p5-loops", type=int, default=2, help="fixture loops per P5 case (0 = none)")
    ap.add_argument("--only-p5", action="store_true", help="run P5 alone (P1-P4 skipped)")
    ap.add_argument("--out", default=str(BENCH), help="where RESULTS.md/results.json go")
    ap.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        help="measure nothing: rewrite RESULTS.md (in --out) from an earlier results.json",
    )
    args = ap.parse_args(argv)
    if args.render:
        res = json.loads(Path(args.render).read_text())
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "RESULTS.md").write_text(render(res))
        return 0
    steps = [int(x) for x in args.steps.split(",") if x.strip()]
    argv_shown = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python -m bench.run", *argv_shown])

    t_start = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    fx = load_fixture()
    results: dict[str, Any] = {
        "command": command,
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "git": git_revision(),
        "config": {
            "fixture": fx.name,
            "fixture_s": fx.duration_s,
            "fixture_speech_s": fx.speech_s,
            "fixture_turns": len(fx.segments),
            "silence_window_s": SILENCE_WINDOW_S,
            "aec_warmup_duration": None,
            "reply_audio_s": 0.3,
            "p1_loops": args.p1_loops,
            "p2_loops": args.p2_loops,
            "p2_steps": steps,
            "p3_switches": args.switches,
        },
    }
    _log(f"bench start: {command}")

    # P5: perceived latency, every case in its own worker
    if args.p5_loops > 0:
        results["p5"] = [run_p5_case(spec, _log) for spec in p5_cases(args.p5_loops)]
    if args.only_p5:
        return _finish(results, args, t_start)

    # P1 + P4: one session each, sequentially
    p1: dict[str, Any] = {}
    for impl in IMPLS:
        p1[impl] = run_worker(
            f"p1-{impl}",
            {"kind": "p1", "impl": impl, "loops": args.p1_loops},
            timeout=fx.duration_s * args.p1_loops + 240,
        )
        _log(f"P1 {impl}: {_p1_line(p1[impl])}")
    results["p1"] = p1

    _log("detector floor (offline)")
    results["floor"] = asyncio.run(detector_floor(fx))

    # P3
    results["p3"] = run_worker("p3", {"kind": "p3", "switches": args.switches}, timeout=300)
    if "error" not in results["p3"]:
        c = results["p3"]["novad"]["confirm"]
        _log(f"P3 novad: p50 {c['p50'] * 1000:.2f} ms p95 {c['p95'] * 1000:.2f} ms")

    # P2: step N up, both implementations at each N, until each one misses real time
    p2: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLS}
    active = set(IMPLS)
    for n in steps:
        for impl in IMPLS:
            if impl not in active:
                continue
            r = run_worker(
                f"p2-{impl}-{n}",
                {"kind": "p2", "impl": impl, "n": n, "loops": args.p2_loops},
                timeout=fx.duration_s * args.p2_loops + 60 + n * 2,
            )
            p2[impl].append(r)
            _log(f"P2 {impl} N={n}: {_p2_line(r)}")
            if "error" in r or not r["keeps_real_time"]:
                active.discard(impl)
        if not active:
            break
    results["p2"] = p2

    # hot spots: one profiled step per implementation (not part of the P2 figures)
    if args.profile_n > 0:
        prof: dict[str, Any] = {}
        for impl in IMPLS:
            prof[impl] = run_worker(
                f"profile-{impl}-{args.profile_n}",
                {"kind": "p2", "impl": impl, "n": args.profile_n, "loops": 1, "profile": True},
                timeout=fx.duration_s + 60 + args.profile_n * 2,
            )
            _log(f"profile {impl} N={args.profile_n}: {_p2_line(prof[impl])}")
        results["profile"] = prof

    return _finish(results, args, t_start)


def run_p5_case(spec: dict[str, Any], log: Any) -> dict[str, Any]:
    name = f"p5-{spec['impl']}-{spec['fixture'].removesuffix('.wav')}-{spec['ttfa_s'] * 1000:.0f}"
    r = run_worker(name, spec, timeout=120 + 20 * spec["loops"])
    r.setdefault("impl", spec["impl"])
    r.setdefault("fixture", spec["fixture"])
    r.setdefault("ttfa_s", spec["ttfa_s"])
    lat = r.get("latency") or {}
    log(
        f"P5 {name}: "
        + (
            r["error"]
            if "error" in r
            else f"p50 {lat['p50'] * 1000:.0f} ms, "
            f"speculative {r['speculative_started']} started / {r['speculative_cancelled']} "
            f"cancelled over {r['turns']} turns"
        )
    )
    return r


def _finish(results: dict[str, Any], args: Any, t_start: float) -> int:
    results["total_s"] = time.perf_counter() - t_start
    results["machine"]["loadavg_at_end"] = list(os.getloadavg())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(_slim(results), indent=1) + "\n")
    if "p1" in results:
        (out / "RESULTS.md").write_text(render(results))
    else:  # --only-p5
        (out / "RESULTS.md").write_text("\n".join(render_p5(results.get("p5", []))))
    _log(f"done in {results['total_s']:.0f} s: {out / 'RESULTS.md'}")
    return 0


def _slim(results: dict[str, Any]) -> dict[str, Any]:
    """results.json keeps every figure but not the diagnostic timelines."""

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("lag_timeline", "underrun_frames")}

    out = dict(results)
    out["p2"] = {impl: [strip(r) for r in rs] for impl, rs in results.get("p2", {}).items()}
    if "profile" in results:
        out["profile"] = {impl: strip(r) for impl, r in results["profile"].items()}
    return out


if __name__ == "__main__":
    sys.exit(main())
