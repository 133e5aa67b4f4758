"""RealtimeModel/RealtimeSession against the fake server over real sockets: the foundation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import make_model, session_updates, until_confirmed, wire_turn_detection
from openai.types.beta.realtime.session_update_event import (
    SessionUpdateEvent as BetaSessionUpdateEvent,
)
from openai.types.realtime import SessionUpdateEvent as GASessionUpdateEvent

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeRealtimeServer

pytestmark = pytest.mark.timeout(60)
WIRES = ["ga", "beta"]


@pytest.mark.parametrize("wire", WIRES)
async def test_first_update_carries_null_and_echo_confirms_off(
    server: FakeRealtimeServer, wire: str
) -> None:
    model = make_model(server, wire, turn_detection=None)
    session = model.session()
    try:
        conn = await server.wait_for_connection()
        assert conn.wire == wire
        await until_confirmed(session)
        text, first = session_updates(conn)[0]
        if wire == "ga":
            assert '"input": {' in text and '"turn_detection": null' in text
            assert first["session"]["audio"]["input"]["turn_detection"] is None
            GASessionUpdateEvent.model_validate_json(text)
        else:
            assert first["session"]["turn_detection"] is None
            assert "audio" not in first["session"]
            BetaSessionUpdateEvent.model_validate_json(text)
        assert '"turn_detection": null' in text
        assert session.confirmed_turn_detection is None
        assert session.requested_turn_detection is None
        assert conn.turn_detection is None  # the server's own state
    finally:
        await session.aclose()
        await model.aclose()


async def test_default_is_off(server: FakeRealtimeServer) -> None:
    model = make_model(server, "ga")  # no turn_detection argument at all
    session = model.session()
    try:
        conn = await server.wait_for_connection()
        await until_confirmed(session)
        _, first = session_updates(conn)[0]
        assert first["session"]["audio"]["input"]["turn_detection"] is None
    finally:
        await session.aclose()
        await model.aclose()


@pytest.mark.parametrize("wire", WIRES)
async def test_switching_sequence_round_trips_sparse(
    server: FakeRealtimeServer, wire: str
) -> None:
    model = make_model(server, wire, turn_detection=None)
    session = model.session()
    confirmations: list[novad.TurnDetectionConfirmed] = []
    session.on("turn_detection_confirmed", confirmations.append)
    try:
        conn = await server.wait_for_connection()
        await until_confirmed(session)
        sequence: list[novad.TurnDetection | None] = [
            novad.ServerVad(silence_duration_ms=700),
            None,
            novad.SemanticVad(eagerness="low"),
            novad.ServerVad(),
            None,
        ]
        for step in sequence:
            before = len(session_updates(conn))
            confirmed = await session.set_turn_detection(step)
            updates = session_updates(conn)
            assert len(updates) == before + 1
            text, event = updates[-1]
            present, value = wire_turn_detection(wire, event)
            assert present and value == (None if step is None else step.to_wire())
            # sparse: nothing but turn detection in the update
            if wire == "ga":
                assert set(event["session"]) == {"type", "audio"}
                assert set(event["session"]["audio"]) == {"input"}
                assert set(event["session"]["audio"]["input"]) == {"turn_detection"}
                GASessionUpdateEvent.model_validate_json(text)
            else:
                assert set(event["session"]) == {"turn_detection"}
                BetaSessionUpdateEvent.model_validate_json(text)
            if step is None:
                assert confirmed is None and conn.turn_detection is None
            else:
                assert confirmed is not None and confirmed.type == step.type
                assert conn.turn_detection is not None
                assert conn.turn_detection["type"] == step.type
            assert session.confirmed_turn_detection == confirmed
        # server filled its defaults in: silence 700 kept, then ServerVad() came back with 200
        assert confirmations[-2].confirmed == novad.ServerVad(
            threshold=0.5,
            prefix_padding_ms=300,
            silence_duration_ms=200,
            create_response=True,
            interrupt_response=True,
        ) or (wire == "beta")
        # re-requesting the current value sends nothing
        before = len(session_updates(conn))
        assert await session.set_turn_detection(None) is None
        session.update_options(turn_detection=None)
        await session.set_turn_detection(None)
        assert len(session_updates(conn)) == before
    finally:
        await session.aclose()
        await model.aclose()


@pytest.mark.parametrize("wire", WIRES)
async def test_model_update_options_reaches_every_session(
    server: FakeRealtimeServer, wire: str
) -> None:
    model = make_model(server, wire)
    s1, s2 = model.session(), model.session()
    try:
        await until_confirmed(s1)
        await until_confirmed(s2)
        model.update_options(turn_detection=novad.ServerVad(silence_duration_ms=650))
        await until_confirmed(s1)
        await until_confirmed(s2)
        for conn in server.connections:
            assert conn.turn_detection is not None
            assert conn.turn_detection["silence_duration_ms"] == 650
        assert model.turn_detection == novad.ServerVad(silence_duration_ms=650)
    finally:
        await s1.aclose()
        await s2.aclose()
        await model.aclose()


@pytest.mark.parametrize("wire", WIRES)
async def test_server_ignoring_null_is_a_mismatch(wire: str) -> None:
    async with FakeRealtimeServer(ignore_turn_detection_null=True) as server:
        model = make_model(server, wire, turn_detection=novad.ServerVad())
        session = model.session()
        mismatches: list[novad.TurnDetectionMismatch] = []
        session.on("turn_detection_mismatch", mismatches.append)
        try:
            await until_confirmed(session)
            with pytest.raises(novad.TurnDetectionMismatch) as info:
                await session.set_turn_detection(None)
            assert info.value.requested is None
            assert info.value.echoed is not None and info.value.echoed["type"] == "server_vad"
            assert len(mismatches) == 1
            # the server runs VAD: the session follows it instead of adding its own
            assert session.turn_taking_mode == "server"
            # still working: a later change is confirmed
            confirmed = await session.set_turn_detection(novad.ServerVad(silence_duration_ms=800))
            assert confirmed is not None and confirmed.silence_duration_ms == 800
            assert session.turn_taking_mode == "server"
        finally:
            await session.aclose()
            await model.aclose()


@pytest.mark.parametrize("wire", WIRES)
async def test_server_rejection_raises_with_code_and_param(wire: str) -> None:
    param = (
        "session.audio.input.turn_detection" if wire == "ga" else "session.turn_detection"
    )
    async with FakeRealtimeServer() as server:
        model = make_model(server, wire, turn_detection=None)
        session = model.session()
        errors: list[Any] = []
        session.on("error", errors.append)
        try:
            await until_confirmed(session)
            server.reject_fields = {param: ("invalid_value", "Turn detection is not allowed.")}
            with pytest.raises(novad.TurnDetectionRejected) as info:
                await session.set_turn_detection(novad.SemanticVad())
            assert info.value.code == "invalid_value"
            assert info.value.param == param
            assert errors and errors[-1].recoverable
            assert "invalid_value" in str(errors[-1].error) and param in str(errors[-1].error)
            # keeps working with the last confirmed value
            assert session.requested_turn_detection is None
            assert session.confirmed_turn_detection is None
            server.reject_fields = {}
            confirmed = await session.set_turn_detection(novad.ServerVad())
            assert confirmed is not None and confirmed.type == "server_vad"
        finally:
            await session.aclose()
            await model.aclose()


@pytest.mark.parametrize("wire", WIRES)
async def test_reconnect_restates_turn_detection(wire: str) -> None:
    async with FakeRealtimeServer() as server:
        model = make_model(server, wire, turn_detection=None)
        session = model.session()
        try:
            await until_confirmed(session)
            await session.set_turn_detection(novad.ServerVad(silence_duration_ms=900))
            await session.set_turn_detection(None)
            server.drop_connections()
            conn2 = await server.wait_for_connection(2)
            await conn2.wait_for_client_event("session.update")
            text, first = session_updates(conn2)[0]
            present, value = wire_turn_detection(wire, first)
            assert present and value is None
            assert '"turn_detection": null' in text
            await until_confirmed(session)
            assert conn2.turn_detection is None
            # and a non-null value is restated too
            await session.set_turn_detection(novad.ServerVad(silence_duration_ms=900))
            server.drop_connections()
            conn3 = await server.wait_for_connection(3)
            await conn3.wait_for_client_event("session.update")
            _, first = session_updates(conn3)[0]
            present, value = wire_turn_detection(wire, first)
            assert present and value == {"type": "server_vad", "silence_duration_ms": 900}
        finally:
            await session.aclose()
            await model.aclose()


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "server_vad", "threshold": 3},
        {"type": "semantic_vad", "idle_timeout_ms": 6000},
        {"type": "server_vad", "eagerness": "low"},
        {"type": "bogus"},
    ],
)
async def test_bad_input_sends_nothing(server: FakeRealtimeServer, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_model(server, "ga", turn_detection=bad)
    model = make_model(server, "ga")
    session = model.session()
    try:
        conn = await server.wait_for_connection()
        await until_confirmed(session)
        n = len(conn.received_text_frames)
        with pytest.raises(ValueError):
            session.update_options(turn_detection=bad)
        with pytest.raises(ValueError):
            await session.set_turn_detection(bad)
        with pytest.raises(ValueError):
            model.update_options(turn_detection=bad)
        # a round trip proves nothing else was queued before it
        await session.set_turn_detection(novad.ServerVad())
        frames = conn.received_text_frames[n:]
        assert len(frames) == 1 and json.loads(frames[0])["type"] == "session.update"
    finally:
        await session.aclose()
        await model.aclose()


async def test_idle_timeout_rejected_on_legacy_wire(server: FakeRealtimeServer) -> None:
    with pytest.raises(ValueError, match="idle_timeout_ms"):
        make_model(server, "beta", turn_detection=novad.ServerVad(idle_timeout_ms=6000))


@pytest.mark.parametrize("wire", WIRES)
async def test_every_update_the_session_sends_validates(
    server: FakeRealtimeServer, wire: str
) -> None:
    from livekit.agents import llm

    @llm.function_tool
    async def get_weather(city: str) -> str:
        """Look up the weather in a city."""
        return "sunny"

    model = make_model(server, wire, turn_detection=novad.ServerVad(threshold=0.6))
    session = model.session()
    try:
        conn = await server.wait_for_connection()
        await session.update_instructions("Answer in one sentence.")
        await session.update_tools([get_weather])
        session.update_options(voice="marin", speed=1.1, turn_detection=None)
        session.update_options(tool_choice="none")
        await session.set_turn_detection(novad.SemanticVad(eagerness="high"))
        updates = session_updates(conn)
        assert len(updates) == 6
        oracle = GASessionUpdateEvent if wire == "ga" else BetaSessionUpdateEvent
        for text, event in updates:
            parsed = oracle.model_validate_json(text)
            assert not (parsed.session.model_extra or {}), text
            assert event["event_id"]
        # the server accepted them all: one echo each, no error
        await until_confirmed(session)
        assert not [e for e in conn.sent_events if e["type"] == "error"]
        echoes = [e for e in conn.sent_events if e["type"] == "session.updated"]
        assert len(echoes) == 6
        session_state = conn.session
        if wire == "ga":
            assert session_state["instructions"] == "Answer in one sentence."
            assert session_state["tools"][0]["name"] == "get_weather"
            assert session_state["audio"]["output"]["speed"] == 1.1
        else:
            assert session_state["tools"][0]["name"] == "get_weather"
            assert session_state["speed"] == 1.1
    finally:
        await session.aclose()
        await model.aclose()
