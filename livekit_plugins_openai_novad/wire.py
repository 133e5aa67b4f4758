"""The Realtime wire format: pure functions that build client events as plain dicts.

No I/O and no pydantic on the way out: what these functions return is exactly what
``json.dumps`` puts on the socket, so ``"turn_detection": null`` can never be lost to an
``exclude_defaults``/``exclude_none`` dump (openai-python#2199, livekit/agents#1650).

Two shapes exist:

* ``"ga"``: ``session.type = "realtime"``, audio settings nested under ``session.audio``
  (``session.audio.input.turn_detection``); OpenAI and Azure's ``/openai/v1`` endpoint.
* ``"beta"``: the flat Azure legacy shape (``api-version=...``): ``session.turn_detection``,
  ``modalities``, ``input_audio_format`` ...

Usable without LiveKit, e.g. with a raw socket or openai-python's ``send_raw``::

    ws.send(json.dumps(session_update_payload(wire="ga", turn_detection=None)))
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

from .turn_detection import TurnDetection, TurnDetectionInput, coerce_turn_detection

__all__ = [
    "Wire",
    "SAMPLE_RATE",
    "OMITTED",
    "session_update_payload",
    "input_audio_append_event",
    "input_audio_commit_event",
    "input_audio_clear_event",
    "response_create_event",
    "response_cancel_event",
    "session_turn_detection",
    "new_event_id",
]

Wire = Literal["ga", "beta"]
SAMPLE_RATE = 24000  # PCM16 mono, the only input/output format the plugin uses


class _Omitted:
    """Marks an argument that was not given: the key stays off the wire (= unchanged)."""

    _instance: _Omitted | None = None

    def __new__(cls) -> _Omitted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMITTED"

    def __bool__(self) -> bool:
        return False


OMITTED: Any = _Omitted()

# session fields this module knows, and whether `None` is a meaningful wire value (JSON null)
_NULLABLE = {"transcription", "noise_reduction", "tracing", "reasoning", "truncation"}
_NOT_NULLABLE = {
    "model",
    "instructions",
    "modalities",
    "voice",
    "speed",
    "audio_format",
    "tools",
    "tool_choice",
    "max_output_tokens",
}
_KNOWN_FIELDS = _NULLABLE | _NOT_NULLABLE
_GA_ONLY = {"truncation", "reasoning"}


def new_event_id(prefix: str = "event_") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def _plain(value: Any) -> Any:
    """Pydantic models (e.g. openai-python's) become dicts of what was set; the rest is as is."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _audio_formats(wire: Wire, audio_format: str) -> tuple[Any, Any]:
    if audio_format != "pcm16":
        raise ValueError(f"audio_format must be 'pcm16' (24 kHz PCM16 mono), got {audio_format!r}")
    if wire == "ga":
        fmt = {"type": "audio/pcm", "rate": SAMPLE_RATE}
        return fmt, dict(fmt)
    return "pcm16", "pcm16"


def _modalities(wire: Wire, modalities: Any) -> list[str]:
    mods = list(modalities)
    if not mods or any(m not in ("text", "audio") for m in mods):
        raise ValueError(f"modalities must be a non-empty list of 'text'/'audio', got {mods!r}")
    # the server accepts one output modality in GA (audio comes with its transcript) and
    # ["audio", "text"] or ["text"] in the legacy shape
    if wire == "ga":
        return ["audio"] if "audio" in mods else ["text"]
    return ["audio", "text"] if "audio" in mods else ["text"]


def session_update_payload(
    *,
    wire: Wire,
    turn_detection: TurnDetectionInput | None = OMITTED,
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build a complete ``session.update`` client event for ``wire`` ("ga" or "beta").

    ``turn_detection``: ``None`` sends ``null`` (server VAD off), a ``ServerVad``/
    ``SemanticVad``/dict/openai model sends that object, leaving it out sends nothing.
    ``fields`` (all optional; a left-out field is left unchanged on the server): ``model``,
    ``instructions``, ``modalities`` (["text"], ["audio"] or both), ``voice``, ``speed``,
    ``audio_format`` ("pcm16"), ``transcription``, ``noise_reduction``, ``tools``,
    ``tool_choice``, ``max_output_tokens``, ``tracing``, ``truncation`` and ``reasoning``
    (the last two GA only). ``None`` is sent as ``null`` for transcription, noise_reduction,
    tracing, truncation and reasoning. Raises ``ValueError`` on anything it cannot express.
    """
    if wire not in ("ga", "beta"):
        raise ValueError(f"wire must be 'ga' or 'beta', got {wire!r}")
    for name, value in fields.items():
        if name not in _KNOWN_FIELDS:
            raise ValueError(f"unknown session field {name!r}")
        if value is None and name in _NOT_NULLABLE:
            raise ValueError(f"{name} cannot be None")
        if wire == "beta" and name in _GA_ONLY:
            raise ValueError(f"{name} is not supported on the beta (Azure legacy api-version) wire")

    td_present = turn_detection is not OMITTED
    td: TurnDetection | None = coerce_turn_detection(turn_detection) if td_present else None
    td_wire = None if td is None else td.to_wire()
    if wire == "beta" and td is not None and "idle_timeout_ms" in td_wire:  # type: ignore[operator]
        raise ValueError("idle_timeout_ms is not supported on the beta (Azure legacy) wire")

    f = {k: _plain(v) for k, v in fields.items()}
    session: dict[str, Any] = {}
    if wire == "ga":
        session["type"] = "realtime"
        for name in ("model", "instructions", "tools", "tool_choice", "max_output_tokens"):
            if name in f:
                session[name] = f[name]
        if "modalities" in f:
            session["output_modalities"] = _modalities(wire, f["modalities"])
        audio_in: dict[str, Any] = {}
        audio_out: dict[str, Any] = {}
        if "audio_format" in f:
            audio_in["format"], audio_out["format"] = _audio_formats(wire, f["audio_format"])
        if "transcription" in f:
            audio_in["transcription"] = f["transcription"]
        if "noise_reduction" in f:
            audio_in["noise_reduction"] = f["noise_reduction"]
        if td_present:
            audio_in["turn_detection"] = td_wire
        if "voice" in f:
            audio_out["voice"] = f["voice"]
        if "speed" in f:
            audio_out["speed"] = f["speed"]
        audio: dict[str, Any] = {}
        if audio_in:
            audio["input"] = audio_in
        if audio_out:
            audio["output"] = audio_out
        if audio:
            session["audio"] = audio
        for name in ("tracing", "truncation", "reasoning"):
            if name in f:
                session[name] = f[name]
    else:
        for name in ("model", "instructions", "voice", "speed", "tools", "tool_choice", "tracing"):
            if name in f:
                session[name] = f[name]
        if "modalities" in f:
            session["modalities"] = _modalities(wire, f["modalities"])
        if "audio_format" in f:
            session["input_audio_format"], session["output_audio_format"] = _audio_formats(
                wire, f["audio_format"]
            )
        if "transcription" in f:
            session["input_audio_transcription"] = f["transcription"]
        if "noise_reduction" in f:
            session["input_audio_noise_reduction"] = f["noise_reduction"]
        if "max_output_tokens" in f:
            session["max_response_output_tokens"] = f["max_output_tokens"]
        if td_present:
            session["turn_detection"] = td_wire

    return {
        "type": "session.update",
        "event_id": event_id or new_event_id("session_update_"),
        "session": session,
    }


def session_turn_detection(wire: Wire, session: Mapping[str, Any]) -> tuple[bool, Any]:
    """Where ``turn_detection`` sits in a session object of ``wire``'s shape.

    Returns ``(present, value)``: ``present`` is False when the key is absent.
    """
    if wire == "ga":
        audio = session.get("audio")
        audio_in = audio.get("input") if isinstance(audio, Mapping) else None
        if not isinstance(audio_in, Mapping):
            return (False, None)
        return ("turn_detection" in audio_in, audio_in.get("turn_detection"))
    return ("turn_detection" in session, session.get("turn_detection"))


def input_audio_append_event(pcm16: bytes | memoryview) -> dict[str, Any]:
    # no event_id: the hot path, one per 100 ms of audio, needs none
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm16).decode("ascii")}


def input_audio_commit_event() -> dict[str, Any]:
    return {"type": "input_audio_buffer.commit", "event_id": new_event_id("commit_")}


def input_audio_clear_event() -> dict[str, Any]:
    return {"type": "input_audio_buffer.clear", "event_id": new_event_id("clear_")}


def response_create_event(
    *, event_id: str | None = None, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``metadata`` is echoed in the server's ``response`` object (both wires)."""
    event: dict[str, Any] = {
        "type": "response.create",
        "event_id": event_id or new_event_id("response_create_"),
    }
    if metadata is not None:
        event["response"] = {"metadata": dict(metadata)}
    return event


def item_delete_event(item_id: str, *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "conversation.item.delete",
        "event_id": event_id or new_event_id("item_delete_"),
        "item_id": item_id,
    }


def response_cancel_event(
    response_id: str | None = None, *, event_id: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "response.cancel",
        "event_id": event_id or new_event_id("cancel_"),
    }
    if response_id:
        event["response_id"] = response_id
    return event
