"""The ``session.update`` ledger: what was asked, what the server confirmed, what is in flight.

I/O-free: the session feeds it the updates it builds, the client events that left, and the
server's ``session.created`` / ``session.updated`` / ``error`` answers; the ledger says what
they mean. It resolves the futures of ``set_turn_detection`` callers but sends and emits
nothing itself.

Invariants:

* every ``session.updated`` answers the oldest update in flight (the server answers in
  order), whatever that update held; an ``error`` answers the update named by its
  ``event_id``, so every update that leaves carries one (``on_queued`` stamps those the app
  sends itself without one);
* ``latest_td`` is the newest turn-detection update not answered yet, ``None`` once its
  answer came: the session is confirmed only when it is ``None``;
* ``requested`` only moves back on a rejection of the newest turn-detection update (to what
  an older one still in flight asks for, else to what the server last confirmed);
* ``reset()`` forgets everything of the old socket and hands its waiters over to the next
  full update, which restates every field.
"""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .log import logger
from .turn_detection import (
    TurnDetection,
    TurnDetectionMismatch,
    TurnDetectionRejected,
    echo_matches,
    turn_detection_from_wire,
)

__all__ = ["UpdateLedger", "SentUpdate", "EchoOutcome"]

_APP_UPDATE_PREFIX = "app_update_"  # event ids stamped on updates the app sends without one



@dataclass
class SentUpdate:
    """A ``session.update`` and who waits for its answer."""

    event_id: str
    carries_turn_detection: bool
    expected: TurnDetection | None  # the turn detection the server should hold after it
    waiters: list[asyncio.Future[TurnDetection | None]] = field(default_factory=list)
    # what it changed on our side, as (object, attribute, before, after): a rejection undoes
    # it, so the session does not believe in (or restate on reconnect) a value never taken
    rollback: list[tuple[Any, str, Any, Any]] = field(default_factory=list)


@dataclass
class EchoOutcome:
    """What one ``session.created`` / ``session.updated`` meant."""

    sent: SentUpdate | None = None  # the turn-detection update it answered, if any
    confirmed: bool = False  # the echo honours ``sent``
    mismatch: TurnDetectionMismatch | None = None
    effective_changed: bool = False  # what the server runs may differ from before


def _wire_dict(td: TurnDetection | None) -> dict[str, Any] | None:
    return None if td is None else td.to_wire()


