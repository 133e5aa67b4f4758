"""P5, perceived response latency: the last voiced sample of a turn handed to the session ->
the first frame of the reply's audio handed to the speaker.

Three variants on the same speech, 500 ms silence window, a paced fake server whose time to
first audio is set per case:

* ``novad``: ``novad.RealtimeModel()`` in a plain ``AgentSession()``: preemptive replies on
  (the framework's ``preemptive_generation`` default);
* ``novad_no_preemptive``: the same with ``turn_handling={"preemptive_generation":
  {"enabled": False}}``;
* ``upstream``: the anchor of :mod:`bench.agents` (the framework's Silero ends the turns).

Also counted from what crossed the socket: speculative replies started and cancelled per
turn, the usage the server reported for the cancelled ones, and reply segments the speaker
got beyond one per turn (a played speculation would show there).

The fake server runs in the worker's process here (one session; no CPU is measured), with
its default pacing (audio at three times real time) and ``time_to_first_audio`` from the case.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from livekit.agents import AgentSession

from .agents import (
    SILENCE_WINDOW_S,
    MeteredAudioOutput,
    build_agent_session,
    build_model,
    load_fixture,
)
from .metrics import summary

__all__ = ["VARIANTS", "TTFA_S", "FIXTURES", "cases", "run_p5", "render_p5"]

VARIANTS = ("novad", "novad_no_preemptive", "upstream")
TTFA_S = (0.3, 0.7)
FIXTURES = ("three_turns.wav", "paused_turns.wav")
REPLY_S = 0.3  # every reply: this much tone
SPECULATIVE_PREFIX = "turn_response_preemptive_"  # event ids of novad's speculative replies
_TAIL_S = 3.0  # after the clip: time for the last reply to play


def cases(loops: int) -> list[dict[str, Any]]:
    """Every P5 worker spec, in run order."""
    return [
        {"kind": "p5", "impl": v, "ttfa_s": t, "fixture": f, "loops": loops}
        for f in FIXTURES
        for t in TTFA_S
        for v in VARIANTS
    ]


def _session(variant: str) -> AgentSession:
    if variant == "novad":  # the framework's default: preemptive generation on
        return AgentSession(aec_warmup_duration=None)
    # P1-P4's novad session has preemptive replies off
    return build_agent_session("novad" if variant == "novad_no_preemptive" else "upstream")


async def run_p5(spec: dict[str, Any]) -> dict[str, Any]:
    from livekit_plugins_openai_novad.testing import FakeRealtimeServer, tone
    from livekit_plugins_openai_novad.testing.agent_harness import start_roomless

    variant = spec["impl"]
    ttfa = float(spec["ttfa_s"])
    loops = int(spec.get("loops", 3))
    fx = load_fixture(spec["fixture"])
    async with FakeRealtimeServer(
        api_key=None,
        time_to_first_audio=ttfa,
        reply_text="Okay.",
        reply_audio=tone(REPLY_S, freq=440.0, dbfs=-20.0),
    ) as server:
        model = build_model("upstream" if variant == "upstream" else "novad", server.base_url, "p5")
        run = await start_roomless(
            model,
            session=_session(variant),
            speaker=MeteredAudioOutput(),
            instructions="You are a benchmark agent.",
        )
        mic, speaker = run.mic, run.speaker
        conn = await server.wait_for_connection()
        await conn.wait_for_client_event("session.update", timeout=10)
        await asyncio.sleep(1.0)  # the session settles (first update answered) before speech
        n_events = len(conn.client_events)
        clip_start = mic.play(fx.pcm * loops)
        await asyncio.wait_for(mic.wait_drained(), fx.duration_s * loops + 60)
        await asyncio.sleep(_TAIL_S)  # the last reply plays out
        ends_idx = [
            clip_start + k * fx.num_samples + last for k in range(loops) for _, last in fx.segments
        ]
        ends = [mic.time_of_sample(i) for i in ends_idx]
        starts = [seg.started_at for seg in speaker.segments]
        client = conn.client_events[n_events:]
        server_events = list(conn.sent_events)
        responses = list(conn.responses)
        await run.aclose()

    latencies, unmatched = _match(ends, starts)
    turns = len(ends)
    creates = [e for e in client if e.get("type") == "response.create"]
    speculative = [e for e in creates if str(e.get("event_id", "")).startswith(SPECULATIVE_PREFIX)]
    cancelled = [r for r in responses if r.get("status") == "cancelled"]
    cancelled_ids = {r["id"] for r in cancelled}
    usage = [
        e["response"]["usage"]
        for e in server_events
        if e.get("type") == "response.done" and e["response"].get("id") in cancelled_ids
    ]
    return {
        "kind": "p5",
        "impl": variant,
        "ttfa_s": ttfa,
        "fixture": fx.name,
        "loops": loops,
        "window_s": SILENCE_WINDOW_S,
        "turns": turns,
        "turns_answered": len(latencies),
        "latency_s": latencies,
        "latency": summary(latencies),
        "segments_played": len(starts),
        "segments_unmatched": unmatched,
        "response_creates": len(creates),
        "speculative_started": len(speculative),
        "speculative_cancelled": len(cancelled),
        "speculative_started_per_turn": len(speculative) / turns,
        "speculative_cancelled_per_turn": len(cancelled) / turns,
        "cancelled_audio_bytes": sum(int(r.get("audio_bytes") or 0) for r in cancelled),
        "cancelled_usage": _usage_totals(usage),
        "measured_at": time.time(),
    }


def _match(ends: list[float], starts: list[float]) -> tuple[list[float], int]:
    """Per turn end, the first reply segment that started after it (and before the next
    turn's end); returns the latencies and how many segments matched no turn."""
    latencies: list[float] = []
    used = 0
    for k, end in enumerate(ends):
        nxt = ends[k + 1] if k + 1 < len(ends) else float("inf")
        hit = next((s for s in starts if end < s < nxt), None)
        if hit is not None:
            latencies.append(hit - end)
            used += 1
    return latencies, len(starts) - used


def _usage_totals(usages: list[dict[str, Any]]) -> dict[str, int]:
    def tokens(u: dict[str, Any], side: str) -> int:
        return int(((u.get(f"{side}_token_details") or {}).get("audio_tokens")) or 0)

    return {
        "responses": len(usages),
        "input_tokens": sum(int(u.get("input_tokens") or 0) for u in usages),
        "input_audio_tokens": sum(tokens(u, "input") for u in usages),
        "output_audio_tokens": sum(tokens(u, "output") for u in usages),
    }


# ---------------------------------------------------------------------------------- report


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 1000:.0f} ms"


