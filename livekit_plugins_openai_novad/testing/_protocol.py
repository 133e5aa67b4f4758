"""Session state, validation and error shapes of the OpenAI Realtime protocol (fake server side).

Section numbers (``§n``) refer to the realtime wire reference the fake server is built from.
Everything here works on plain dicts: it is on the hot path of every connection.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

Wire = Literal["ga", "beta"]

JsonDict = dict[str, Any]

_MISSING: Any = object()

DEFAULT_MODEL = "gpt-realtime"
DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI. Act like a human, but remember that you "
    "aren't a human and that you can't do human things in the real world."
)

GA_CLIENT_EVENT_TYPES = (
    "session.update",
    "session.close",
    "input_audio_buffer.append",
    "session.input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
)
# §6: the full beta list is [U]; these are the documented beta client events
BETA_CLIENT_EVENT_TYPES = (
    "session.update",
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class ProtocolError(Exception):
    """A client mistake that the server answers with one ``error`` event (§2 error shape)."""

    def __init__(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        *,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.type = type


def error_event(
    code: str | None,
    message: str,
    param: str | None = None,
    client_event_id: str | None = None,
    *,
    type: str = "invalid_request_error",
) -> JsonDict:
    # §2 error event shape: error.event_id echoes the client's event_id, or null
    return {
        "type": "error",
        "event_id": new_id("event"),
        "error": {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


# ---------------------------------------------------------------- messages


def _jtype(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _quote_list(values: tuple[str, ...] | list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def unknown_parameter(param: str) -> ProtocolError:
    return ProtocolError("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def missing_parameter(param: str) -> ProtocolError:
    return ProtocolError(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param
    )


def invalid_type(param: str, expected: str, value: Any) -> ProtocolError:
    # §2: "Invalid type for '...create_response': expected boolean, got null."
    return ProtocolError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, got {_jtype(value)}.",
        param,
    )


def invalid_value(param: str, value: Any, supported: tuple[str, ...]) -> ProtocolError:
    return ProtocolError(
        "invalid_value",
        f"Invalid value: '{value}'. Supported values are: {_quote_list(supported)}.",
        param,
    )


# ---------------------------------------------------------------- scalar checks


def _obj(value: Any, param: str) -> JsonDict:
    if not isinstance(value, dict):
        raise invalid_type(param, "object", value)
    return value


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "string", value)
    return value


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_type(param, "boolean", value)
    return value


def _int(value: Any, param: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "integer", value)
    if lo is not None and value < lo:
        raise ProtocolError(
            "integer_below_min_value",
            f"Invalid '{param}': integer below minimum value. "
            f"Expected a value >= {lo}, but got {value} instead.",
            param,
        )
    if hi is not None and value > hi:
        raise ProtocolError(
            "integer_above_max_value",
            f"Invalid '{param}': integer above maximum value. "
            f"Expected a value <= {hi}, but got {value} instead.",
            param,
        )
    return value


def _num(value: Any, param: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(param, "number", value)
    if lo is not None and value < lo:
        raise ProtocolError(
            "decimal_below_min_value",
            f"Invalid '{param}': decimal below minimum value. "
            f"Expected a value >= {lo:g}, but got {value} instead.",
            param,
        )
    if hi is not None and value > hi:
        raise ProtocolError(
            "decimal_above_max_value",
            f"Invalid '{param}': decimal above maximum value. "
            f"Expected a value <= {hi:g}, but got {value} instead.",
            param,
        )
    return value


def _enum(value: Any, param: str, supported: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "string", value)
    if value not in supported:
        raise invalid_value(param, value, supported)
    return value


def _str_list(value: Any, param: str, supported: tuple[str, ...] | None = None) -> list[str]:
    if not isinstance(value, list):
        raise invalid_type(param, "array", value)
    for i, v in enumerate(value):
        if supported is None:
            _str(v, f"{param}[{i}]")
        else:
            _enum(v, f"{param}[{i}]", supported)
    return list(value)


def _obj_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_type(param, "array", value)
    for i, v in enumerate(value):
        _obj(v, f"{param}[{i}]")
    return copy.deepcopy(value)


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
    obj = _obj(value, param)
    vad_type = obj.get("type", _MISSING)
    if vad_type is _MISSING:
        if wire == "ga":  # GA union needs `type` (§2); beta `type` is optional
            raise missing_parameter(f"{param}.type")
        vad_type = "server_vad"
    else:
        _enum(vad_type, f"{param}.type", VAD_TYPES)
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
            # echoed null is known (§3), so a value is refused [I]
            raise unknown_parameter(kp)
        if key == "threshold":
            td[key] = _num(v, kp, 0.0, 1.0)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            td[key] = _int(v, kp, 0)  # range is [U]; negative is surely invalid
        elif key == "idle_timeout_ms":
            td[key] = _int(v, kp, 5000, 30000)
        elif key in ("create_response", "interrupt_response"):
            td[key] = _bool(v, kp)
        elif key == "eagerness":
            td[key] = _enum(v, kp, EAGERNESS)
    return td


# ---------------------------------------------------------------- defaults (§1)


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
        "model": model,
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


# ---------------------------------------------------------------- session.update (§2)


def update_paths(value: Any, prefix: str) -> list[str]:
    """Every parameter path present in ``value`` (for ``reject_fields``)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, v in value.items():
            out.extend(update_paths(v, f"{prefix}.{key}"))
    return out


