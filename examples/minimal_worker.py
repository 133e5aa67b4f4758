"""A LiveKit agent on OpenAI Realtime with server VAD off: it still answers every turn.

    python examples/minimal_worker.py console          # talk to it (microphone + speaker)
    python examples/minimal_worker.py console --text   # type to it
    python examples/minimal_worker.py start            # serve calls from a LiveKit server

Without OPENAI_API_KEY (and no Azure settings) it runs against the bundled offline emulator,
which answers in canned speech, so the demo works on a machine with no key and no network.
"""

from __future__ import annotations

import os

from livekit.agents import Agent, AgentSession, JobContext, JobProcess, WorkerOptions, cli

import livekit_plugins_openai_novad as novad


def prewarm(proc: JobProcess) -> None:
    novad.prewarm(proc)  # load Silero once per worker process


async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession()
    agent = Agent(
        instructions="You are a friendly voice assistant. Keep your answers short.",
        # turn_detection=None is the default: server VAD off, turns detected here with Silero
        llm=novad.RealtimeModel(),
    )
    await session.start(agent, room=ctx.room)


def _use_emulator_without_key() -> None:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("AZURE_OPENAI_API_KEY"):
        return
    from livekit_plugins_openai_novad.testing.emulator import EmulatorThread

    server = EmulatorThread().start()
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ["OPENAI_API_KEY"] = "offline-emulator"
    print(
        f"No OPENAI_API_KEY set: using the offline emulator at {server.base_url} "
        "(canned replies, server VAD off, turns detected locally)."
    )


if __name__ == "__main__":
    _use_emulator_without_key()
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm))
