"""A real AgentSession, room-less, on the fake server: audio in at real-time pace, audio out
played against the clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from livekit.agents import Agent, AgentSession

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeConnection, FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import RealtimeAudioOutput, WavAudioInput


@dataclass
class AgentRun:
    session: AgentSession
    agent: Agent
    model: novad.RealtimeModel
    mic: WavAudioInput
    speaker: RealtimeAudioOutput
    conn: FakeConnection

    @property
    def rt_session(self) -> novad.RealtimeSession:
        rt = self.agent.realtime_llm_session
        assert isinstance(rt, novad.RealtimeSession)
        return rt

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.conn.client_events if e.get("type") == kind]


@contextlib.asynccontextmanager
async def agent_run(
    server: FakeRealtimeServer,
    *,
    model: novad.RealtimeModel | None = None,
    session: AgentSession | None = None,
    **model_kwargs: Any,
) -> AsyncIterator[AgentRun]:
    model = model or novad.RealtimeModel(
        base_url=server.base_url, api_key="test-key", **model_kwargs
    )
    session = session or AgentSession()
    mic = WavAudioInput()
    speaker = RealtimeAudioOutput()
    session.input.audio = mic
    session.output.audio = speaker
    agent = Agent(instructions="You are a test agent.", llm=model)
    n_before = len(server.connections)
    await session.start(agent, record=False)
    conn = await server.wait_for_connection(n_before + 1)
    try:
        yield AgentRun(session, agent, model, mic, speaker, conn)
    finally:
        mic.close()
        await session.aclose()
        await model.aclose()
