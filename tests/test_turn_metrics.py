"""A client-VAD turn has the metrics a server-VAD turn has: a real AgentSession, real speech."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agent_harness import agent_run
from conftest import FIXTURES
from livekit.agents import AgentSession, llm
from livekit.agents.metrics import EOUMetrics

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(90)


async def _user_message(session: AgentSession, n: int, timeout: float = 20) -> llm.ChatMessage:
    """The n-th user message of the history, once it has its metrics (event driven)."""
    ev = asyncio.Event()

    def user_messages() -> list[llm.ChatMessage]:
        return [
            m for m in session.history.items if isinstance(m, llm.ChatMessage) and m.role == "user"
        ]

    def check(*_: Any) -> None:
        if len(user_messages()) >= n:
            ev.set()

    session.on("conversation_item_added", check)
    check()
    try:
        await asyncio.wait_for(ev.wait(), timeout)
    finally:
        session.off("conversation_item_added", check)
    await asyncio.sleep(0)  # the metrics are completed right after the message is added
    return user_messages()[n - 1]


async def test_client_vad_turn_has_server_vad_turn_metrics_and_an_eou_metric() -> None:
    wav = read_wav(FIXTURES / "one_turn.wav")
    async with FakeRealtimeServer() as server, agent_run(server) as run:
        eou: list[EOUMetrics] = []
        run.session.on(
            "metrics_collected",
            lambda ev: isinstance(ev.metrics, EOUMetrics) and eou.append(ev.metrics),
        )
        rt = run.rt_session
        assert rt.turn_taking_mode == "client_vad"
        run.mic.play(wav)
        client_msg = await _user_message(run.session, 1)
        await run.conn.wait_for_sent_event("response.done", timeout=20)
        await run.mic.wait_drained()

        await rt.set_turn_detection(novad.ServerVad(silence_duration_ms=500))
        run.mic.play(wav)
        server_msg = await _user_message(run.session, 2)

        assert set(server_msg.metrics) <= set(client_msg.metrics), (
            server_msg.metrics,
            client_msg.metrics,
        )
        started = client_msg.metrics["started_speaking_at"]
        stopped = client_msg.metrics["stopped_speaking_at"]
        # one_turn.wav holds 1.94 s of speech
        assert 1.5 < stopped - started < 2.5, (started, stopped)
        # one end-of-utterance metric for the client turn: last speech -> decision, which is
        # the 500 ms silence window (decided in 10 ms steps)
        assert len(eou) == 1
        assert 0.4 <= eou[0].end_of_utterance_delay <= 0.7, eou[0]
