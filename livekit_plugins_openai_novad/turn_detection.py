"""Turn-detection configuration: the types users pass, their validation, and echo matching.

Three states are kept apart everywhere in this package:

* ``None``          -> server VAD off (``"turn_detection": null`` on the wire)
* ``ServerVad()``   -> server VAD with the server's defaults (``{"type": "server_vad"}``)
* argument omitted  -> unchanged (the key is absent from the update)

A field left as ``None`` inside ``ServerVad`` / ``SemanticVad`` is not sent, so the server
fills in its own default (the live server uses ``silence_duration_ms=200``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel

__all__ = [
    "ServerVad",
    "SemanticVad",
    "ClientVad",
    "TurnDetection",
    "TurnDetectionInput",
    "TurnDetectionMismatch",
    "TurnDetectionRejected",
    "coerce_turn_detection",
    "turn_detection_from_wire",
    "echo_matches",
]

Eagerness = Literal["low", "medium", "high", "auto"]
_EAGERNESS = ("low", "medium", "high", "auto")
IDLE_TIMEOUT_RANGE_MS = (5000, 30000)
# the server documents no limit for prefix padding and silence: past 10 s a value only holds
# a turn (and its buffered audio) open without end
MAX_WINDOW_MS = 10_000


@dataclass(frozen=True)
class ServerVad:
    """Server VAD (``type: "server_vad"``). Every field is optional: ``None`` = server default."""

    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    idle_timeout_ms: int | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None

    type: Literal["server_vad"] = field(default="server_vad", init=False)

    def __post_init__(self) -> None:
        _validate_fields(self.type, _set_fields(self))

    def to_wire(self) -> dict[str, Any]:
        """The JSON object for ``turn_detection``: ``type`` plus only the fields that were set."""
        return {"type": self.type, **_set_fields(self)}


@dataclass(frozen=True)
class SemanticVad:
    """Semantic VAD (``type: "semantic_vad"``). Every field optional: ``None`` = server default."""

    eagerness: Eagerness | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None

    type: Literal["semantic_vad"] = field(default="semantic_vad", init=False)

    def __post_init__(self) -> None:
        _validate_fields(self.type, _set_fields(self))

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, **_set_fields(self)}


TurnDetection = ServerVad | SemanticVad
"""A validated turn-detection setting; ``None`` (off) is represented by ``None`` itself."""

# What the public API accepts wherever a turn detection is taken (``None`` = off).
TurnDetectionInput = ServerVad | SemanticVad | Mapping[str, Any] | BaseModel


_STOP_BELOW_START = 0.15  # ClientVad's default stop_threshold is this far below threshold


@dataclass(frozen=True)
class ClientVad:
    """Client-side turn detection with Silero, used while the server is not detecting turns.

    Each knob trades turn-start latency, false turns (on coughs, music, noise) and splits
    (a turn cut in two at a pause inside it):

    * ``threshold``: smoothed speech probability at which a 32 ms window may start a turn.
      Higher: fewer false turns, a later (or, for very soft speech, no) start.
    * ``stop_threshold``: the probability a turn in progress must stay at or above to count
      as speech (``None``: ``threshold - 0.15``, as the server's VAD and the Silero plugin).
      Lower: fewer splits at soft syllables, but noise that Silero half-believes may keep a
      turn open longer. Must not exceed ``threshold``.
    * ``smoothing``: weight of the previous value in the exponential smoothing of Silero's
      probability (0 = none). Higher: a one-window spike or dip matters less, at up to a
      window or two of extra latency at both ends.
    * ``min_speech_ms``: speech needed before a turn starts (rounded up to 32 ms windows).
      Higher: short bursts (a cough, a beep, a few notes) are rejected, and a real barge-in
      interrupts the agent that much later. The audio before the onset is not lost: the turn
      is sent from ``prefix_padding_ms`` before where its sounds began (and where the noise
      is within ~46 dB of the speech's peak, as in most rooms, from where the last turn's
      audio ended, up to 4 s back: a word's quiet start or end under the noise is committed).
    * ``prefix_padding_ms``: audio sent before the detected onset of the sound.
    * ``silence_duration_ms``: silence after the last speech sound that ends a turn. Higher:
      fewer splits at long pauses, a later answer.

    ``preemptive_after_ms``: this far into the trailing silence the turn is committed and its
    reply requested, held until the silence window completes (cancelled if the user speaks
    again first), so the server's time to first audio runs inside the window. It applies
    while the AgentSession's ``turn_handling["preemptive_generation"]`` is enabled (the
    framework's default) and is shorter than ``silence_duration_ms``; ``None`` turns it off.
    Lower: the reply starts sooner, but more pauses inside a sentence start a speculation that
    is then cancelled (its input tokens are paid for).
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 160
    stop_threshold: float | None = None
    smoothing: float = 0.35
    preemptive_after_ms: int | None = 150

    def __post_init__(self) -> None:
        _check_threshold("threshold", self.threshold)
        # 0 would make every window speech (no turn ever ends), 1 none (no turn ever starts)
        if not 0.0 < float(self.threshold) < 1.0:
            raise ValueError(
                f"threshold must be strictly between 0 and 1 for client VAD, got {self.threshold!r}"
            )
        for name in ("prefix_padding_ms", "silence_duration_ms", "min_speech_ms"):
            _check_ms(name, getattr(self, name), maximum=MAX_WINDOW_MS)
        if self.preemptive_after_ms is not None:
            _check_ms("preemptive_after_ms", self.preemptive_after_ms, maximum=MAX_WINDOW_MS)
        if self.silence_duration_ms < 32:
            raise ValueError("silence_duration_ms must be at least 32 (one VAD window)")
        if self.stop_threshold is not None:
            _check_threshold("stop_threshold", self.stop_threshold)
            if self.stop_threshold > self.threshold:
                raise ValueError(
                    f"stop_threshold must not exceed threshold ({self.threshold!r}), "
                    f"got {self.stop_threshold!r}"
                )
        if isinstance(self.smoothing, bool) or not isinstance(self.smoothing, (int, float)):
            raise ValueError(f"smoothing must be a number in [0, 1), got {self.smoothing!r}")
        if not 0.0 <= float(self.smoothing) < 1.0:  # NaN fails this too
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing!r}")

    @property
    def effective_stop_threshold(self) -> float:
        """``stop_threshold``, or its default derived from ``threshold``."""
        if self.stop_threshold is not None:
            return self.stop_threshold
        return max(0.0, self.threshold - _STOP_BELOW_START)


class TurnDetectionMismatch(Exception):
    """The server's echo of a turn-detection update differs from what was asked for."""

    def __init__(self, requested: TurnDetection | None, echoed: dict[str, Any] | None) -> None:
        self.requested = requested
        self.echoed = echoed
        super().__init__(
            f"server confirmed turn_detection={echoed!r} but {_describe(requested)} was requested"
        )


class TurnDetectionRejected(Exception):
    """The server answered a turn-detection update with an ``error`` event."""

    def __init__(
        self,
        requested: TurnDetection | None,
        *,
        code: str | None,
        param: str | None,
        message: str,
    ) -> None:
        self.requested = requested
        self.code = code
        self.param = param
        self.message = message
        super().__init__(f"server rejected turn_detection ({code}, param={param}): {message}")


def _describe(td: TurnDetection | None) -> str:
    return "turn_detection=null" if td is None else f"turn_detection={td.to_wire()!r}"


# -- validation -------------------------------------------------------------------------------

_SERVER_VAD_KEYS = frozenset(
    {
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "idle_timeout_ms",
        "create_response",
        "interrupt_response",
    }
)
_SEMANTIC_VAD_KEYS = frozenset({"eagerness", "create_response", "interrupt_response"})
_KEYS_BY_TYPE = {"server_vad": _SERVER_VAD_KEYS, "semantic_vad": _SEMANTIC_VAD_KEYS}


def _set_fields(obj: ServerVad | SemanticVad) -> dict[str, Any]:
    return {
        f.name: getattr(obj, f.name)
        for f in fields(obj)
        if f.name != "type" and getattr(obj, f.name) is not None
    }


def _check_threshold(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    if not (0.0 <= float(value) <= 1.0) or math.isnan(float(value)):
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def _check_ms(name: str, value: Any, *, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of milliseconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum} ms, got {value!r}")


def _validate_fields(td_type: str, values: Mapping[str, Any]) -> None:
    allowed = _KEYS_BY_TYPE[td_type]
    for key, value in values.items():
        if key not in allowed:
            other = "semantic_vad" if td_type == "server_vad" else "server_vad"
            hint = f" (it belongs to {other})" if key in _KEYS_BY_TYPE[other] else ""
            raise ValueError(f"{key} is not a {td_type} field{hint}")
        if key == "threshold":
            _check_threshold(key, value)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            _check_ms(key, value, maximum=MAX_WINDOW_MS)
        elif key == "idle_timeout_ms":
            _check_ms(key, value)
            lo, hi = IDLE_TIMEOUT_RANGE_MS
            if not lo <= value <= hi:
                raise ValueError(f"idle_timeout_ms must be between {lo} and {hi}, got {value!r}")
        elif key in ("create_response", "interrupt_response"):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be a bool, got {value!r}")
        elif key == "eagerness":
            if value not in _EAGERNESS:
                raise ValueError(f"eagerness must be one of {', '.join(_EAGERNESS)}, got {value!r}")


def coerce_turn_detection(value: TurnDetectionInput | None) -> TurnDetection | None:
    """Validate any accepted turn-detection input and return ``ServerVad``/``SemanticVad``/``None``.

    Accepts this package's types, a dict with ``"type"``, openai-python's GA ``ServerVad`` /
    ``SemanticVad`` models and its beta ``TurnDetection``. Raises ``ValueError`` naming the
    offending field.
    """
    if value is None or isinstance(value, (ServerVad, SemanticVad)):
        return value
    if isinstance(value, BaseModel):
        # only what the user set: an unset field must stay "server default", not become null
        raw: dict[str, Any] = value.model_dump(exclude_unset=True, exclude_none=True)
        declared_type = getattr(value, "type", None)
        if "type" not in raw and declared_type is not None:
            raw["type"] = declared_type
        if "type" not in raw:
            # the beta TurnDetection makes `type` optional; the server treats it as server_vad
            raw["type"] = "server_vad"
    elif isinstance(value, Mapping):
        raw = dict(value)
    else:
        raise ValueError(
            "turn_detection must be None, novad.ServerVad, novad.SemanticVad, a dict with "
            f"'type', or an openai turn-detection model; got {type(value).__name__}"
        )

    td_type = raw.pop("type", None)
    if td_type is None:
        raise ValueError("turn_detection.type is required ('server_vad' or 'semantic_vad')")
    if td_type not in _KEYS_BY_TYPE:
        raise ValueError(
            f"turn_detection.type must be 'server_vad' or 'semantic_vad', got {td_type!r}"
        )
    for key, val in raw.items():
        if val is None:
            raise ValueError(f"{key} must not be None (leave it out to use the server default)")
    _validate_fields(td_type, raw)
    if td_type == "server_vad":
        return ServerVad(**raw)
    return SemanticVad(**raw)


def turn_detection_from_wire(obj: Mapping[str, Any] | None) -> TurnDetection | None:
    """Read a server-echoed ``turn_detection`` into our types, keeping every known value."""
    if obj is None:
        return None
    td_type = obj.get("type") or "server_vad"
    keys = _KEYS_BY_TYPE.get(td_type)
    if keys is None:
        raise ValueError(f"unknown turn_detection type in server echo: {td_type!r}")
    values = {k: obj[k] for k in keys if obj.get(k) is not None}
    # the server is the authority on its own values; no range checks on what it reports
    if td_type == "server_vad":
        return _unchecked(ServerVad, values)
    return _unchecked(SemanticVad, values)


def _unchecked(cls: type[ServerVad] | type[SemanticVad], values: dict[str, Any]) -> TurnDetection:
    obj = object.__new__(cls)
    for f in fields(cls):
        object.__setattr__(obj, f.name, values.get(f.name, f.default))
    # `type` is init=False with a default, so the loop above already set it
    return obj


def echo_matches(requested: TurnDetection | None, echoed: Mapping[str, Any] | None) -> bool:
    """Does the server's echo honour the request?

    Asked off: the echo must be ``null``. Asked an object: same type, and every field the user
    set must come back equal; fields left unset may take any server default. Numbers compare
    at float32 precision: the server may hold (and echo) a float as float32 (0.3 comes back
    as 0.30000001192092896).
    """
    if requested is None:
        return echoed is None
    if echoed is None:
        return False
    if (echoed.get("type") or "server_vad") != requested.type:
        return False
    for key, want in _set_fields(requested).items():
        got = echoed.get(key)
        if isinstance(want, float) or isinstance(got, float):
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                return False
            if _float32(got) != _float32(want):
                return False
        elif got != want:
            return False
    return True


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", float(value)))[0])
