"""A real ``AgentSession`` without a room: audio in at real-time pace (``WavAudioInput``),
the agent's audio played against the clock (``RealtimeAudioOutput``). Used by the tests (on
the in-process fake server) and by the benchmark (on a fake server in another process).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livekit.agents import Agent, AgentSession, llm

from .agent_io import RealtimeAudioOutput, WavAudioInput

if TYPE_CHECKING:
    from .. import realtime
    from .fake_server import FakeConnection, FakeRealtimeServer

__all__ = ["AgentRun", "RoomlessAgent", "agent_run", "start_roomless"]

DEFAULT_INSTRUCTIONS = "You are a test agent."


@dataclass
class RoomlessAgent:
    session: AgentSession
    agent: Agent
    model: Any  # a realtime model: this package's or upstream's
    mic: WavAudioInput
    speaker: RealtimeAudioOutput

    @property
    def rt(self) -> Any:
        """The agent's realtime session (of whichever model)."""
        return self.agent.realtime_llm_session

    async def aclose(self) -> None:
        self.mic.close()
        await self.session.aclose()
        await self.model.aclose()


async def start_roomless(
    model: llm.RealtimeModel,
    *,
    session: AgentSession | None = None,
    speaker: RealtimeAudioOutput | None = None,
    mic: WavAudioInput | None = None,
    instructions: str = DEFAULT_INSTRUCTIONS,
) -> RoomlessAgent:
    """Start ``session`` (a plain ``AgentSession()`` by default) on ``model``, room-less."""
    session = session or AgentSession()
    mic = mic or WavAudioInput()
    speaker = speaker or RealtimeAudioOutput()
    session.input.audio = mic
    session.output.audio = speaker
    agent = Agent(instructions=instructions, llm=model)
    await session.start(agent, record=False)
    return RoomlessAgent(session, agent, model, mic, speaker)


@dataclass
class AgentRun(RoomlessAgent):
    conn: FakeConnection  # the session's socket on the in-process fake server

    @property
    def rt_session(self) -> realtime.RealtimeSession:
        from ..realtime import RealtimeSession

        rt = self.agent.realtime_llm_session
        assert isinstance(rt, RealtimeSession)
        return rt

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.conn.client_events if e.get("type") == kind]


@contextlib.asynccontextmanager
async def agent_run(
    server: FakeRealtimeServer,
    *,
    model: realtime.RealtimeModel | None = None,
    session: AgentSession | None = None,
    **model_kwargs: Any,
) -> AsyncIterator[AgentRun]:
    """A room-less ``AgentSession`` on ``server`` with this package's model (built from
    ``model_kwargs`` unless given), closed on exit."""
    from ..model import RealtimeModel

    model = model or RealtimeModel(base_url=server.base_url, api_key="test-key", **model_kwargs)
    n_before = len(server.connections)
    started = await start_roomless(model, session=session)
    conn = await server.wait_for_connection(n_before + 1)
    run = AgentRun(started.session, started.agent, model, started.mic, started.speaker, conn)
    try:
        yield run
    finally:
        await run.aclose()
