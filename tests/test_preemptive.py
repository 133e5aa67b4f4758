"""Preemptive replies under client VAD through a real AgentSession, real Silero and real
speech, on a paced fake server with a time to first audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from agent_harness import AgentRun, agent_run
from conftest import FIXTURES, make_model, speech_segments
from livekit.agents import AgentSession

from livekit_plugins_openai_novad.speculation import SPECULATION_PREFIX
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(90)
SR = 24000
WIRES = ["ga", "beta"]
WINDOW_S = 0.5  # ClientVad's default silence window


@contextmanager
def _timeline(run: AgentRun) -> Iterator[dict[str, list[float]]]:
    """When the session queued each response.create / saw its turn end (perf_counter)."""
    marks: dict[str, list[float]] = {"create": [], "stopped": []}

    def on_client(event: dict[str, Any]) -> None:
        if event.get("type") == "response.create":
            marks["create"].append(time.perf_counter())

    def on_stopped(_: Any) -> None:
        marks["stopped"].append(time.perf_counter())

    rt = run.rt_session
    rt.on("openai_client_event_queued", on_client)
    rt.on("input_speech_stopped", on_stopped)
    try:
        yield marks
    finally:
        rt.off("openai_client_event_queued", on_client)
        rt.off("input_speech_stopped", on_stopped)


def _speculative(run: AgentRun) -> list[dict[str, Any]]:
    return [
        e
        for e in run.events("response.create")
        if str(e.get("event_id", "")).startswith(SPECULATION_PREFIX)
    ]


async def _played(run: AgentRun, n: int, timeout: float = 20) -> None:
    """Until the speaker has finished ``n`` reply segments."""
    deadline = time.monotonic() + timeout
    while sum(s.played_s is not None for s in run.speaker.segments) < n:
        run.speaker.segment_finished.clear()
        left = deadline - time.monotonic()
        assert left > 0, f"{len(run.speaker.segments)} segments, wanted {n} played"
        try:
            await asyncio.wait_for(run.speaker.segment_finished.wait(), left)
        except asyncio.TimeoutError:
            pass


def _last_turn_clip(name: str) -> bytes:
    """The fixture's last turn alone, 0.5 s before it and its tail after."""
    pcm = read_wav(FIXTURES / name)
    first, _ = speech_segments(name)[-1]
    return pcm[(first - SR // 2) * 2 :]


@pytest.mark.parametrize("wire", WIRES)
async def test_a_clean_turn_is_heard_at_the_window_not_window_plus_first_audio(wire: str) -> None:
    ttfa = 0.25
    async with FakeRealtimeServer(time_to_first_audio=ttfa) as server:
        model = make_model(server, wire)
        session = AgentSession(aec_warmup_duration=None)
        async with agent_run(server, model=model, session=session) as run:
            with _timeline(run) as marks:
                run.mic.play(read_wav(FIXTURES / "one_turn.wav"))
                await _played(run, 1)
                await run.mic.wait_drained()
            # one commit and one response.create, sent in the trailing silence: before the
            # window ended (input_speech_stopped)
            assert len(run.events("input_audio_buffer.commit")) == 1
            assert len(run.events("response.create")) == 1 and len(_speculative(run)) == 1
            (created,), (stopped,) = marks["create"], marks["stopped"]
            assert created < stopped
            # nothing reached the speaker before the window; the first audio came at it, not
            # one time-to-first-audio later
            first_audio = run.speaker.segments[0].started_at
            assert first_audio >= stopped
            assert first_audio - stopped < ttfa / 2, first_audio - stopped
            assert len(run.speaker.segments) == 1
            assert not run.events("response.cancel")
            assert [r["status"] for r in run.conn.responses] == ["completed"]
            # the server got the turn up to the pause point: the rest of the window stayed here
            assert run.conn.appended_bytes == sum(len(c) for c in run.conn.commits)
            roles = [m.role for m in run.session.history.messages()]
            assert roles.count("assistant") == 1


@pytest.mark.parametrize("wire", WIRES)
async def test_speaking_again_inside_the_window_cancels_and_one_reply_answers_all(
    wire: str,
) -> None:
    # a short time to first audio: the speculative reply's item exists when the user resumes
    async with FakeRealtimeServer(time_to_first_audio=0.1) as server:
        model = make_model(server, wire)
        session = AgentSession(aec_warmup_duration=None)
        async with agent_run(server, model=model, session=session) as run:
            run.mic.play(_last_turn_clip("paused_turns.wav"))  # a 400 ms pause inside
            await run.mic.wait_drained()
            await _played(run, 1)
            # speculated at the pause and at the end; the first was undone
            assert len(_speculative(run)) == 2
            cancels = run.events("response.cancel")
            deletes = run.events("conversation.item.delete")
            assert len(cancels) == 1 and len(deletes) == 1
            statuses = [r["status"] for r in run.conn.responses]
            assert statuses == ["cancelled", "completed"]
            cancelled = run.conn.responses[0]
            assert deletes[0]["item_id"] == cancelled["item_id"]
            # the turn went on: what the user said after the pause was committed too
            assert len(run.conn.commits) == 2
            assert run.conn.appended_bytes == sum(len(c) for c in run.conn.commits)
            # nothing of the cancelled reply was played: one reply, the final one's audio
            assert len(run.speaker.segments) == 1
            # the server's conversation: the user's two pieces and one assistant reply
            kept = [(i.get("role"), i["id"]) for i in run.conn.conversation]
            assert [r for r, _ in kept] == ["user", "user", "assistant"]
            assert cancelled["item_id"] not in {i for _, i in kept}
            # and the session's history: the user's speech and one assistant reply
            messages = run.session.history.messages()
            assert [m.role for m in messages].count("assistant") == 1
            assert [m.role for m in messages].count("user") == 2
            assert messages[-1].role == "assistant"


async def test_preemptive_generation_disabled_means_no_speculation() -> None:
    async with FakeRealtimeServer(time_to_first_audio=0.1) as server:
        session = AgentSession(
            aec_warmup_duration=None, turn_handling={"preemptive_generation": {"enabled": False}}
        )
        async with agent_run(server, session=session) as run:
            with _timeline(run) as marks:
                run.mic.play(_last_turn_clip("paused_turns.wav"))
                await run.mic.wait_drained()
                await _played(run, 1)
            assert not _speculative(run)
            assert not run.events("response.cancel")
            assert not run.events("conversation.item.delete")
            # today's behaviour: one commit + response.create, at the window's end
            assert len(run.conn.commits) == 1
            (created,), (stopped,) = marks["create"], marks["stopped"]
            assert created >= stopped


async def test_a_reconnect_mid_speculation_answers_the_turn_once() -> None:
    # a long time to first audio: the speculative reply is still pending when the socket drops
    async with FakeRealtimeServer(time_to_first_audio=0.6) as server:
        session = AgentSession(aec_warmup_duration=None)
        async with agent_run(server, session=session) as run:
            run.mic.play(read_wav(FIXTURES / "one_turn.wav"))
            await run.conn.wait_for_client_event(
                "response.create",
                predicate=lambda e: str(e.get("event_id", "")).startswith(SPECULATION_PREFIX),
                timeout=30,
            )
            assert server.drop_connections() == 1
            conn2 = await server.wait_for_connection(2, timeout=10)
            await conn2.wait_for_sent_event("response.done", timeout=20)
            await run.mic.wait_drained()
            await _played(run, 1)
            # the new server got the turn once and answered it once; the old one's reply
            # never surfaced
            assert len([e for e in conn2.client_events if e["type"] == "response.create"]) == 1
            assert len(conn2.commits) == 1
            assert [r["status"] for r in conn2.responses] == ["completed"]
            assert len(run.speaker.segments) == 1
            roles = [m.role for m in run.session.history.messages()]
            assert roles.count("assistant") == 1
