"""Hardening: reconnects mid-turn and mid-reply, rejected updates, malformed server events
(hypothesis), a 1,000-toggle soak under live audio, and API-key / task hygiene.

Real sockets on 127.0.0.1 against the fake server, real Silero; waits are event driven.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import logging
import time
import tracemalloc
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from agent_harness import AgentRun, agent_run
from conftest import (
    FIXTURES,
    session_updates,
    speech_segments,
    until_confirmed,
    wire_turn_detection,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.llm._realtime import openai as upstream_impl

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.client_vad import ClientTurnDetector, GateAction
from livekit_plugins_openai_novad.testing import INSTANT, FakeConnection, FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav

KEY = "sk-test-SECRET-12345"
SR = 24000
_CHUNK_BYTES = SR * 2 // 10  # the session appends audio in 100 ms chunks
API_VERSION = "2024-10-01-preview"
_FATAL_CODES = (
    "insufficient_quota",
    "credit_balance_exhausted",
    "invalid_api_key",
    "account_deactivated",
    "billing_hard_limit_reached",
)


# ------------------------------------------------------------------------------- helpers


def _model(server: FakeRealtimeServer, wire: str = "ga", **kwargs: Any) -> novad.RealtimeModel:
    if wire == "ga":
        return novad.RealtimeModel(base_url=server.base_url, api_key=KEY, **kwargs)
    return novad.RealtimeModel(
        base_url=server.azure_base_url,
        api_key=KEY,
        azure_deployment="gpt-realtime",
        api_version=API_VERSION,
        **kwargs,
    )


def _frame(pcm: bytes) -> rtc.AudioFrame:
    return rtc.AudioFrame(
        data=pcm, sample_rate=SR, num_channels=1, samples_per_channel=len(pcm) // 2
    )


@contextlib.contextmanager
def _next_event(
    emitter: Any, name: str, predicate: Callable[[Any], bool] | None = None
) -> Iterator[asyncio.Future[Any]]:
    """A future for the next ``name`` event of ``emitter`` (registered before the action)."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on(ev: Any = None) -> None:
        if not fut.done() and (predicate is None or predicate(ev)):
            fut.set_result(ev)

    emitter.on(name, on)
    try:
        yield fut
    finally:
        emitter.off(name, on)


@contextlib.contextmanager
def _loop_exceptions(loop: asyncio.AbstractEventLoop | None = None) -> Iterator[list[Any]]:
    """Records what reaches the loop's exception handler (e.g. a task or future whose
    exception was never retrieved) instead of only logging it."""
    loop = loop or asyncio.get_running_loop()
    seen: list[Any] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


