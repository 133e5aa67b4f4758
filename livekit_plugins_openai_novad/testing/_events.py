"""Event logs with event-driven waiters, and the public hooks that observe a server's traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..log import logger
from ._messages import JsonDict

if TYPE_CHECKING:
    from ._handlers import FakeConnection

__all__ = ["ALL_SERVERS", "ClientEventHook", "EventHooks", "ServerEventHook"]

# (connection, the parsed client event, the ``error`` object it was answered with or None),
# called once the server has handled the event
ClientEventHook = Callable[["FakeConnection", JsonDict, "JsonDict | None"], None]
# (connection, the server event), called once the event is on the socket; events a caller
# injected with FakeConnection.send_event are in sent_events but are not the server's, so
# hooks do not see them
ServerEventHook = Callable[["FakeConnection", JsonDict], None]


class EventHooks:
    """Observers of every client event a server handled and every server event it sent.

    Hooks run synchronously on the server's event loop, in the order added, and must not block.
    One that raises is logged and skipped: it never breaks the connection it observes.
    """

    __slots__ = ("client_event", "server_event")

    def __init__(self) -> None:
        self.client_event: list[ClientEventHook] = []
        self.server_event: list[ServerEventHook] = []

    def on_client_event(self, hook: ClientEventHook) -> ClientEventHook:
        """Add a client event hook (usable as a decorator); returns it."""
        self.client_event.append(hook)
        return hook

    def on_server_event(self, hook: ServerEventHook) -> ServerEventHook:
        """Add a server event hook (usable as a decorator); returns it."""
        self.server_event.append(hook)
        return hook

    def remove(self, hook: ClientEventHook | ServerEventHook) -> None:
        """Remove a hook added by either method (no error if absent)."""
        for hooks in (self.client_event, self.server_event):
            while hook in hooks:
                hooks.remove(hook)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return bool(self.client_event or self.server_event)

    def client(self, conn: FakeConnection, event: JsonDict, error: JsonDict | None) -> None:
        for hook in self.client_event:
            try:
                hook(conn, event, error)
            except Exception:
                logger.exception("client event hook %r failed", hook)

    def server(self, conn: FakeConnection, event: JsonDict) -> None:
        for hook in self.server_event:
            try:
                hook(conn, event)
            except Exception:
                logger.exception("server event hook %r failed", hook)


# hooks of every FakeRealtimeServer in this process, run after each server's own (e.g. a test
# suite validating all the traffic of the servers its tests create)
ALL_SERVERS = EventHooks()


class _Waiter:
    __slots__ = ("type", "predicate", "remaining", "future")

    def __init__(
        self,
        type: str | None,
        predicate: Callable[[JsonDict], bool] | None,
        remaining: int,
        future: asyncio.Future[JsonDict],
    ) -> None:
        self.type = type
        self.predicate = predicate
        self.remaining = remaining
        self.future = future

    def matches(self, event: JsonDict) -> bool:
        if self.type is not None and event.get("type") != self.type:
            return False
        return self.predicate is None or bool(self.predicate(event))


class _EventLog:
    """An append-only list of events with event-driven waiters (no polling).

    With ``record`` off the list stays empty, but waiters still see every new event.
    """

    __slots__ = ("items", "record", "_waiters")

    def __init__(self, record: bool) -> None:
        self.items: list[JsonDict] = []
        self.record = record
        self._waiters: list[_Waiter] = []

    def add(self, event: JsonDict) -> None:
        if self.record:
            self.items.append(event)
        if not self._waiters:
            return
        for w in list(self._waiters):
            if w.future.done():
                self._waiters.remove(w)
            elif w.matches(event):
                w.remaining -= 1
                if w.remaining <= 0:
                    self._waiters.remove(w)
                    w.future.set_result(event)

    async def wait(
        self,
        type: str | None,
        count: int,
        predicate: Callable[[JsonDict], bool] | None,
        timeout: float | None,
        what: str,
    ) -> JsonDict:
        remaining = count
        for ev in self.items:
            if (type is None or ev.get("type") == type) and (predicate is None or predicate(ev)):
                remaining -= 1
                if remaining <= 0:
                    return ev
        fut: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(type, predicate, remaining, fut)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            seen = [ev.get("type") for ev in self.items[-20:]]
            raise asyncio.TimeoutError(
                f"timed out after {timeout}s waiting for {what} {type!r} (#{count}); "
                f"last seen: {seen}"
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
