"""The P2 part of ``RESULTS.md``: sessions per process under each way of hosting them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .hosting import MODES
from .p2_rows import IMPLS, LIMITS, NA, limit, limit_text, ratio_of_limits, row_ok
from .report_frames import mic_text

__all__ = ["p2_by_mode", "render_p2", "p2_targets", "limit", "baseline_verdict", "cpu_ratios"]

TARGETS = (  # (what, figure, how a ratio novad/upstream meets it)
    ("sessions per process keeping real time", "keeps_real_time", ">= 3"),
    ("sessions per process, strict", "keeps_real_time_strict", ">= 3"),
)
CPU_TARGET = 0.3  # CPU per session, novad/upstream, at most


def _ms(x: float | None, digits: int = 0) -> str:
    return NA if x is None else f"{x * 1000:.{digits}f} ms"


def _pct(x: float | None, digits: int = 1) -> str:
    return NA if x is None else f"{x:.{digits}f} %"


def p2_by_mode(res: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{mode: {impl: rows}}``; results from before the hosting modes are all ``plain``."""
    p2 = res.get("p2") or {}
    if any(k in IMPLS for k in p2):
        return {"plain": p2}
    return p2


def why(r: dict[str, Any]) -> str:
    """What failed in a step, from its numbers."""
    if not row_ok(r):
        return r["error"]
    out = []
    if (r["loop_lag"]["p99"] or 0) >= 0.050:
        out.append(f"loop lag p99 {_ms(r['loop_lag']['p99'])} (CPU {_pct(r['cpu_percent'])})")
    if r["output_underruns"]:
        out.append(f"{r['output_underruns']} speaker underruns")
    if r["turns_answered"] != r["turns_expected"]:
        out.append(f"{r['turns_expected'] - r['turns_answered']} turns unanswered")
    if r["extra_creates"]:
        out.append(f"{r['extra_creates']} extra replies")
    if r["input_frames_underrun"]:
        g = r["gc"]
        gc2 = g["gen2_pause_max_ms"]
        out.append(
            f"{r['input_frames_underrun']} mic frames > 100 ms late (max "
            f"{_ms(r['input_late']['max'])}; loop stall max {_ms(r['loop_lag']['max'])}; "
            + (f"longest full GC {gc2:.0f} ms" if gc2 is not None else "no full GC")
            + f", longest GC {g['pause_max_ms']:.0f} ms)"
        )
    return "; ".join(out) or "nothing"


