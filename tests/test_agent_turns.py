"""Client-side turn taking through a real AgentSession, real Silero and real speech."""

from __future__ import annotations

import asyncio

import pytest
from agent_harness import agent_run
from conftest import FIXTURES, speech_segments
from livekit.agents import AgentSession
from livekit.plugins import silero

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(90)
SR = 24000


@pytest.mark.parametrize("preemptive", [True, False])
async def test_plain_agent_session_answers_three_turns(
    server: FakeRealtimeServer, preemptive: bool
) -> None:
    wav = read_wav(FIXTURES / "three_turns.wav")
    segments = speech_segments("three_turns.wav")
    # preemptive replies are on by default (the framework's preemptive_generation); off, the
    # session commits once per turn, at the window's end
    session = AgentSession(turn_handling={"preemptive_generation": {"enabled": preemptive}})
    async with agent_run(server, session=session) as run:
        assert run.rt_session.turn_taking_mode == "client_vad"
        assert run.rt_session.capabilities.turn_detection
        run.mic.play(wav)
        await run.conn.wait_for_sent_event(
            "response.done", count=3, predicate=_completed, timeout=30
        )
        await run.mic.wait_drained()
        await asyncio.wait_for(run.speaker.segment_finished.wait(), 10)
        # the server had turn detection off, confirmed by its echo
        assert run.conn.turn_detection is None
        assert run.rt_session.confirmed_turn_detection is None
        assert run.rt_session.turn_detection_confirmed
        # every turn answered once (an undone speculation leaves no item), every reply played
        roles = [item.get("role") for item in run.conn.conversation]
        assert roles.count("assistant") == 3
        assert len(run.speaker.segments) == 3
        kinds = [
            e["type"]
            for e in run.conn.client_events
            if e["type"] in ("input_audio_buffer.commit", "response.create")
        ]
        if preemptive:
            # two sentences have a short gap inside (190 and 160 ms): a speculation undone
            # at each at most
            assert len(run.events("conversation.item.delete")) <= 2
            assert kinds == ["input_audio_buffer.commit", "response.create"] * len(
                run.conn.commits
            )
        else:
            # per turn: commit then response.create, in that order, once
            assert kinds == ["input_audio_buffer.commit", "response.create"] * 3
            assert not run.events("response.cancel")

        # gating, checked on the bytes the server received
        padded = bytes(SR * 2) + wav + bytes(SR * 2 * 4)
        offset = SR * 2  # where the wav starts inside `padded`
        vad = novad.ClientVad()
        pieces = []
        for committed in run.conn.commits:
            pos = padded.find(committed)
            assert pos >= 0, "committed audio is not a contiguous piece of what was pushed"
            start = (pos - offset) // 2
            pieces.append((start, start + len(committed) // 2))
        # a turn undone inside the window was committed in two adjacent pieces: join them
        turns = [pieces[0]]
        for start, end in pieces[1:]:
            if start == turns[-1][1]:
                turns[-1] = (turns[-1][0], end)
            else:
                turns.append((start, end))
        assert len(turns) == 3 if preemptive else len(pieces) == 3
        for (first, last), (start, end) in zip(segments, turns, strict=True):
            assert start <= first and end > last, "a speech sample is missing from the commit"
            speech_s = (last - first + 1) / SR
            budget = speech_s + (vad.prefix_padding_ms + vad.silence_duration_ms + 100) / 1000
            assert (end - start) / SR <= budget
        # the silence between turns (digital silence in this fixture) was never sent
        sent = run.conn.appended_bytes
        assert sent == sum(len(c) for c in run.conn.commits)
        assert sent < len(wav)


def _completed(event: dict[str, object]) -> bool:
    response = event.get("response")
    return isinstance(response, dict) and response.get("status") == "completed"


async def test_agent_session_with_own_vad_runs_no_client_vad(server: FakeRealtimeServer) -> None:
    session = AgentSession(vad=silero.VAD.load(), turn_handling={"turn_detection": "vad"})
    async with agent_run(server, session=session) as run:
        rt = run.rt_session
        assert rt.turn_taking_mode == "framework"
        assert not rt.capabilities.turn_detection
        assert run.model.capabilities.can_disable_turn_detection
        wav = read_wav(FIXTURES / "one_turn.wav")
        run.mic.play(wav)
        await run.conn.wait_for_client_event("response.create", timeout=30)
        # the framework committed; the server's VAD stayed off and audio was not gated
        assert run.conn.turn_detection is None
        assert run.rt_session.confirmed_turn_detection is None
        assert len(run.events("input_audio_buffer.commit")) == 1
        # ungated: the leading silence went to the server too
        assert run.conn.appended_bytes + len(run.conn.input_audio) >= len(wav) // 2
        with pytest.raises(ValueError):
            rt.update_options(turn_detection=novad.ServerVad())


async def _agent_speaking(session: AgentSession) -> None:
    ev = asyncio.Event()

    def on_state(e: object) -> None:
        if session.agent_state == "speaking":
            ev.set()

    session.on("agent_state_changed", on_state)
    on_state(None)
    try:
        await asyncio.wait_for(ev.wait(), 20)
    finally:
        session.off("agent_state_changed", on_state)


async def test_barge_in_cancels_and_truncates_at_played_position() -> None:
    # a long reply streamed in real time, so it is still being generated when the user cuts in
    reply = read_wav(FIXTURES / "long_turn.wav") * 2
    async with FakeRealtimeServer(reply_audio=reply, reply_pace=1.0) as server:
        # the framework mutes the user for its 3 s echo-cancellation warm-up at the agent's
        # first words; this test is about what happens after, so the warm-up is off
        session = AgentSession(aec_warmup_duration=None)
        async with agent_run(server, session=session) as run:
            run.mic.play(read_wav(FIXTURES / "short_word.wav"))
            await run.conn.wait_for_client_event("response.create", timeout=30)
            await _agent_speaking(run.session)
            run.mic.play(read_wav(FIXTURES / "one_turn.wav"))
            cancel = await run.conn.wait_for_client_event("response.cancel", timeout=30)
            truncate = await run.conn.wait_for_client_event(
                "conversation.item.truncate", timeout=30
            )
            assert cancel is not None
            interrupted = [s for s in run.speaker.segments if s.interrupted]
            assert interrupted, "the agent's speech was not interrupted"
            played_ms = (interrupted[0].played_s or 0.0) * 1000
            assert abs(truncate["audio_end_ms"] - played_ms) <= 150, (
                truncate["audio_end_ms"],
                played_ms,
            )
            assert run.conn.truncations  # the server applied it
            # exactly one cancel: the framework's interrupt did not send a second one
            assert len(run.events("response.cancel")) == 1
            # the barge-in turn is answered too
            await run.conn.wait_for_client_event("response.create", count=2, timeout=30)


async def test_live_switching_answers_in_every_mode() -> None:
    turn = read_wav(FIXTURES / "one_turn.wav")
    async with FakeRealtimeServer() as server, agent_run(server) as run:
        rt = run.rt_session
        modes: list[novad.TurnDetection | None] = [
            None,
            novad.ServerVad(),
            novad.SemanticVad(),
            None,
        ]
        for i, mode in enumerate(modes, start=1):
            if i > 1:
                await rt.set_turn_detection(mode)
            expected_mode = "client_vad" if mode is None else "server"
            assert rt.turn_taking_mode == expected_mode
            run.mic.play(turn)
            await run.conn.wait_for_sent_event("response.done", count=i, timeout=30)
            await run.mic.wait_drained()
            record = run.conn.responses[i - 1]
            assert record["trigger"] == ("client" if mode is None else "server_vad")
        # switching to off cleared the server's buffer first
        types = [e["type"] for e in run.conn.client_events]
        last_update = max(i for i, t in enumerate(types) if t == "session.update")
        assert types[last_update - 1] == "input_audio_buffer.clear"
        assert len(run.conn.responses) == 4


async def test_push_to_talk_waits_for_the_app(server: FakeRealtimeServer) -> None:
    async with agent_run(server, client_vad=None) as run:
        rt = run.rt_session
        assert rt.turn_taking_mode == "push_to_talk"
        run.mic.play(read_wav(FIXTURES / "one_turn.wav"))
        await run.mic.wait_drained()
        assert not run.events("input_audio_buffer.commit")
        assert not run.events("response.create")
        run.session.commit_user_turn()
        await run.conn.wait_for_client_event("input_audio_buffer.commit", timeout=10)
        await run.conn.wait_for_client_event("response.create", timeout=10)
        await run.conn.wait_for_sent_event("response.done", timeout=10)


async def test_push_to_talk_short_commit_sends_nothing(server: FakeRealtimeServer) -> None:
    from livekit import rtc

    model = novad.RealtimeModel(base_url=server.base_url, api_key="test-key", client_vad=None)
    session = model.session()
    errors: list[object] = []
    session.on("error", errors.append)
    try:
        conn = await server.wait_for_connection()
        frame = rtc.AudioFrame(
            data=bytes(SR // 20 * 2), sample_rate=SR, num_channels=1, samples_per_channel=SR // 20
        )
        session.push_audio(frame)  # 50 ms
        session.commit_audio()  # below the server's 100 ms minimum: not sent, no error
        await session.set_turn_detection(novad.ServerVad())  # a round trip after it
        assert not [e for e in conn.client_events if e["type"] == "input_audio_buffer.commit"]
        assert not [e for e in conn.sent_events if e["type"] == "error"]
        assert not errors
    finally:
        await session.aclose()
        await model.aclose()