def _assert_no_unhandled(seen: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    gc.collect()  # "exception was never retrieved" is reported when the object is collected
    assert not seen, [c.get("message") for c in seen]
    asyncio_errors = [
        r.getMessage() for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR
    ]
    assert not asyncio_errors
    never_retrieved = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not never_retrieved


@contextlib.asynccontextmanager
async def _agent(server: FakeRealtimeServer, **session_kwargs: Any) -> AsyncIterator[AgentRun]:
    model = novad.RealtimeModel(base_url=server.base_url, api_key=KEY)
    async with agent_run(server, model=model, session=AgentSession(**session_kwargs)) as run:
        yield run


def _types(conn: FakeConnection, *kinds: str) -> list[dict[str, Any]]:
    return [e for e in conn.client_events if e.get("type") in kinds]


# ------------------------------------------------------------ 1. reconnect mid-turn / mid-reply


@pytest.mark.timeout(60)
async def test_reconnect_mid_turn_answers_once(caplog: pytest.LogCaptureFixture) -> None:
    wav = read_wav(FIXTURES / "one_turn.wav")
    ((_, last_voiced),) = speech_segments("one_turn.wav")
    with _loop_exceptions() as unhandled:
        async with FakeRealtimeServer(api_key=KEY) as server, _agent(server) as run:
            rt = run.rt_session
            assert rt.turn_taking_mode == "client_vad"
            speech_starts: list[float] = []
            rt.on("input_speech_started", lambda _: speech_starts.append(time.monotonic()))

            run.mic.play(wav)
            # half a second of the turn has reached the server: drop the socket mid-turn
            await run.conn.wait_for_client_event("input_audio_buffer.append", count=8, timeout=30)
            assert run.session.user_state == "speaking"
            with _next_event(rt, "session_reconnected") as reconnected:
                assert server.drop_connections() == 1
                conn2 = await server.wait_for_connection(2)
                await asyncio.wait_for(reconnected, 10)

            # the new socket starts with a full update that says null explicitly
            first = await conn2.wait_for_client_event(None)
            assert first["type"] == "session.update"
            text, update = session_updates(conn2)[0]
            assert '"turn_detection": null' in text
            assert wire_turn_detection("ga", update) == (True, None)
            assert rt.turn_taking_mode == "client_vad"

            await conn2.wait_for_client_event("response.create", timeout=30)
            await run.mic.wait_drained()
            # a round trip: whatever the session queued before it has reached the server
            await rt.set_turn_detection(novad.ServerVad())
            await conn2.wait_for_sent_event("response.done", timeout=10)

            # the old socket saw half a turn and no commit; the new one exactly one turn + reply
            assert not _types(run.conn, "input_audio_buffer.commit", "response.create")
            assert not run.conn.responses
            assert len(_types(conn2, "input_audio_buffer.commit")) == 1
            assert len(_types(conn2, "response.create")) == 1
            assert [r["status"] for r in conn2.responses] == ["completed"]
            # the rest of the speech was detected afresh by the reset detector
            assert len(speech_starts) == 2
            # what was committed is a contiguous piece of the clip, through its last word
            (committed,) = conn2.commits
            pos = wav.find(committed)
            assert pos >= 0 and pos % 2 == 0
            assert (pos + len(committed)) // 2 > last_voiced
            # the half turn the old socket left in the new one's buffer was cleared first
            kinds = [e["type"] for e in conn2.client_events]
            assert "input_audio_buffer.clear" in kinds
            assert kinds.index("input_audio_buffer.clear") < kinds.index(
                "input_audio_buffer.commit"
            )
        _assert_no_unhandled(unhandled, caplog)


@pytest.mark.timeout(60)
async def test_reconnect_before_reply_done_resends_turn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    long_reply = read_wav(FIXTURES / "long_turn.wav")
    with _loop_exceptions() as unhandled:
        async with (
            FakeRealtimeServer(api_key=KEY, reply_audio=long_reply, reply_pace=1.0) as server,
            _agent(server) as run,
        ):
            rt = run.rt_session
            generations: list[str] = []
            rt.on("generation_created", lambda ev: generations.append(ev.response_id))

            with _next_event(rt, "generation_created") as created:
                run.mic.play(read_wav(FIXTURES / "one_turn.wav"))
                await run.conn.wait_for_client_event("response.create", timeout=30)
                # the agent has the reply (a preemptive one is released at the window's end)
                await asyncio.wait_for(created, 10)
            # the reply is streaming (real-time paced, 5 s long): drop before its response.done
            await run.conn.wait_for_sent_event("response.output_audio.delta", timeout=10)
            assert run.conn.active_response is not None
            with _next_event(rt, "session_reconnected") as reconnected:
                server.drop_connections()
                server.reply_pace = 0.0  # the new socket's reply need not take 5 s
                conn2 = await server.wait_for_connection(2)
                await asyncio.wait_for(reconnected, 10)

            first = await conn2.wait_for_client_event(None)
            assert first["type"] == "session.update"
            text, update = session_updates(conn2)[0]
            assert '"turn_detection": null' in text
            assert wire_turn_detection("ga", update) == (True, None)

            await conn2.wait_for_sent_event("response.done", timeout=10)
            await run.mic.wait_drained()
            await rt.set_turn_detection(novad.ServerVad())  # round trip after everything

            # the lost reply: one commit + one response.create, never done
            assert len(_types(run.conn, "input_audio_buffer.commit")) == 1
            assert len(_types(run.conn, "response.create")) == 1
            assert [r["status"] for r in run.conn.responses] == ["in_progress"]
            # re-sent once, byte for byte, and answered once
            assert len(_types(conn2, "input_audio_buffer.commit")) == 1
            assert len(_types(conn2, "response.create")) == 1
            assert conn2.commits == run.conn.commits
            assert [r["status"] for r in conn2.responses] == ["completed"]
            # the new conversation holds the user's turn once (the re-sent audio), not also
            # the replayed transcript of the same turn
            user_items = [i for i in conn2.conversation if i.get("role") == "user"]
            assert len(user_items) == 1, user_items
            assert user_items[0]["content"][0]["type"] == "input_audio"
            # the agent got the new reply
            assert generations == [run.conn.responses[0]["id"], conn2.responses[0]["id"]]
        _assert_no_unhandled(unhandled, caplog)


# ------------------------------------------------------------ 2. a rejected session.update


@pytest.mark.timeout(60)
@pytest.mark.parametrize("wire", ["ga", "beta"])
async def test_rejected_update_is_a_recoverable_error(
    wire: str, caplog: pytest.LogCaptureFixture
) -> None:
    param = "session.audio.output.voice" if wire == "ga" else "session.voice"
    wav = read_wav(FIXTURES / "one_turn.wav")
    with _loop_exceptions() as unhandled:
        async with FakeRealtimeServer(api_key=KEY) as server:
            model = _model(server, wire)
            session = model.session()
            errors: list[Any] = []
            session.on("error", errors.append)
            try:
                conn = await server.wait_for_connection()
                await until_confirmed(session)
                server.reject_fields = {param: ("invalid_value", "Voice 'ash' is not available.")}
                with _next_event(session, "error") as error:
                    session.update_options(voice="ash")
                    err = await asyncio.wait_for(error, 5)
                assert err.recoverable
                assert "invalid_value" in str(err.error) and param in str(err.error)
                assert errors == [err]
                # the session lives on, on the same socket (the round trip below proves it)
                assert len(server.connections) == 1

                server.reject_fields = {}
                confirmed = await session.set_turn_detection(
                    novad.ServerVad(silence_duration_ms=640)
                )
                assert confirmed is not None and confirmed.silence_duration_ms == 640
                assert conn.turn_detection is not None
                assert conn.turn_detection["silence_duration_ms"] == 640

                # audio still flows: the server VAD hears the turn and answers it ...
                before = conn.appended_bytes
                for i in range(0, len(wav) - 479, 480):
                    session.push_audio(_frame(wav[i : i + 480]))
                pushed = len(wav) // 480 * 480
                await conn.wait_for_sent_event("input_audio_buffer.speech_stopped", timeout=10)
                await conn.wait_for_sent_event("response.done", timeout=10)
                # ... and back to client VAD, where Silero does (the update is a round trip:
                # every append queued before it has been received)
                assert await session.set_turn_detection(None) is None
                # every byte went on, but for what waits in the 100 ms chunker
                assert 0 <= pushed - (conn.appended_bytes - before) < _CHUNK_BYTES
                for i in range(0, len(wav) - 479, 480):
                    session.push_audio(_frame(wav[i : i + 480]))
                await conn.wait_for_client_event("response.create", timeout=10)
                await conn.wait_for_sent_event("response.done", count=2, timeout=10)
                assert [r["trigger"] for r in conn.responses] == ["server_vad", "client"]
                assert errors == [err]
            finally:
                await session.aclose()
                await model.aclose()
        _assert_no_unhandled(unhandled, caplog)


# ------------------------------------------------------------ 3. malformed server events


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
_SCALAR = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _TEXT
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=4,
)
# few ids, so that events refer to each other (an item added, then audio for it, ...)
_ID = st.sampled_from(["item_a", "item_b", "resp_a", "resp_b", ""]) | _TEXT
_B64 = st.binary(max_size=48).map(lambda b: base64.b64encode(b).decode())
_STATUS = st.sampled_from(["completed", "failed", "cancelled", "incomplete", "in_progress"])