def render_p5(rows: list[dict[str, Any]]) -> list[str]:
    """The P5 section of RESULTS.md."""
    out = ["## P5: perceived response latency", ""]
    out.append(
        "Last voiced sample handed to the session (push time of its 10 ms frame) -> first "
        "frame of the reply's audio handed to the speaker. 500 ms silence window; fake server "
        "in the worker's process, audio at three times real time after its time to first "
        f"audio (TTFA); every reply {REPLY_S} s of tone. Ratio = variant / upstream, same "
        "fixture and TTFA. Speculations are counted from what crossed the socket (a "
        "`response.create` with the speculative event id; a response the server ended "
        "`cancelled`); their cost is the fake server's `usage` for the cancelled responses "
        "(a stand-in formula, not a price list)."
    )
    out.append("")
    out.append(
        "| fixture | TTFA | variant | turns answered | p50 | p95 | ratio p50 | speculative "
        "started / cancelled per turn | segments beyond one per turn | cancelled: output "
        "audio tokens (input tokens) |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    by_case: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
    for r in rows:
        key = (r.get("fixture") or r.get("spec", {}).get("fixture"), r.get("ttfa_s") or 0.0)
        by_case.setdefault(key, {})[r.get("impl") or r.get("spec", {}).get("impl")] = r
    for (fixture, ttfa), variants in by_case.items():
        anchor = variants.get("upstream", {}).get("latency", {}).get("p50")
        for name in VARIANTS:
            r = variants.get(name)
            if r is None:
                continue
            if "error" in r:
                out.append(f"| {fixture} | {_ms(ttfa)} | {name} | {r['error']} ||||||")
                continue
            lat = r["latency"]
            ratio = f"{lat['p50'] / anchor:.2f}" if anchor and lat["p50"] else "n/a"
            u = r["cancelled_usage"]
            out.append(
                f"| {fixture} | {_ms(ttfa)} | {name} | {r['turns_answered']}/{r['turns']} | "
                f"{_ms(lat['p50'])} | {_ms(lat['p95'])} | {ratio} | "
                f"{r['speculative_started_per_turn']:.2f} / "
                f"{r['speculative_cancelled_per_turn']:.2f} | {r['segments_unmatched']} | "
                f"{u['output_audio_tokens']} ({u['input_tokens']}) |"
            )
    out.append("")
    out.extend(_targets(by_case))
    out.append("")
    return out


# the targets: p50 <= max(window, preemptive point + TTFA) + 40 ms, per TTFA
_P50_TARGET_S = {0.3: 0.540, 0.7: 0.940}


def _targets(by_case: dict[tuple[str, float], dict[str, dict[str, Any]]]) -> list[str]:
    out: list[str] = []
    for (fixture, ttfa), variants in by_case.items():
        r = variants.get("novad")
        target = _P50_TARGET_S.get(round(ttfa, 3))
        if r is None or "error" in r or target is None or r["latency"]["p50"] is None:
            continue
        p50 = r["latency"]["p50"]
        out.append(
            f"- {fixture}, TTFA {_ms(ttfa)}: novad p50 {_ms(p50)} <= {_ms(target)}: "
            f"**{'met' if p50 <= target else 'not met'}**; speculative audio played: "
            f"{r['segments_unmatched']} segments (target 0); cancelled speculations per turn "
            f"{r['speculative_cancelled_per_turn']:.2f}"
            + (" (target <= 1 on this fixture)" if fixture == "paused_turns.wav" else "")
            + "."
        )
    return out