class UpdateLedger:
    """Update negotiation for one session (see the module docstring for the invariants)."""

    def __init__(self, wire_kind: wire.Wire, requested: TurnDetection | None) -> None:
        self._wire = wire_kind
        self.requested = requested
        self.confirmed: TurnDetection | None = None
        self.confirmed_known = False  # an echo told us what the server runs
        self.mismatch = False  # the newest echo differed: the server runs ``confirmed``
        self._built: dict[str, SentUpdate] = {}  # built, not yet on the socket
        self._inflight: collections.deque[SentUpdate] = collections.deque()
        self.latest_td: SentUpdate | None = None

    # -- what the server runs ---------------------------------------------------------------

    @property
    def effective(self) -> TurnDetection | None:
        """What the server runs: the request, unless its echo showed otherwise."""
        return self.confirmed if self.mismatch else self.requested

    @property
    def is_confirmed(self) -> bool:
        """The server's echo matches the request and no update is still unanswered."""
        return (
            self.confirmed_known
            and not self.mismatch
            and self.latest_td is None
            and echo_matches(self.requested, _wire_dict(self.confirmed))
        )

    def wants_change(self, td: TurnDetection | None) -> bool:
        return td != self.requested or self.mismatch

    def mismatch_error(self) -> TurnDetectionMismatch:
        return TurnDetectionMismatch(self.requested, _wire_dict(self.confirmed))

    # -- our side ---------------------------------------------------------------------------

    def request(self, td: TurnDetection | None) -> None:
        """The next turn-detection update asks for ``td``."""
        self.requested = td
        self.mismatch = False

    def register(self, event_id: str, *, carries_td: bool) -> SentUpdate:
        """An update we built (asking for ``requested`` when it carries turn detection)."""
        sent = SentUpdate(event_id, carries_turn_detection=carries_td, expected=self.requested)
        self._built[event_id] = sent
        if carries_td:
            self.latest_td = sent
        return sent

    def on_queued(self, event: dict[str, Any]) -> None:
        """A ``session.update`` leaves for the socket (ours, or one the app sent itself)."""
        event_id = event.get("event_id")
        sent = self._built.pop(event_id, None) if isinstance(event_id, str) else None
        if sent is None:
            if not isinstance(event_id, str) or not event_id:
                # the server names the update its error answers by this id: without one, a
                # rejection could never leave the queue and every later echo would be
                # matched to the update before it
                event_id = event["event_id"] = wire.new_event_id(_APP_UPDATE_PREFIX)
            session = event.get("session")
            present, value = wire.session_turn_detection(
                self._wire, session if isinstance(session, dict) else {}
            )
            try:
                expected = turn_detection_from_wire(value) if present else self.requested
            except ValueError:  # a type this package does not know: it cannot verify it
                present, expected = False, self.requested
            sent = SentUpdate(event_id, carries_turn_detection=present, expected=expected)
        self._inflight.append(sent)

    def reset(self) -> list[asyncio.Future[TurnDetection | None]]:
        """A new socket: the old one's unanswered updates never will be. Returns their
        waiters, for the full update that restates everything to carry."""
        carried = [fut for lost in self._inflight for fut in lost.waiters]
        self._inflight.clear()
        return carried

    # -- the server's answers ---------------------------------------------------------------

    def on_echo(self, is_update: bool, session: dict[str, Any]) -> EchoOutcome:
        """Read a ``session.created`` (``is_update=False``) or ``session.updated``."""
        sent = self._inflight.popleft() if is_update and self._inflight else None
        present, echoed = wire.session_turn_detection(self._wire, session)
        if not present:
            return EchoOutcome()
        try:
            self.confirmed = turn_detection_from_wire(echoed)
            self.confirmed_known = known = True
        except ValueError:  # a type this package does not know (e.g. a vendor's own)
            logger.warning("unknown turn detection in the server's echo: %s", json.dumps(echoed))
            known = False
        if sent is None or not sent.carries_turn_detection:
            return EchoOutcome()  # session.created (server defaults), or not about turns
        latest = sent is self.latest_td
        if latest:
            self.latest_td = None
        if known and echo_matches(sent.expected, echoed):
            if latest:
                self.mismatch = False
            for fut in sent.waiters:
                if not fut.done():
                    fut.set_result(self.confirmed)
            return EchoOutcome(sent=sent, confirmed=True, effective_changed=True)

        mismatch = TurnDetectionMismatch(sent.expected, echoed)
        logger.warning(
            "turn detection mismatch: requested %s, server confirmed %s",
            "null" if sent.expected is None else json.dumps(sent.expected.to_wire()),
            json.dumps(echoed),
        )
        follow = latest and known
        if follow:
            # the server runs what it echoed: follow it, so two VADs never run on one stream
            self.mismatch = True
        for fut in sent.waiters:
            if not fut.done():
                fut.set_exception(mismatch)
        return EchoOutcome(sent=sent, mismatch=mismatch, effective_changed=follow)

    def on_error(
        self, event_id: Any, *, code: str | None, param: str | None, message: str
    ) -> tuple[SentUpdate, bool] | None:
        """An ``error`` event: ``(the update it rejected, requested moved back)``, or
        ``None`` when it answers none of the updates in flight."""
        sent = next((s for s in self._inflight if s.event_id == event_id), None)
        if sent is None:
            return None
        self._inflight.remove(sent)
        for obj, attr, before, after in sent.rollback:
            if getattr(obj, attr) == after:  # unless a later update changed it again
                setattr(obj, attr, before)
        moved = False
        if sent.carries_turn_detection:
            exc = TurnDetectionRejected(sent.expected, code=code, param=param, message=message)
            if sent is self.latest_td:
                # the server keeps its state: what an older update still in flight asks for,
                # else what it last confirmed; so do we
                older = self._newest_td_update()
                self.latest_td = older
                self.requested = older.expected if older is not None else self.confirmed
                self.mismatch = False
                moved = True
            for fut in sent.waiters:
                if not fut.done():
                    fut.set_exception(exc)
        return sent, moved

    def _newest_td_update(self) -> SentUpdate | None:
        """The newest turn-detection update not yet answered (sent, or queued to be)."""
        pending = [*self._inflight, *self._built.values()]
        return next((s for s in reversed(pending) if s.carries_turn_detection), None)
