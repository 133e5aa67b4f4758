"""Test helpers: a local fake of the OpenAI Realtime WebSocket server."""

from ._protocol import DEFAULT_INSTRUCTIONS, ProtocolError, apply_session_update, default_session
from .audio import rms_dbfs, silence, tone
from .fake_server import (
    INSTANT,
    FakeConnection,
    FakeRealtimeServer,
    ReplyContext,
    ReplyFn,
    default_reply_audio,
)

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "INSTANT",
    "FakeConnection",
    "FakeRealtimeServer",
    "ProtocolError",
    "ReplyContext",
    "ReplyFn",
    "apply_session_update",
    "default_reply_audio",
    "default_session",
    "rms_dbfs",
    "silence",
    "tone",
]
