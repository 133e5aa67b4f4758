"""Checks server events against openai-python's own models of them (GA and legacy beta).

``ServerEventValidator`` is a server event hook: add it to ``FakeRealtimeServer.hooks`` (or to
``ALL_SERVERS``) and every event the fake server sends is validated against openai-python's
``RealtimeServerEvent`` union for the connection's wire; failures are collected, not raised,
so a test can assert on them at its end.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .._warm import server_event_models
from ._messages import JsonDict, Wire

__all__ = ["ServerEventValidator", "validate_server_event"]


def validate_server_event(event: JsonDict | str | bytes, wire: Wire) -> str | None:
    """None if openai-python's model of ``wire`` accepts the event, else why not."""
    data = json.loads(event) if isinstance(event, (str, bytes)) else event
    etype = data.get("type")
    model = server_event_models(wire).get(etype) if isinstance(etype, str) else None
    if model is None:
        return f"{wire} {etype!r}: not a server event type of this wire"
    try:
        model.model_validate(data)
    except ValidationError as e:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:5]
        )
        return f"{wire} {etype!r}: {errors}"
    return None


class ServerEventValidator:
    """A server event hook that validates every event (see the module docstring)."""

    def __init__(self) -> None:
        self.checked = 0
        self.failures: list[str] = []

    def __call__(self, conn: Any, event: JsonDict) -> None:
        self.checked += 1
        failure = validate_server_event(event, conn.wire)
        if failure is not None:
            self.failures.append(failure)
