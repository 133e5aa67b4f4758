"""No user turn is lost: a turn ending during another reply, a turn the app clears, a switch
of turn detection in the trailing silence. A real AgentSession, real Silero, real speech."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agent_harness import AgentRun, agent_run
from conftest import FIXTURES, speech_segments
from livekit.agents import AgentSession

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(90)
SR = 24000


async def _user_state(run: AgentRun, state: str, timeout: float = 20) -> None:
    ev = asyncio.Event()

    def check(*_: Any) -> None:
        if run.session.user_state == state:
            ev.set()

    run.session.on("user_state_changed", check)
    check()
    try:
        await asyncio.wait_for(ev.wait(), timeout)
    finally:
        run.session.off("user_state_changed", check)


def _errors(run: AgentRun) -> list[dict[str, Any]]:
    return [e for e in run.conn.sent_events if e.get("type") == "error"]


async def test_a_turn_ending_during_the_apps_reply_is_answered_after_it() -> None:
    wav = read_wav(FIXTURES / "one_turn.wav")
    reply = read_wav(FIXTURES / "long_turn.wav")[: SR * 2 * 3]  # 3 s, streamed in real time
    async with FakeRealtimeServer(reply_audio=reply, reply_pace=1.0) as server:
        async with agent_run(server, session=AgentSession(aec_warmup_duration=None)) as run:
            run.mic.play(wav)
            await _user_state(run, "speaking")
            # the app speaks up while the user is mid-utterance (an on_enter greeting, a tool)
            run.session.generate_reply()
            await run.conn.wait_for_client_event("input_audio_buffer.commit", timeout=20)
            # the user's turn ended while the app's reply was still being streamed ...
            assert run.conn.active_response is not None
            # ... and is answered once that reply is done, exactly once
            await run.conn.wait_for_client_event("response.create", count=2, timeout=20)
            await run.conn.wait_for_sent_event("response.done", count=2, timeout=20)
            assert not _errors(run), _errors(run)
            assert len(run.events("response.create")) == 2
            assert [r["status"] for r in run.conn.responses] == ["completed", "completed"]


@pytest.mark.parametrize("how", ["clear_user_turn", "clear_audio"])
async def test_clearing_a_turn_mid_speech_ends_the_users_speaking_state(how: str) -> None:
    wav = read_wav(FIXTURES / "one_turn.wav")
    async with FakeRealtimeServer() as server, agent_run(server) as run:
        stopped: list[object] = []
        run.rt_session.on("input_speech_stopped", stopped.append)
        run.mic.play(wav)
        await _user_state(run, "speaking")
        if how == "clear_user_turn":
            run.session.clear_user_turn()
        else:
            run.rt_session.clear_audio()
        assert run.session.user_state == "listening"
        assert len(stopped) == 1
        # the rest of the speech is a turn of its own, answered as usual
        await run.conn.wait_for_client_event("response.create", timeout=20)
        await run.mic.wait_drained()
        await _user_state(run, "listening")
        assert len(run.events("input_audio_buffer.commit")) == 1


def _trailing_window_clip() -> tuple[bytes, float]:
    """one_turn.wav and when (seconds into it) its speech ends."""
    wav = read_wav(FIXTURES / "one_turn.wav")
    ((_, last),) = speech_segments("one_turn.wav")
    return wav, (last + 1) / SR


async def _until_played(run: AgentRun, seconds: float, timeout: float = 20) -> None:
    """Until the microphone has pushed ``seconds`` of the clip, checked at each 100 ms append
    the session queues (within a 100 ms step)."""
    target = run.mic.clip_starts[-1] + int(seconds * SR)
    ev = asyncio.Event()

    def check(*_: Any) -> None:
        if run.mic.samples_pushed >= target:
            ev.set()

    run.rt_session.on("openai_client_event_queued", check)
    check()
    try:
        await asyncio.wait_for(ev.wait(), timeout)
    finally:
        run.rt_session.off("openai_client_event_queued", check)


@pytest.mark.parametrize("to", ["server", "client"])
async def test_switching_in_the_trailing_silence_answers_the_finished_turn(to: str) -> None:
    wav, speech_end = _trailing_window_clip()
    first = None if to == "server" else novad.ServerVad(silence_duration_ms=500)
    async with FakeRealtimeServer() as server, agent_run(server, turn_detection=first) as run:
        rt = run.rt_session
        run.mic.play(wav)
        await _user_state(run, "speaking")
        await _until_played(run, speech_end + 0.15)  # 150-250 ms into the trailing silence
        target = novad.ServerVad(silence_duration_ms=500) if to == "server" else None
        await rt.set_turn_detection(target)
        # the finished turn is committed and answered before the hand-over, once
        await run.conn.wait_for_client_event("response.create", timeout=20)
        await run.conn.wait_for_sent_event("response.done", timeout=20)
        await run.mic.wait_drained()
        await _user_state(run, "listening")
        assert len(run.conn.commits) == 1
        (committed,) = run.conn.commits
        assert len(committed) >= (speech_end - 0.5) * SR * 2  # the whole turn, not a tail
        # nothing of it is left in the server's buffer for the next turn
        await rt.set_turn_detection(None if to == "server" else novad.ServerVad())
        assert len(run.conn.responses) == 1
        assert not _errors(run), _errors(run)
