"""The socket side: the socket upstream's receive loop reads (malformed frames dropped,
server events held), and which queued client events belong to the client-VAD gate.

Upstream parses each text frame and indexes ``event["type"]`` outside its handler guard, so
one malformed frame would end the session; such frames are dropped with a warning instead.
Every other event is first shown to the session's ``screen`` callback, which may keep it
(a preemptive reply not yet released); kept frames are handed on later through
:meth:`ServerSocket.release`, ahead of anything newer, in the order given.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from ._client_turns import TURN_RESPONSE_PREFIX
from .log import logger
from .speculation import UNDO_PREFIX

__all__ = ["ServerSocket", "Screen", "is_gate_event"]

Screen = Callable[[dict[str, Any], aiohttp.WSMessage], bool]
"""``(event, frame) -> hand it on now?``; False means the session took the frame."""


class ServerSocket:
    """Wraps upstream's ``aiohttp`` socket; everything but ``receive`` passes through.

    Invariants: a frame reaches the reader at most once; released frames come out before any
    frame read after the release; one read of the real socket is in flight at most (a read
    interrupted by a release is kept for the next ``receive``, never cancelled). Until the
    screen first keeps a frame, and again after each release, ``receive`` reads the socket
    directly: a release can only hand on frames kept before it, so there is nothing to wake
    the reader for.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, screen: Screen | None = None) -> None:
        self._ws = ws
        self._screen = screen
        self._released: collections.deque[aiohttp.WSMessage] = collections.deque()
        self._read: asyncio.Future[aiohttp.WSMessage] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._kept = False  # the screen kept a frame since the last release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    def release(self, frames: Iterable[aiohttp.WSMessage]) -> None:
        """Hand these frames to the reader next, in order."""
        self._released.extend(frames)
        self._kept = False
        if self._released and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        while True:
            if self._released:
                return self._released.popleft()
            msg = await self._next_frame(timeout)
            if msg is None:
                continue  # woken by a release
            if msg.type != aiohttp.WSMsgType.TEXT:
                return msg
            event = _parse(msg)
            if event is None:
                continue
            if self._screen is None or self._screen(event, msg):
                return msg
            self._kept = True

    async def _next_frame(self, timeout: float | None) -> aiohttp.WSMessage | None:
        """The next frame of the real socket, or None if a release came first."""
        if self._read is None and not self._kept:
            return await self._ws.receive(timeout)
        if self._read is None:
            self._read = asyncio.ensure_future(self._ws.receive(timeout))
            self._read.add_done_callback(_retrieve)
        self._wake = asyncio.get_running_loop().create_future()
        try:
            waiters: set[asyncio.Future[Any]] = {self._read, self._wake}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._wake.cancel()
            self._wake = None
        if self._released or not self._read.done():
            return None  # released frames first: they arrived before this one
        read, self._read = self._read, None
        return read.result()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # a read still pending when the session moved to a new socket ends with the old one
    if not fut.cancelled():
        fut.exception()


def _parse(msg: aiohttp.WSMessage) -> dict[str, Any] | None:
    try:
        event = json.loads(msg.data)
    except ValueError:
        logger.warning("ignoring a server frame that is not JSON")
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        logger.warning("ignoring a server event without a string 'type'")
        return None
    if event["type"].endswith("audio.delta") and not isinstance(event.get("delta"), str):
        logger.warning("ignoring an audio delta without audio")
        return None
    return event


def is_gate_event(event: Any) -> bool:
    """An event the client-VAD gate queued: its audio, commits, clears and turn replies, and
    the events undoing a speculative reply (the new server never had it)."""
    if not isinstance(event, dict):
        return False
    kind = event.get("type", "")
    if kind.startswith("input_audio_buffer."):
        return True
    event_id = str(event.get("event_id", ""))
    if event_id.startswith(UNDO_PREFIX):
        return True
    return kind == "response.create" and event_id.startswith(TURN_RESPONSE_PREFIX)