_TURN_DETECTION = (
    st.none()
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["server_vad", "semantic_vad", "bogus"]) | _JSON},
        optional={
            "threshold": st.floats() | _JSON,
            "silence_duration_ms": st.integers() | _JSON,
            "eagerness": st.sampled_from(["low", "auto", "x"]) | _JSON,
            "create_response": _JSON,
        },
    )
    | _JSON
)
_SESSION = (
    st.fixed_dictionaries(
        {
            "audio": st.fixed_dictionaries(
                {"input": st.fixed_dictionaries({"turn_detection": _TURN_DETECTION})}
            )
        },
        optional={"type": st.just("realtime") | _JSON},
    )
    | st.fixed_dictionaries({}, optional={"turn_detection": _TURN_DETECTION, "audio": _JSON})
    | _JSON
)
_ERROR_BODY = st.fixed_dictionaries(
    {},
    optional={
        "type": _TEXT | _JSON,
        "code": _TEXT | _JSON,
        "message": _TEXT | _JSON,
        "param": _TEXT | _JSON,
        "event_id": _TEXT | _JSON,
    },
)
_RESPONSE = (
    st.fixed_dictionaries(
        {"id": _ID},
        optional={
            "status": _STATUS | _JSON,
            "status_details": st.fixed_dictionaries(
                {}, optional={"type": _JSON, "reason": _JSON, "error": _ERROR_BODY | _JSON}
            )
            | _JSON,
            "usage": _JSON,
            "metadata": _JSON,
        },
    )
    | _JSON
)
_CONTENT = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["input_audio", "input_text", "output_audio", "text"]) | _JSON,
        "transcript": _TEXT | _JSON,
    },
)
_ITEM = (
    st.fixed_dictionaries(
        {},
        optional={
            "id": _ID | _JSON,
            "type": st.sampled_from(["message", "function_call"]) | _JSON,
            "role": st.sampled_from(["user", "assistant", "system"]) | _JSON,
            "status": _STATUS | _JSON,
            "content": st.lists(_CONTENT, max_size=2) | _JSON,
            "call_id": _JSON,
            "name": _JSON,
            "arguments": _JSON,
        },
    )
    | _JSON
)
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": _TEXT | _JSON,
    "session": _SESSION,
    "response": _RESPONSE,
    "item": _ITEM,
    "part": st.fixed_dictionaries({}, optional={"type": _JSON, "transcript": _JSON}) | _JSON,
    "error": _ERROR_BODY | _JSON,
    "item_id": _ID | _JSON,
    "response_id": _ID | _JSON,
    "previous_item_id": _ID | _JSON,
    "call_id": _ID | _JSON,
    "name": _TEXT | _JSON,
    "arguments": _TEXT | _JSON,
    "delta": _B64 | _TEXT | _JSON,
    "transcript": _TEXT | _JSON,
    "text": _TEXT | _JSON,
    "output_index": _JSON,
    "content_index": _JSON,
    "audio_start_ms": _JSON,
    "audio_end_ms": _JSON,
    "usage": _JSON,
    "logprobs": _JSON,
    "start_time": _JSON,
    "rate_limits": _JSON,
}
_PART = ["response_id", "item_id", "output_index", "content_index"]
# server event types with the fields each carries; every field may be missing or mistyped
_KNOWN: dict[str, list[str]] = {
    "session.created": ["session"],
    "session.updated": ["session"],
    "error": ["error"],
    "response.created": ["response"],
    "response.done": ["response"],
    "response.output_item.added": ["response_id", "output_index", "item"],
    "response.output_item.done": ["response_id", "output_index", "item"],
    "response.content_part.added": [*_PART, "part"],
    "response.content_part.done": [*_PART, "part"],
    "response.output_audio.delta": [*_PART, "delta"],
    "response.output_audio.done": _PART,
    "response.output_audio_transcript.delta": [*_PART, "delta", "start_time"],
    "response.output_audio_transcript.done": [*_PART, "transcript"],
    "response.output_text.delta": [*_PART, "delta"],
    "response.output_text.done": [*_PART, "text"],
    "response.function_call_arguments.delta": ["response_id", "item_id", "call_id", "delta"],
    "response.function_call_arguments.done": ["response_id", "item_id", "call_id", "arguments"],
    "conversation.item.added": ["previous_item_id", "item"],
    "conversation.item.done": ["previous_item_id", "item"],
    "conversation.item.created": ["previous_item_id", "item"],
    "conversation.item.deleted": ["item_id"],
    "conversation.item.truncated": ["item_id", "content_index", "audio_end_ms"],
    "conversation.item.input_audio_transcription.delta": [
        "item_id",
        "content_index",
        "delta",
        "logprobs",
    ],
    "conversation.item.input_audio_transcription.completed": [
        "item_id",
        "content_index",
        "transcript",
        "logprobs",
        "usage",
    ],
    "conversation.item.input_audio_transcription.failed": ["item_id", "content_index", "error"],
    "input_audio_buffer.speech_started": ["item_id", "audio_start_ms"],
    "input_audio_buffer.speech_stopped": ["item_id", "audio_end_ms"],
    "input_audio_buffer.committed": ["item_id", "previous_item_id"],
    "input_audio_buffer.cleared": [],
    "input_audio_buffer.timeout_triggered": ["item_id", "audio_start_ms", "audio_end_ms"],
    "output_audio_buffer.started": ["response_id"],
    "rate_limits.updated": ["rate_limits"],
}


