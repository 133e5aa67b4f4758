"""FakeRealtimeServer over real WebSockets on 127.0.0.1 (no mocks). ``§n``: the sections of
docs/realtime-wire.md."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from livekit_plugins_openai_novad.testing import (
    INSTANT,
    FakeRealtimeServer,
    ReplyContext,
    rms_dbfs,
    silence,
    tone,
)

pytestmark = pytest.mark.timeout(30)

KEY = "test-key"
GA_AUTH = {"Authorization": f"Bearer {KEY}"}
AZURE_AUTH = {"api-key": KEY}

GA_DEFAULT_TD = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
BETA_DEFAULT_TD = dict(GA_DEFAULT_TD)  # the legacy echo carries idle_timeout_ms: null too


class Client:
    """A thin JSON client over aiohttp's ws_connect."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(event))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg!r}"
        event: dict[str, Any] = json.loads(msg.data)
        self.received.append(event)
        return event

    async def recv_until(self, type: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Events up to and including the first one of ``type``."""
        out = []
        while True:
            ev = await self.recv(timeout)
            out.append(ev)
            if ev["type"] == type:
                return out

    async def append(self, pcm: bytes, chunk_ms: int = 100) -> None:
        step = chunk_ms * 48
        for i in range(0, len(pcm), step):
            audio = base64.b64encode(pcm[i : i + step]).decode()
            await self.send({"type": "input_audio_buffer.append", "audio": audio})

    async def update(self, session: dict[str, Any], event_id: str = "evt_up") -> dict[str, Any]:
        """Send a session.update; return the next session.updated or error."""
        await self.send({"type": "session.update", "event_id": event_id, "session": session})
        return await self.recv()


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(api_key=KEY, **INSTANT) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def connect(server: FakeRealtimeServer, http: aiohttp.ClientSession) -> Callable[..., Any]:
    async def _connect(
        url: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        created: bool = True,
    ) -> Client:
        ws = await http.ws_connect(
            url or server.ws_url(), headers=GA_AUTH if headers is None else headers
        )
        client = Client(ws)
        if created:
            ev = await client.recv()
            assert ev["type"] == "session.created"
        return client

    return _connect


def ga_td_update(td: Any) -> dict[str, Any]:
    return {"type": "realtime", "audio": {"input": {"turn_detection": td}}}


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


# ---------------------------------------------------------------- handshake and defaults


async def test_session_created_ga_default(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    ws = await http.ws_connect(server.ws_url("gpt-realtime-mini"), headers=GA_AUTH)
    created = json.loads((await ws.receive()).data)
    assert created["type"] == "session.created"
    assert created["event_id"].startswith("event_")
    s = created["session"]
    assert s["id"].startswith("sess_")
    assert list(s) == [
        "type", "object", "id", "model", "output_modalities", "instructions", "tools",
        "tool_choice", "max_output_tokens", "tracing", "truncation", "prompt", "expires_at",
        "include", "audio",
    ]  # fmt: skip
    assert s["type"] == "realtime" and s["object"] == "realtime.session"
    assert s["model"] == "gpt-realtime-mini"
    assert s["output_modalities"] == ["audio"]
    assert isinstance(s["instructions"], str) and s["instructions"]
    assert (s["tools"], s["tool_choice"], s["max_output_tokens"]) == ([], "auto", "inf")
    assert (s["tracing"], s["truncation"], s["prompt"], s["include"]) == (None, "auto", None, None)
    assert s["expires_at"] > time.time() + 3000
    assert s["audio"] == {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": GA_DEFAULT_TD,
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
    }
    conn = await server.wait_for_connection(1)
    assert conn.wire == "ga" and conn.session == s and conn.sent_events[0] == created
    await ws.close()


async def test_session_created_azure_legacy_is_beta(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    url = server.azure_ws_url("my-deployment", api_version="2024-10-01-preview")
    assert url.startswith(server.azure_base_url.replace("http", "ws", 1) + "/realtime?")
    client = await connect(url, AZURE_AUTH, created=False)
    s = (await client.recv())["session"]
    # Azure reports the model behind a deployment; the fake cannot know it
    assert s["model"] == "gpt-4o-realtime-preview"
    assert server.connections[0].model == "my-deployment"
    assert s["modalities"] == ["audio", "text"]
    assert s["voice"] == "alloy"
    assert s["input_audio_format"] == s["output_audio_format"] == "pcm16"
    assert s["input_audio_transcription"] is None and s["input_audio_noise_reduction"] is None
    assert s["turn_detection"] == BETA_DEFAULT_TD
    assert s["temperature"] == 0.8 and s["max_response_output_tokens"] == "inf"
    assert (s["tools"], s["tool_choice"], s["speed"], s["tracing"]) == ([], "auto", 1.0, None)
    assert "audio" not in s and "type" not in s
    assert server.connections[0].wire == "beta"


async def test_azure_ga_path_and_bearer(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect(server.azure_ws_url("dep"), AZURE_AUTH, created=False)
    assert (await client.recv())["session"]["type"] == "realtime"
    client2 = await connect(
        server.azure_ws_url("dep", "2025-04-01-preview"), GA_AUTH, created=False
    )
    assert "modalities" in (await client2.recv())["session"]
    assert [c.wire for c in server.connections] == ["ga", "beta"]


@pytest.mark.parametrize(
    ("headers", "query", "code", "close_code"),
    [
        ({"Authorization": "Bearer wrong-key-000"}, "?model=gpt-realtime", "invalid_api_key", 3000),
        ({}, "?model=gpt-realtime", None, 3000),
        ({"api-key": KEY}, "?model=gpt-realtime", None, 3000),  # api-key is Azure only
        (GA_AUTH, "", "missing_model", 4000),
    ],
)
async def test_handshake_failures_after_upgrade(
    server: FakeRealtimeServer,
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    query: str,
    code: str | None,
    close_code: int,
) -> None:
    url = f"ws://127.0.0.1:{server.port}/v1/realtime{query}"
    ws = await http.ws_connect(url, headers=headers)  # the 101 succeeds
    err = json.loads((await ws.receive()).data)
    assert err["type"] == "error"
    assert err["error"]["code"] == code
    assert err["error"]["type"] == "invalid_request_error"
    if code is None:
        assert err["error"]["message"] == "Missing bearer or basic authentication in header"
    closing = await ws.receive()
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert ws.close_code == close_code
    if code is not None:
        assert closing.extra == f"invalid_request_error.{code}"
    conn = await server.wait_for_connection(1)
    assert conn.closed and conn.handshake_error is not None


async def test_beta_header_rejected_then_accepted_in_legacy_mode(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    headers = {**GA_AUTH, "OpenAI-Beta": "realtime=v1"}
    ws = await http.ws_connect(server.ws_url(), headers=headers)
    err = json.loads((await ws.receive()).data)["error"]
    assert err["code"] == "beta_api_shape_disabled"
    assert err["message"] == (
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
    )
    closing = await ws.receive()
    assert ws.close_code == 4000
    assert closing.extra == "invalid_request_error.beta_api_shape_disabled"

    server.accept_beta_header = True
    ws2 = await http.ws_connect(server.ws_url(), headers=headers)
    created = json.loads((await ws2.receive()).data)
    assert created["type"] == "session.created" and "modalities" in created["session"]
    assert server.connections[-1].wire == "beta"
    await ws2.close()


# ---------------------------------------------------------------- session.update


async def test_ga_partial_merge_and_turn_detection(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect()
    conn = await server.wait_for_connection()
    before = conn.session

    ev = await client.update({"type": "realtime", "instructions": "be brief"}, event_id="e1")
    assert ev["type"] == "session.updated"
    assert ev["event_id"].startswith("event_") and ev["event_id"] != "e1"
    assert "error" not in ev
    expected = json.loads(json.dumps(before))
    expected["instructions"] = "be brief"
    assert ev["session"] == expected

    ev = await client.update(
        {
            "type": "realtime",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                    "noise_reduction": {"type": "near_field", "strength": 0.3},
                }
            },
        }
    )
    # only the turn detection: format, transcription and noise_reduction stay (§2)
    ev = await client.update(ga_td_update({"type": "semantic_vad", "eagerness": "high"}))
    inp = ev["session"]["audio"]["input"]
    assert inp["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    assert inp["format"] == {"type": "audio/pcm", "rate": 24000}
    assert inp["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    ev = await client.update(
        {"type": "realtime", "audio": {"input": {"noise_reduction": {"type": "far_field"}}}}
    )
    assert ev["session"]["audio"]["input"]["noise_reduction"] == {
        "type": "far_field",
        "strength": 0.3,
    }

    # replaced whole, defaults filled
    ev = await client.update(ga_td_update({"type": "server_vad", "silence_duration_ms": 700}))
    assert ev["session"]["audio"]["input"]["turn_detection"] == {
        **GA_DEFAULT_TD,
        "silence_duration_ms": 700,
    }
    ev = await client.update(ga_td_update({"type": "server_vad"}))
    assert ev["session"]["audio"]["input"]["turn_detection"] == GA_DEFAULT_TD

    ev = await client.update(ga_td_update(None))
    assert ev["session"]["audio"]["input"]["turn_detection"] is None
    assert conn.session == ev["session"] and conn.turn_detection is None
    ev = await client.update({"type": "realtime", "output_modalities": ["text"]})
    assert ev["session"]["audio"]["input"]["turn_detection"] is None
    assert ev["session"]["output_modalities"] == ["text"]


async def test_livekit_style_updates_accepted(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    # what livekit-agents 1.8.9 sends on connect (GA, then Azure legacy)
    ga = {
        "type": "realtime",
        "audio": {
            "input": {
                "format": {"rate": 24000, "type": "audio/pcm"},
                "noise_reduction": None,
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": None,
            },
            "output": {
                "format": {"rate": 24000, "type": "audio/pcm"},
                "speed": 1.0,
                "voice": "marin",
            },
        },
        "instructions": "hi",
        "max_output_tokens": "inf",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "tool_choice": "auto",
        "tracing": None,
    }
    client = await connect()
    ev = await client.update(ga)
    assert ev["type"] == "session.updated"
    assert ev["session"]["audio"]["input"]["turn_detection"] is None
    assert ev["session"]["audio"]["output"]["voice"] == "marin"

    beta = {
        "input_audio_format": "pcm16",
        "input_audio_transcription": {"model": "whisper-1"},
        "instructions": "hi",
        "max_response_output_tokens": "inf",
        "modalities": ["audio", "text"],
        "model": "gpt-realtime",
        "output_audio_format": "pcm16",
        "speed": 1.0,
        "tool_choice": "auto",
        "turn_detection": {
            "create_response": True,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 200,
            "threshold": 0.5,
            "type": "server_vad",
        },
        "voice": "marin",
    }
    legacy = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
    ev = await legacy.update(beta)
    assert ev["type"] == "session.updated"
    assert ev["session"]["turn_detection"] == BETA_DEFAULT_TD
    assert ev["session"]["input_audio_transcription"] == {"model": "whisper-1"}


async def test_beta_flat_update(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    client = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
    ev = await client.update({"turn_detection": {"type": "semantic_vad"}, "voice": "verse"})
    assert ev["type"] == "session.updated"
    assert ev["session"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }
    assert ev["session"]["voice"] == "verse"
    ev = await client.update({"turn_detection": {"threshold": 0.7}})  # beta `type` is optional
    assert ev["session"]["turn_detection"] == {**BETA_DEFAULT_TD, "threshold": 0.7}
    ev = await client.update({"turn_detection": None, "modalities": ["text"]})
    assert ev["session"]["turn_detection"] is None
    assert ev["session"]["modalities"] == ["text"]


GA_REJECTIONS = [
    ({"instructions": "x"}, "missing_required_parameter", "session.type"),
    ({"type": "realtime", "turn_detection": None}, "unknown_parameter", "session.turn_detection"),
    ({"type": "realtime", "bogus_field": 1}, "unknown_parameter", "session.bogus_field"),
    (
        ga_td_update({"type": "semantic_vad", "threshold": 0.5}),
        "unknown_parameter",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        ga_td_update({"type": "server_vad", "eagerness": "low"}),
        "unknown_parameter",
        "session.audio.input.turn_detection.eagerness",
    ),
    (
        ga_td_update({"type": "none"}),
        "invalid_value",
        "session.audio.input.turn_detection.type",
    ),
    (
        ga_td_update({"type": "server_vad", "threshold": 1.5}),
        "decimal_above_max_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        ga_td_update({"type": "server_vad", "threshold": -0.1}),
        "decimal_below_min_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        ga_td_update({"type": "server_vad", "idle_timeout_ms": 100}),
        "integer_below_min_value",
        "session.audio.input.turn_detection.idle_timeout_ms",
    ),
    (
        ga_td_update({"type": "server_vad", "idle_timeout_ms": 60000}),
        "integer_above_max_value",
        "session.audio.input.turn_detection.idle_timeout_ms",
    ),
    (
        ga_td_update({"type": "server_vad", "create_response": None}),
        "invalid_type",
        "session.audio.input.turn_detection.create_response",
    ),
    (
        ga_td_update({"type": "server_vad", "silence_duration_ms": "500"}),
        "invalid_type",
        "session.audio.input.turn_detection.silence_duration_ms",
    ),
    (
        ga_td_update({"silence_duration_ms": 500}),
        "missing_required_parameter",
        "session.audio.input.turn_detection.type",
    ),
    (
        {"type": "realtime", "output_modalities": ["audio", "text"]},
        "invalid_value",
        "session.output_modalities",
    ),
    (
        {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        "integer_below_min_value",
        "session.audio.input.format.rate",
    ),
]


@pytest.mark.parametrize(("session", "code", "param"), GA_REJECTIONS)
async def test_ga_rejections_drop_the_whole_update(
    server: FakeRealtimeServer,
    connect: Callable[..., Any],
    session: dict[str, Any],
    code: str,
    param: str,
) -> None:
    client = await connect()
    conn = await server.wait_for_connection()
    before = conn.session
    # a valid change riding along must not be applied either
    bad = {**session, "instructions": "should not apply"}
    if "type" not in session:
        bad.pop("type", None)
    err = await client.update(bad, event_id="evt_bad")
    assert err["type"] == "error", err
    assert err["error"]["code"] == code
    assert err["error"]["param"] == param
    assert err["error"]["type"] == "invalid_request_error"
    assert err["error"]["event_id"] == "evt_bad"
    assert conn.session is before
    # the next event is the marker's echo: the bad update produced no session.updated
    marker = await client.update({"type": "realtime", "tool_choice": "none"})
    assert marker["type"] == "session.updated"
    assert marker["session"]["instructions"] == before["instructions"]
    assert marker["session"]["audio"] == before["audio"]


async def test_error_messages(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    client = await connect()
    err = (await client.update({"type": "realtime", "turn_detection": None}))["error"]
    assert err["message"] == "Unknown parameter: 'session.turn_detection'."
    err = (await client.update(ga_td_update({"type": "server_vad", "create_response": None})))[
        "error"
    ]
    assert err["message"] == (
        "Invalid type for 'session.audio.input.turn_detection.create_response': "
        "expected boolean, got null."
    )
    err = (await client.update(ga_td_update({"type": "x"})))["error"]
    assert (
        err["message"]
        == "Invalid value: 'x'. Supported values are: 'server_vad' and 'semantic_vad'."
    )
    err = (await client.update(ga_td_update({"type": "server_vad", "threshold": 1.5})))["error"]
    assert err["message"] == (
        "Invalid 'session.audio.input.turn_detection.threshold': decimal above maximum value. "
        "Expected a value <= 1, but got 1.5 instead."
    )
    err = (await client.update({"type": "realtime", "output_modalities": ["audio", "text"]}))[
        "error"
    ]
    assert err["message"] == (
        "Invalid modalities: ['audio', 'text']. Supported combinations are: ['text'] and ['audio']."
    )


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"type": "realtime"}, "unknown_parameter", "session.type"),
        ({"audio": {}}, "unknown_parameter", "session.audio"),
        ({"output_modalities": ["text"]}, "unknown_parameter", "session.output_modalities"),
        (
            {"turn_detection": {"type": "server_vad", "eagerness": "low"}},
            "unknown_parameter",
            "session.turn_detection.eagerness",
        ),
        ({"modalities": ["audio"]}, "invalid_value", "session.modalities"),
        ({"input_audio_format": "g711-ulaw"}, "invalid_value", "session.input_audio_format"),
        (
            {"turn_detection": {"type": "server_vad", "threshold": 2}},
            "decimal_above_max_value",
            "session.turn_detection.threshold",
        ),
    ],
)
async def test_beta_rejections(
    server: FakeRealtimeServer,
    connect: Callable[..., Any],
    session: dict[str, Any],
    code: str,
    param: str,
) -> None:
    client = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
    conn = await server.wait_for_connection()
    before = conn.session
    err = await client.update({**session, "voice": "echo"}, event_id="evt_b")
    assert err["type"] == "error", err
    assert (err["error"]["code"], err["error"]["param"]) == (code, param)
    assert err["error"]["event_id"] == "evt_b"
    assert conn.session is before


async def test_ignore_turn_detection_null_fault(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    server.ignore_turn_detection_null = True
    client = await connect()
    ev = await client.update({**ga_td_update(None), "instructions": "still applied"})
    assert ev["type"] == "session.updated"
    assert ev["session"]["audio"]["input"]["turn_detection"] == GA_DEFAULT_TD
    assert ev["session"]["instructions"] == "still applied"
    legacy = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
    ev = await legacy.update({"turn_detection": None})
    assert ev["session"]["turn_detection"] == BETA_DEFAULT_TD
    # turned off again: null applies
    server.ignore_turn_detection_null = False
    ev = await client.update(ga_td_update(None))
    assert ev["session"]["audio"]["input"]["turn_detection"] is None


async def test_reject_fields_fault(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    path = "session.audio.input.turn_detection"
    server.reject_fields = {path: ("invalid_value", "turn detection is locked")}
    client = await connect()
    conn = await server.wait_for_connection()
    for td in (None, {"type": "server_vad", "threshold": 0.6}):
        err = await client.update({**ga_td_update(td), "instructions": "nope"})
        assert err["error"]["code"] == "invalid_value"
        assert err["error"]["param"] == path
        assert err["error"]["message"] == "turn detection is locked"
    assert conn.session["instructions"] != "nope"
    ev = await client.update({"type": "realtime", "instructions": "other fields pass"})
    assert ev["type"] == "session.updated"


async def test_echo_delay_keeps_fifo(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    server.echo_delay = 0.15
    client = await connect()
    t0 = time.monotonic()
    for name in ("a", "b", "c"):
        await client.send(
            {"type": "session.update", "session": {"type": "realtime", "instructions": name}}
        )
    await client.send({"type": "nope"})
    got = [await client.recv() for _ in range(4)]
    assert [e["type"] for e in got] == ["session.updated"] * 3 + ["error"]
    assert [e["session"]["instructions"] for e in got[:3]] == ["a", "b", "c"]
    assert time.monotonic() - t0 >= 0.45 - 0.02
    conn = await server.wait_for_connection()
    assert conn.session["instructions"] == "c"


# ---------------------------------------------------------------- malformed input


async def test_malformed_client_events_are_not_fatal(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect()
    await client.send({"type": "nope", "event_id": "e_nope"})
    err = (await client.recv())["error"]
    assert (err["code"], err["param"], err["event_id"]) == ("invalid_value", "type", "e_nope")
    assert err["message"] == (
        "Invalid value: 'nope'. Supported values are: 'session.update', 'session.close', "
        "'input_audio_buffer.append', 'session.input_audio_buffer.append', "
        "'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', "
        "'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve', "
        "'response.create', and 'response.cancel'."
    )
    await client.send({"event_id": "e_missing"})
    err = (await client.recv())["error"]
    assert err["code"] == "invalid_event" and err["message"] == "The 'type' field is missing."
    await client.ws.send_str("{not json")
    assert (await client.recv())["error"]["code"] == "invalid_json"
    await client.ws.send_bytes(b"\x00\x01")
    assert (await client.recv())["error"]["code"] == "invalid_event"
    ev = await client.update({"type": "realtime", "instructions": "alive"})
    assert ev["type"] == "session.updated"
    assert '"alive"' in server.received_text_frames[-1]
    conn = server.connections[0]
    assert not conn.closed
    assert conn.received_text_frames[2] == "{not json"
    assert [e.get("type") for e in server.client_events] == ["nope", None, "session.update"]


# ---------------------------------------------------------------- input audio buffer


async def test_commit_empty_and_commit(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect()
    await client.update(ga_td_update(None))
    await client.send({"type": "input_audio_buffer.commit", "event_id": "c0"})
    err = (await client.recv())["error"]
    assert err["code"] == "input_audio_buffer_commit_empty"
    assert err["param"] is None and err["event_id"] == "c0"
    assert err["message"] == (
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        "audio, but buffer only has 0.00ms of audio."
    )
    await client.append(silence(0.05))
    await client.send({"type": "input_audio_buffer.commit"})
    assert "only has 50.00ms of audio" in (await client.recv())["error"]["message"]

    await client.append(tone(0.25))
    await client.send({"type": "input_audio_buffer.commit"})
    committed = await client.recv()
    assert committed["type"] == "input_audio_buffer.committed"
    assert committed["previous_item_id"] is None
    added, done = await client.recv(), await client.recv()
    assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
    assert added["item"]["id"] == committed["item_id"]
    assert added["item"]["role"] == "user"
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    conn = server.connections[0]
    assert conn.commits == [silence(0.05) + tone(0.25)]
    assert conn.appended_bytes == 0.3 * 48000 and len(conn.input_audio) == 0

    await client.append(tone(0.2))
    await client.send({"type": "input_audio_buffer.clear"})
    assert (await client.recv())["type"] == "input_audio_buffer.cleared"
    assert len(conn.input_audio) == 0
    # a commit does not start a response (§4): the next event answers the marker
    marker = await client.update({"type": "realtime", "instructions": "m"})
    assert marker["type"] == "session.updated"
    assert conn.responses == []


async def test_beta_commit_item_created(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
    await client.update({"turn_detection": None})
    await client.append(tone(0.2))
    await client.send({"type": "input_audio_buffer.commit"})
    events = [await client.recv(), await client.recv()]
    assert types(events) == ["input_audio_buffer.committed", "conversation.item.created"]


# ---------------------------------------------------------------- responses

GA_RESPONSE_ORDER_HEAD = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
GA_RESPONSE_ORDER_TAIL = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


def _collapse_deltas(names: list[str]) -> list[str]:
    return [n for n in names if not n.endswith(".delta")]


async def test_response_event_order_ga(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    server.reply_text = "one two three four five"
    server.reply_audio = tone(0.45)
    client = await connect()
    await client.send(
        {
            "type": "response.create",
            "event_id": "rc1",
            "response": {"metadata": {"client_event_id": "rc1"}},
        }
    )
    events = await client.recv_until("rate_limits.updated")
    names = types(events)
    assert _collapse_deltas(names) == GA_RESPONSE_ORDER_HEAD + GA_RESPONSE_ORDER_TAIL
    deltas = names[len(GA_RESPONSE_ORDER_HEAD) : -len(GA_RESPONSE_ORDER_TAIL)]
    assert set(deltas) == {"response.output_audio_transcript.delta", "response.output_audio.delta"}
    assert deltas[0] == "response.output_audio_transcript.delta"  # interleaved
    assert deltas.index("response.output_audio.delta") < len(deltas) - 2

    created, done = events[0]["response"], events[-2]["response"]
    assert created["status"] == "in_progress" and created["id"].startswith("resp_")
    assert created["metadata"] == done["metadata"] == {"client_event_id": "rc1"}
    assert created["output_modalities"] == ["audio"]
    assert done["status"] == "completed" and done["status_details"] is None
    assert done["usage"]["total_tokens"] > 0
    item = done["output"][0]
    assert item["role"] == "assistant" and item["status"] == "completed"
    assert item["content"] == [{"type": "output_audio", "transcript": "one two three four five"}]

    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert audio == tone(0.45)
    sizes = [
        len(base64.b64decode(e["delta"]))
        for e in events
        if e["type"] == "response.output_audio.delta"
    ]
    assert sizes == [4800, 4800, 4800, 4800, 2400]  # ~100 ms chunks
    transcript = "".join(
        e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
    )
    assert transcript == "one two three four five"
    rec = server.connections[0].responses[0]
    assert rec["trigger"] == "client" and rec["status"] == "completed"
    assert rec["id"] == created["id"] and isinstance(rec["created_at"], float)


async def test_response_event_order_beta(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
    await client.send({"type": "response.create", "response": {"metadata": {"k": "v"}}})
    events = await client.recv_until("response.done")
    assert _collapse_deltas(types(events)) == [
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert {"response.audio.delta", "response.audio_transcript.delta"} <= set(types(events))
    done = events[-1]["response"]
    assert done["metadata"] == {"k": "v"} and done["modalities"] == ["audio", "text"]
    assert done["output"][0]["content"][0]["type"] == "audio"
    # default reply audio: a non-silent ~0.5 s tone
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.audio.delta"
    )
    assert len(audio) == 24000 and rms_dbfs(audio) > -30


@pytest.mark.parametrize("wire", ["ga", "beta"])
async def test_text_only_response(
    server: FakeRealtimeServer, connect: Callable[..., Any], wire: str
) -> None:
    server.reply_text = "just text"
    if wire == "ga":
        client = await connect()
        await client.update({"type": "realtime", "output_modalities": ["text"]})
        prefix, item_type = "response.output_text", "output_text"
    else:
        client = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
        await client.update({"modalities": ["text"]})
        prefix, item_type = "response.text", "text"
    await client.send({"type": "response.create"})
    events = await client.recv_until("response.done")
    names = types(events)
    assert not any("audio" in n for n in names)
    assert f"{prefix}.delta" in names and f"{prefix}.done" in names
    text_done = next(e for e in events if e["type"] == f"{prefix}.done")
    assert text_done["text"] == "just text"
    part = next(e for e in events if e["type"] == "response.content_part.added")["part"]
    assert part["type"] == "text"
    assert events[-1]["response"]["output"][0]["content"] == [
        {"type": item_type, "text": "just text"}
    ]


async def test_cancel_and_active_response_errors(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    server.reply_pace = 1.0
    server.reply_audio = tone(2.0)
    client = await connect()
    await client.send({"type": "response.cancel", "event_id": "x0"})
    err = (await client.recv())["error"]
    assert err["code"] == "response_cancel_not_active"
    assert err["message"] == "Cancellation failed: no active response found"

    await client.send({"type": "response.create"})
    head = await client.recv_until("response.output_audio.delta")
    rid = head[0]["response"]["id"]
    await client.send({"type": "response.create", "event_id": "rc2"})
    err = (await client.recv_until("error"))[-1]["error"]
    assert err["code"] == "conversation_already_has_active_response"
    assert err["event_id"] == "rc2"
    assert err["message"] == (
        f"Conversation already has an active response in progress: {rid}. "
        "Wait until the response is finished before creating a new one."
    )
    t0 = time.monotonic()
    await client.send({"type": "response.cancel"})
    tail = await client.recv_until("rate_limits.updated")
    assert time.monotonic() - t0 < 1.0  # not the full 2 s of audio
    assert _collapse_deltas(types(tail)) == GA_RESPONSE_ORDER_TAIL
    done = tail[-2]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    conn = server.connections[0]
    assert conn.responses[0]["status"] == "cancelled" and conn.active_response is None
    await client.send({"type": "response.cancel"})
    assert (await client.recv())["error"]["code"] == "response_cancel_not_active"


async def test_truncate(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    client = await connect()
    await client.update(ga_td_update(None))
    await client.append(tone(0.3))
    await client.send({"type": "input_audio_buffer.commit"})
    user_item = (await client.recv_until("conversation.item.done"))[0]["item_id"]
    await client.send({"type": "response.create"})
    done = (await client.recv_until("response.done"))[-1]
    item_id = done["response"]["output"][0]["id"]  # 500 ms of default audio

    truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
    await client.send({**truncate, "audio_end_ms": 5000, "event_id": "t_long"})
    err = (await client.recv_until("error"))[-1]["error"]
    assert err["event_id"] == "t_long"
    assert err["message"] == "Audio content of 500ms is already shorter than 5000ms"
    await client.send({**truncate, "item_id": user_item, "audio_end_ms": 10})
    err = (await client.recv())["error"]
    assert err["message"] == "Only model output audio messages can be truncated"

    await client.send({**truncate, "audio_end_ms": 200, "event_id": "t_ok"})
    ev = await client.recv()
    assert ev == {
        "type": "conversation.item.truncated",
        "event_id": ev["event_id"],
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 200,
    }
    conn = server.connections[0]
    assert conn.truncations[0]["item_id"] == item_id
    assert conn.truncations[0]["audio_end_ms"] == 200
    # the audio is now 200 ms long
    await client.send({**truncate, "audio_end_ms": 300})
    assert "shorter than 300ms" in (await client.recv())["error"]["message"]


async def test_conversation_items(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    client = await connect()
    msg = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    await client.send({"type": "conversation.item.create", "item": {**msg, "id": "a"}})
    added = await client.recv()
    assert added["type"] == "conversation.item.added" and added["previous_item_id"] is None
    assert added["item"]["id"] == "a" and added["item"]["object"] == "realtime.item"
    assert (await client.recv())["type"] == "conversation.item.done"
    await client.send(
        {"type": "conversation.item.create", "item": {**msg, "id": "b"}, "previous_item_id": "root"}
    )
    assert (await client.recv())["previous_item_id"] is None
    await client.recv()
    await client.send(
        {"type": "conversation.item.create", "item": {**msg, "id": "a"}, "event_id": "dup"}
    )
    err = (await client.recv())["error"]
    assert err["code"] == "item_create_duplicate_item_id" and err["event_id"] == "dup"
    await client.send({"type": "conversation.item.create", "item": msg, "previous_item_id": "b"})
    ev = await client.recv()
    assert ev["previous_item_id"] == "b" and ev["item"]["id"].startswith("item_")
    await client.recv()
    conn = server.connections[0]
    assert [i["id"] for i in conn.conversation] == ["b", ev["item"]["id"], "a"]
    await client.send({"type": "conversation.item.delete", "item_id": "a"})
    assert await client.recv() == {
        "type": "conversation.item.deleted",
        "event_id": client.received[-1]["event_id"],
        "item_id": "a",
    }
    await client.send({"type": "conversation.item.delete", "item_id": "a"})
    assert (await client.recv())["type"] == "error"


async def test_reply_callable_gets_committed_audio(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    seen: list[ReplyContext] = []

    async def reply(ctx: ReplyContext) -> tuple[str, bytes | None]:
        seen.append(ctx)
        return f"you spoke for {ctx.audio_seconds:.1f} seconds", None

    server.reply = reply
    client = await connect()
    await client.update(ga_td_update(None))
    await client.append(tone(1.2))
    await client.send({"type": "input_audio_buffer.commit"})
    await client.send({"type": "response.create"})
    done = (await client.recv_until("response.done"))[-1]
    assert done["response"]["output"][0]["content"][0]["transcript"] == (
        "you spoke for 1.2 seconds"
    )
    assert seen[0].trigger == "client" and seen[0].connection is server.connections[0]


# ---------------------------------------------------------------- fake server VAD


def speech_burst() -> bytes:
    return silence(0.5) + tone(1.0, dbfs=-20.0) + silence(1.0)


@pytest.mark.parametrize("wire", ["ga", "beta"])
async def test_fake_vad_turn(
    server: FakeRealtimeServer, connect: Callable[..., Any], wire: str
) -> None:
    if wire == "ga":
        client = await connect()
        item_added, item_done = "conversation.item.added", "conversation.item.done"
    else:
        client = await connect(server.azure_ws_url("dep", "2024-10-01-preview"), AZURE_AUTH)
        item_added = item_done = "conversation.item.created"
    await client.update(
        {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
        if wire == "ga"
        else {"input_audio_transcription": {"model": "whisper-1"}}
    )
    await client.append(speech_burst(), chunk_ms=20)
    events = await client.recv_until("response.done")
    names = types(events)
    head = names[: names.index("response.created")]
    assert head[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert item_added in head and item_done in head
    assert "conversation.item.input_audio_transcription.completed" in head
    started, stopped, committed = events[0], events[1], events[2]
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    # speech at 500 ms, minus 300 ms prefix padding; ends 200 ms of silence after 1500 ms
    assert 180 <= started["audio_start_ms"] <= 220
    assert 1690 <= stopped["audio_end_ms"] <= 1760
    conn = server.connections[0]
    assert len(conn.commits) == 1
    committed_ms = len(conn.commits[0]) / 48
    assert committed_ms == pytest.approx(stopped["audio_end_ms"] - started["audio_start_ms"], abs=2)
    assert rms_dbfs(conn.commits[0]) > -30
    assert conn.responses[0]["trigger"] == "server_vad"
    assert events[-1]["response"]["status"] == "completed"
    # what followed the stop point is still buffered
    assert len(conn.input_audio) == pytest.approx(
        len(speech_burst()) - committed_ms * 48 - 200 * 48, abs=2000
    )


async def test_fake_vad_off_and_threshold(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect()
    await client.update(ga_td_update(None))
    await client.append(speech_burst())
    marker = await client.update({"type": "realtime", "instructions": "m"})
    assert marker["type"] == "session.updated"  # no VAD events with turn_detection null
    # a quiet tone is below the threshold; a loud one is not
    await client.update(ga_td_update({"type": "server_vad", "threshold": 0.9}))
    await client.append(silence(0.3) + tone(0.5, dbfs=-40.0) + silence(0.5))
    marker = await client.update({"type": "realtime", "instructions": "m2"})
    assert marker["type"] == "session.updated"
    await client.append(tone(0.5, dbfs=-10.0) + silence(0.5))
    assert (await client.recv())["type"] == "input_audio_buffer.speech_started"


async def test_fake_vad_create_response_false_and_barge_in(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    server.reply_pace = 1.0
    server.reply_audio = tone(3.0)
    client = await connect()
    await client.update(ga_td_update({"type": "server_vad", "create_response": False}))
    await client.append(speech_burst())
    events = await client.recv_until("conversation.item.done")
    assert types(events)[0] == "input_audio_buffer.speech_started"
    await client.send({"type": "response.create"})
    await client.recv_until("response.output_audio.delta")
    # barge-in: speech cancels the running response (interrupt_response)
    await client.append(tone(0.3), chunk_ms=20)
    events = await client.recv_until("response.done")
    assert "input_audio_buffer.speech_started" in types(events)
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


async def test_fake_vad_semantic(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    client = await connect()
    await client.update(ga_td_update({"type": "semantic_vad", "create_response": False}))
    await client.append(silence(0.2) + tone(0.5) + silence(0.3))
    await client.send({"type": "session.update", "session": {"type": "realtime"}})
    events = await client.recv_until("session.updated")
    # 300 ms of silence is not enough for semantic_vad (~500 ms)
    assert types(events) == ["input_audio_buffer.speech_started", "session.updated"]
    await client.append(silence(0.3))
    events = await client.recv_until("input_audio_buffer.speech_stopped")
    assert events[-1]["audio_end_ms"] == pytest.approx(700 + 500, abs=30)  # 200 + 500 tone


async def test_idle_timeout(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    client = await connect()
    await client.update(ga_td_update({"type": "server_vad", "idle_timeout_ms": 5000}))
    await client.send({"type": "response.create"})
    await client.recv_until("rate_limits.updated")  # 500 ms of reply audio
    await client.append(silence(5.3))
    marker = await client.update({"type": "realtime", "instructions": "m"})
    assert marker["type"] == "session.updated"
    await client.append(silence(0.3))
    ev = await client.recv()
    assert ev["type"] == "input_audio_buffer.timeout_triggered"
    events = await client.recv_until("response.created")
    assert types(events)[0] == "input_audio_buffer.committed"
    assert server.connections[0].responses[-1]["trigger"] == "idle_timeout"


# ---------------------------------------------------------------- waits and faults


async def test_wait_for_client_event_and_connection(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    waiter = asyncio.ensure_future(server.wait_for_connection(2))
    c1 = await connect()
    assert not waiter.done()
    second = asyncio.ensure_future(
        server.wait_for_client_event("response.cancel", count=2, timeout=5)
    )
    c2 = await connect()
    assert (await waiter) is server.connections[1]
    await c1.send({"type": "response.cancel", "event_id": "one"})
    await c2.send({"type": "response.cancel", "event_id": "two"})
    assert (await second)["event_id"] == "two"
    # past events count too
    first = await server.wait_for_client_event("response.cancel")
    assert first["event_id"] == "one"
    pred = await server.wait_for_client_event(
        "response.cancel", predicate=lambda e: e.get("event_id") == "two"
    )
    assert pred["event_id"] == "two"
    conn2 = server.connections[1]
    assert [e["event_id"] for e in conn2.client_events] == ["two"]
    err = await conn2.wait_for_sent_event("error")
    assert err["error"]["code"] == "response_cancel_not_active"
    with pytest.raises(asyncio.TimeoutError):
        await server.wait_for_client_event("session.update", timeout=0.05)


async def test_send_event_injection(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect()
    conn = await server.wait_for_connection()
    await conn.send_event({"type": "response.output_audio.delta", "delta": "!!"})
    assert await client.recv() == {"type": "response.output_audio.delta", "delta": "!!"}
    await conn.send_text("not json at all")
    msg = await client.ws.receive()
    assert msg.data == "not json at all"


async def test_drop_connections(server: FakeRealtimeServer, connect: Callable[..., Any]) -> None:
    c1 = await connect()
    c2 = await connect()
    assert server.drop_connections() == 2
    for c in (c1, c2):
        msg = await c.ws.receive()
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert all(c.closed for c in server.connections)
    await asyncio.gather(*(c.wait_closed() for c in server.connections))
    c3 = await connect()  # the client can reconnect
    conn3 = await server.wait_for_connection(3)
    assert not conn3.closed and server.open_connections == [conn3]
    await c3.send({"type": "input_audio_buffer.clear"})
    assert (await c3.recv())["type"] == "input_audio_buffer.cleared"


async def test_server_close_and_aclose(http: aiohttp.ClientSession) -> None:
    server = FakeRealtimeServer()
    await server.start()
    ws = await http.ws_connect(server.ws_url(), headers=GA_AUTH)
    await ws.receive()
    conn = await server.wait_for_connection()
    closing = asyncio.ensure_future(conn.close(4321, "bye"))
    msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4321
    await closing
    assert conn.closed
    ws2 = await http.ws_connect(server.ws_url(), headers=GA_AUTH)
    await ws2.receive()
    await server.aclose()
    msg = await ws2.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_many_connections(server: FakeRealtimeServer, http: aiohttp.ClientSession) -> None:
    async def one(i: int) -> str:
        async with http.ws_connect(server.ws_url(), headers=GA_AUTH) as ws:
            await ws.receive()
            await ws.send_str(json.dumps({"type": "response.create"}))
            while True:
                ev = json.loads((await ws.receive()).data)
                if ev["type"] == "response.done":
                    status: str = ev["response"]["status"]
                    return status

    results = await asyncio.gather(*(one(i) for i in range(40)))
    assert results == ["completed"] * 40
    assert len(server.connections) == 40


async def test_beta_idle_timeout_and_truncation(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    client = await connect(server.azure_ws_url(api_version="2024-10-01-preview"), AZURE_AUTH)
    ev = await client.update({"turn_detection": {"type": "server_vad", "idle_timeout_ms": None}})
    assert ev["session"]["turn_detection"] == BETA_DEFAULT_TD
    # only the echoed null is known on the legacy wire
    ev = await client.update({"turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000}})
    assert ev["error"]["code"] == "unknown_parameter"
    assert ev["error"]["param"] == "session.turn_detection.idle_timeout_ms"
    ev = await client.update({"truncation": "disabled"})
    assert ev["session"]["truncation"] == "disabled" and ev["session"]["prompt"] is None


async def test_event_hooks_see_every_event(
    server: FakeRealtimeServer, connect: Callable[..., Any]
) -> None:
    seen_client: list[tuple[str, Any]] = []
    seen_server: list[str] = []

    @server.hooks.on_client_event
    def on_client(conn: Any, event: dict[str, Any], error: dict[str, Any] | None) -> None:
        seen_client.append((event["type"], error and error["code"]))

    @server.hooks.on_server_event
    def on_server(conn: Any, event: dict[str, Any]) -> None:
        assert conn is server.connections[0]
        seen_server.append(event["type"])

    client = await connect()
    await client.send({"type": "input_audio_buffer.commit"})
    await client.recv()
    await client.send({"type": "input_audio_buffer.clear"})
    await client.recv()
    conn = await server.wait_for_connection()
    await conn.send_event({"type": "injected.by.the.test"})
    await client.recv()
    assert seen_client == [
        ("input_audio_buffer.commit", "input_audio_buffer_commit_empty"),
        ("input_audio_buffer.clear", None),
    ]
    # the server's own events; one injected with send_event is the test's, not the server's
    assert seen_server == ["session.created", "error", "input_audio_buffer.cleared"]
    assert [e["type"] for e in conn.sent_events][-1] == "injected.by.the.test"
    server.hooks.remove(on_client)
    server.hooks.remove(on_server)
    await client.send({"type": "input_audio_buffer.clear"})
    await client.recv()
    assert len(seen_client) == 2 and len(seen_server) == 3


def test_server_event_validation_catches_bad_events() -> None:
    from livekit_plugins_openai_novad.testing.validation import validate_server_event

    assert (
        validate_server_event({"type": "input_audio_buffer.cleared", "event_id": "e"}, "ga") is None
    )
    missing = validate_server_event({"type": "conversation.item.truncated", "event_id": "e"}, "ga")
    assert missing is not None and "item_id" in missing
    # a GA-only name is not a legacy server event
    assert validate_server_event({"type": "conversation.item.added"}, "beta") is not None


async def test_the_suite_validates_what_servers_send(
    server: FakeRealtimeServer, connect: Callable[..., Any], server_events_valid: Any
) -> None:
    client = await connect()
    await client.send({"type": "response.create"})
    await client.recv_until("response.done")
    assert server_events_valid.checked >= len(server.connections[0].sent_events) > 5
