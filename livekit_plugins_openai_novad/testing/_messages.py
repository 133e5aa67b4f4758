"""Ids, the ``error`` event and the validation messages of the Realtime protocol (fake side).

The messages are the real server's wording (docs/realtime-wire.md, "Validation errors"); the
``as_*`` checks raise the matching ``ProtocolError`` naming the parameter path.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any, Literal

__all__ = [
    "MISSING",
    "JsonDict",
    "ProtocolError",
    "Wire",
    "error_event",
    "new_id",
    "server_event",
]

Wire = Literal["ga", "beta"]

JsonDict = dict[str, Any]

MISSING: Any = object()  # a key that is absent, as opposed to present and null


def server_event(type: str, **fields: Any) -> JsonDict:
    """A server event: its type, a fresh ``event_id``, then ``fields`` in order."""
    return {"type": type, "event_id": new_id("event"), **fields}


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


# ---------------------------------------------------------------- validation messages


def json_type(value: Any) -> str:
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


def quote_list(values: tuple[str, ...] | list[str]) -> str:
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
        f"Invalid type for '{param}': expected {expected}, got {json_type(value)}.",
        param,
    )


def invalid_value(param: str, value: Any, supported: tuple[str, ...]) -> ProtocolError:
    return ProtocolError(
        "invalid_value",
        f"Invalid value: '{value}'. Supported values are: {quote_list(supported)}.",
        param,
    )


# ---------------------------------------------------------------- scalar checks


def as_obj(value: Any, param: str) -> JsonDict:
    if not isinstance(value, dict):
        raise invalid_type(param, "object", value)
    return value


def as_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "string", value)
    return value


def as_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_type(param, "boolean", value)
    return value


def as_int(value: Any, param: str, lo: int | None = None, hi: int | None = None) -> int:
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


def as_num(value: Any, param: str, lo: float | None = None, hi: float | None = None) -> float:
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


def as_enum(value: Any, param: str, supported: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "string", value)
    if value not in supported:
        raise invalid_value(param, value, supported)
    return value


def as_str_list(value: Any, param: str, supported: tuple[str, ...] | None = None) -> list[str]:
    if not isinstance(value, list):
        raise invalid_type(param, "array", value)
    for i, v in enumerate(value):
        if supported is None:
            as_str(v, f"{param}[{i}]")
        else:
            as_enum(v, f"{param}[{i}]", supported)
    return list(value)


def as_obj_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_type(param, "array", value)
    for i, v in enumerate(value):
        as_obj(v, f"{param}[{i}]")
    return copy.deepcopy(value)
