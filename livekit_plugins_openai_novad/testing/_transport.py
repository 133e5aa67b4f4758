"""The sending side of one fake-server socket: an ordered outbox drained by one writer task.

Invariants: frames reach the socket in the order they were queued; an event counts as sent
(logged, hooks called) only once it is on the socket; once closed nothing more is queued, and
whatever was still queued fails with ``ConnectionResetError`` (a queued close counts as done).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._messages import JsonDict

__all__ = ["Transport", "dumps"]

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class _Out:
    __slots__ = ("text", "event", "delay", "future", "close", "own")

    def __init__(
        self,
        text: str | None,
        event: JsonDict | None,
        delay: float = 0.0,
        future: asyncio.Future[None] | None = None,
        close: tuple[int, str] | None = None,
        own: bool = True,
    ) -> None:
        self.own = own  # the server's own event, not one a caller injected with send()
        self.text = text
        self.event = event
        self.delay = delay
        self.future = future
        self.close = close


class Transport:
    """Queues frames for one WebSocket and writes them in order.

    ``on_sent(event, own)`` runs for every event once it is on the socket (``own``: the
    server's, from ``emit``, rather than a caller's, from ``send``); ``on_closed()`` runs once,
    when the socket is found closed (by either side) or aborted.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        raw: Any,
        on_sent: Callable[[JsonDict, bool], None],
        on_closed: Callable[[], None],
    ) -> None:
        self.closed = False
        self._ws = ws
        self._raw = raw  # the TCP transport, for abort()
        self._on_sent = on_sent
        self._on_closed = on_closed
        self._queue: asyncio.Queue[_Out] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._writer())

    def emit(self, event: JsonDict, delay: float = 0.0) -> None:
        """Queue a server event (after ``delay`` seconds, in order); dropped once closed."""
        if not self.closed:
            self._queue.put_nowait(_Out(dumps(event), event, delay))

    async def send(self, text: str, event: JsonDict | None) -> None:
        """Queue a text frame and return once it is on the socket."""
        if self.closed:
            raise ConnectionResetError("connection closed")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Out(text, event, future=fut, own=False))
        await fut

    def queue_close(self, code: int, reason: str) -> None:
        """Close with a close frame after everything already queued."""
        if not self.closed:
            self._queue.put_nowait(_Out(None, None, close=(code, reason)))

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        if self.closed:
            return
        self.mark_closed()
        if self._raw is not None:
            self._raw.abort()

    def mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_closed()

    async def send_now(self, event: JsonDict, close: tuple[int, str]) -> None:
        """Bypass the queue: one event, then a close (a refused handshake)."""
        try:
            await self._ws.send_str(dumps(event))
            self._on_sent(event, True)
            self.closed = True
            await self._ws.close(code=close[0], message=close[1].encode())
        except (ConnectionError, RuntimeError):
            pass
        self.closed = True

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def _writer(self) -> None:
        ws = self._ws
        out: _Out | None = None
        try:
            while True:
                out = await self._queue.get()
                if out.delay > 0:
                    await asyncio.sleep(out.delay)
                if out.close is not None:
                    self.mark_closed()
                    await ws.close(code=out.close[0], message=out.close[1].encode())
                    return
                if out.text is not None:
                    await ws.send_str(out.text)
                if out.event is not None:
                    self._on_sent(out.event, out.own)
                if out.future is not None and not out.future.done():
                    out.future.set_result(None)
                out = None
        except (ConnectionError, RuntimeError):
            self.mark_closed()
        finally:
            pending = [out] if out is not None else []
            while not self._queue.empty():
                pending.append(self._queue.get_nowait())
            for item in pending:
                if item.future is not None and not item.future.done():
                    if item.close is not None:
                        item.future.set_result(None)
                    else:
                        item.future.set_exception(ConnectionResetError("connection closed"))
