"""The socket side: frames upstream's receive loop cannot survive, and which queued client
events belong to the client-VAD gate."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from ._client_turns import TURN_RESPONSE_PREFIX
from .log import logger

__all__ = ["SanitizingWebSocket", "is_gate_event"]


class SanitizingWebSocket:
    """Drops frames upstream's receive loop cannot survive (non-JSON, no string ``type``).

    Upstream parses each text frame and indexes ``event["type"]`` outside its handler guard, so
    one malformed frame would end the session; a warning is logged instead.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        while True:
            msg = await self._ws.receive(timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return msg
            try:
                event = json.loads(msg.data)
            except ValueError:
                logger.warning("ignoring a server frame that is not JSON")
                continue
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                logger.warning("ignoring a server event without a string 'type'")
                continue
            if event["type"].endswith("audio.delta") and not isinstance(event.get("delta"), str):
                logger.warning("ignoring an audio delta without audio")
                continue
            return msg


def is_gate_event(event: Any) -> bool:
    """An event the client-VAD gate queued: its audio, commits, clears and turn replies."""
    if not isinstance(event, dict):
        return False
    kind = event.get("type", "")
    if kind.startswith("input_audio_buffer."):
        return True
    return kind == "response.create" and str(event.get("event_id", "")).startswith(
        TURN_RESPONSE_PREFIX
    )
