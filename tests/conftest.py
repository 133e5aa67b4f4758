from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import (
    ALL_SERVERS,
    INSTANT,
    FakeConnection,
    FakeRealtimeServer,
)
from livekit_plugins_openai_novad.testing.validation import ServerEventValidator

FIXTURES = Path(__file__).parent / "fixtures"
API_VERSION = "2024-10-01-preview"


def speech_segments(name: str) -> list[tuple[int, int]]:
    """Energy-measured speech segments (first, last voiced sample) of a fixture WAV."""
    data = json.loads((FIXTURES / "speech_segments.json").read_text())
    return [(s["start_sample"], s["end_sample"]) for s in data["files"][name]["segments"]]


@pytest.fixture(autouse=True)
def server_events_valid() -> Iterator[ServerEventValidator]:
    """Every event any fake server sends during a test must be valid for openai-python's
    RealtimeServerEvent model of its wire (GA or beta)."""
    validator = ServerEventValidator()
    ALL_SERVERS.on_server_event(validator)
    try:
        yield validator
    finally:
        ALL_SERVERS.remove(validator)
    assert validator.failures == [], "\n".join(validator.failures[:20])


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(**INSTANT) as srv:
        yield srv


def make_model(server: FakeRealtimeServer, wire: str, **kwargs: Any) -> novad.RealtimeModel:
    """A RealtimeModel on the fake server: GA (OpenAI) or the Azure legacy ("beta") endpoint."""
    if wire == "ga":
        return novad.RealtimeModel(base_url=server.base_url, api_key="test-key", **kwargs)
    return novad.RealtimeModel(
        base_url=server.azure_base_url,
        api_key="test-key",
        azure_deployment="gpt-realtime",
        api_version=API_VERSION,
        **kwargs,
    )


def session_updates(conn: FakeConnection) -> list[tuple[str, dict[str, Any]]]:
    """(exact text frame, parsed) of every session.update that crossed the socket."""
    out = []
    for text in conn.received_text_frames:
        event = json.loads(text)
        if event.get("type") == "session.update":
            out.append((text, event))
    return out


def wire_turn_detection(wire: str, event: dict[str, Any]) -> tuple[bool, Any]:
    session = event["session"]
    if wire == "ga":
        audio_in = (session.get("audio") or {}).get("input") or {}
        return "turn_detection" in audio_in, audio_in.get("turn_detection")
    return "turn_detection" in session, session.get("turn_detection")


async def until_confirmed(session: novad.RealtimeSession, timeout: float = 5.0) -> None:
    """Until the server has echoed every turn detection sent so far (event driven)."""
    ev = asyncio.Event()

    def check(*_: Any) -> None:
        if session.turn_detection_confirmed:
            ev.set()

    session.on("turn_detection_confirmed", check)
    check()
    try:
        await asyncio.wait_for(ev.wait(), timeout)
    finally:
        session.off("turn_detection_confirmed", check)
