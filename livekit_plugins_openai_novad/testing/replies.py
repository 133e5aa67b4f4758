"""What a response says: the reply settings of a ``FakeRealtimeServer``, or a reply callable.

A reply callable gets a ``ReplyContext`` and returns ``(text, pcm)`` (PCM16 24 kHz mono; ``None``
for the default tone), sync or async; the response streams it at the server's pace.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._input import SAMPLE_RATE
from ._messages import JsonDict
from .audio import tone

if TYPE_CHECKING:
    from ._handlers import FakeConnection

__all__ = ["ReplyContext", "ReplyFn", "ReplyResult", "default_reply_audio", "make_reply"]

_BYTES_PER_SECOND = SAMPLE_RATE * 2


@dataclass
class ReplyContext:
    """What a reply callable gets to build a response."""

    connection: FakeConnection
    audio: bytes  # the last committed input audio (PCM16 24 kHz mono), b"" if none yet
    trigger: str  # "client" | "server_vad" | "idle_timeout"
    response_id: str
    request: JsonDict = field(default_factory=dict)  # the response.create `response` object

    @property
    def audio_seconds(self) -> float:
        return len(self.audio) / _BYTES_PER_SECOND


ReplyResult = tuple[str, bytes | None]
ReplyFn = Callable[[ReplyContext], ReplyResult | Awaitable[ReplyResult]]

_default_reply_audio: bytes | None = None


def default_reply_audio() -> bytes:
    """0.5 s of a non-silent tone (440 Hz, -20 dBFS)."""
    global _default_reply_audio
    if _default_reply_audio is None:
        _default_reply_audio = tone(0.5, freq=440.0, dbfs=-20.0)
    return _default_reply_audio


async def make_reply(server: Any, ctx: ReplyContext) -> ReplyResult:
    """The server's reply settings, applied: ``reply``, a callable ``reply_audio``, or the
    fixed ``reply_text`` / ``reply_audio``."""
    fn = server.reply
    if fn is None and callable(server.reply_audio):
        fn = server.reply_audio
    if fn is not None:
        result = fn(ctx)
        if inspect.isawaitable(result):
            result = await result
        text, pcm = result
        return text, pcm
    audio = server.reply_audio
    return str(server.reply_text), bytes(audio) if isinstance(audio, (bytes, bytearray)) else None
