"""``novad.prewarm``: what a process loads before its first call (Silero, openai's event models)."""

from __future__ import annotations

import asyncio

import pytest
from agent_harness import agent_run
from conftest import FIXTURES

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad._warm import sample_server_events
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav
from livekit_plugins_openai_novad.testing.validation import validate_server_event

pytestmark = pytest.mark.timeout(60)


def test_the_sample_server_events_are_valid_ga_events_one_per_type() -> None:
    events = sample_server_events()
    assert [validate_server_event(e, "ga") for e in events] == [None] * len(events)
    types = [e["type"] for e in events]
    assert len(types) == len(set(types))
    novad.prewarm()  # and the warm-up takes them


async def test_prewarm_covers_every_server_event_a_turn_brings(server: FakeRealtimeServer) -> None:
    wav = read_wav(FIXTURES / "one_turn.wav")
    async with agent_run(server) as run:
        run.mic.play(wav)
        await run.conn.wait_for_client_event("response.create", count=1, timeout=30)
        await run.mic.wait_drained()
        await asyncio.wait_for(run.speaker.segment_finished.wait(), 10)
        await run.conn.wait_for_sent_event("response.done", timeout=10)
        sent = {e["type"] for e in run.conn.sent_events}
    assert sent - {e["type"] for e in sample_server_events()} == set()
