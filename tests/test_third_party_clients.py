"""Clients this project did not write, against the emulator: openai-python's realtime client
(GA and the beta/legacy shape) against the CLI emulator in its own process with its default
options, and upstream LiveKit's RealtimeModel (GA and Azure legacy) against it in-process.

Each one barges in the way clients do: truncate the assistant item that is playing, cancel the
response; the emulator must answer ``conversation.item.truncated`` and a cancelled
``response.done``, and never an error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

from livekit_plugins_openai_novad import session_update_payload
from livekit_plugins_openai_novad.testing import FakeRealtimeServer, tone
from livekit_plugins_openai_novad.testing.validation import validate_server_event

pytestmark = pytest.mark.timeout(60)

API_VERSION = "2024-10-01-preview"
_LISTENING = re.compile(r"listening: GA (http://\S+)/v1")


class CliEmulator:
    """``python -m livekit_plugins_openai_novad emulator`` as a subprocess."""

    def __init__(self, proc: asyncio.subprocess.Process, root: str) -> None:
        self.proc = proc
        self.root = root  # http://host:port
        self.lines: list[str] = []

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    @property
    def websocket_base_url(self) -> str:
        return self.root.replace("http://", "ws://", 1) + "/v1"

    @property
    def azure_websocket_base_url(self) -> str:
        return self.root.replace("http://", "ws://", 1) + "/openai"


@contextlib.asynccontextmanager
async def cli_emulator(*args: str) -> AsyncIterator[CliEmulator]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livekit_plugins_openai_novad",
        "emulator",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = _LISTENING.search(line)
        assert match, f"unexpected first line from the emulator: {line!r}"
        emu = CliEmulator(proc, match.group(1))

        async def drain() -> None:  # keep the pipe from filling up with the event log
            assert proc.stdout is not None
            async for raw in proc.stdout:
                emu.lines.append(raw.decode())

        drainer = asyncio.ensure_future(drain())
        try:
            yield emu
        finally:
            drainer.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


async def _until(conn: Any, type: str, seen: list[Any], wire: str = "ga") -> Any:
    """Events from an openai-python connection until one of ``type``, each one validated
    against openai-python's model of ``wire`` (the emulator runs in another process, out of
    reach of the suite's server event hook)."""
    while True:
        raw = await asyncio.wait_for(conn.recv_bytes(), 10)
        assert validate_server_event(raw, wire) is None, validate_server_event(raw, wire)
        event = conn.parse_event(raw)
        seen.append(event)
        if event.type == type:
            return event


async def _barge_in(conn: Any, wire: str) -> list[Any]:
    """Ask for a reply, then truncate the playing item and cancel, as a barge-in does."""
    seen: list[Any] = []
    await _until(conn, "session.created", seen, wire)
    # turn detection off, with the null on the wire (the package's payload as a plain dict)
    await conn.send(session_update_payload(wire=wire, turn_detection=None))
    updated = await _until(conn, "session.updated", seen, wire)
    if wire == "ga":
        assert updated.session.audio.input.turn_detection is None
    else:
        assert updated.session.turn_detection is None
    # about a second of speech, so the emulator's reply is long (about 4 s of audio) and the
    # barge-in has time to land while it is generated
    speech = base64.b64encode(tone(1.2)).decode()
    await conn.input_audio_buffer.append(audio=speech)
    await conn.input_audio_buffer.commit()
    await _until(conn, "input_audio_buffer.committed", seen, wire)
    await conn.response.create()
    audio_delta = "response.output_audio.delta" if wire == "ga" else "response.audio.delta"
    added = await _until(conn, "response.output_item.added", seen, wire)
    first = await _until(conn, audio_delta, seen, wire)
    played_ms = len(base64.b64decode(first.delta)) // 48 // 2  # half of what arrived
    await conn.conversation.item.truncate(
        item_id=added.item.id, content_index=0, audio_end_ms=played_ms
    )
    truncated = await _until(conn, "conversation.item.truncated", seen, wire)
    assert (truncated.item_id, truncated.audio_end_ms) == (added.item.id, played_ms)
    assert not any(e.type == "response.done" for e in seen)  # the reply was still streaming
    await conn.response.cancel()
    done = await _until(conn, "response.done", seen, wire)
    assert done.response.status == "cancelled"
    assert done.response.status_details.reason == "client_cancelled"
    # the session keeps working: the next reply completes
    await conn.response.create()
    again = await _until(conn, "response.done", seen, wire)
    assert again.response.status == "completed"
    assert [e for e in seen if e.type == "error"] == []
    return seen