_GA_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
_BETA_FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
_TOOL_CHOICES = ("auto", "none", "required")
_NOISE_TYPES = ("near_field", "far_field")
_TRANSCRIPTION_DELAY = ("minimal", "low", "medium", "high", "xhigh")


def _ga_format(value: Any, param: str) -> JsonDict:
    obj = _obj(value, param)
    fmt_type = "audio/pcm"
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "type":
            fmt_type = _enum(v, kp, _GA_FORMATS)
        elif key != "rate":
            raise unknown_parameter(kp)
    if "rate" in obj:
        kp = f"{param}.rate"
        if fmt_type != "audio/pcm":
            raise unknown_parameter(kp)
        _int(obj["rate"], kp, 24000, 24000)
    return {"type": fmt_type, "rate": 24000} if fmt_type == "audio/pcm" else {"type": fmt_type}


def _noise_reduction(value: Any, param: str, current: JsonDict | None, wire: Wire) -> Any:
    if value is None:
        return None
    obj = _obj(value, param)
    # §2: keys inside are merged independently (leaving out strength keeps it)
    merged = dict(current) if current else {}
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "type":
            merged["type"] = _enum(v, kp, _NOISE_TYPES)
        elif key == "strength" and wire == "ga":
            merged["strength"] = _num(v, kp, 0.0, 1.0)
        else:
            raise unknown_parameter(kp)
    return merged


def _transcription(value: Any, param: str, wire: Wire) -> Any:
    if value is None:
        return None
    obj = _obj(value, param)
    out: JsonDict = {}
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key in ("model", "language", "prompt"):
            out[key] = _str(v, kp)
        elif key == "delay" and wire == "ga":
            out[key] = _enum(v, kp, _TRANSCRIPTION_DELAY)
        elif key in ("keywords", "languages") and wire == "ga":
            out[key] = _str_list(v, kp)
        else:
            raise unknown_parameter(kp)
    return out


def _tool_choice(value: Any, param: str) -> Any:
    if isinstance(value, dict):
        return copy.deepcopy(value)
    return _enum(value, param, _TOOL_CHOICES)


def _max_tokens(value: Any, param: str) -> Any:
    if value is None or value == "inf":
        return "inf"  # null is taken as the default [I]
    if isinstance(value, str):
        raise invalid_value(param, value, ("inf",))
    return _int(value, param, 1, 4096)


def _tracing(value: Any, param: str) -> Any:
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        raise invalid_value(param, value, ("auto",))
    obj = _obj(value, param)
    for key in obj:
        if key not in ("workflow_name", "group_id", "metadata"):
            raise unknown_parameter(f"{param}.{key}")
    return copy.deepcopy(obj)


def _modalities(value: Any, param: str, wire: Wire) -> list[str]:
    mods = _str_list(value, param, ("text", "audio"))
    # §2: GA ['text'] or ['audio']; beta ['text'] or ['audio', 'text']
    if wire == "ga":
        ok = mods in (["text"], ["audio"])
        supported = "['text'] and ['audio']"
    else:
        ok = sorted(mods) == ["text"] or sorted(mods) == ["audio", "text"]
        supported = "['text'] and ['audio', 'text']"
    if not ok:
        raise ProtocolError(
            "invalid_value",
            f"Invalid modalities: {mods}. Supported combinations are: {supported}.",
            param,
        )
    return mods


_Handler = Callable[[JsonDict, Any, str, bool], None]


