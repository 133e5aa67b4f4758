"""Run every benchmark, novad and the upstream anchor in the same run: ``python -m bench.run``.

Each measurement runs in a fresh worker process (``bench.worker``) with its own fake server
process. Writes ``bench/results.json`` (raw numbers) and ``bench/RESULTS.md`` (tables).
``--only p2`` runs P2 alone (all three hostings, ``--modes`` to pick).
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

from .agents import IMPLS, ROOM_FRAME_MS, SILENCE_WINDOW_S, TICK_FRAME_MS, load_fixture
from .floor import detector_floor
from .headline import update_readme
from .hosting import MODES
from .metrics import PROBE_INTERVAL_S, percentile
from .p5 import cases as p5_cases
from .realspeech import RESULTS_JSON as REALSPEECH_JSON
from .realspeech import measure as measure_realspeech
from .report import render

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "_work"
# coarse, each limit then bisected (--refine); both implementations run the first steps, so
# CPU per session compares at the same N
DEFAULT_STEPS = (10, 25, 50, 100, 200, 300)
PARTS = ("p1", "realspeech", "p5", "p3", "p2")  # p1 includes P4 and the offline detector floor
LIMITS = ("keeps_real_time", "keeps_real_time_strict")


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
        f"RSS {r['rss_mib']['per_session']:.2f} MiB/session, "
        f"real time {'kept' if r['keeps_real_time'] else 'LOST'}"
        f"{'' if r['keeps_real_time_strict'] else ' (strict: lost)'}"
    )


def _limit(rows: dict[int, dict[str, Any]], key: str) -> tuple[int, int | None]:
    """(largest N with every N up to it passing ``key``, smallest N failing it or None)."""
    lo = 0
    for n in sorted(rows):
        r = rows[n]
        if "error" in r or not r[key]:
            return lo, n
        lo = n
    return lo, None


def cpu_reps(n: int, rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """CPU per session of each implementation's repeated runs at ``n``, with the medians."""
    out: dict[str, Any] = {"n": n}
    for impl, rs in rows.items():
        # a run that lost real time ran short of CPU: its figure is not what a session costs
        cpu = [
            r["cpu_percent_per_session"] for r in rs if "error" not in r and r["keeps_real_time"]
        ]
        out[impl] = {"runs": cpu, "of": len(rs), "median": percentile(cpu, 50) if cpu else None}
    return out


