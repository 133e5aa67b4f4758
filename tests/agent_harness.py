"""The room-less AgentSession harness lives in the package (shared with the benchmark)."""

from livekit_plugins_openai_novad.testing.agent_harness import AgentRun, agent_run

__all__ = ["AgentRun", "agent_run"]
