"""The P2 mics' frames in ``RESULTS.md``: what the sessions are fed, and how far the limits
depend on the frame size (``python -m bench.run --frames-check``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .agents import ROOM_FRAME_MS, TICK_FRAME_MS
from .p2_rows import IMPLS, LIMITS, NA, limit, limit_text, ratio_of_limits, row_ok

__all__ = ["mic_text", "render_frames_check"]

_MIC_CLOCK = {
    "shared": "Each mic's first frame falls due on one 10 ms tick for the whole process, as a "
    "LiveKit worker receives room audio: its one audio device pulls every remote track of "
    "the process each 10 ms (livekit rust-sdks, `webrtc-sys/src/audio_device.cpp`), so 10 ms "
    "frames of every session fall due at the same instants, and longer frames on one of the "
    "tick's phases, by when the session started. `--mic-clock own` gives each mic the phase "
    "its session started at instead.",
    "own": "Each mic's frames keep the phase its session started at.",
}


def mic_text(cfg: dict[str, Any]) -> str:
    """What the P2 mics hand over, and when (runs before the frame size was an option: 10 ms)."""
    frame_ms = cfg.get("p2_mic_frame_ms", TICK_FRAME_MS)
    size = (
        f"The mics hand over {frame_ms} ms frames, what a LiveKit room's input gives the "
        "agent by default (RoomIO's `AudioInputOptions.frame_size_ms = 50`, livekit-agents "
        "`voice/room_io/types.py`). "
        if frame_ms == ROOM_FRAME_MS
        else f"The mics hand over {frame_ms} ms frames. "
    )
    return size + _MIC_CLOCK.get(cfg.get("p2_mic_clock", "own"), "")


def _first_cpu(rows: list[dict[str, Any]]) -> tuple[int, float] | None:
    ok = [r for r in rows if row_ok(r) and r["keeps_real_time"]]
    if not ok:
        return None
    r = min(ok, key=lambda r: r["n"])
    return r["n"], r["cpu_percent_per_session"]


def render_frames_check(res: dict[str, Any], w: Callable[[str], None]) -> None:
    """The hostings measured again at 10 ms frames, next to the main run's figures."""
    fine = res.get("p2_frames_fine") or {}
    if not fine:
        return
    main_ms = res["config"].get("p2_mic_frame_ms", TICK_FRAME_MS)
    w("### P2 at 10 ms mic frames")
    w("")
    w(
        f"The same series with each mic handing over 10 ms frames instead of {main_ms} ms (the "
        "finest a track's stream can deliver: one audio-device tick; RoomIO's "
        "`frame_size_ms` option). Every frame wakes the session's event loop and runs the "
        "agent's audio path once, so the per-frame costs (loop wake-ups, the frame's trip "
        "through the AgentSession, and in the thread executor one GIL hand-off per job and "
        "frame) weigh five times as much. Limits only; CPU per session at the smallest N "
        "that kept real time, one run."
    )
    w("")
    w(
        "| hosting | frames | novad: real time / strict | upstream: real time / strict "
        "| ratio real time / strict | CPU / session novad / upstream |"
    )
    w("|---|---|---|---|---|---|")
    main = res.get("p2") or {}
    for mode, by_impl in fine.items():
        for label, rows in ((f"{main_ms} ms (above)", main.get(mode, {})), ("10 ms", by_impl)):
            lims = {impl: [limit(rows.get(impl, []), key) for key, _ in LIMITS] for impl in IMPLS}
            shown = [" / ".join(limit_text(*x) for x in lims[impl]) for impl in IMPLS]
            ratios = " / ".join(
                ratio_of_limits(a, b) for a, b in zip(lims["novad"], lims["upstream"], strict=True)
            )
            cpu = [_first_cpu(rows.get(impl, [])) for impl in IMPLS]
            cpu_s = " / ".join(NA if c is None else f"{c[1]:.2f} % (N={c[0]})" for c in cpu)
            w(f"| {mode} | {label} | {shown[0]} | {shown[1]} | {ratios} | {cpu_s} |")
    w("")
