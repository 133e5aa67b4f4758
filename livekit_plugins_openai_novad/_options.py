"""Options glue shared by the model and its sessions: our turn detection in upstream's
option types, the capabilities it implies, and the full set of session fields."""

from __future__ import annotations

from typing import Any

from livekit.agents.types import NOT_GIVEN
from livekit.agents.utils import is_given
from pydantic import TypeAdapter

from . import wire
from ._upstream import to_audio_transcription, to_noise_reduction, to_oai_tool_choice
from .turn_detection import ClientVad, TurnDetection

DEFAULT_CLIENT_VAD = ClientVad()

_UPSTREAM_TD_ADAPTER: TypeAdapter[Any] | None = None


def to_upstream_td(td: TurnDetection | None) -> Any:
    """Our type -> openai-python's GA model, for upstream code that reads ``_opts``."""
    global _UPSTREAM_TD_ADAPTER
    if td is None:
        return None
    if _UPSTREAM_TD_ADAPTER is None:
        from openai.types.realtime import RealtimeAudioInputTurnDetection

        _UPSTREAM_TD_ADAPTER = TypeAdapter(RealtimeAudioInputTurnDetection)
    return _UPSTREAM_TD_ADAPTER.validate_python(td.to_wire())


def _server_answers(td: TurnDetection | None) -> bool:
    return td is not None and td.create_response is not False


def answers_turns(td: TurnDetection | None) -> bool:
    """``capabilities.turn_detection``: the session (server, client VAD, or the app in
    push-to-talk) answers turns itself, so the AgentSession must not add its default VAD; it
    can still take turn taking over (``turn_detection_disabled``) when the user configures it."""
    return td is None or _server_answers(td)


def check_client_vad(client_vad: Any) -> None:
    if client_vad is not None and not isinstance(client_vad, ClientVad):
        raise ValueError("client_vad must be a novad.ClientVad or None (push-to-talk)")


def wire_of(opts: Any) -> wire.Wire:
    return "beta" if opts.is_azure and opts.api_version else "ga"


def full_session_fields(opts: Any, instructions: str | None) -> dict[str, Any]:
    """Every session field the plugin owns, for the initial and each reconnect update."""
    fields: dict[str, Any] = {
        "model": opts.model,
        "modalities": list(opts.modalities),
        "voice": opts.voice,
        "speed": opts.speed,
        "audio_format": "pcm16",
        "transcription": opts.input_audio_transcription,
        "noise_reduction": opts.input_audio_noise_reduction,
        "tool_choice": to_oai_tool_choice(opts.tool_choice),
        "max_output_tokens": opts.max_response_output_tokens,
    }
    if opts.tracing is not None:
        fields["tracing"] = opts.tracing
    if instructions is not None:
        fields["instructions"] = instructions
    if opts.truncation is not None:
        fields["truncation"] = opts.truncation
    if opts.reasoning is not None:
        fields["reasoning"] = opts.reasoning
    return fields


def option_changes(opts: Any, **given: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upstream's options given to ``update_options``, against the session's ``opts``:
    ``(opts attribute -> new value, wire field -> value for what changed)``."""
    tool_choice = given.get("tool_choice", NOT_GIVEN)
    voice = given.get("voice", NOT_GIVEN)
    speed = given.get("speed", NOT_GIVEN)
    max_response_output_tokens = given.get("max_response_output_tokens", NOT_GIVEN)
    input_audio_transcription = given.get("input_audio_transcription", NOT_GIVEN)
    input_audio_noise_reduction = given.get("input_audio_noise_reduction", NOT_GIVEN)
    tracing = given.get("tracing", NOT_GIVEN)
    truncation = given.get("truncation", NOT_GIVEN)
    reasoning = given.get("reasoning", NOT_GIVEN)
    new_opts: dict[str, Any] = {}
    fields: dict[str, Any] = {}

    def change(attr: str, value: Any, wire_name: str) -> None:
        if getattr(opts, attr) != value:
            fields[wire_name] = value
        new_opts[attr] = value

    if is_given(tool_choice):
        if to_oai_tool_choice(tool_choice) != to_oai_tool_choice(opts.tool_choice):
            fields["tool_choice"] = to_oai_tool_choice(tool_choice)
        new_opts["tool_choice"] = tool_choice
    if is_given(voice):
        change("voice", voice, "voice")
    if is_given(speed):
        change("speed", speed, "speed")
    if is_given(max_response_output_tokens):
        value = "inf" if max_response_output_tokens is None else max_response_output_tokens
        change("max_response_output_tokens", value, "max_output_tokens")
    if is_given(input_audio_transcription):
        change(
            "input_audio_transcription",
            to_audio_transcription(input_audio_transcription),
            "transcription",
        )
    if is_given(input_audio_noise_reduction):
        change(
            "input_audio_noise_reduction",
            to_noise_reduction(input_audio_noise_reduction),
            "noise_reduction",
        )
    if is_given(tracing):
        change("tracing", tracing, "tracing")
    if is_given(truncation):
        change("truncation", truncation, "truncation")
    if is_given(reasoning):
        change("reasoning", reasoning, "reasoning")
    return new_opts, fields