def _cpu_ratios(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> list[float]:
    b_at = {r["n"]: r for r in rows_b if row_ok(r) and r["keeps_real_time"]}
    return [
        r["cpu_percent_per_session"] / b_at[r["n"]]["cpu_percent_per_session"]
        for r in rows_a
        if row_ok(r) and r["keeps_real_time"] and r["n"] in b_at
    ]


def cpu_median_ratio(res: dict[str, Any], mode: str) -> float | None:
    """novad's median CPU per session over upstream's, from the repeated first step."""
    reps = (res.get("p2_cpu") or {}).get(mode)
    if not reps:
        return None
    a, b = reps["novad"]["median"], reps["upstream"]["median"]
    return None if a is None or not b else float(a / b)


def cpu_ratios(res: dict[str, Any], mode: str) -> tuple[list[float], bool]:
    """The CPU per session ratios of ``mode`` the targets read, and whether they are the one
    ratio of the medians (runs before the repeated step: each N both kept real time)."""
    med = cpu_median_ratio(res, mode)
    if med is not None:
        return [med], True
    by_impl = p2_by_mode(res).get(mode, {})
    return _cpu_ratios(by_impl.get("novad", []), by_impl.get("upstream", [])), False


def _cpu_cell(ratios: list[float], median: bool) -> str:
    if not ratios:
        return NA
    return f"{ratios[0]:.3f}" if median else f"{min(ratios):.2f}-{max(ratios):.2f}"


def _cpu_reps_table(res: dict[str, Any], w: Callable[[str], None]) -> None:
    reps = res.get("p2_cpu") or {}
    if not reps:
        return
    w(
        "**CPU per session, repeated**: the first step measured "
        f"{res['config'].get('p2_cpu_reps', '?')} times per implementation, the two "
        "alternating (ABBA...), in fresh worker processes (one step varies by about +-15 % "
        "from run to run); the targets compare the medians of the runs that kept real time. "
        "The first run of each is the step in the table above."
    )
    w("")
    w(
        "| hosting | N | novad runs | novad median | upstream runs | upstream median "
        "| ratio of medians |"
    )
    w("|---|---|---|---|---|---|---|")
    for mode, r in reps.items():
        runs = {}
        for impl in IMPLS:
            xs, of = r[impl]["runs"], r[impl].get("of", len(r[impl]["runs"]))
            runs[impl] = ", ".join(f"{x:.2f}" for x in xs) + (
                f" ({len(xs)} of {of} kept real time)" if len(xs) < of else ""
            )
        med = {impl: _pct(r[impl]["median"], 2) for impl in IMPLS}
        ratio = cpu_median_ratio(res, mode)
        w(
            f"| {mode} | {r['n']} | {runs['novad']} % | {med['novad']} | {runs['upstream']} % | "
            f"{med['upstream']} | {NA if ratio is None else f'{ratio:.3f}'} |"
        )
    w("")


def render_p2(res: dict[str, Any], w: Callable[[str], None]) -> None:
    cfg = res["config"]
    by_mode = p2_by_mode(res)
    w("## P2: sessions per process, hosted three ways")
    w("")
    w(
        f"N concurrent sessions in one process, each its own AgentSession + model + server "
        f"connection, each playing `{cfg['fixture']}` {cfg['p2_loops']}x "
        f"({cfg['fixture_s'] * cfg['p2_loops']:.1f} s) behind a per-session offset of "
        "0-4.3 s (turn ends spread, not simultaneous). "
        + mic_text(cfg)
        + " Hosted as a LiveKit worker hosts jobs:"
    )
    w("")
    for mode in by_mode:
        w(f"- **{mode}**: {MODES.get(mode, mode)}.")
    w("")
    w(
        "The window runs from 1 s before the first clip starts until every clip has been "
        "pushed. CPU = user+sys of the worker process (all threads) over wall time, 100 % = "
        "one core; the fake server runs in its own process. RSS / session = resident memory "
        "added by starting the N sessions, divided by N. Loop lag: a probe task on every event "
        f"loop sleeping {cfg.get('lag_probe_ms', 10):.0f} ms, oversleep (the probe's own CPU is "
        "in the figures: at 50 ms ~0.26 % of a core per loop, at 10 ms ~1 %). Input late: "
        "mic frames of the window handed to the session > 20 ms / > 100 ms after their "
        "real-time due time. Output underruns: the speaker ran dry mid-reply. **Keeps real "
        "time** = lag p99 < 50 ms, no output underrun, every turn answered once; **strict** "
        "also wants no mic frame > 100 ms late. N steps: "
        + ", ".join(map(str, cfg["p2_steps"]))
        + f", stopping at the first real-time miss, then {cfg.get('p2_refine', 0)} bisection "
        "steps towards each limit."
    )
    w("")
    w(
        "| hosting | impl | keeps real time up to N | strict up to N | CPU / session "
        "| RSS / session | what failed at the next step |"
    )
    w("|---|---|---|---|---|---|---|")
    for mode, by_impl in by_mode.items():
        lims: dict[str, dict[str, tuple[int | None, Any]]] = {}
        for impl in IMPLS:
            rows = by_impl.get(impl, [])
            lims[impl] = {key: limit(rows, key) for key, _ in LIMITS}
            ok = [r for r in rows if row_ok(r) and r["keeps_real_time"]]
            cpu = (
                f"{min(r['cpu_percent_per_session'] for r in ok):.2f}-"
                f"{max(r['cpu_percent_per_session'] for r in ok):.2f} %"
                if ok
                else NA
            )
            rss = [r["rss_mib"]["per_session"] for r in rows if row_ok(r) and "rss_mib" in r]
            rss_s = f"{min(rss):.2f}-{max(rss):.2f} MiB" if rss else NA
            misses = []
            rt_miss = lims[impl]["keeps_real_time"][1]
            for key, label in LIMITS:
                _, miss = lims[impl][key]
                if miss is None:
                    continue
                if key != "keeps_real_time" and miss is rt_miss:
                    misses[-1] = "real time and strict" + misses[-1][len("real time") :]
                    continue
                misses.append(f"{label} at N={miss['spec']['n']}: {why(miss)}")
            w(
                f"| {mode} | {impl} | {limit_text(*lims[impl]['keeps_real_time'])} | "
                f"{limit_text(*lims[impl]['keeps_real_time_strict'])} | {cpu} | {rss_s} | "
                + ("<br>".join(misses) or "no step missed")
                + " |"
            )
        cpu_r, median = cpu_ratios(res, mode)
        w(
            f"| {mode} | **ratio** | "
            f"{ratio_of_limits(lims['novad']['keeps_real_time'], lims['upstream']['keeps_real_time'])} | "  # noqa: E501
            f"{ratio_of_limits(lims['novad']['keeps_real_time_strict'], lims['upstream']['keeps_real_time_strict'])} | "  # noqa: E501
            + _cpu_cell(cpu_r, median)
            + " | | |"
        )
    w("")
    _cpu_reps_table(res, w)
    if res.get("p2_baseline"):
        _baseline_table(res, w)
    for mode, by_impl in by_mode.items():
        _mode_table(mode, by_impl, w)
    _gc_findings(res, by_mode, w)


def _ratios(res: dict[str, Any], mode: str) -> dict[str, Any]:
    by_impl = p2_by_mode(res)[mode]
    a, b = by_impl.get("novad", []), by_impl.get("upstream", [])
    cpu, median = cpu_ratios(res, mode)
    out: dict[str, Any] = {"cpu": cpu, "cpu_median": median}
    for key, _ in LIMITS:
        la, lb = limit(a, key), limit(b, key)
        out[key] = (la[0], lb[0], ratio_of_limits(la, lb))
    return out


def _number(ratio: str) -> float | None:
    try:
        return float(ratio.split()[-1] if ratio.startswith((">=", "<=")) else ratio.split()[0])
    except (ValueError, IndexError):
        return None


def baseline_verdict(res: dict[str, Any]) -> dict[str, bool]:
    """Per hosting in both runs: are this run's P2 ratios no worse than the baseline's?

    Worse = a smaller real-time or strict ratio (n/a counts as 0), or a larger worst CPU per
    session ratio."""
    base_res = res.get("p2_baseline") or {}
    base = p2_by_mode(base_res)
    verdict: dict[str, bool] = {}
    for mode in p2_by_mode(res):
        if mode not in base:
            continue
        now, then = _ratios(res, mode), _ratios(base_res, mode)
        ok = all(
            (_number(now[key][2]) or 0.0) >= (_number(then[key][2]) or 0.0) for key, _ in LIMITS
        )
        if now["cpu"] and then["cpu"]:
            ok = ok and max(now["cpu"]) <= max(then["cpu"])
        verdict[mode] = ok
    return verdict


def _baseline_table(res: dict[str, Any], w: Callable[[str], None]) -> None:
    base = res["p2_baseline"]
    rev = base.get("git") or "?"
    w(
        f"**Before and after**: the same P2 on the code before the change (revision `{rev}`, "
        f"`{base.get('command', 'python -m bench.baseline')}`, {base.get('started_utc', '?')}: "
        "that revision's package with today's bench and harness; upstream measured again in "
        "that run). Ratios novad/upstream within each run; N limits as novad / upstream."
    )
    w("")
    w("| hosting | code | real time: N | ratio | strict: N | ratio | CPU / session ratio |")
    w("|---|---|---|---|---|---|---|")
    then_by_mode = p2_by_mode(base)
    for mode in p2_by_mode(res):
        if mode not in then_by_mode:
            continue
        for label, run in (("before", base), ("this run", res)):
            r = _ratios(run, mode)
            cells = []
            for key, _ in LIMITS:
                na, nb, ratio = r[key]
                cells += [f"{na or 'none'} / {nb or 'none'}", ratio]
            cpu = _cpu_cell(r["cpu"], r["cpu_median"])
            w(f"| {mode} | {label} | " + " | ".join(cells) + f" | {cpu} |")
    w("")


def _mode_table(
    mode: str, by_impl: dict[str, list[dict[str, Any]]], w: Callable[[str], None]
) -> None:
    w(f"### {mode}")
    w("")
    w(
        "| N | impl | event loops | CPU | CPU / session | RSS / session | lag p99 | lag max | "
        "GC gen2 (longest) | turns | input > 20 / > 100 ms late | output underruns | end of "
        "turn p50 / p99 | real time |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = sorted(
        (r for impl in IMPLS for r in by_impl.get(impl, [])),
        key=lambda r: (r["spec"]["n"], r["spec"]["impl"]),
    )
    for r in rows:
        n, impl = r["spec"]["n"], r["spec"]["impl"]
        if not row_ok(r):
            w(f"| {n} | {impl} | {r['error']} |" + " |" * 11)
            continue
        g = r["gc"]
        gc2 = str(g["collections"][2])
        if g["gen2_pause_max_ms"] is not None:
            gc2 += f" ({g['gen2_pause_max_ms']:.0f} ms)"
        verdict = (
            "**lost**"
            if not r["keeps_real_time"]
            else "kept (strict: lost)"
            if not r["keeps_real_time_strict"]
            else "kept"
        )
        lat = r["latency"]
        rss = r.get("rss_mib", {}).get("per_session")
        w(
            f"| {n} | {impl} | {r.get('event_loops', 1)} | {_pct(r['cpu_percent'])} | "
            f"{_pct(r['cpu_percent_per_session'], 2)} | "
            + (f"{rss:.2f} MiB" if rss is not None else NA)
            + f" | {_ms(r['loop_lag']['p99'], 1)} | {_ms(r['loop_lag']['max'])} | {gc2} | "
            f"{r['turns_answered']}/{r['turns_expected']}"
            + (f" +{r['extra_creates']}" if r["extra_creates"] else "")
            + f" | {r['input_frames_late']} / {r['input_frames_underrun']} of "
            f"{r['input_frames']} | {r['output_underruns']} of {r['output_frames']} | "
            f"{_ms(lat['p50'])} / {_ms(lat['p99'])} | {verdict} |"
        )
    w("")


def _gc_findings(
    res: dict[str, Any],
    by_mode: dict[str, dict[str, list[dict[str, Any]]]],
    w: Callable[[str], None],
) -> None:
    w("### Garbage collection")
    w("")
    for mode, by_impl in by_mode.items():
        for impl in IMPLS:
            rows = [r for r in by_impl.get(impl, []) if row_ok(r) and "gc_census" in r]
            if not rows:
                continue
            r = max(rows, key=lambda r: r["n"])
            c0, c1 = r["gc_census"], r.get("gc_census_end") or r["gc_census"]
            full = [x for x in by_impl[impl] if row_ok(x) and x["gc"]["collections"][2]]
            pauses = ", ".join(
                f"N={x['n']}: {x['gc']['collections'][2]}x, longest "
                f"{x['gc']['gen2_pause_max_ms']:.0f} ms"
                for x in full
            )
            took = c0.get("full_collect_ms")
            w(
                f"- {mode}, {impl}, N={r['n']}: the collector tracks {c0['tracked']} objects "
                f"after setup ({c0['frozen']} more frozen)"
                + (f", a full collection of them took {took:.0f} ms" if took is not None else "")
                + f"; {c1['tracked']} at the end of the window. Full collections in the "
                "windows: " + (pauses or "none") + "."
            )
    found = {
        impl: r
        for impl, r in (res.get("gc_sources") or {}).items()
        if row_ok(r) and r.get("gc_sources")
    }
    if found:
        w("")
        w(
            "What the sessions leave for the collector: tracked objects created during one "
            "plain-process window (tracemalloc, a diagnostic step, not in the figures above) "
            "and still alive at its end, by type and by the first allocating frame outside the "
            "standard library."
        )
        for impl in IMPLS:
            r = found.get(impl)
            if r is None:
                continue
            src = r["gc_sources"]
            secs = r["audio_s_per_session"]
            w("")
            w(
                f"**{impl}**, N={r['n']}, {secs:.1f} s: {src['new_tracked']} new objects "
                f"({src['new_tracked'] / r['n'] / secs:.1f} per session per second of audio)."
            )
            w("")
            w("| objects | type @ where allocated |")
            w("|---|---|")
            for site, count in src["by_site"][:10]:
                w(f"| {count} | `{site}` |")
    w("")


def p2_targets(res: dict[str, Any], w: Callable[[str], None]) -> None:
    """The P2 targets, as ratios novad/upstream within this run, per hosting."""
    for mode, by_impl in p2_by_mode(res).items():
        a, b = by_impl.get("novad", []), by_impl.get("upstream", [])
        parts = []
        for what, key, _goal in TARGETS:
            la, lb = limit(a, key), limit(b, key)
            ratio = ratio_of_limits(la, lb)
            try:
                met = float(ratio.split()[-1] if ratio.startswith(">=") else ratio) >= 3.0
            except ValueError:
                met = False
            if ratio.startswith("<=") or "neither" in ratio:
                met = False
            parts.append(
                f"{what} >= 3x upstream's: **{'met' if met else 'not met'}** "
                f"({limit_text(*la)} vs {limit_text(*lb)}, ratio {ratio})"
            )
        cpu, median = cpu_ratios(res, mode)
        if median:
            met = cpu[0] <= CPU_TARGET
            parts.append(
                f"CPU per session <= {CPU_TARGET}x upstream's: **{'met' if met else 'not met'}** "
                f"({cpu[0]:.3f}, medians of the repeated N={res['p2_cpu'][mode]['n']} step)"
            )
        elif cpu:
            met = max(cpu) <= CPU_TARGET
            parts.append(
                f"CPU per session <= {CPU_TARGET}x upstream's: **{'met' if met else 'not met'}** "
                f"({min(cpu):.2f}-{max(cpu):.2f} at the N both kept real time)"
            )
        w(f"- P2 {mode}: " + "; ".join(parts) + ".")
    for mode, ok in baseline_verdict(res).items():
        rev = res["p2_baseline"].get("git") or "?"
        w(
            f"- P2 {mode} ratios no worse than on the code before the change (`{rev}`): "
            f"**{'met' if ok else 'not met'}** (table under P2)."
        )
