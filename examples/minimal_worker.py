"""A LiveKit agent on OpenAI Realtime with server VAD off: it still answers every turn.

    python examples/minimal_worker.py console          # talk to it (microphone + speaker)
    python examples/minimal_worker.py console --text   # type to it
    python examples/minimal_worker.py start            # serve calls from a LiveKit server

With OPENAI_API_KEY it talks to OpenAI (OPENAI_BASE_URL for another endpoint); with
AZURE_OPENAI_API_KEY + AZURE_OPENAI_ENDPOINT (+ AZURE_OPENAI_DEPLOYMENT, and OPENAI_API_VERSION
for the legacy api-version endpoint) to Azure. With neither it runs against the bundled offline
emulator, which answers in canned speech: the demo works with no key and no network.
"""

from __future__ import annotations

import os

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess, cli

import livekit_plugins_openai_novad as novad


def setup(proc: JobProcess) -> None:
    novad.prewarm(proc)  # load Silero once per job process, before any job arrives


server = AgentServer(setup_fnc=setup)


def realtime_model() -> novad.RealtimeModel:
    # turn_detection=None is the default: server VAD off, turns detected here with Silero
    if not os.environ.get("OPENAI_API_KEY") and os.environ.get("AZURE_OPENAI_API_KEY"):
        return novad.RealtimeModel.with_azure(
            azure_deployment=os.environ.get("AZURE_OPENAI_DEPLOYMENT", "gpt-realtime")
        )
    return novad.RealtimeModel()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession()
    agent = Agent(
        instructions="You are a friendly voice assistant. Keep your answers short.",
        llm=realtime_model(),
    )
    await session.start(agent, room=ctx.room)


def _use_emulator_without_key() -> None:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("AZURE_OPENAI_API_KEY"):
        return
    from livekit_plugins_openai_novad.testing.emulator import EmulatorThread

    emulator = EmulatorThread().start()
    os.environ["OPENAI_BASE_URL"] = emulator.base_url
    os.environ["OPENAI_API_KEY"] = "offline-emulator"
    print(
        f"No OPENAI_API_KEY set: using the offline emulator at {emulator.base_url} "
        "(canned replies, server VAD off, turns detected locally)."
    )


if __name__ == "__main__":
    _use_emulator_without_key()
    cli.run_app(server)