def _event(type_: st.SearchStrategy[Any], fields: list[str]) -> st.SearchStrategy[Any]:
    optional = {f: _FIELDS[f] for f in ["event_id", *fields]}
    return st.fixed_dictionaries({"type": type_}, optional=optional)


_KNOWN_EVENT = st.one_of(*(_event(st.just(t), f) for t, f in _KNOWN.items()))
_FRAMES = st.one_of(
    _KNOWN_EVENT,  # known types, fields missing or of the wrong type (twice as likely)
    _KNOWN_EVENT,
    _event(_TEXT.filter(lambda t: t not in _KNOWN), ["item_id", "delta"]),  # unknown types
    _event(_JSON.filter(lambda t: not isinstance(t, str)), ["item_id"]),  # `type` not a string
    st.fixed_dictionaries({}, optional={"event_id": _JSON, "item": _ITEM}),  # no `type`
    _JSON,  # any JSON value (a string is sent as a raw, non-JSON text frame)
    _TEXT.map(lambda t: "\x00" + t),  # not JSON
    _KNOWN_EVENT.map(lambda e: json.dumps(e)[:-1]),  # cut-off JSON
)


def _survives_sanitizer(frame: Any) -> bool:
    """Whether the session's socket wrapper hands the frame to the event handlers."""
    if isinstance(frame, str):
        try:
            frame = json.loads(frame)
        except ValueError:
            return False
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return False
    return not (frame["type"].endswith("audio.delta") and not isinstance(frame.get("delta"), str))