async def test_openai_ga_client_barges_in_on_the_cli_emulator() -> None:
    async with cli_emulator() as emu:
        client = AsyncOpenAI(api_key="sk-any", base_url=emu.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await _barge_in(conn, "ga")


async def test_openai_legacy_client_barges_in_on_the_cli_emulator() -> None:
    # the beta client on Azure's legacy endpoint: OpenAI-Beta header, flat beta shapes
    async with cli_emulator() as emu:
        client = AsyncAzureOpenAI(
            api_key="azure-any",
            api_version=API_VERSION,
            azure_endpoint=emu.root,
            websocket_base_url=emu.azure_websocket_base_url,
        )
        async with client.beta.realtime.connect(model="gpt-realtime") as conn:
            await _barge_in(conn, "beta")


async def test_openai_beta_header_needs_legacy_mode() -> None:
    # the real server refuses the retired beta header on /v1; --legacy accepts it
    async with cli_emulator() as emu:
        client = AsyncOpenAI(api_key="sk-any", websocket_base_url=emu.websocket_base_url)
        async with client.beta.realtime.connect(model="gpt-realtime") as conn:
            event = await _until(conn, "error", [], "beta")
            assert event.error.code == "beta_api_shape_disabled"
    async with cli_emulator("--legacy") as emu:
        client = AsyncOpenAI(api_key="sk-any", websocket_base_url=emu.websocket_base_url)
        async with client.beta.realtime.connect(model="gpt-realtime") as conn:
            await _barge_in(conn, "beta")


async def test_cli_timing_flags() -> None:
    async with cli_emulator("--time-to-first-audio", "0", "--reply-pace", "0") as emu:
        client = AsyncOpenAI(api_key="sk-any", base_url=emu.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            seen: list[Any] = []
            await conn.response.create()
            done = await _until(conn, "response.done", seen)
            assert done.response.status == "completed"
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "livekit_plugins_openai_novad", "emulator", "--reply-pace", "-1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(bad.communicate(), 30)
    assert bad.returncode == 2 and b"--reply-pace" in err


# ---------------------------------------------------------------- upstream LiveKit plugin


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    # default (realistic) timing; a long reply, so the barge-in lands while it is generated
    async with FakeRealtimeServer(api_key="test-key", reply_audio=tone(6.0)) as srv:
        yield srv


def _upstream_model(server: FakeRealtimeServer, wire: str) -> Any:
    from livekit.plugins.openai.realtime import RealtimeModel

    if wire == "ga":
        return RealtimeModel(base_url=server.base_url, api_key="test-key", turn_detection=None)
    return RealtimeModel.with_azure(
        azure_deployment="gpt-realtime",
        azure_endpoint=server.azure_base_url.removesuffix("/openai"),
        api_key="test-key",
        api_version=API_VERSION,
        turn_detection=None,
    )


@pytest.mark.parametrize("wire", ["ga", "beta"])
async def test_upstream_livekit_plugin_barges_in(server: FakeRealtimeServer, wire: str) -> None:
    model = _upstream_model(server, wire)
    session = model.session()
    try:
        conn = await server.wait_for_connection()
        await conn.wait_for_client_event("session.update")
        await conn.wait_for_sent_event("session.updated")
        if wire == "ga":
            assert conn.turn_detection is None
        else:
            # upstream drops the null on the legacy wire, so the server keeps its VAD on, as
            # the real server would
            assert conn.turn_detection is not None
            assert conn.turn_detection["type"] == "server_vad"
        generation = asyncio.ensure_future(session.generate_reply(instructions="say hi"))
        gen = await asyncio.wait_for(generation, 10)
        message = await asyncio.wait_for(gen.message_stream.__anext__(), 10)
        audio = message.audio_stream
        await asyncio.wait_for(audio.__anext__(), 10)  # the first audio frame is playing
        session.interrupt()  # response.cancel
        session.truncate(
            message_id=message.message_id,
            modalities=["audio"],
            audio_end_ms=50,
            audio_transcript="",
        )
        truncated = await conn.wait_for_sent_event("conversation.item.truncated", timeout=10)
        assert truncated["item_id"] == message.message_id
        done = await conn.wait_for_sent_event("response.done", timeout=10)
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"
        assert [e for e in conn.sent_events if e["type"] == "error"] == []
    finally:
        await session.aclose()
        await model.aclose()
