"""The wire layer and turn-detection types, checked against openai-python's own models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.beta.realtime.session import TurnDetection as BetaTurnDetection
from openai.types.beta.realtime.session_update_event import (
    SessionUpdateEvent as BetaSessionUpdateEvent,
)
from openai.types.realtime import SessionUpdateEvent as GASessionUpdateEvent
from openai.types.realtime.realtime_audio_input_turn_detection import (
    SemanticVad as GASemanticVad,
)
from openai.types.realtime.realtime_audio_input_turn_detection import (
    ServerVad as GAServerVad,
)
from pydantic import BaseModel

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.turn_detection import (
    coerce_turn_detection,
    echo_matches,
    turn_detection_from_wire,
)
from livekit_plugins_openai_novad.wire import session_turn_detection, session_update_payload

pytestmark = pytest.mark.timeout(60)

FULL_FIELDS: dict[str, Any] = dict(
    model="gpt-realtime",
    instructions="be brief",
    modalities=["text", "audio"],
    voice="marin",
    speed=1.0,
    audio_format="pcm16",
    transcription=None,
    noise_reduction=None,
    tools=[],
    tool_choice="auto",
    max_output_tokens="inf",
    tracing=None,
)


def _no_extras(model: BaseModel, path: str = "") -> None:
    """openai-python models allow extra keys; the oracle must not: nothing unknown is sent."""
    extra = model.model_extra or {}
    assert not extra, f"unknown keys at {path or 'event'}: {sorted(extra)}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            _no_extras(value, f"{path}.{name}")


def validate(payload: dict[str, Any], wire: str) -> None:
    text = json.dumps(payload)
    oracle = GASessionUpdateEvent if wire == "ga" else BetaSessionUpdateEvent
    event = oracle.model_validate_json(text)
    _no_extras(event)


def test_ga_off_is_explicit_null() -> None:
    payload = session_update_payload(wire="ga", turn_detection=None, **FULL_FIELDS)
    text = json.dumps(payload)
    assert '"turn_detection": null' in text
    assert payload["session"]["type"] == "realtime"
    assert payload["session"]["audio"]["input"]["turn_detection"] is None
    assert payload["event_id"]
    validate(payload, "ga")


def test_beta_off_is_explicit_flat_null() -> None:
    fields = {k: v for k, v in FULL_FIELDS.items()}
    payload = session_update_payload(wire="beta", turn_detection=None, **fields)
    assert "turn_detection" in payload["session"] and payload["session"]["turn_detection"] is None
    assert "audio" not in payload["session"] and "type" not in payload["session"]
    assert payload["session"]["modalities"] == ["audio", "text"]
    assert payload["session"]["input_audio_format"] == "pcm16"
    validate(payload, "beta")


def test_three_states() -> None:
    off = session_update_payload(wire="ga", turn_detection=None)
    default = session_update_payload(wire="ga", turn_detection=novad.ServerVad())
    omitted = session_update_payload(wire="ga", instructions="x")
    assert off["session"]["audio"]["input"] == {"turn_detection": None}
    assert default["session"]["audio"]["input"] == {"turn_detection": {"type": "server_vad"}}
    assert "audio" not in omitted["session"]
    for p in (off, default, omitted):
        validate(p, "ga")


@pytest.mark.parametrize("wire", ["ga", "beta"])
def test_semantic_and_server_vad_round_trip_models(wire: str) -> None:
    for td in (
        novad.SemanticVad(eagerness="low"),
        novad.ServerVad(silence_duration_ms=700, threshold=0.4, create_response=True),
    ):
        payload = session_update_payload(wire=wire, turn_detection=td)  # type: ignore[arg-type]
        validate(payload, wire)
        present, value = session_turn_detection(wire, payload["session"])  # type: ignore[arg-type]
        assert present and value == td.to_wire()


def test_accepts_openai_models_and_dicts() -> None:
    assert coerce_turn_detection(GAServerVad(type="server_vad", silence_duration_ms=700)) == (
        novad.ServerVad(silence_duration_ms=700)
    )
    assert coerce_turn_detection(GASemanticVad(type="semantic_vad", eagerness="high")) == (
        novad.SemanticVad(eagerness="high")
    )
    assert coerce_turn_detection(BetaTurnDetection(type="semantic_vad")) == novad.SemanticVad()
    assert coerce_turn_detection({"type": "server_vad", "threshold": 0.3}) == novad.ServerVad(
        threshold=0.3
    )


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "nope"}, "type"),
        ({"threshold": 0.5}, "type"),
        ({"type": "server_vad", "bogus": 1}, "bogus"),
        ({"type": "server_vad", "threshold": 1.5}, "threshold"),
        ({"type": "server_vad", "threshold": -0.1}, "threshold"),
        ({"type": "server_vad", "silence_duration_ms": -5}, "silence_duration_ms"),
        ({"type": "server_vad", "prefix_padding_ms": -1}, "prefix_padding_ms"),
        ({"type": "server_vad", "idle_timeout_ms": 4999}, "idle_timeout_ms"),
        ({"type": "server_vad", "idle_timeout_ms": 30001}, "idle_timeout_ms"),
        ({"type": "semantic_vad", "idle_timeout_ms": 6000}, "idle_timeout_ms"),
        ({"type": "semantic_vad", "eagerness": "eager"}, "eagerness"),
        ({"type": "server_vad", "eagerness": "low"}, "eagerness"),
        ({"type": "server_vad", "create_response": "yes"}, "create_response"),
        ({"type": "semantic_vad", "interrupt_response": 1}, "interrupt_response"),
        ({"type": "server_vad", "create_response": None}, "create_response"),
    ],
)
def test_bad_input_names_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        coerce_turn_detection(bad)


def test_dataclass_constructors_validate() -> None:
    with pytest.raises(ValueError, match="threshold"):
        novad.ServerVad(threshold=2.0)
    with pytest.raises(ValueError, match="eagerness"):
        novad.SemanticVad(eagerness="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="silence_duration_ms"):
        novad.ClientVad(silence_duration_ms=-1)


def test_beta_cannot_express_idle_timeout() -> None:
    with pytest.raises(ValueError, match="idle_timeout_ms"):
        session_update_payload(wire="beta", turn_detection=novad.ServerVad(idle_timeout_ms=6000))
    with pytest.raises(ValueError, match="truncation"):
        session_update_payload(wire="beta", truncation="auto")


def test_unknown_session_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="temperature_x"):
        session_update_payload(wire="ga", temperature_x=1)


def test_echo_matching() -> None:
    echoed = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 700,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    assert echo_matches(novad.ServerVad(silence_duration_ms=700), echoed)
    assert echo_matches(novad.ServerVad(), echoed)
    assert not echo_matches(novad.ServerVad(silence_duration_ms=500), echoed)
    assert not echo_matches(None, echoed)
    assert not echo_matches(novad.SemanticVad(), echoed)
    assert echo_matches(None, None)
    confirmed = turn_detection_from_wire(echoed)
    assert confirmed == novad.ServerVad(
        threshold=0.5,
        prefix_padding_ms=300,
        silence_duration_ms=700,
        create_response=True,
        interrupt_response=True,
    )


turn_detections = st.one_of(
    st.none(),
    st.builds(
        novad.ServerVad,
        threshold=st.none() | st.floats(0, 1),
        prefix_padding_ms=st.none() | st.integers(0, 5000),
        silence_duration_ms=st.none() | st.integers(0, 5000),
        idle_timeout_ms=st.none() | st.integers(5000, 30000),
        create_response=st.none() | st.booleans(),
        interrupt_response=st.none() | st.booleans(),
    ),
    st.builds(
        novad.SemanticVad,
        eagerness=st.none() | st.sampled_from(["low", "medium", "high", "auto"]),
        create_response=st.none() | st.booleans(),
        interrupt_response=st.none() | st.booleans(),
    ),
)
optional_fields = st.fixed_dictionaries(
    {},
    optional={
        "instructions": st.text(max_size=30),
        "voice": st.sampled_from(["alloy", "marin"]),
        "speed": st.floats(0.25, 1.5),
        "modalities": st.sampled_from([["text"], ["audio"], ["text", "audio"]]),
        "audio_format": st.just("pcm16"),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "max_output_tokens": st.one_of(st.just("inf"), st.integers(1, 4096)),
        "transcription": st.none() | st.just({"model": "whisper-1"}),
        "noise_reduction": st.none() | st.just({"type": "near_field"}),
        "tracing": st.none() | st.just("auto"),
    },
)


@settings(max_examples=300, deadline=None)
@given(td=turn_detections, fields=optional_fields, wire=st.sampled_from(["ga", "beta"]))
def test_every_payload_validates_against_openai(
    td: novad.TurnDetection | None, fields: dict[str, Any], wire: str
) -> None:
    if wire == "beta" and isinstance(td, novad.ServerVad) and td.idle_timeout_ms is not None:
        with pytest.raises(ValueError, match="idle_timeout_ms"):
            session_update_payload(wire=wire, turn_detection=td, **fields)  # type: ignore[arg-type]
        return
    payload = session_update_payload(wire=wire, turn_detection=td, **fields)  # type: ignore[arg-type]
    validate(payload, wire)
    present, value = session_turn_detection(wire, payload["session"])  # type: ignore[arg-type]
    assert present
    assert value == (None if td is None else td.to_wire())
    assert echo_matches(td, value)