def _is_fatal(frame: Any) -> bool:
    # quota / auth codes end a session by design (upstream stops reconnecting on them)
    text = frame if isinstance(frame, str) else json.dumps(frame)
    return any(code in text for code in _FATAL_CODES)


_MARKER = "novad.test.marker"
# responses that end failed / incomplete (always in the run, whatever hypothesis draws)
_FAILED_RESPONSES = [
    {"type": "response.created", "response": {"id": "resp_f", "status": "in_progress"}},
    {
        "type": "response.done",
        "response": {
            "id": "resp_f",
            "status": "failed",
            "status_details": {
                "type": "failed",
                "error": {"type": "server_error", "code": "server_error", "message": "boom"},
            },
        },
    },
    {"type": "response.created", "response": {"id": "resp_i"}},
    {
        "type": "response.done",
        "response": {
            "id": "resp_i",
            "status": "incomplete",
            "status_details": {"type": "incomplete", "reason": "max_output_tokens"},
        },
    },
]


class _FuzzTarget:
    """A session on the fake server, fed arbitrary frames through its real socket."""

    def __init__(self, unhandled: list[Any]) -> None:
        self.unhandled = unhandled
        self.server = FakeRealtimeServer(api_key=KEY, record_events=False)
        self.model: novad.RealtimeModel | None = None
        self.session: novad.RealtimeSession | None = None
        self.frames = 0
        self.batches = 0
        self.errors: list[Any] = []
        self._received = 0
        self._marker: asyncio.Future[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        self.model = _model(self.server)
        self.session = self.model.session()
        self.session.on("openai_server_event_received", self._on_event)
        self.session.on("error", self.errors.append)
        self.conn = await self.server.wait_for_connection()
        await until_confirmed(self.session)

    def _on_event(self, event: dict[str, Any]) -> None:
        self._received += 1
        if event.get("type") == _MARKER and self._marker is not None:
            if not self._marker.done():
                self._marker.set_result(None)

    async def feed(self, batch: list[Any]) -> None:
        session = self.session
        assert session is not None
        self.batches += 1
        self._received = 0
        expected = 0
        for frame in batch:
            if isinstance(frame, str):
                await self.conn.send_text(frame)
            else:
                await self.conn.send_event(frame)
            expected += _survives_sanitizer(frame)
        # the marker follows the batch on the same socket: once the session has read it, it
        # has read (and handled) the whole batch
        self._marker = asyncio.get_running_loop().create_future()
        await self.conn.send_event({"type": _MARKER, "n": self.batches})
        await asyncio.wait_for(self._marker, 5)
        self.frames += len(batch)
        # every well-formed event reached the handlers; only the unusable frames were dropped
        assert self._received == expected + 1

        # nothing failed unseen (a dropped generation's exception is reported at once)
        assert not self.unhandled, [c.get("message") for c in self.unhandled]
        # alive, on the same socket, and a turn-detection change still round-trips
        assert len(self.server.connections) == 1 and not self.conn.closed
        target = (
            None
            if self.batches % 2
            else novad.ServerVad(silence_duration_ms=300 + self.batches % 500)
        )
        confirmed = await session.set_turn_detection(target)
        if target is None:
            assert confirmed is None and self.conn.turn_detection is None
        else:
            assert confirmed is not None
            assert confirmed.silence_duration_ms == target.silence_duration_ms
        assert session.turn_detection_confirmed

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.aclose()
        if self.model is not None:
            await self.model.aclose()
        await self.server.aclose()


@pytest.mark.timeout(150)
def test_malformed_and_unknown_server_events(caplog: pytest.LogCaptureFixture) -> None:
    # (sync test on its own loop, so that hypothesis drives the examples and can shrink a
    # failing batch; the session lives across examples and runs while each one is fed)
    caplog.set_level(logging.ERROR)
    loop = asyncio.new_event_loop()
    with _loop_exceptions(loop) as unhandled:
        target = _FuzzTarget(unhandled)
        try:
            loop.run_until_complete(target.start())

            @settings(
                max_examples=400,
                deadline=None,
                database=None,
                print_blob=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(st.lists(_FRAMES.filter(lambda f: not _is_fatal(f)), min_size=25, max_size=40))
            @example(_FAILED_RESPONSES)
            def feed(batch: list[Any]) -> None:
                loop.run_until_complete(target.feed(batch))

            while target.frames < 10_000:
                feed()

            assert target.session is not None
            # alive: a turn-detection change still round-trips on the same socket
            assert loop.run_until_complete(target.session.set_turn_detection(None)) is None
            assert len(target.server.connections) == 1
            # fuzzed `error` events surface as recoverable errors; none ended the session
            assert target.errors and all(e.recoverable for e in target.errors)
        finally:
            loop.run_until_complete(target.aclose())
            loop.close()
        _assert_no_unhandled(unhandled, caplog)
    assert target.frames >= 10_000


# ------------------------------------------------------------ 4. soak: 1,000 toggles


@pytest.mark.timeout(150)
async def test_soak_thousand_toggles_under_live_audio(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame_bytes = 480  # 10 ms
    pcm = read_wav(FIXTURES / "three_turns.wav")
    frames = [pcm[i : i + frame_bytes] for i in range(0, len(pcm) - frame_bytes + 1, frame_bytes)]
    n_toggles, warmup = 1000, 100

    with _loop_exceptions() as unhandled:
        # instant replies: this soaks the switching; a turn ending while a paced server-VAD
        # reply is still active is answered after it (tests/test_no_turn_lost.py)
        async with FakeRealtimeServer(api_key=KEY, record_events=False, **INSTANT) as server:
            model = _model(server)
            session = model.session()
            mismatches: list[Any] = []
            confirmations = 0  # counted, not kept: the memory check is about the session
            errors: list[Any] = []
            session.on("turn_detection_mismatch", mismatches.append)

            def on_confirmed(_: Any) -> None:
                nonlocal confirmations
                confirmations += 1

            session.on("turn_detection_confirmed", on_confirmed)
            session.on("error", errors.append)
            try:
                conn = await server.wait_for_connection()
                await until_confirmed(session)
                assert session.turn_taking_mode == "client_vad"

                # stretch k = audio between toggle k and toggle k+1; 0 = before the first
                stretch = 0
                modes: dict[int, str] = {0: "client_vad"}
                pushed: defaultdict[int, int] = defaultdict(int)
                forwarded: defaultdict[int, int] = defaultdict(int)
                gate_sent: defaultdict[int, int] = defaultdict(int)
                mid_turn: dict[int, bool] = {}
                user_speaking = False

                def on_speech(started: bool) -> None:
                    nonlocal user_speaking
                    user_speaking = started

                session.on("input_speech_started", lambda _: on_speech(True))
                session.on("input_speech_stopped", lambda _: on_speech(False))
                wire_stretch = 0
                queued_bytes = 0

                def on_queued(event: dict[str, Any]) -> None:
                    nonlocal wire_stretch, queued_bytes
                    kind = event.get("type")
                    if kind == "session.update":
                        wire_stretch += 1
                    elif kind == "input_audio_buffer.append":
                        n = len(base64.b64decode(event["audio"]))
                        forwarded[wire_stretch] += n
                        queued_bytes += n

                session.on("openai_client_event_queued", on_queued)

                gate_push = ClientTurnDetector.push

                def counted_push(det: ClientTurnDetector, data: bytes) -> list[Any]:
                    """What the gate lets through, per stretch."""
                    actions = gate_push(det, data)
                    gate_sent[stretch] += sum(len(d) for a, d in actions if a is GateAction.SEND)
                    return actions

                monkeypatch.setattr(ClientTurnDetector, "push", counted_push)
                stop = asyncio.Event()

                async def pusher() -> None:
                    i = 0
                    while not stop.is_set():
                        for _ in range(4):  # 40 ms per tick, faster than real time
                            f = frames[i % len(frames)]
                            i += 1
                            pushed[stretch] += len(f)
                            session.push_audio(_frame(f))
                        await asyncio.sleep(0)

                push_task = asyncio.create_task(pusher())
                tasks_before = mem_before = 0
                t0 = time.monotonic()
                for k in range(1, n_toggles + 1):
                    if k == warmup + 1:
                        gc.collect()
                        tasks_before = len(asyncio.all_tasks())
                        tracemalloc.start()
                        mem_before = _session_memory()
                    target = (
                        novad.ServerVad(silence_duration_ms=200 + (k * 37) % 800) if k % 2 else None
                    )
                    # in a turn the gate forwards every byte at once: nothing is held back,
                    # so a switch mid-turn carries no tail over; count those switches
                    mid_turn[k - 1] = modes[k - 1] == "client_vad" and user_speaking
                    stretch = k
                    modes[k] = "server" if target is not None else "client_vad"
                    confirmed = await session.set_turn_detection(target)
                    if target is None:
                        assert confirmed is None
                    else:
                        assert confirmed is not None
                        assert confirmed.silence_duration_ms == target.silence_duration_ms
                    assert session.turn_taking_mode == modes[k]
                    if k % 25 == 0:
                        # now and then a long stretch: the audio runs until a turn is committed
                        # (by the server's VAD, or by Silero here)
                        await conn.wait_for_sent_event("input_audio_buffer.committed", timeout=15)
                stop.set()
                await push_task
                # a last round trip: every append queued before it has reached the server
                await session.set_turn_detection(novad.ServerVad())
                soak_s = time.monotonic() - t0

                gc.collect()
                mem_after = _session_memory()
                tracemalloc.stop()
                tasks_after = len(asyncio.all_tasks())

                # every toggle confirmed, none mismatched, no error
                assert confirmations == n_toggles + 2  # + the initial and the last
                assert not mismatches and not errors, (mismatches, errors)
                assert wire_stretch == n_toggles + 1
                # nothing lost on the wire
                assert conn.appended_bytes == queued_bytes
                total_pushed = sum(pushed.values())
                assert total_pushed > 50 * SR * 2, "too little audio to call it a soak"
                for k in range(n_toggles + 1):
                    # what waits in the 100 ms chunker at a switch: to server VAD it goes on,
                    # to client VAD it is cleared with the server's buffer
                    if modes[k] == "server":
                        # every byte pushed in server mode is forwarded, in 100 ms chunks
                        assert abs(forwarded[k] - pushed[k]) < _CHUNK_BYTES * 2, k
                    else:
                        # the gate forwards a subset, and all of what it lets through
                        assert 0 <= gate_sent[k] - forwarded[k] < _CHUNK_BYTES, k
                        assert gate_sent[k] <= pushed[k], k
                # server VAD took over in the middle of client turns, with speech in the gate
                assert sum(1 for v in mid_turn.values() if v) > 10
                # server mode forwarded audio, and the gate both sent and withheld some
                assert sum(forwarded[k] for k in modes if modes[k] == "server") > 0
                gated = [k for k in modes if modes[k] == "client_vad"]
                assert 0 < sum(gate_sent[k] for k in gated) < sum(pushed[k] for k in gated)
                assert len(conn.commits) > 0

                # no task or memory growth after the warm-up
                assert tasks_after <= tasks_before, (tasks_before, tasks_after)
                assert mem_after - mem_before < 1024 * 1024, (mem_before, mem_after)
                assert soak_s < 120
            finally:
                if tracemalloc.is_tracing():
                    tracemalloc.stop()
                await session.aclose()
                await model.aclose()
        _assert_no_unhandled(unhandled, caplog)


def _session_memory() -> int:
    """Traced bytes still allocated, minus the fake server's own records and this test's."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(False, "*/testing/fake_server.py"),
            tracemalloc.Filter(False, "*/testing/_*.py"),  # the fake server's parts
            tracemalloc.Filter(False, __file__),
            tracemalloc.Filter(False, tracemalloc.__file__),
        ]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


# ------------------------------------------------------------ 5. API key and task hygiene


@pytest.mark.timeout(60)
async def test_key_never_logged_and_aclose_leaves_no_tasks(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("livekit", "livekit.agents", "livekit.plugins.openai_novad", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    monkeypatch.setattr(upstream_impl, "lk_oai_debug", 1)  # upstream's event-level logging
    wav = read_wav(FIXTURES / "short_word.wav")

    with _loop_exceptions() as unhandled:
        async with FakeRealtimeServer(api_key=KEY) as server:
            tasks_before = asyncio.all_tasks()
            model = _model(server)
            session = model.session()
            errors: list[Any] = []
            session.on("error", errors.append)
            conn = await server.wait_for_connection()
            await until_confirmed(session)
            assert conn.headers.get("Authorization") == f"Bearer {KEY}"  # the key was used

            # a rejected update
            server.reject_fields = {
                "session.audio.output.voice": ("invalid_value", "Voice 'ash' is not available.")
            }
            with _next_event(session, "error") as error:
                session.update_options(voice="ash")
                await asyncio.wait_for(error, 5)
            server.reject_fields = {}
            # a malformed frame and an unknown event
            await conn.send_text("{not json")
            await conn.send_event({"type": "response.output_audio.delta", "delta": 7})
            # a dropped socket and the reconnect
            with _next_event(session, "session_reconnected") as reconnected:
                server.drop_connections()
                conn2 = await server.wait_for_connection(2)
                await asyncio.wait_for(reconnected, 10)
            assert conn2.headers.get("Authorization") == f"Bearer {KEY}"
            await until_confirmed(session)
            # audio in both modes
            for i in range(0, len(wav) - 479, 480):
                session.push_audio(_frame(wav[i : i + 480]))
            await conn2.wait_for_client_event("response.create", timeout=10)
            await session.set_turn_detection(novad.ServerVad())
            for i in range(0, len(wav) - 479, 480):
                session.push_audio(_frame(wav[i : i + 480]))
            await session.set_turn_detection(None)

            for obj in (model, session, session.capabilities):
                assert KEY not in repr(obj) and KEY not in str(obj)
            assert errors and all(KEY not in repr(e) for e in errors)

            await session.aclose()
            await model.aclose()
            for c in server.connections:
                await c.wait_closed()  # the server side of each socket is done too
            current = asyncio.current_task()
            left = {t for t in asyncio.all_tasks() - tasks_before if t is not current}
            if left:  # a short, event-driven settle
                await asyncio.wait(left, timeout=2)
            pending = [t for t in left if not t.done()]
            assert not pending, pending
        _assert_no_unhandled(unhandled, caplog)

    # the logs saw all of it (rejection, reconnect, events) but never the key
    messages = [r.getMessage() for r in caplog.records]
    assert any("rejected session.update" in m for m in messages)
    assert any("reconnect" in m for m in messages)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.__dict__)
    assert "SECRET-12345" not in caplog.text


@pytest.mark.timeout(60)
async def test_rejected_option_is_undone_so_a_retry_is_sent() -> None:
    """A rejected voice change is not believed: asking again sends it again."""
    from conftest import make_model

    async with FakeRealtimeServer() as server:
        model = make_model(server, "ga")
        session = model.session()
        errors: list[object] = []
        session.on("error", errors.append)
        try:
            conn = await server.wait_for_connection()
            await session.set_turn_detection(novad.ServerVad())
            server.reject_fields = {
                "session.audio.output.voice": ("invalid_value", "voice is locked")
            }
            session.update_options(voice="cedar")
            await conn.wait_for_sent_event("error", timeout=5)
            await session.set_turn_detection(None)  # a round trip after the rejection
            assert errors
            server.reject_fields = {}
            session.update_options(voice="cedar")
            await session.set_turn_detection(novad.ServerVad())
            voices = [
                e["session"]["audio"]["output"]["voice"]
                for e in conn.client_events
                if e["type"] == "session.update"
                and "output" in (e["session"].get("audio") or {})
                and "voice" in e["session"]["audio"]["output"]
            ]
            assert voices[-2:] == ["cedar", "cedar"]
            assert conn.session["audio"]["output"]["voice"] == "cedar"
        finally:
            await session.aclose()
            await model.aclose()


@pytest.mark.timeout(60)
async def test_turn_ending_while_the_socket_is_down_is_sent_once_whole() -> None:
    from conftest import make_model

    pcm = read_wav(FIXTURES / "one_turn.wav")
    (first, last), = speech_segments("one_turn.wav")
    async with FakeRealtimeServer() as server:
        model = make_model(server, "ga")
        session = model.session()
        noticed = asyncio.Event()
        session.on("error", lambda _e: noticed.set())
        try:
            await server.wait_for_connection()
            await until_confirmed(session)
            server.drop_connections()
            await asyncio.wait_for(noticed.wait(), 10)  # the session saw the socket go
            # the whole turn, speech and end, is pushed while the socket is down
            for i in range(0, len(pcm), 480):
                session.push_audio(_frame(pcm[i : i + 480]))
            conn2 = await server.wait_for_connection(2, timeout=15)
            await conn2.wait_for_sent_event("response.done", timeout=10)
            kinds = [e["type"] for e in conn2.client_events]
            assert kinds.count("input_audio_buffer.commit") == 1, kinds
            assert kinds.count("response.create") == 1, kinds
            assert len(conn2.commits) == 1
            pos = pcm.find(conn2.commits[0])
            assert pos >= 0
            assert pos // 2 <= first and (pos + len(conn2.commits[0])) // 2 > last
        finally:
            await session.aclose()
            await model.aclose()


@pytest.mark.timeout(60)
async def test_an_older_rejected_update_does_not_override_a_newer_request() -> None:
    from conftest import make_model

    async with FakeRealtimeServer() as server:
        model = make_model(server, "ga", turn_detection=None)
        session = model.session()
        try:
            await server.wait_for_connection()
            await until_confirmed(session)
            server.reject_fields = {"session.tracing": ("invalid_value", "no tracing here")}
            # three updates back to back: the first (asking what the last asks) is rejected
            # after the others were sent
            session.update_options(tracing="auto", turn_detection=novad.ServerVad())
            session.update_options(turn_detection=None)
            confirmed = await session.set_turn_detection(novad.ServerVad())
            assert confirmed is not None and confirmed.type == "server_vad"
            assert session.requested_turn_detection == novad.ServerVad()
            assert session.turn_taking_mode == "server"
            assert session.turn_taking_mode == "server"  # no second VAD next to the server's
            assert session.turn_detection_confirmed
        finally:
            await session.aclose()
            await model.aclose()
