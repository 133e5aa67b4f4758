"""OpenAI Realtime for LiveKit Agents with server VAD that can really be turned off.

``turn_detection=None`` reaches the wire as ``"turn_detection": null`` on the GA and the
Azure legacy formats, the server's echo is verified, turn detection can change mid-call, and
while the server is not detecting turns, Silero detects them on the client so the agent still
answers::

    import livekit_plugins_openai_novad as novad

    agent = Agent(instructions="...", llm=novad.RealtimeModel())  # server VAD off
"""

from livekit.agents import Agent as VoiceAgent
from livekit.agents import Plugin

from ._warm import prewarm
from .log import logger
from .model import RealtimeModel
from .realtime import RealtimeSession, TurnDetectionConfirmed, TurnTakingMode
from .turn_detection import (
    ClientVad,
    SemanticVad,
    ServerVad,
    TurnDetection,
    TurnDetectionMismatch,
    TurnDetectionRejected,
)
from .version import __version__
from .wire import session_update_payload

__all__ = [
    "RealtimeModel",
    "RealtimeSession",
    "ServerVad",
    "SemanticVad",
    "ClientVad",
    "TurnDetection",
    "TurnDetectionConfirmed",
    "TurnDetectionMismatch",
    "TurnDetectionRejected",
    "TurnTakingMode",
    "VoiceAgent",
    "prewarm",
    "session_update_payload",
    "__version__",
]

# VoiceAgent: the dev-1.0 name of livekit.agents.Agent, kept for code written against it


class OpenAINoVadPlugin(Plugin):
    def __init__(self) -> None:
        super().__init__(__name__, __version__, __package__, logger)


Plugin.register_plugin(OpenAINoVadPlugin())
