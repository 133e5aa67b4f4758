"""Preemptive replies under client VAD: ask for the reply early in the trailing silence, and
hold it until the silence window completes.

What a caller feels is the time from the end of their speech to the agent's first sound. With
client VAD that is the silence window plus the server's time to first audio, because the
reply is requested once the window has passed. Here the turn is committed and
``response.create`` sent ``ClientVad.preemptive_after_ms`` into the trailing silence; every
server event of that reply is held back from upstream's receive loop until the window
completes, then released at once, so the server's latency runs inside the window. If the
user speaks again first, the reply is cancelled and its assistant item deleted: upstream
never sees it, so nothing of it is played, put in the chat history, or left on the server.

:class:`Speculation` is I/O-free: the session tells it what the turn detector decided and
hands it every server event; it answers with the client events to send and what to do with
each server event (:class:`Verdict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from . import wire

__all__ = [
    "PreemptiveOptions",
    "Release",
    "Speculation",
    "Verdict",
    "SPECULATION_PREFIX",
    "UNDO_PREFIX",
]

# event ids (and metadata) of a speculative response.create: a turn reply like any other
SPECULATION_PREFIX = "turn_response_preemptive_"
UNDO_PREFIX = "preemptive_undo_"  # event ids of the cancel / deletes that undo one

# the framework's PreemptiveGenerationOptions defaults (livekit/agents/voice/turn.py)
_DEFAULT_MAX_SPEECH_S = 10.0
_DEFAULT_MAX_RETRIES = 3

# server events that carry a whole conversation item in ``item`` (GA and legacy names)
_ITEM_EVENTS = frozenset(
    {"conversation.item.added", "conversation.item.created", "conversation.item.done"}
)
_OUTPUT_ITEM_ADDED = "response.output_item.added"

T = TypeVar("T")


@dataclass(frozen=True)
class PreemptiveOptions:
    """``turn_handling["preemptive_generation"]`` as far as a realtime session honours it.

    ``preemptive_tts`` has no meaning here: the server generates text and audio together.
    """

    enabled: bool = True
    max_speech_duration: float = _DEFAULT_MAX_SPEECH_S  # seconds of turn; longer: no speculation
    max_retries: int = _DEFAULT_MAX_RETRIES  # speculative replies per user turn

    @classmethod
    def from_turn_handling(cls, opts: Mapping[str, Any] | None) -> PreemptiveOptions:
        """From the framework's (resolved or partial) ``PreemptiveGenerationOptions``."""
        opts = opts or {}
        return cls(
            enabled=bool(opts.get("enabled", True)),
            max_speech_duration=float(opts.get("max_speech_duration", _DEFAULT_MAX_SPEECH_S)),
            max_retries=int(opts.get("max_retries", _DEFAULT_MAX_RETRIES)),
        )


class Verdict(Enum):
    PASS = "pass"  # hand the event to upstream now
    HOLD = "hold"  # part of the pending speculative reply: kept until release
    DROP = "drop"  # part of a cancelled speculative reply: upstream never sees it


@dataclass
class _Pending(Generic[T]):
    event_id: str  # of our response.create, echoed in the response's metadata
    response_id: str | None = None
    item_ids: list[str] = field(default_factory=list)
    done: bool = False  # its response.done is among the held events
    refused: bool = False  # the server answered the response.create with an error
    held: list[T] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)  # turn audio after the commit


@dataclass
class Release(Generic[T]):
    """What the window's end does with a speculation."""

    held: list[T]  # server events to hand upstream, in arrival order
    needs_reply: bool  # the speculative response.create was refused: ask again
    audio_bytes: int  # turn audio held since the commit (the window's silence), dropped


