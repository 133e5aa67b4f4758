"""The conversation of one connection: its items in order, and the rules for changing them.

I/O-free: each method validates a client request, applies it, and returns what the
connection reports on the wire (docs/realtime-wire.md §4); a refused request raises
``ProtocolError`` and changes nothing.

Invariants: ``items`` and the id index hold the same item objects; a stored item dict is never
mutated once stored (it may already be in a sent event): a change replaces it; an assistant
item with audio has a duration (ms of audio the client received, or the truncation point).
"""

from __future__ import annotations

from typing import Any

from ._messages import (
    MISSING,
    JsonDict,
    ProtocolError,
    Wire,
    invalid_type,
    missing_parameter,
    new_id,
    server_event,
)
from ._names import NAMES

__all__ = [
    "AUDIO_PART_TYPES",
    "Conversation",
    "item_added_events",
    "item_id_param",
    "user_audio_item",
]

AUDIO_PART_TYPES = ("output_audio", "audio")  # GA, legacy


def item_id_param(event: JsonDict) -> str:
    item_id = event.get("item_id", MISSING)
    if item_id is MISSING:
        raise missing_parameter("item_id")
    if not isinstance(item_id, str):
        raise invalid_type("item_id", "string", item_id)
    return item_id


def user_audio_item(item_id: str) -> JsonDict:
    """The user item a committed input audio turn becomes (no transcript on it)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }


def item_added_events(wire: Wire, item: JsonDict, prev: str | None) -> list[JsonDict]:
    """A finished item entering the conversation: GA added then done, legacy created (§4)."""
    names = NAMES[wire]
    return [
        server_event(etype, previous_item_id=prev, item=item)
        for etype in (names.item_started, names.item_done)
        if etype is not None
    ]


def _int_param(event: JsonDict, name: str) -> int:
    value = event.get(name, MISSING)
    if value is MISSING:
        raise missing_parameter(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(name, "integer", value)
    return value


class Conversation:
    """The items of a connection's default conversation (see the module invariants)."""

    def __init__(self) -> None:
        self.id = new_id("conv")
        self.items: list[JsonDict] = []
        self._by_id: dict[str, JsonDict] = {}
        self._audio_ms: dict[str, float] = {}

    def get(self, item_id: str) -> JsonDict | None:
        return self._by_id.get(item_id)

    @property
    def last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def append(self, item: JsonDict) -> str | None:
        """Add at the end; returns the previous item's id."""
        prev = self.last_id
        self._insert(item, len(self.items))
        return prev

    def replace(self, item: JsonDict) -> None:
        """Swap in a new version of a stored item (same id); unknown ids are ignored."""
        old = self._by_id.get(item["id"])
        if old is None:
            return
        items = self.items
        for i in range(len(items) - 1, -1, -1):  # usually the last: the streaming reply
            if items[i] is old:
                items[i] = item
                break
        self._by_id[item["id"]] = item

    def set_audio_ms(self, item_id: str, ms: float) -> None:
        self._audio_ms[item_id] = ms

    def create(self, event: JsonDict) -> tuple[JsonDict, str | None]:
        """``conversation.item.create``: returns (the stored item, the previous item id)."""
        raw = event.get("item", MISSING)
        if raw is MISSING:
            raise missing_parameter("item")
        if not isinstance(raw, dict):
            raise invalid_type("item", "object", raw)
        item_id = raw.get("id") or new_id("item")
        if not isinstance(item_id, str):
            raise invalid_type("item.id", "string", item_id)
        if item_id in self._by_id:
            # the code is the one LiveKit checks for (inferred)
            raise ProtocolError(
                "item_create_duplicate_item_id",
                f"Item with id '{item_id}' already exists.",
                "item.id",
            )
        prev = event.get("previous_item_id")
        if prev is None:
            index = len(self.items)
        elif prev == "root":
            index = 0
        elif prev in self._by_id:
            index = self.items.index(self._by_id[prev]) + 1
        else:
            raise ProtocolError(  # code inferred
                "item_create_invalid_previous_item_id",
                f"Previous item with item_id '{prev}' not found.",
                "previous_item_id",
            )
        item: JsonDict = {"id": item_id, "object": "realtime.item"}
        item.update({k: v for k, v in raw.items() if k != "id"})
        if item.get("type") in ("message", "function_call") and "status" not in item:
            item["status"] = "completed"
        self._insert(item, index)
        return item, self.items[index - 1]["id"] if index > 0 else None

    def delete(self, event: JsonDict) -> str:
        """``conversation.item.delete``: returns the deleted id."""
        item_id = item_id_param(event)
        item = self._by_id.pop(item_id, None)
        if item is None:
            raise ProtocolError(  # code inferred
                "item_delete_invalid_item_id",
                f"Error deleting item: the item with id '{item_id}' does not exist.",
                "item_id",
            )
        self.items.remove(item)
        self._audio_ms.pop(item_id, None)
        return item_id

    def retrieve(self, event: JsonDict) -> JsonDict:
        item_id = item_id_param(event)
        item = self._by_id.get(item_id)
        if item is None:
            raise ProtocolError(  # code inferred
                "item_retrieve_invalid_item_id",
                f"Error retrieving item: the item with id '{item_id}' does not exist.",
                "item_id",
            )
        return item

    def truncate(self, event: JsonDict) -> tuple[str, int, int]:
        """``conversation.item.truncate`` of an assistant audio item, finished or still
        streaming (§4): its audio now ends at ``audio_end_ms`` and its transcript is dropped.
        Returns (item_id, content_index, audio_end_ms)."""
        item_id = item_id_param(event)
        content_index = _int_param(event, "content_index")
        audio_end_ms = _int_param(event, "audio_end_ms")
        if audio_end_ms < 0:
            raise ProtocolError(
                "integer_below_min_value",
                "Invalid 'audio_end_ms': integer below minimum value. "
                f"Expected a value >= 0, but got {audio_end_ms} instead.",
                "audio_end_ms",
            )
        item = self._by_id.get(item_id)
        if item is None:
            raise ProtocolError(  # code inferred
                "item_truncate_invalid_item_id",
                f"Error truncating item: the item with id '{item_id}' does not exist.",
                "item_id",
            )
        duration = self._audio_ms.get(item_id)
        content: list[Any] = item.get("content") or []
        if (
            item.get("role") != "assistant"
            or duration is None
            or content_index != 0
            or content_index >= len(content)
            or content[content_index].get("type") not in AUDIO_PART_TYPES
        ):
            raise ProtocolError(
                "unsupported_content_type", "Only model output audio messages can be truncated"
            )
        if audio_end_ms > duration:
            raise ProtocolError(  # the code is inferred, the message observed
                "invalid_value",
                f"Audio content of {int(duration)}ms is already shorter than {audio_end_ms}ms",
                "audio_end_ms",
            )
        self._audio_ms[item_id] = float(audio_end_ms)
        new_content = [dict(c) for c in content]
        new_content[content_index]["transcript"] = ""
        self.replace({**item, "content": new_content})
        return item_id, content_index, audio_end_ms

    def _insert(self, item: JsonDict, index: int) -> None:
        self.items.insert(index, item)
        self._by_id[item["id"]] = item
