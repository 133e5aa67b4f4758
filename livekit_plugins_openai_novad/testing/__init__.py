"""Test helpers: a local fake of the OpenAI Realtime WebSocket server."""

from ._protocol import DEFAULT_INSTRUCTIONS, ProtocolError, apply_session_update, default_session
from .audio import rms_dbfs, silence, tone
from .fake_server import (
    ALL_SERVERS,
    INSTANT,
    ClientEventHook,
    EventHooks,
    FakeConnection,
    FakeRealtimeServer,
    ReplyContext,
    ReplyFn,
    ServerEventHook,
    default_reply_audio,
)

__all__ = [
    "ALL_SERVERS",
    "DEFAULT_INSTRUCTIONS",
    "INSTANT",
    "ClientEventHook",
    "EventHooks",
    "FakeConnection",
    "FakeRealtimeServer",
    "ProtocolError",
    "ReplyContext",
    "ReplyFn",
    "ServerEventHook",
    "apply_session_update",
    "default_reply_audio",
    "default_session",
    "rms_dbfs",
    "silence",
    "tone",
]