def _ga_audio_input(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
    obj = _obj(value, param)
    cur = new["audio"]["input"]
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "format":
            cur["format"] = _ga_format(v, kp)
        elif key == "noise_reduction":
            cur["noise_reduction"] = _noise_reduction(v, kp, cur["noise_reduction"], "ga")
        elif key == "transcription":
            cur["transcription"] = _transcription(v, kp, "ga")
        elif key == "turn_detection":
            if v is None and ignore_td_null:
                continue  # fault: the null is dropped, server_vad stays on
            cur["turn_detection"] = parse_turn_detection(v, kp, "ga")
        else:
            raise unknown_parameter(kp)


def _ga_audio_output(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
    obj = _obj(value, param)
    cur = new["audio"]["output"]
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "format":
            cur["format"] = _ga_format(v, kp)
        elif key == "voice":
            if isinstance(v, dict):
                voice = _obj(v, kp)
                _str(voice.get("id"), f"{kp}.id")
                cur["voice"] = dict(voice)
            else:
                cur["voice"] = _str(v, kp)
        elif key == "speed":
            cur["speed"] = _num(v, kp, 0.25, 1.5)
        else:
            raise unknown_parameter(kp)


def _ga_audio(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
    obj = _obj(value, param)
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "input":
            _ga_audio_input(new, v, kp, ignore_td_null)
        elif key == "output":
            _ga_audio_output(new, v, kp, ignore_td_null)
        else:
            raise unknown_parameter(kp)


def _set(key: str, check: Callable[[Any, str], Any]) -> _Handler:
    def handler(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
        new[key] = check(value, param)

    return handler


def _ignore(check: Callable[[Any, str], Any]) -> _Handler:
    def handler(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
        check(value, param)

    return handler


def _nullable_obj(value: Any, param: str) -> Any:
    return None if value is None else copy.deepcopy(_obj(value, param))


def _truncation(value: Any, param: str) -> Any:
    if isinstance(value, str):
        return _enum(value, param, ("auto", "disabled"))
    return copy.deepcopy(_obj(value, param))


_GA_HANDLERS: dict[str, _Handler] = {
    "type": _ignore(lambda v, p: _enum(v, p, ("realtime",))),
    "model": _ignore(_str),  # the model cannot be changed (§2); the value is not checked
    "output_modalities": _set("output_modalities", lambda v, p: _modalities(v, p, "ga")),
    "instructions": _set("instructions", _str),
    "tools": _set("tools", _obj_list),
    "tool_choice": _set("tool_choice", _tool_choice),
    "max_output_tokens": _set("max_output_tokens", _max_tokens),
    "tracing": _set("tracing", _tracing),
    "truncation": _set("truncation", _truncation),
    "prompt": _set("prompt", _nullable_obj),
    "include": _set(
        "include",
        lambda v, p: (
            None if v is None else _str_list(v, p, ("item.input_audio_transcription.logprobs",))
        ),
    ),
    "reasoning": _set("reasoning", _nullable_obj),
    "parallel_tool_calls": _set("parallel_tool_calls", _bool),
    "audio": _ga_audio,
}


def _beta_td(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
    if value is None and ignore_td_null:
        return
    new["turn_detection"] = parse_turn_detection(value, param, "beta")


def _beta_noise(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
    new["input_audio_noise_reduction"] = _noise_reduction(
        value, param, new["input_audio_noise_reduction"], "beta"
    )


_BETA_HANDLERS: dict[str, _Handler] = {
    "model": _ignore(_str),
    "modalities": _set("modalities", lambda v, p: _modalities(v, p, "beta")),
    "instructions": _set("instructions", _str),
    "voice": _set("voice", _str),
    "input_audio_format": _set("input_audio_format", lambda v, p: _enum(v, p, _BETA_FORMATS)),
    "output_audio_format": _set("output_audio_format", lambda v, p: _enum(v, p, _BETA_FORMATS)),
    "input_audio_transcription": _set(
        "input_audio_transcription", lambda v, p: _transcription(v, p, "beta")
    ),
    "input_audio_noise_reduction": _beta_noise,
    "turn_detection": _beta_td,
    "tools": _set("tools", _obj_list),
    "tool_choice": _set("tool_choice", _tool_choice),
    "temperature": _set("temperature", _num),
    "max_response_output_tokens": _set("max_response_output_tokens", _max_tokens),
    "speed": _set("speed", lambda v, p: _num(v, p, 0.25, 1.5)),
    "tracing": _set("tracing", _tracing),
    "truncation": _set("truncation", _truncation),
    "prompt": _set("prompt", _nullable_obj),
}


def apply_session_update(
    current: JsonDict, update: Any, wire: Wire, *, ignore_turn_detection_null: bool = False
) -> JsonDict:
    """Return the new effective session, or raise ``ProtocolError`` (the update is then
    dropped whole, §2). ``current`` is never modified."""
    if update is _MISSING:
        raise missing_parameter("session")
    obj = _obj(update, "session")
    if wire == "ga" and "type" not in obj:
        raise missing_parameter("session.type")  # §2: GA needs session.type
    handlers = _GA_HANDLERS if wire == "ga" else _BETA_HANDLERS
    new = copy.deepcopy(current)
    for key, value in obj.items():
        handler = handlers.get(key)
        param = f"session.{key}"
        if handler is None:
            raise unknown_parameter(param)
        handler(new, value, param, ignore_turn_detection_null)
    return new


MISSING = _MISSING
