"""The README's benchmark headline table, from one run's results.

``python -m bench.run`` rewrites the part of ``README.md`` between the two markers below when
it ran every part into ``bench/``, so the README always quotes the committed run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .report_p2 import cpu_ratios, limit, p2_by_mode

__all__ = ["headline", "update_readme", "START", "END"]

START = "<!-- bench-headline:start -->"
END = "<!-- bench-headline:end -->"
NA = "n/a"
MODE_LABELS = {
    "plain": "plain process",
    "job_process": "job process (preload + `gc.freeze()`)",
    "thread_executor": "thread executor (a thread + loop per job)",
}


def _ok(r: dict[str, Any] | None) -> bool:
    return r is not None and "error" not in r


def _n(lim: tuple[int | None, Any]) -> str:
    best, miss = lim
    if best is None:
        return "none"
    return f"≥ {best}" if miss is None else str(best)


def _ratio(a: tuple[int | None, Any], b: tuple[int | None, Any]) -> tuple[str, bool]:
    (na, ma), (nb, mb) = a, b
    if not na or not nb:
        return NA, False
    x = na / nb
    if mb is None:  # the anchor never missed: no ratio can be claimed
        return f"{x:.1f} (anchor never missed)", False
    return ("≥ " if ma is None else "") + f"{x:.1f}", x >= 3.0


def headline(res: dict[str, Any]) -> str:
    out = [
        "| | novad | upstream | ratio | target |",
        "|---|---|---|---|---|",
    ]
    p1 = res.get("p1") or {}
    a, b = p1.get("novad"), p1.get("upstream")
    if _ok(a) and _ok(b):
        la, lb = a["latency"], b["latency"]  # type: ignore[index]
        met = la["p95"] <= res["config"]["silence_window_s"] + 0.050
        out.append(
            "| P1 end of turn (last voiced sample → `response.create`), p50 / p95 | "
            f"{la['p50'] * 1e3:.0f} / {la['p95'] * 1e3:.0f} ms | {lb['p50'] * 1e3:.0f} / "
            f"{lb['p95'] * 1e3:.0f} ms | {la['p50'] / lb['p50']:.2f} / {la['p95'] / lb['p95']:.2f}"
            f" | p95 ≤ window + 50 ms: {'met' if met else '**not met**'} |"
        )
    cpu: list[float] = []
    medians = True  # every hosting's CPU ratio is the one of its repeated first step
    for mode, by_impl in p2_by_mode(res).items():
        na, nb = by_impl.get("novad", []), by_impl.get("upstream", [])
        label = MODE_LABELS.get(mode, mode)
        for key, what in (
            ("keeps_real_time", "sessions keeping real time"),
            ("keeps_real_time_strict", "same, and no mic frame > 100 ms late"),
        ):
            lim_a, lim_b = limit(na, key), limit(nb, key)
            ratio, met = _ratio(lim_a, lim_b)
            out.append(
                f"| P2 {label}: {what} | {_n(lim_a)} | {_n(lim_b)} | {ratio} | "
                f"≥ 3×: {'met' if met else '**not met**'} |"
            )
        ratios, median = cpu_ratios(res, mode)
        cpu += ratios
        medians = medians and median
        rss = [
            (r["rss_mib"]["per_session"], r["spec"]["impl"])
            for r in na + nb
            if _ok(r) and "rss_mib" in r
        ]
        if rss:
            ra = [x for x, impl in rss if impl == "novad"]
            rb = [x for x, impl in rss if impl == "upstream"]
            if ra and rb:
                out.append(
                    f"| P2 {label}: RSS per session | {min(ra):.1f}–{max(ra):.1f} MiB | "
                    f"{min(rb):.1f}–{max(rb):.1f} MiB | {min(ra) / max(rb):.2f}–"
                    f"{max(ra) / min(rb):.2f} | |"
                )
    if cpu:
        out.append(
            "| P2 CPU per session, every hosting ("
            + ("medians of the repeated first step" if medians else "every N both kept real time")
            + ") | | | "
            f"{min(cpu):.3f}–{max(cpu):.3f} | ≤ 0.3×: "
            + ("met" if max(cpu) <= 0.3 else "**not met**")
            + " |"
        )
    p3 = res.get("p3")
    if _ok(p3):
        c = p3["novad"]["confirm"]  # type: ignore[index]
        out.append(
            f"| P3 `set_turn_detection` → confirmed, p50 / p95 | {c['p50'] * 1e3:.2f} / "
            f"{c['p95'] * 1e3:.2f} ms | n/a (no confirmation) | | p95 ≤ 5 ms: "
            f"{'met' if c['p95'] <= 0.005 else '**not met**'} |"
        )
    if _ok(a) and _ok(b):
        wa, wb = a["wire"], b["wire"]  # type: ignore[index]
        out.append(
            "| P4 input audio sent / committed per minute (half-silent talk) | "
            f"{wa['appended_bytes_per_min'] / 1e6:.2f} / {wa['committed_bytes_per_min'] / 1e6:.2f}"
            f" MB | {wb['appended_bytes_per_min'] / 1e6:.2f} / "
            f"{wb['committed_bytes_per_min'] / 1e6:.2f} MB | "
            f"{wa['appended_bytes_per_min'] / wb['appended_bytes_per_min']:.2f} / "
            f"{wa['committed_bytes_per_min'] / wb['committed_bytes_per_min']:.2f} | |"
        )
    m = res["machine"]
    cpu_model = m.get("cpu_model") or "unknown CPU"
    day = res["started_utc"][:10] + (f", git {res['git']}" if res.get("git") else "")
    return (
        f"Headlines from the committed run ({m['nproc']} cores, {cpu_model}, {day}; "
        "ratio = novad/upstream, measured in the same run):\n\n" + "\n".join(out) + "\n"
    )


def update_readme(readme: Path, res: dict[str, Any]) -> bool:
    """Replace the text between the markers; False if the README has none."""
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return False
    block = f"{START}\n{headline(res)}{END}"
    readme.write_text(pattern.sub(lambda _: block, text, count=1))
    return True
