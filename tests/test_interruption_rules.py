"""The session's interruption rules under client VAD: a real AgentSession, real Silero on real
speech, a paced reply from the fake server, and a speaker that can pause."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from conftest import FIXTURES, speech_segments
from livekit.agents import AgentSession
from pausable_speaker import PausableRun, pausable_run

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(90)
SR = 24000
REPLY_S = 6.0


def _speech(seconds: float, offset: float = 0.0) -> bytes:
    """``seconds`` of continuous speech cut from a fixture (``offset`` seconds into its
    speech), with silence after it."""
    wav = read_wav(FIXTURES / "one_turn.wav")
    ((first, _),) = speech_segments("one_turn.wav")
    start = first + int(offset * SR)
    return wav[start * 2 : (start + int(seconds * SR)) * 2] + bytes(SR * 2)


def _reply_audio() -> bytes:
    return (read_wav(FIXTURES / "long_turn.wav") * 2)[: int(REPLY_S * SR) * 2]


async def _until(run: PausableRun, check: Callable[[], bool], timeout: float = 20) -> None:
    """Until ``check()`` holds, re-checked on every session event and speaker change."""
    ev = asyncio.Event()

    def poke(*_: Any) -> None:
        if check():
            ev.set()

    kinds = ("agent_state_changed", "user_state_changed", "agent_false_interruption")
    for kind in kinds:
        run.session.on(kind, poke)
    run.speaker.listeners.append(poke)
    poke()
    try:
        await asyncio.wait_for(ev.wait(), timeout)
    finally:
        for kind in kinds:
            run.session.off(kind, poke)
        run.speaker.listeners.remove(poke)


def _session(**interruption: Any) -> AgentSession:
    # the framework's 3 s echo-cancellation warm-up would mute the user at the agent's
    # first words; these tests are about what happens after it
    turn_handling: Any = {"interruption": interruption} if interruption else None
    if turn_handling is None:
        return AgentSession(aec_warmup_duration=None)
    return AgentSession(aec_warmup_duration=None, turn_handling=turn_handling)


async def _start_reply(run: PausableRun, **kwargs: Any) -> None:
    run.session.generate_reply(**kwargs)
    await _until(run, lambda: run.session.agent_state == "speaking")


def _kinds(run: PausableRun, kind: str) -> list[dict[str, Any]]:
    return [e for e in run.conn.client_events if e.get("type") == kind]


async def test_a_short_sound_pauses_the_reply_which_then_resumes() -> None:
    # a 64 ms onset: with the default 160 ms (after Silero's rise) a 0.2 s sound is too short
    # to start a turn at all, and the reply plays on without a pause
    short_onset = novad.ClientVad(min_speech_ms=64)
    async with FakeRealtimeServer(reply_audio=_reply_audio(), reply_pace=1.0) as server:
        async with pausable_run(server, _session(), client_vad=short_onset) as run:
            await _start_reply(run)
            # 0.2 s from inside a word: voiced from its first window, whatever the framing
            run.mic.play(_speech(0.2, offset=0.3))
            await _until(run, lambda: bool(run.speaker.pauses))
            assert run.session.agent_state == "listening"
            (false_int,) = await _wait_events(run, "agent_false_interruption")
            assert false_int.resumed
            await _until(run, lambda: bool(run.speaker.segments[0].played_s is not None))
            seg = run.speaker.segments[0]
            # played to its end, nothing cancelled, the sound not answered as a turn
            assert not seg.interrupted and seg.played_s == pytest.approx(REPLY_S, abs=0.1)
            assert run.speaker.resumes == 1
            assert not _kinds(run, "response.cancel")
            assert not _kinds(run, "input_audio_buffer.commit")
            assert len(_kinds(run, "response.create")) == 1
            users = [e.new_state for e in run.session_event("user_state_changed")]
            assert "speaking" in users and users[-1] == "listening"
            agents = [e.new_state for e in run.session_event("agent_state_changed")]
            # speaking, paused as listening at the onset, speaking again once resumed
            i = agents.index("speaking")
            assert agents[i : i + 3] == ["speaking", "listening", "speaking"], agents


async def _wait_events(run: PausableRun, kind: str, count: int = 1) -> list[Any]:
    await _until(run, lambda: len(run.session_event(kind)) >= count)
    return run.session_event(kind)


async def test_speech_past_min_duration_cancels_once_and_is_answered() -> None:
    async with FakeRealtimeServer(reply_audio=_reply_audio(), reply_pace=1.0) as server:
        async with pausable_run(server, _session()) as run:
            await _start_reply(run)
            run.mic.play(_speech(1.2))
            cancel = await run.conn.wait_for_client_event("response.cancel", timeout=20)
            truncate = await run.conn.wait_for_client_event(
                "conversation.item.truncate", timeout=20
            )
            assert cancel is not None
            seg = run.speaker.segments[0]
            assert seg.interrupted and seg.played_s is not None
            # cut where the speaker stopped: the pause at the user's onset
            assert run.speaker.pauses
            assert abs(truncate["audio_end_ms"] - seg.played_s * 1000) <= 150
            assert abs(seg.played_s - run.speaker.pauses[0]) <= 0.05
            # the user's turn is answered, and there was one cancel
            await run.conn.wait_for_client_event("response.create", count=2, timeout=20)
            await run.conn.wait_for_sent_event("response.done", count=2, timeout=20)
            assert len(_kinds(run, "response.cancel")) == 1
            assert len(_kinds(run, "input_audio_buffer.commit")) == 1
            assert not run.session_event("agent_false_interruption")


@pytest.mark.parametrize("where", ["session", "agent", "speech"])
async def test_interruptions_disabled_the_reply_plays_out_and_the_next_turn_is_answered(
    where: str,
) -> None:
    session = _session(enabled=False) if where == "session" else _session()
    agent_kwargs: dict[str, Any] = {"allow_interruptions": False} if where == "agent" else {}
    reply_kwargs: dict[str, Any] = {"allow_interruptions": False} if where == "speech" else {}
    async with FakeRealtimeServer(reply_audio=_reply_audio(), reply_pace=1.0) as server:
        # the framework accepts allow_interruptions=False with this model while client VAD runs
        async with pausable_run(server, session, **agent_kwargs) as run:
            await _start_reply(run, **reply_kwargs)
            run.mic.play(_speech(1.2))
            await _until(run, lambda: run.speaker.segments[0].played_s is not None, 30)
            seg = run.speaker.segments[0]
            assert not seg.interrupted and seg.played_s == pytest.approx(REPLY_S, abs=0.1)
            assert not run.speaker.pauses
            assert not _kinds(run, "response.cancel")
            # the speech over it was dropped (discard_audio_if_uninterruptible), not answered
            assert not _kinds(run, "input_audio_buffer.commit")
            # turns work as usual afterwards
            await run.mic.wait_drained()
            run.mic.play(_speech(1.0))
            await run.conn.wait_for_client_event("input_audio_buffer.commit", timeout=20)
            await run.conn.wait_for_client_event("response.create", count=2, timeout=20)
            await run.conn.wait_for_sent_event("response.done", count=2, timeout=20)
            assert not _kinds(run, "response.cancel")
