"""The fake server's default (realistic) reply timing and barge-in mid-reply, over real sockets.

With the default timing a reply starts after a time to first audio and streams faster than real
time, so a client can truncate the item it is playing and cancel the response while it is still
being generated, as on the real server.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from livekit_plugins_openai_novad.testing import FakeRealtimeServer, tone

pytestmark = pytest.mark.timeout(30)

KEY = "test-key"
API_VERSION = "2024-10-01-preview"
REPLY_SECONDS = 6.0  # 2 s to generate at the default pace: a barge-in lands well before


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, wire: str) -> None:
        self.ws = ws
        self.wire = wire
        self.received: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(event))

    async def recv_until(self, type: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        out = []
        while True:
            msg = await self.ws.receive(timeout=timeout)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            ev: dict[str, Any] = json.loads(msg.data)
            self.received.append(ev)
            out.append(ev)
            if ev["type"] == type:
                return out

    @property
    def audio_delta(self) -> str:
        return "response.output_audio.delta" if self.wire == "ga" else "response.audio.delta"

    def audio_ms(self, events: list[dict[str, Any]]) -> int:
        pcm = b"".join(
            base64.b64decode(e["delta"]) for e in events if e["type"] == self.audio_delta
        )
        return len(pcm) // 48


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    # default timing: the point of these tests
    async with FakeRealtimeServer(api_key=KEY, reply_audio=tone(REPLY_SECONDS)) as srv:
        yield srv


@pytest.fixture
async def connect(server: FakeRealtimeServer) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as http:

        async def _connect(wire: str) -> Client:
            if wire == "ga":
                ws = await http.ws_connect(
                    server.ws_url(), headers={"Authorization": f"Bearer {KEY}"}
                )
            else:
                ws = await http.ws_connect(
                    server.azure_ws_url(api_version=API_VERSION), headers={"api-key": KEY}
                )
            client = Client(ws, wire)
            await client.recv_until("session.created")
            return client

        yield _connect


def _errors(client: Client) -> list[dict[str, Any]]:
    return [e["error"] for e in client.received if e["type"] == "error"]


@pytest.mark.parametrize("wire", ["ga", "beta"])
async def test_barge_in_mid_reply(server: FakeRealtimeServer, connect: Any, wire: str) -> None:
    client = await connect(wire)
    await client.send({"type": "response.create"})
    head = await client.recv_until(client.audio_delta)
    item_id = next(e for e in head if e["type"] == "response.output_item.added")["item"]["id"]

    # truncate what was sent but not yet played, while the reply is still streaming
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 50,
        }
    )
    events = await client.recv_until("conversation.item.truncated")
    assert events[-1]["audio_end_ms"] == 50
    assert not any(e["type"] == "response.done" for e in events)  # it landed mid-reply

    await client.send({"type": "response.cancel"})
    events = await client.recv_until("response.done")
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["id"] == item_id and done["output"][0]["status"] == "incomplete"
    sent_ms = client.audio_ms(client.received)
    assert 0 < sent_ms < REPLY_SECONDS * 1000  # the audio sent so far, not the whole reply
    assert _errors(client) == []


@pytest.mark.parametrize("wire", ["ga", "beta"])
async def test_item_holds_its_content_while_streaming(
    server: FakeRealtimeServer, connect: Any, wire: str
) -> None:
    client = await connect(wire)
    conn = await server.wait_for_connection()
    await client.send({"type": "response.create"})
    head = await client.recv_until(client.audio_delta)
    item_id = next(e for e in head if e["type"] == "response.output_item.added")["item"]["id"]
    await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
    item = (await client.recv_until("conversation.item.retrieved"))[-1]["item"]
    assert item["status"] == "in_progress" and item["role"] == "assistant"
    assert [c["type"] for c in item["content"]] == ["output_audio" if wire == "ga" else "audio"]
    assert conn.active_response is not None  # still generating

    done = (await client.recv_until("response.done"))[-1]["response"]
    assert done["status"] == "completed"
    assert client.audio_ms(client.received) == REPLY_SECONDS * 1000
    assert _errors(client) == []


async def test_a_truncated_streaming_item_stays_truncated(
    server: FakeRealtimeServer, connect: Any
) -> None:
    server.reply_text = "one two three four five six"
    client = await connect("ga")
    await client.send({"type": "response.create"})
    head = await client.recv_until("response.output_audio.delta")
    item_id = next(e for e in head if e["type"] == "response.output_item.added")["item"]["id"]
    truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
    await client.send({**truncate, "audio_end_ms": 40})
    await client.recv_until("conversation.item.truncated")
    await client.recv_until("response.done")  # the response itself is left to finish
    await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
    item = (await client.recv_until("conversation.item.retrieved"))[-1]["item"]
    assert item["content"] == [{"type": "output_audio", "transcript": ""}]
    # the item's audio now ends at the truncation point
    await client.send({**truncate, "audio_end_ms": 100, "event_id": "past_end"})
    err = (await client.recv_until("error"))[-1]["error"]
    assert err["event_id"] == "past_end" and err["param"] == "audio_end_ms"


async def test_cancel_before_the_first_audio(server: FakeRealtimeServer, connect: Any) -> None:
    server.time_to_first_audio = 5.0  # the test cancels inside this window
    client = await connect("ga")
    await client.send({"type": "response.create"})
    await client.recv_until("response.created")
    await client.send({"type": "response.cancel"})
    events = await client.recv_until("response.done")
    assert [e["type"] for e in events] == ["response.done"]
    done = events[-1]["response"]
    assert done["status"] == "cancelled" and done["output"] == []
    assert _errors(client) == []


async def test_time_to_first_audio_is_waited(server: FakeRealtimeServer, connect: Any) -> None:
    loop_time = asyncio.get_running_loop().time
    client = await connect("ga")
    t_sent = loop_time()  # before the server's clock starts (at response.created)
    await client.send({"type": "response.create"})
    await client.recv_until("response.output_audio.delta")
    # a lower bound only: load can make it later, never earlier
    assert loop_time() - t_sent >= server.time_to_first_audio
