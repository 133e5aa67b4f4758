"""The session a connection starts with, turn detection objects, and session accessors.

Defaults are the live server's (docs/realtime-wire.md, "Default sessions"); everything works on
plain dicts, on the hot path of every connection.
"""

from __future__ import annotations

import time
from typing import Any

from ._messages import (
    MISSING,
    JsonDict,
    Wire,
    as_bool,
    as_enum,
    as_int,
    as_num,
    as_obj,
    invalid_type,
    missing_parameter,
    new_id,
    unknown_parameter,
)

DEFAULT_MODEL = "gpt-realtime"
LEGACY_DEFAULT_MODEL = "gpt-4o-realtime-preview"
DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI. Act like a human, but remember that you "
    "aren't a human and that you can't do human things in the real world."
)


# ---------------------------------------------------------------- turn detection (§3)

VAD_TYPES = ("server_vad", "semantic_vad")
EAGERNESS = ("low", "medium", "high", "auto")

_TD_FIELD_TYPES = {
    "threshold": "number",
    "prefix_padding_ms": "integer",
    "silence_duration_ms": "integer",
    "idle_timeout_ms": "integer",
    "create_response": "boolean",
    "interrupt_response": "boolean",
    "eagerness": "string",
}


def default_turn_detection(wire: Wire, vad_type: str = "server_vad") -> JsonDict:
    # §1/§3: the server fills omitted sub-fields; silence_duration_ms is 200 on the wire
    if vad_type == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }
    td: JsonDict = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
    }
    td["idle_timeout_ms"] = None  # the legacy echo carries it too (§1)
    td["create_response"] = True
    td["interrupt_response"] = True
    return td


def parse_turn_detection(value: Any, param: str, wire: Wire) -> JsonDict | None:
    """Validate a turn_detection object and return it whole with defaults filled (§2, §3)."""
    if value is None:
        return None
    obj = as_obj(value, param)
    vad_type = obj.get("type", MISSING)
    if vad_type is MISSING:
        if wire == "ga":  # GA union needs `type` (§2); beta `type` is optional
            raise missing_parameter(f"{param}.type")
        vad_type = "server_vad"
    else:
        as_enum(vad_type, f"{param}.type", VAD_TYPES)
    td = default_turn_detection(wire, vad_type)
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key not in td:  # the fields of the two variants do not overlap (§3)
            raise unknown_parameter(kp)
        if key == "type":
            continue
        if v is None:
            if key == "idle_timeout_ms":
                td[key] = None
                continue
            raise invalid_type(kp, _TD_FIELD_TYPES[key], v)
        if key == "idle_timeout_ms" and wire == "beta":
            # the legacy types lack it and the legacy wire has no timeout_triggered: only the
            # echoed null is known (§3), so a value is refused (inferred)
            raise unknown_parameter(kp)
        if key == "threshold":
            td[key] = as_num(v, kp, 0.0, 1.0)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            td[key] = as_int(v, kp, 0)  # the range is unknown (§3); negative is surely invalid
        elif key == "idle_timeout_ms":
            td[key] = as_int(v, kp, 5000, 30000)
        elif key in ("create_response", "interrupt_response"):
            td[key] = as_bool(v, kp)
        elif key == "eagerness":
            td[key] = as_enum(v, kp, EAGERNESS)
    return td


# ---------------------------------------------------------------- defaults (§1)


def legacy_session_model(deployment: str) -> str:
    """The ``model`` a legacy session reports for an Azure deployment: Azure names the model
    behind the deployment, which the fake cannot know, so a deployment that is not itself named
    after a realtime model reports ``LEGACY_DEFAULT_MODEL`` (inferred, §1)."""
    if deployment.startswith("gpt-") and "realtime" in deployment:
        return deployment
    return LEGACY_DEFAULT_MODEL


def default_session(wire: Wire, model: str) -> JsonDict:
    expires_at = int(time.time()) + 3600
    if wire == "ga":
        pcm = {"type": "audio/pcm", "rate": 24000}
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": new_id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": expires_at,
            "include": None,
            "audio": {
                "input": {
                    "format": dict(pcm),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": default_turn_detection("ga"),
                },
                "output": {"format": dict(pcm), "voice": "alloy", "speed": 1.0},
            },
        }
    return {
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": legacy_session_model(model),
        "expires_at": expires_at,
        "modalities": ["audio", "text"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": default_turn_detection("beta"),
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
        "truncation": "auto",  # newer legacy sessions carry these two (§1)
        "prompt": None,
    }


# ---------------------------------------------------------------- accessors


def session_turn_detection(session: JsonDict, wire: Wire) -> JsonDict | None:
    if wire == "ga":
        td: JsonDict | None = session["audio"]["input"]["turn_detection"]
        return td
    beta_td: JsonDict | None = session.get("turn_detection")
    return beta_td


def session_text_only(session: JsonDict, wire: Wire) -> bool:
    key = "output_modalities" if wire == "ga" else "modalities"
    return "audio" not in session.get(key, ["audio"])


def session_transcription(session: JsonDict, wire: Wire) -> JsonDict | None:
    if wire == "ga":
        tr: JsonDict | None = session["audio"]["input"]["transcription"]
        return tr
    beta_tr: JsonDict | None = session.get("input_audio_transcription")
    return beta_tr


def input_bytes_per_ms(session: JsonDict, wire: Wire) -> int:
    """Bytes per millisecond of input audio: 48 for PCM16 24 kHz, 8 for G.711."""
    if wire == "ga":
        fmt = session["audio"]["input"]["format"].get("type", "audio/pcm")
        return 48 if fmt == "audio/pcm" else 8
    return 48 if session.get("input_audio_format", "pcm16") == "pcm16" else 8
