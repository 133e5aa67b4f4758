"""What a process loads once, before its first call: ``prewarm`` (an ``AgentServer``'s
``setup_fnc``).

* Silero, on the runtime ``silero_runtime`` picks; sessions share it.
* openai-python's models of the Realtime server events. Their pydantic schemas are built on
  first use, and upstream's receive loop makes one model per server event it gets
  (``SomeEvent.construct(**event)``), so in a fresh process the first reply's events built
  them on the event loop: 40-90 ms with nothing else running, more with many jobs on threads
  (the one mic frame late by over 100 ms in a thread-executor bench step). One event of each
  type, as the bundled emulator sends them in a turn (``resources/server_events.json``), is
  made here instead, with what upstream makes of them on its loop (the usage of
  ``response.done`` dumped, a ``ChatMessage``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

from pydantic import BaseModel

from . import silero_runtime

__all__ = ["prewarm", "server_event_models", "warm_event_models"]

_EVENTS = "server_events.json"


def prewarm(proc: Any = None) -> None:
    """Load Silero and build openai's event models once for this process (an
    ``AgentServer``'s ``setup_fnc``, or call it there).

    Sessions share the model; each keeps only its own recurrent state.
    """
    silero_runtime.prewarm()
    warm_event_models()


@cache
def server_event_models(wire: Literal["ga", "beta"] = "ga") -> dict[str, type[BaseModel]]:
    """openai-python's server event models of ``wire``, by event type."""
    if wire == "ga":
        from openai.types.realtime import RealtimeServerEvent
    else:
        from openai.types.beta.realtime import RealtimeServerEvent
    union = get_args(RealtimeServerEvent)[0]  # Annotated[Union[...], PropertyInfo]
    out: dict[str, type[BaseModel]] = {}
    for model in get_args(union):
        for literal in get_args(model.model_fields["type"].annotation):
            out[literal] = model
    return out


def sample_server_events() -> list[dict[str, Any]]:
    """One server event of each type a turn brings (GA wire), from the package's data."""
    text = resources.files(__package__).joinpath("resources", _EVENTS).read_text()
    events: list[dict[str, Any]] = json.loads(text)
    return events


def warm_event_models() -> None:
    """Make one model of each sample event the way upstream's receive loop does, and what
    upstream makes of them on its loop: the usage of ``response.done``, dumped for its
    metrics (a serializer is built on first use too), and livekit's ``ChatMessage`` it turns
    conversation items into."""
    from livekit.agents import llm

    models = server_event_models("ga")
    for event in sample_server_events():
        model = models.get(event["type"])
        if model is None:
            continue
        made = model.construct(**event)  # openai's construct: what upstream calls
        usage = getattr(getattr(made, "response", None), "usage", None)
        if usage is not None:
            usage.model_dump(exclude_defaults=True)
    llm.ChatMessage(role="assistant", content=["warm"])
