"""One accepted fake-server WebSocket: its identity, logs and public inspection API, the read
loop, and the dispatch of each client event to a handler (``_handlers``), by the table in
``_client_events``.

Invariants: every parsed client event is logged before it is handled; a handler either
succeeds or raises ``ProtocolError``, which becomes exactly one ``error`` event echoing the
client's ``event_id``; hooks see the event after it was handled, with that error if any.
``§n`` in comments are sections of docs/realtime-wire.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal, cast

from aiohttp import WSMsgType, web

from ._client_events import client_event_types
from ._events import ALL_SERVERS, _EventLog
from ._messages import JsonDict, ProtocolError, Wire, error_event, quote_list, server_event
from ._session import DEFAULT_MODEL, default_session, session_turn_detection
from ._transport import Transport, dumps

if TYPE_CHECKING:
    from ._handlers import FakeConnection
    from .fake_server import FakeRealtimeServer

__all__ = ["ConnectionBase", "Handler"]

Handler = Callable[["ConnectionBase", JsonDict], None]


class ConnectionBase:
    """The socket side of a ``FakeConnection`` (kept after it closes, for inspection)."""

    # client event type -> handler, per wire (filled by the subclass from the table)
    handlers: ClassVar[dict[Wire, dict[str, Handler]]] = {"ga": {}, "beta": {}}

    def __init__(
        self,
        server: FakeRealtimeServer,
        request: web.Request,
        ws: web.WebSocketResponse,
        wire: Wire,
        model: str | None,
    ) -> None:
        self.server = server
        self.wire: Literal["ga", "beta"] = wire
        self.model = model
        self.path = request.path
        self.query: dict[str, str] = dict(request.query)
        self.headers: dict[str, str] = dict(request.headers)
        self.session: JsonDict = default_session(wire, model or DEFAULT_MODEL)
        self.close_code: int | None = None
        self.handshake_error: JsonDict | None = None
        self.connected_at = time.monotonic()
        self.received_text_frames: list[str] = []
        record = server.record_events
        self._client_log = _EventLog(record)
        self._sent_log = _EventLog(record)
        self._ws = ws
        self._out = Transport(ws, request.transport, self._on_sent, self._on_closed)
        self._closed_event = asyncio.Event()

    # ------------------------------------------------------------ public

    @property
    def closed(self) -> bool:
        return self._out.closed

    @property
    def client_events(self) -> list[JsonDict]:
        return self._client_log.items

    @property
    def sent_events(self) -> list[JsonDict]:
        return self._sent_log.items

    @property
    def turn_detection(self) -> JsonDict | None:
        return session_turn_detection(self.session, self.wire)

    async def send_event(self, event: JsonDict) -> None:
        """Send any server event (in order with the server's own events); returns once sent."""
        await self._out.send(dumps(event), event)

    async def send_text(self, text: str) -> None:
        """Send a raw text frame (e.g. malformed JSON)."""
        await self._out.send(text, None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close gracefully from the server side, after the events already queued."""
        self._out.queue_close(code, reason)
        await self.wait_closed()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self._out.abort()

    async def wait_closed(self, timeout: float | None = 5.0) -> None:
        await asyncio.wait_for(self._closed_event.wait(), timeout)

    async def wait_for_client_event(
        self,
        type: str | None,
        *,
        count: int = 1,
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float | None = 5.0,
    ) -> JsonDict:
        """The ``count``-th client event of ``type`` on this connection (past ones count)."""
        return await self._client_log.wait(type, count, predicate, timeout, "client event")

    async def wait_for_sent_event(
        self,
        type: str | None,
        *,
        count: int = 1,
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float | None = 5.0,
    ) -> JsonDict:
        """The ``count``-th event of ``type`` this connection sent to the client."""
        return await self._sent_log.wait(type, count, predicate, timeout, "server event")

    def __repr__(self) -> str:
        return f"<FakeConnection {self.wire} model={self.model!r} closed={self.closed}>"

    # ------------------------------------------------------------ lifecycle

    def _emit(self, event: JsonDict, delay: float = 0.0) -> None:
        self._out.emit(event, delay)

    def _on_sent(self, event: JsonDict, own: bool) -> None:
        self._sent_log.add(event)
        if not own:
            return  # injected with send_event: the caller's event, not the server's
        conn = cast("FakeConnection", self)  # hooks see the whole connection
        if self.server.hooks:
            self.server.hooks.server(conn, event)
        if ALL_SERVERS:
            ALL_SERVERS.server(conn, event)

    def _on_closed(self) -> None:
        """The socket closed: stop whatever is still producing events."""

    async def _run(self) -> None:
        ws = self._ws
        self._out.start()
        # §1: session.created is sent unprompted right after the upgrade
        self._emit(server_event("session.created", session=self.session))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    # §6: a binary frame is not fatal
                    self._emit(
                        error_event(
                            "invalid_event",
                            "Binary frames are not supported; send JSON text frames.",
                        )
                    )
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._out.mark_closed()
            self.close_code = ws.close_code
            await self._out.stop()
            self._closed_event.set()

    async def _reject(self, code: str | None, message: str, close_code: int) -> None:
        # §1: auth/shape errors come after the 101 as one error event, then a close
        ev = error_event(code, message)
        self.handshake_error = ev["error"]
        reason = f"{ev['error']['type']}.{code}" if code else ev["error"]["type"]
        await self._out.send_now(ev, (close_code, reason))
        self.close_code = close_code
        self._closed_event.set()

    # ------------------------------------------------------------ dispatch

    def _on_text(self, data: str) -> None:
        server = self.server
        if server.record_events:
            self.received_text_frames.append(data)
            server.received_text_frames.append(data)
        try:
            event = json.loads(data)
        except ValueError:
            self._emit(
                error_event(
                    "invalid_json",
                    "We could not parse the JSON body of your request. Expected a JSON object.",
                )
            )
            return
        if not isinstance(event, dict):
            self._emit(error_event("invalid_event", "Expected the client event to be an object."))
            return
        self._client_log.add(event)
        server._client_log.add(event)
        error = self._dispatch(event)
        if error is not None:
            self._emit(error)
        conn = cast("FakeConnection", self)
        rejected = error["error"] if error is not None else None
        if server.hooks:
            server.hooks.client(conn, event, rejected)
        if ALL_SERVERS:
            ALL_SERVERS.client(conn, event, rejected)

    def _dispatch(self, event: JsonDict) -> JsonDict | None:
        """Handle one client event; returns the ``error`` event that answers it, if any."""
        event_id = event.get("event_id")
        client_event_id = event_id if isinstance(event_id, str) else None
        etype = event.get("type")
        if etype is None:
            return error_event(
                "invalid_event", "The 'type' field is missing.", None, client_event_id
            )
        handler = self.handlers[self.wire].get(etype) if isinstance(etype, str) else None
        if handler is None:
            return error_event(
                "invalid_value",
                f"Invalid value: '{etype}'. Supported values are: "
                f"{quote_list(client_event_types(self.wire))}.",
                "type",
                client_event_id,
            )
        try:
            handler(self, event)
        except ProtocolError as e:
            return error_event(e.code, e.message, e.param, client_event_id, type=e.type)
        return None
