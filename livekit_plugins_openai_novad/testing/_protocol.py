"""``session.update`` on the fake server: a partial merge, validated, applied whole or not at all.

See docs/realtime-wire.md, "session.update". ``current`` is never modified: every accepted
update returns a new session dict (old ones may still be referenced by sent events).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ._messages import (
    MISSING,
    JsonDict,
    ProtocolError,
    Wire,
    as_bool,
    as_enum,
    as_int,
    as_num,
    as_obj,
    as_obj_list,
    as_str,
    as_str_list,
    invalid_value,
    missing_parameter,
    unknown_parameter,
)
from ._session import DEFAULT_INSTRUCTIONS, default_session, parse_turn_detection

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "ProtocolError",
    "apply_session_update",
    "default_session",
    "update_paths",
]


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
    obj = as_obj(value, param)
    fmt_type = "audio/pcm"
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "type":
            fmt_type = as_enum(v, kp, _GA_FORMATS)
        elif key != "rate":
            raise unknown_parameter(kp)
    if "rate" in obj:
        kp = f"{param}.rate"
        if fmt_type != "audio/pcm":
            raise unknown_parameter(kp)
        as_int(obj["rate"], kp, 24000, 24000)
    return {"type": fmt_type, "rate": 24000} if fmt_type == "audio/pcm" else {"type": fmt_type}


def _noise_reduction(value: Any, param: str, current: JsonDict | None, wire: Wire) -> Any:
    if value is None:
        return None
    obj = as_obj(value, param)
    # §2: keys inside are merged independently (leaving out strength keeps it)
    merged = dict(current) if current else {}
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "type":
            merged["type"] = as_enum(v, kp, _NOISE_TYPES)
        elif key == "strength" and wire == "ga":
            merged["strength"] = as_num(v, kp, 0.0, 1.0)
        else:
            raise unknown_parameter(kp)
    return merged


def _transcription(value: Any, param: str, wire: Wire) -> Any:
    if value is None:
        return None
    obj = as_obj(value, param)
    out: JsonDict = {}
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key in ("model", "language", "prompt"):
            out[key] = as_str(v, kp)
        elif key == "delay" and wire == "ga":
            out[key] = as_enum(v, kp, _TRANSCRIPTION_DELAY)
        elif key in ("keywords", "languages") and wire == "ga":
            out[key] = as_str_list(v, kp)
        else:
            raise unknown_parameter(kp)
    return out


def _tool_choice(value: Any, param: str) -> Any:
    if isinstance(value, dict):
        return copy.deepcopy(value)
    return as_enum(value, param, _TOOL_CHOICES)


def _max_tokens(value: Any, param: str) -> Any:
    if value is None or value == "inf":
        return "inf"  # null is taken as the default (inferred)
    if isinstance(value, str):
        raise invalid_value(param, value, ("inf",))
    return as_int(value, param, 1, 4096)


def _tracing(value: Any, param: str) -> Any:
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        raise invalid_value(param, value, ("auto",))
    obj = as_obj(value, param)
    for key in obj:
        if key not in ("workflow_name", "group_id", "metadata"):
            raise unknown_parameter(f"{param}.{key}")
    return copy.deepcopy(obj)


def _modalities(value: Any, param: str, wire: Wire) -> list[str]:
    mods = as_str_list(value, param, ("text", "audio"))
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
    obj = as_obj(value, param)
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
    obj = as_obj(value, param)
    cur = new["audio"]["output"]
    for key, v in obj.items():
        kp = f"{param}.{key}"
        if key == "format":
            cur["format"] = _ga_format(v, kp)
        elif key == "voice":
            if isinstance(v, dict):
                voice = as_obj(v, kp)
                as_str(voice.get("id"), f"{kp}.id")
                cur["voice"] = dict(voice)
            else:
                cur["voice"] = as_str(v, kp)
        elif key == "speed":
            cur["speed"] = as_num(v, kp, 0.25, 1.5)
        else:
            raise unknown_parameter(kp)


def _ga_audio(new: JsonDict, value: Any, param: str, ignore_td_null: bool) -> None:
    obj = as_obj(value, param)
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
    return None if value is None else copy.deepcopy(as_obj(value, param))


def _truncation(value: Any, param: str) -> Any:
    if isinstance(value, str):
        return as_enum(value, param, ("auto", "disabled"))
    return copy.deepcopy(as_obj(value, param))


_GA_HANDLERS: dict[str, _Handler] = {
    "type": _ignore(lambda v, p: as_enum(v, p, ("realtime",))),
    "model": _ignore(as_str),  # the model cannot be changed (§2); the value is not checked
    "output_modalities": _set("output_modalities", lambda v, p: _modalities(v, p, "ga")),
    "instructions": _set("instructions", as_str),
    "tools": _set("tools", as_obj_list),
    "tool_choice": _set("tool_choice", _tool_choice),
    "max_output_tokens": _set("max_output_tokens", _max_tokens),
    "tracing": _set("tracing", _tracing),
    "truncation": _set("truncation", _truncation),
    "prompt": _set("prompt", _nullable_obj),
    "include": _set(
        "include",
        lambda v, p: (
            None if v is None else as_str_list(v, p, ("item.input_audio_transcription.logprobs",))
        ),
    ),
    "reasoning": _set("reasoning", _nullable_obj),
    "parallel_tool_calls": _set("parallel_tool_calls", as_bool),
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
    "model": _ignore(as_str),
    "modalities": _set("modalities", lambda v, p: _modalities(v, p, "beta")),
    "instructions": _set("instructions", as_str),
    "voice": _set("voice", as_str),
    "input_audio_format": _set("input_audio_format", lambda v, p: as_enum(v, p, _BETA_FORMATS)),
    "output_audio_format": _set("output_audio_format", lambda v, p: as_enum(v, p, _BETA_FORMATS)),
    "input_audio_transcription": _set(
        "input_audio_transcription", lambda v, p: _transcription(v, p, "beta")
    ),
    "input_audio_noise_reduction": _beta_noise,
    "turn_detection": _beta_td,
    "tools": _set("tools", as_obj_list),
    "tool_choice": _set("tool_choice", _tool_choice),
    "temperature": _set("temperature", as_num),
    "max_response_output_tokens": _set("max_response_output_tokens", _max_tokens),
    "speed": _set("speed", lambda v, p: as_num(v, p, 0.25, 1.5)),
    "tracing": _set("tracing", _tracing),
    "truncation": _set("truncation", _truncation),
    "prompt": _set("prompt", _nullable_obj),
}


def apply_session_update(
    current: JsonDict, update: Any, wire: Wire, *, ignore_turn_detection_null: bool = False
) -> JsonDict:
    """Return the new effective session, or raise ``ProtocolError`` (the update is then
    dropped whole, §2). ``current`` is never modified."""
    if update is MISSING:
        raise missing_parameter("session")
    obj = as_obj(update, "session")
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
