"""The client events the fake server accepts: one table, for dispatch and for error messages.

The rows are in the order the real server lists the supported types when it refuses an unknown
one (docs/realtime-wire.md §6), so each wire's list is that wire's rows in table order.
"""

from __future__ import annotations

from typing import NamedTuple

from ._messages import Wire

__all__ = ["BETA_CLIENT_EVENT_TYPES", "CLIENT_EVENTS", "GA_CLIENT_EVENT_TYPES", "ClientEvent"]


class ClientEvent(NamedTuple):
    type: str
    handler: str  # the name of the FakeConnection method that handles it
    ga: bool
    beta: bool


CLIENT_EVENTS: tuple[ClientEvent, ...] = (
    ClientEvent("session.update", "_h_session_update", ga=True, beta=True),
    ClientEvent("session.close", "_h_session_close", ga=True, beta=False),
    # listed by the legacy server; the fake does not implement it (an error, not a crash)
    ClientEvent("transcription_session.update", "_h_unsupported", ga=False, beta=True),
    ClientEvent("input_audio_buffer.append", "_h_append", ga=True, beta=True),
    ClientEvent("session.input_audio_buffer.append", "_h_append", ga=True, beta=False),
    ClientEvent("input_audio_buffer.commit", "_h_commit", ga=True, beta=True),
    ClientEvent("input_audio_buffer.clear", "_h_clear", ga=True, beta=True),
    ClientEvent("conversation.item.create", "_h_item_create", ga=True, beta=True),
    ClientEvent("conversation.item.truncate", "_h_item_truncate", ga=True, beta=True),
    ClientEvent("conversation.item.delete", "_h_item_delete", ga=True, beta=True),
    ClientEvent("conversation.item.retrieve", "_h_item_retrieve", ga=True, beta=True),
    ClientEvent("response.create", "_h_response_create", ga=True, beta=True),
    ClientEvent("response.cancel", "_h_response_cancel", ga=True, beta=True),
    # WebRTC/SIP only; documented for the legacy WebSocket but not implemented here
    ClientEvent("output_audio_buffer.clear", "_h_unsupported", ga=False, beta=True),
)


def client_event_types(wire: Wire) -> tuple[str, ...]:
    return tuple(row.type for row in CLIENT_EVENTS if (row.ga if wire == "ga" else row.beta))


GA_CLIENT_EVENT_TYPES = client_event_types("ga")
BETA_CLIENT_EVENT_TYPES = client_event_types("beta")