def p2_series(run: Any, steps: list[int], refine: int) -> list[dict[str, Any]]:
    """Step N up until real time is lost, then bisect each limit ``refine`` times.

    ``run(n)`` measures one step. Every row serves both limits (real time, strict).
    """
    rows: dict[int, dict[str, Any]] = {}
    for n in steps:
        rows[n] = run(n)
        if "error" in rows[n] or not rows[n]["keeps_real_time"]:
            break
    for key in LIMITS:
        for _ in range(refine):
            lo, hi = _limit(rows, key)
            if hi is None or hi - lo <= max(2, lo // 10):
                break
            mid = (lo + hi) // 2
            if hi - lo > 20:
                mid = round(mid / 5) * 5
            if mid in rows or mid <= lo:
                break
            rows[mid] = run(mid)
    return [rows[n] for n in sorted(rows)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument(
        "--only",
        default=",".join(PARTS),
        help="parts to run, comma separated: p1 (with P4 and the detector floor), realspeech, "
        "p5, p3, p2",
    )
    ap.add_argument("--p1-loops", type=int, default=10, help="fixture loops per P1 session")
    ap.add_argument("--p2-loops", type=int, default=1, help="fixture loops per P2 step")
    ap.add_argument(
        "--modes",
        default=",".join(MODES),
        help="P2 hosting: " + "; ".join(f"{k}: {v}" for k, v in MODES.items()),
    )
    ap.add_argument(
        "--steps",
        default=",".join(map(str, DEFAULT_STEPS)),
        help="P2 coarse session counts, ascending; a series stops at its first real-time miss",
    )
    ap.add_argument("--refine", type=int, default=2, help="P2 bisection steps near each limit")
    ap.add_argument(
        "--cpu-reps",
        type=int,
        default=3,
        help="P2: runs of the first step per implementation, interleaved, for CPU per session",
    )
    ap.add_argument(
        "--mic-clock",
        choices=("shared", "own"),
        default="shared",
        help="P2: the sessions' mic frames fall due on one 10 ms grid, as a LiveKit worker "
        "receives room audio (shared), or each on the phase its session started at (own)",
    )
    ap.add_argument(
        "--mic-frame-ms",
        type=int,
        default=ROOM_FRAME_MS,
        help="P2: the mics' frame size; a LiveKit room's input hands the agent 50 ms frames "
        "(RoomIO's AudioInputOptions.frame_size_ms)",
    )
    ap.add_argument(
        "--frames-check",
        default="thread_executor",
        help="P2 hostings also measured at 10 ms mic frames, limits only (comma separated; "
        "empty: none)",
    )
    ap.add_argument("--switches", type=int, default=240, help="P3 switches per implementation")
    ap.add_argument("--profile-n", type=int, default=50, help="cProfile step size (0 = none)")
    ap.add_argument(
        "--gc-sources-n",
        type=int,
        default=10,
        help="P2 step traced for what the collector traverses and where it was made (0 = none)",
    )
    ap.add_argument("--p5-loops", type=int, default=2, help="fixture loops per P5 case")
    ap.add_argument("--out", default=str(BENCH), help="where RESULTS.md/results.json go")
    ap.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        help="measure nothing: rewrite RESULTS.md (in --out) from an earlier results.json",
    )
    args = ap.parse_args(argv)
    if args.cpu_reps < 1:
        ap.error("--cpu-reps: at least 1")
    if args.render:
        res = json.loads(Path(args.render).read_text())
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "RESULTS.md").write_text(render(res))
        _readme(res, Path(args.out))
        return 0
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    checks = [m.strip() for m in args.frames_check.split(",") if m.strip()]
    if args.mic_frame_ms <= 0 or args.mic_frame_ms % TICK_FRAME_MS:
        ap.error(f"--mic-frame-ms: a positive multiple of {TICK_FRAME_MS}")
    for name, given, known in (
        ("--only", parts, PARTS),
        ("--modes", modes, tuple(MODES)),
        ("--frames-check", checks, tuple(MODES)),
    ):
        bad = [x for x in given if x not in known]
        if bad:
            ap.error(f"{name}: unknown {', '.join(bad)} (known: {', '.join(known)})")
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
            "parts": parts,
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
            "lag_probe_ms": PROBE_INTERVAL_S * 1000,
            "p2_refine": args.refine,
            "p2_cpu_reps": args.cpu_reps,
            "p2_mic_clock": args.mic_clock,
            "p2_mic_frame_ms": args.mic_frame_ms,
            "p2_frames_check": checks if args.mic_frame_ms != TICK_FRAME_MS else [],
            "p2_modes": modes,
            "p3_switches": args.switches,
            "silero_runtime": os.environ.get("NOVAD_SILERO_RUNTIME") or "default",
        },
    }
    _log(f"bench start: {command}")

    if "p1" in parts:  # P1 + P4: one session each, sequentially
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

    if "realspeech" in parts:  # offline, in audio time
        _log("real speech (offline)")
        results["realspeech"] = measure_realspeech(log=_log)
        # the sub-command's file too, so the two never disagree
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / REALSPEECH_JSON.name).write_text(
            json.dumps(results["realspeech"], indent=1) + "\n"
        )

    if "p5" in parts:  # perceived latency on a paced server, every case in its own worker
        results["p5"] = [run_p5_case(spec, _log) for spec in p5_cases(args.p5_loops)]

    if "p3" in parts:
        results["p3"] = run_worker("p3", {"kind": "p3", "switches": args.switches}, timeout=300)
        if "error" not in results["p3"]:
            c = results["p3"]["novad"]["confirm"]
            _log(f"P3 novad: p50 {c['p50'] * 1000:.2f} ms p95 {c['p95'] * 1000:.2f} ms")

    def p2_spec(impl: str, n: int, loops: int, **extra: Any) -> dict[str, Any]:
        """A P2 step as the worker takes it, on this run's mics."""
        mics = {"mic_clock": args.mic_clock, "mic_frame_ms": args.mic_frame_ms}
        return {"kind": "p2", "impl": impl, "n": n, "loops": loops, **mics, **extra}

    if "p2" in parts:
        results["p2"] = {mode: {} for mode in modes}
        results["p2_cpu"] = {}
        for mode in modes:

            def step(
                n: int, impl: str, mode: str = mode, rep: int = 0, frame_ms: int | None = None
            ) -> dict[str, Any]:
                spec = p2_spec(impl, n, args.p2_loops, mode=mode)
                name = f"p2-{mode}-{impl}-{n}" + (f"-rep{rep}" if rep else "")
                shown = f" (rep {rep})" if rep else ""
                if frame_ms is not None:  # not the run's frame size
                    spec["mic_frame_ms"] = frame_ms
                    name += f"-{frame_ms}ms"
                    shown += f" ({frame_ms} ms frames)"
                timeout = fx.duration_s * args.p2_loops + 90 + n * 2
                r = run_worker(name, spec, timeout=timeout)
                _log(f"P2 {mode} {impl} N={n}{shown}: {_p2_line(r)}")
                return r

            # CPU per session at the first step, where both keep real time: one step is
            # +-15 % from run to run, so it is measured cpu_reps times, the implementations
            # alternating (a drift of the machine weighs on both), and compared by medians
            first: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLS}
            for rep in range(args.cpu_reps):
                for impl in IMPLS if rep % 2 == 0 else IMPLS[::-1]:  # ABBA...
                    first[impl].append(step(steps[0], impl, rep=rep))
            results["p2_cpu"][mode] = cpu_reps(steps[0], first)
            for impl in IMPLS:

                def series_step(
                    n: int, impl: str = impl, known: dict[str, Any] = first[impl][0]
                ) -> dict[str, Any]:
                    return known if n == steps[0] else step(n, impl)

                results["p2"][mode][impl] = p2_series(series_step, steps, args.refine)
            if mode in results["config"]["p2_frames_check"]:
                # how far the figures depend on the frame size: the same series, 10 ms frames
                results.setdefault("p2_frames_fine", {})[mode] = {
                    impl: p2_series(
                        lambda n, impl=impl: step(n, impl, frame_ms=TICK_FRAME_MS),
                        steps,
                        args.refine,
                    )
                    for impl in IMPLS
                }
        baseline = BENCH / "baseline" / "results.json"
        if baseline.exists():  # python -m bench.baseline REV: the code before a change
            base = json.loads(baseline.read_text())
            results["p2_baseline"] = {
                k: base.get(k) for k in ("git", "command", "started_utc", "machine", "p2", "p2_cpu")
            }
        extra = (  # (label, N, spec flags, slowdown: tracemalloc makes the step ~5x slower)
            ("profile", args.profile_n, {"profile": True}, 1),
            ("gc_sources", args.gc_sources_n, {"gc_sources": True}, 5),
        )
        for label, n, flags, slowdown in extra:
            if n <= 0:
                continue
            found: dict[str, Any] = {}
            for impl in IMPLS:  # diagnostics, not part of the P2 figures
                found[impl] = run_worker(
                    f"{label}-{impl}-{n}",
                    p2_spec(impl, n, 1) | flags,
                    timeout=(fx.duration_s + 90 + n * 2) * slowdown,
                )
                _log(f"{label} {impl} N={n}: {_p2_line(found[impl])}")
            results[label] = found

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
    (out / "RESULTS.md").write_text(render(results))
    _readme(results, out)
    _log(f"done in {results['total_s']:.0f} s: {out / 'RESULTS.md'}")
    return 0


def _readme(results: dict[str, Any], out: Path) -> None:
    """A complete run into bench/ is the committed run: the README quotes its headlines."""
    if out.resolve() == BENCH and all(results.get(p) for p in PARTS):
        if update_readme(BENCH.parent / "README.md", results):
            _log("README.md headline table updated")


def _slim(results: dict[str, Any]) -> dict[str, Any]:
    """results.json keeps every figure but not the diagnostic timelines."""

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("lag_timeline", "underrun_frames")}

    out = dict(results)
    if "p2" in results:
        out["p2"] = {
            mode: {impl: [strip(r) for r in rs] for impl, rs in by_impl.items()}
            for mode, by_impl in results["p2"].items()
        }
    for label in ("profile", "gc_sources"):
        if label in results:
            out[label] = {impl: strip(r) for impl, r in results[label].items()}
    return out


if __name__ == "__main__":
    sys.exit(main())