class Speculation(Generic[T]):
    """The preemptive replies of one session's client-VAD turns.

    ``T`` is whatever the session holds per server event (a raw socket frame).

    Invariants:

    * at most one speculative reply is pending; it is either released (``confirm``) or
      cancelled (``cancel``), never both, and ``reset`` forgets it;
    * a held event is handed on only by ``confirm``, in arrival order, exactly once;
    * no event of a cancelled reply is handed on: neither its response events nor its
      assistant items, nor the ``conversation.item.deleted`` answering our delete;
    * every assistant item a cancelled reply created gets exactly one
      ``conversation.item.delete``, however late the server names it;
    * at most ``max_retries`` speculations per user turn; ``end_turn`` resets the count.
    """

    def __init__(self, opts: PreemptiveOptions | None = None) -> None:
        self.opts = opts or PreemptiveOptions()
        self._pending: _Pending[T] | None = None
        self._cancelled_event_ids: set[str] = set()  # cancelled before response.created
        self._cancelled_responses: set[str] = set()  # cancelled, response.done not yet in
        # cancelled before the server named them: if one still streams, cancel it by id
        self._blind_cancels: set[str] = set()
        self._cancelled_items: set[str] = set()  # deleted, conversation.item.deleted not yet in
        self._attempts = 0
        self.started = 0  # speculative replies requested, for the session's lifetime
        self.cancelled = 0  # ... of which the user's voice cancelled

    # -- turn side ------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """A speculative reply is out and not yet released or cancelled."""
        return self._pending is not None

    def should_speculate(self, *, speech_s: float, other_response_active: bool) -> bool:
        """At the detector's pause point: request the reply now?

        Not while another response is active (the server would refuse a second one), not for a
        turn longer than ``max_speech_duration``, not beyond ``max_retries`` in one turn.
        """
        return (
            self.opts.enabled
            and self._pending is None
            and not other_response_active
            and speech_s <= self.opts.max_speech_duration
            and self._attempts < self.opts.max_retries
        )

    def start(self) -> dict[str, Any]:
        """The speculative ``response.create`` (sent right after the turn's commit)."""
        assert self._pending is None, "one speculation at a time"
        event_id = wire.new_event_id(SPECULATION_PREFIX)
        self._pending = _Pending(event_id)
        self._attempts += 1
        self.started += 1
        return wire.response_create_event(event_id=event_id, metadata={"client_event_id": event_id})

    def hold_audio(self, data: bytes) -> bool:
        """Keep turn audio that arrives after the speculative commit (the window's silence,
        or the start of the user's next words). False when nothing is pending."""
        if self._pending is None:
            return False
        self._pending.audio += data
        return True

    def cancel(self) -> tuple[list[dict[str, Any]], bytes]:
        """The user spoke again inside the window: the client events that undo the reply,
        and the turn audio held since the commit (it belongs to the turn: send it)."""
        p, self._pending = self._pending, None
        if p is None:
            return [], b""
        self.cancelled += 1
        events: list[dict[str, Any]] = []
        if not p.done and not p.refused:
            if p.response_id is None:
                # the server handles events in order: our response is the active one by now
                self._cancelled_event_ids.add(p.event_id)
                events.append(wire.response_cancel_event(event_id=_undo_id()))
            else:
                self._cancelled_responses.add(p.response_id)
                events.append(wire.response_cancel_event(p.response_id, event_id=_undo_id()))
        for item_id in p.item_ids:
            events.append(self._delete(item_id))
        return events, bytes(p.audio)

    def confirm(self) -> Release[T] | None:
        """The silence window completed: release the pending reply (None if none).

        The audio held since the commit is the window's silence and is dropped.
        """
        p, self._pending = self._pending, None
        if p is None:
            return None
        return Release(held=p.held, needs_reply=p.refused, audio_bytes=len(p.audio))

    def end_turn(self) -> None:
        """The user's turn is over (answered): the next turn may speculate again."""
        self._attempts = 0

    def reset(self) -> None:
        """A new connection: nothing of the old one will arrive any more."""
        self._pending = None
        self._cancelled_event_ids.clear()
        self._cancelled_responses.clear()
        self._blind_cancels.clear()
        self._cancelled_items.clear()
        self._attempts = 0

    # -- server side ----------------------------------------------------------------------

    def on_server_event(
        self, event: Mapping[str, Any], raw: T
    ) -> tuple[Verdict, list[dict[str, Any]]]:
        """Classify one server event before upstream sees it; also returns client events to
        send because of it (the delete of an item a cancelled reply named late)."""
        kind = event.get("type")
        p = self._pending
        if kind == "response.created":
            response = _dict(event.get("response"))
            rid = response.get("id")
            origin = _str(_dict(response.get("metadata")).get("client_event_id"))
            if p is not None and origin == p.event_id and isinstance(rid, str):
                p.response_id = rid
                p.held.append(raw)
                return Verdict.HOLD, []
            if origin in self._cancelled_event_ids and isinstance(rid, str):
                self._cancelled_event_ids.discard(origin)
                self._cancelled_responses.add(rid)
                self._blind_cancels.add(rid)
                return Verdict.DROP, []
            return Verdict.PASS, []

        if kind == "error":
            error = _dict(event.get("error"))
            if p is not None and error.get("event_id") == p.event_id:
                p.refused = True  # surfaced as any server error; asked again at the window
            return Verdict.PASS, []

        rid = _response_id(event)
        if rid is not None:
            if p is not None and rid == p.response_id:
                if kind == _OUTPUT_ITEM_ADDED and (item_id := _item_id(event)):
                    p.item_ids.append(item_id)
                elif kind == "response.done":
                    p.done = True
                p.held.append(raw)
                return Verdict.HOLD, []
            if rid in self._cancelled_responses:
                out: list[dict[str, Any]] = []
                if kind == "response.done":
                    self._cancelled_responses.discard(rid)
                    self._blind_cancels.discard(rid)
                    return Verdict.DROP, out
                if rid in self._blind_cancels:  # it outlived a cancel sent without its id
                    self._blind_cancels.discard(rid)
                    out.append(wire.response_cancel_event(rid, event_id=_undo_id()))
                if kind == _OUTPUT_ITEM_ADDED and (item_id := _item_id(event)):
                    out.append(self._delete(item_id))
                return Verdict.DROP, out
            return Verdict.PASS, []

        if kind in _ITEM_EVENTS:
            item_id = _item_id(event)
            if p is not None and item_id is not None and _is_output_of(p, event, item_id):
                if item_id not in p.item_ids:
                    p.item_ids.append(item_id)
                p.held.append(raw)
                return Verdict.HOLD, []
            if item_id in self._cancelled_items:
                return Verdict.DROP, []
        elif kind == "conversation.item.deleted":
            deleted = _str(event.get("item_id"))
            if deleted is not None and deleted in self._cancelled_items:
                self._cancelled_items.discard(deleted)
                return Verdict.DROP, []
        return Verdict.PASS, []

    def _delete(self, item_id: str) -> dict[str, Any]:
        self._cancelled_items.add(item_id)
        return wire.item_delete_event(item_id, event_id=_undo_id())


def _undo_id() -> str:
    return wire.new_event_id(UNDO_PREFIX)


def _is_output_of(p: _Pending[Any], event: Mapping[str, Any], item_id: str) -> bool:
    """Is this conversation item the pending reply's output?

    Named by its ``response.output_item.added``, or, should the server announce the item
    first, an item still being generated while the reply is live (we speculate only when no
    other response is active; items the app creates arrive ``completed``).
    """
    if item_id in p.item_ids:
        return True
    item = _dict(event.get("item"))
    live = p.response_id is not None and not p.done
    return live and item.get("status") == "in_progress"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _response_id(event: Mapping[str, Any]) -> str | None:
    """The response a ``response.*`` event belongs to (``response.done`` nests it)."""
    kind = str(event.get("type", ""))
    if not kind.startswith("response."):
        return None
    rid = event.get("response_id")
    if rid is None and kind == "response.done":
        rid = _dict(event.get("response")).get("id")
    return _str(rid)


def _item_id(event: Mapping[str, Any]) -> str | None:
    return _str(_dict(event.get("item")).get("id"))
