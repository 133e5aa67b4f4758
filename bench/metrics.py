"""Measurement helpers: percentiles, an event-loop lag probe, CPU meters, turn matching."""

from __future__ import annotations

import asyncio
import gc
import math
import os
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "percentile",
    "summary",
    "LagProbe",
    "CpuMeter",
    "GcCounter",
    "match_turns",
    "input_lateness",
    "rss_bytes",
    "gc_census",
    "GcSources",
]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (``p`` in 0..100); ``None`` for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    k = (len(xs) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (k - lo))


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "min": min(values) if values else None,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


# The probe is an instrument on every event loop, so its own cost lands in each session's
# CPU: sleeping 10 ms it cost ~1 % of a core per loop (10 loops of the thread executor, no
# session), a third of a novad session's CPU there; sleeping 50 ms, 0.26 %. A stall of
# 50 ms or more is caught whole either way, and every 10 ms mic frame's lateness is
# counted apart from it.
PROBE_INTERVAL_S = 0.050


class LagProbe:
    """Sleeps ``interval`` s in a loop and records how much later than asked it woke up."""

    def __init__(self, interval: float = PROBE_INTERVAL_S) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.timeline: list[tuple[float, float]] = []  # (woke at, lag) for lags > 5 ms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lag-probe")

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(self.interval)
            now = time.perf_counter()
            lag = max(0.0, now - t - self.interval)
            self.lags.append(lag)
            if lag > 0.005:
                self.timeline.append((now, lag))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


@dataclass
class CpuMeter:
    """user+sys CPU of this process (all its threads) over wall time."""

    wall0: float = 0.0
    cpu0: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @staticmethod
    def _cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def start(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = self._cpu()

    def stop(self) -> None:
        self.wall_s = time.perf_counter() - self.wall0
        self.cpu_s = self._cpu() - self.cpu0

    @property
    def percent(self) -> float:
        """100 % = one core busy for the whole wall time."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class GcCounter:
    """Garbage collections per generation, and the time they took (via ``gc.callbacks``)."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    pauses: list[list[float]] = field(default_factory=lambda: [[], [], []])
    _t: float = 0.0

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            gen = int(info.get("generation", 0))
            self.counts[gen] += 1
            self.pauses[gen].append(time.perf_counter() - self._t)

    def start(self) -> None:
        gc.callbacks.append(self._cb)

    def stop(self) -> None:
        if self._cb in gc.callbacks:
            gc.callbacks.remove(self._cb)

    def as_dict(self) -> dict[str, Any]:
        return {
            "collections": list(self.counts),
            "gen2_pause_max_ms": max(self.pauses[2]) * 1000 if self.pauses[2] else None,
            "pause_max_ms": max((max(p) for p in self.pauses if p), default=0.0) * 1000,
            "pause_total_ms": sum(sum(p) for p in self.pauses) * 1000,
        }


@dataclass
class TurnMatch:
    latencies: list[float]  # per answered turn: segment end pushed -> response.create
    answered: int
    expected: int
    extra: int  # response.create beyond the first one after a turn's end
    early: int  # response.create before the first turn ended
    per_turn: list[float | None]


def match_turns(ends: Sequence[float], creates: Sequence[float]) -> TurnMatch:
    """Assign each ``response.create`` to the latest turn end at or before it.

    ``ends``: when each turn's last voiced sample was pushed (ascending). A turn is answered
    if at least one create is assigned to it; its latency is the first assigned create.
    """
    assigned: list[list[float]] = [[] for _ in ends]
    early = 0
    for c in sorted(creates):
        k = -1
        for i, e in enumerate(ends):
            if e <= c:
                k = i
            else:
                break
        if k < 0:
            early += 1
        else:
            assigned[k].append(c)
    per_turn: list[float | None] = [
        (a[0] - e) if a else None for a, e in zip(assigned, ends, strict=True)
    ]
    lat = [x for x in per_turn if x is not None]
    extra = sum(max(0, len(a) - 1) for a in assigned)
    return TurnMatch(lat, len(lat), len(ends), extra, early, per_turn)


def input_lateness(
    push_times: Sequence[float], t0: float, frame_s: float, first: int
) -> list[float]:
    """How late each frame from index ``first`` on was handed over vs its real-time due time.

    ``t0`` is when frame 0 was due (the mic's pacing origin).
    """
    return [push_times[n] - (t0 + n * frame_s) for n in range(first, len(push_times))]


_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process now (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def gc_census(top: int = 12) -> dict[str, Any]:
    """What the cyclic collector has to traverse: tracked objects per generation and by type.

    ``frozen`` objects (``gc.freeze()``) are never traversed again.
    """
    objs = gc.get_objects()
    by_type = Counter(type(o).__qualname__ for o in objs)
    return {
        "tracked": len(objs),
        "per_generation": [len(gc.get_objects(g)) for g in range(3)],
        "frozen": gc.get_freeze_count(),
        "top_types": by_type.most_common(top),
    }


class GcSources:
    """Which objects the window left for the collector to traverse, and where they were made.

    ``start()`` notes every tracked object and starts ``tracemalloc``; ``report()`` groups
    the tracked objects created since that are still alive by type and by the first
    allocation frame outside the standard library (slow: diagnostics only).
    """

    def __init__(self, frames: int = 8) -> None:
        self._frames = frames
        self._before: set[int] = set()

    def start(self) -> None:
        import tracemalloc

        gc.collect()
        self._before = {id(o) for o in gc.get_objects()}
        tracemalloc.start(self._frames)

    def report(self, top: int = 15) -> dict[str, Any]:
        import tracemalloc

        gc.collect()
        new = [o for o in gc.get_objects() if id(o) not in self._before]
        by_site: Counter[str] = Counter()
        for o in new:
            tb = tracemalloc.get_object_traceback(o)
            by_site[f"{type(o).__qualname__} @ {_site(tb)}"] += 1
        tracemalloc.stop()
        return {
            "new_tracked": len(new),
            "by_type": Counter(type(o).__qualname__ for o in new).most_common(top),
            "by_site": by_site.most_common(top),
        }


def _site(tb: Any) -> str:
    if tb is None:
        return "?"
    for frame in reversed(tb):  # the innermost frame outside the standard library
        name = frame.filename
        if "/lib/python3" in name and "site-packages" not in name:
            continue
        short = name.split("site-packages/")[-1].split("/livekit_plugins_openai_novad/")[-1]
        if "/bench/" in short:  # the repo's own bench: its relative path, never the machine's
            short = "bench/" + short.rsplit("/bench/", 1)[-1]
        return f"{short}:{frame.lineno}"
    return f"{tb[0].filename.rsplit('/', 1)[-1]}:{tb[0].lineno}"
