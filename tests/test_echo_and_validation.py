"""Echo matching and option validation, through a real AgentSession on the fake server."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from agent_harness import agent_run

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.turn_detection import echo_matches

pytestmark = pytest.mark.timeout(60)


async def test_rejected_app_update_without_event_id_leaves_the_queue() -> None:
    async with (
        FakeRealtimeServer(
            reject_fields={"session.tracing": ("invalid_value", "no tracing here")}
        ) as server,
        agent_run(server) as run,
    ):
        rt = run.rt_session
        mismatches: list[Any] = []
        rt.on("turn_detection_mismatch", mismatches.append)
        # the app's own update, with no event_id, rejected by the server
        rt.send_event(
            {"type": "session.update", "session": {"type": "realtime", "tracing": "auto"}}
        )
        error = await run.conn.wait_for_sent_event("error", timeout=10)
        assert error["error"]["param"] == "session.tracing"
        # every later echo is matched to the update it answers
        confirmed = await rt.set_turn_detection(novad.ServerVad(), timeout=5)
        assert confirmed is not None and confirmed.type == "server_vad"
        assert await rt.set_turn_detection(None, timeout=5) is None
        assert rt.turn_detection_confirmed and not mismatches
        assert rt.turn_taking_mode == "client_vad"


def _f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


async def test_echo_rounded_to_float32_is_a_match_and_real_differences_are_not() -> None:
    # the server's own echo is held back; the test answers first, as a float32 server would
    async with FakeRealtimeServer(echo_delay=1.0) as server, agent_run(server) as run:
        rt = run.rt_session
        await run.conn.wait_for_sent_event("session.updated", timeout=10)  # the initial update
        mismatches: list[Any] = []
        rt.on("turn_detection_mismatch", mismatches.append)

        async def answer(threshold: float) -> novad.TurnDetection | None:
            n = len([e for e in run.conn.client_events if e["type"] == "session.update"])
            task = asyncio.ensure_future(
                rt.set_turn_detection(novad.ServerVad(threshold=0.3), timeout=5)
            )
            await run.conn.wait_for_client_event("session.update", count=n + 1, timeout=5)
            session = {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "threshold": threshold}}
                },
            }
            await run.conn.send_event({"type": "session.updated", "session": session})
            return await task

        assert _f32(0.3) != 0.3  # 0.30000001192092896
        confirmed = await answer(_f32(0.3))
        assert confirmed is not None and not mismatches
        assert rt.turn_detection_confirmed
    # a real difference is still one, at any precision
    want = novad.ServerVad(threshold=0.3)
    assert not echo_matches(want, {"type": "server_vad", "threshold": 0.31})
    assert not echo_matches(want, {"type": "server_vad", "threshold": _f32(0.3000001)})
    assert not echo_matches(want, {"type": "server_vad", "threshold": "0.3"})
    assert echo_matches(want, {"type": "server_vad", "threshold": 0.3})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.0}, "threshold"),
        ({"prefix_padding_ms": 10**9}, "prefix_padding_ms"),
        ({"silence_duration_ms": 10_001}, "silence_duration_ms"),
        ({"min_speech_ms": 60_000}, "min_speech_ms"),
    ],
)
def test_client_vad_values_that_break_turn_taking_are_refused(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        novad.ClientVad(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"silence_duration_ms": 10**12}, "silence_duration_ms"),
        ({"prefix_padding_ms": 10_001}, "prefix_padding_ms"),
    ],
)
async def test_server_vad_out_of_range_is_refused_before_anything_is_sent(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        novad.ServerVad(**kwargs)
    with pytest.raises(ValueError, match=field):
        novad.RealtimeModel(turn_detection={"type": "server_vad", **kwargs}, api_key="k")
    async with FakeRealtimeServer() as server, agent_run(server) as run:
        n = len(run.conn.client_events)
        with pytest.raises(ValueError, match=field):
            await run.rt_session.set_turn_detection({"type": "server_vad", **kwargs})
        assert len(run.conn.client_events) == n
    # the limits themselves are accepted
    novad.ClientVad(threshold=0.01, prefix_padding_ms=10_000, silence_duration_ms=10_000)
    novad.ServerVad(prefix_padding_ms=10_000, silence_duration_ms=10_000)
