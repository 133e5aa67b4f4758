"""The preemptive-reply state machine (no socket) and the detector's pause points (real
Silero on real speech)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FIXTURES, speech_segments

from livekit_plugins_openai_novad import ClientVad
from livekit_plugins_openai_novad._client_turns import ClientTurns, TurnEffect
from livekit_plugins_openai_novad.client_vad import ClientTurnDetector, GateAction
from livekit_plugins_openai_novad.speculation import PreemptiveOptions, Speculation, Verdict
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(60)
SR = 24000


def _reply(rid: str, item: str, origin: str | None) -> list[dict[str, Any]]:
    """A reply's server events in the GA order."""
    meta = {"client_event_id": origin} if origin else None
    ids = {"response_id": rid, "item_id": item, "output_index": 0, "content_index": 0}
    return [
        {"type": "response.created", "response": {"id": rid, "metadata": meta}},
        {"type": "response.output_item.added", "response_id": rid, "item": {"id": item}},
        {
            "type": "conversation.item.added",
            "item": {"id": item, "role": "assistant", "status": "in_progress"},
        },
        {"type": "response.output_audio.delta", **ids, "delta": "AAAA"},
        {"type": "response.output_audio.done", **ids},
        {"type": "response.output_item.done", "response_id": rid, "item": {"id": item}},
        {"type": "response.done", "response": {"id": rid, "status": "completed"}},
    ]


def _feed(spec: Speculation[int], events: list[dict[str, Any]]) -> list[Verdict]:
    return [spec.on_server_event(e, i)[0] for i, e in enumerate(events)]


def test_a_confirmed_speculation_is_held_then_released_in_order() -> None:
    spec: Speculation[int] = Speculation()
    assert spec.should_speculate(speech_s=1.0, other_response_active=False)
    create = spec.start()
    origin = create["response"]["metadata"]["client_event_id"]
    assert create["event_id"] == origin
    events = _reply("resp_1", "item_1", origin)
    unrelated = {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u"}
    verdicts = _feed(spec, events[:3]) + [spec.on_server_event(unrelated, 99)[0]]
    assert verdicts == [Verdict.HOLD, Verdict.HOLD, Verdict.HOLD, Verdict.PASS]
    assert spec.hold_audio(b"\x00\x00")  # the window's silence after the commit
    release = spec.confirm()
    assert release is not None and release.held == [0, 1, 2] and not release.needs_reply
    assert not spec.pending
    # the rest of the reply goes straight through
    assert _feed(spec, events[3:]) == [Verdict.PASS] * 4


def test_a_cancelled_speculation_is_undone_and_never_surfaces() -> None:
    spec: Speculation[int] = Speculation()
    origin = spec.start()["event_id"]
    events = _reply("resp_1", "item_1", origin)
    assert _feed(spec, events[:2]) == [Verdict.HOLD, Verdict.HOLD]
    spec.hold_audio(b"ab")
    undo, audio = spec.cancel()
    assert audio == b"ab"  # the turn goes on: this audio is part of it
    assert [(e["type"], e.get("response_id"), e.get("item_id")) for e in undo] == [
        ("response.cancel", "resp_1", None),
        ("conversation.item.delete", None, "item_1"),
    ]
    # what was still on its way from the server is dropped, the delete's answer too
    tail = events[2:] + [{"type": "conversation.item.deleted", "item_id": "item_1"}]
    assert _feed(spec, tail) == [Verdict.DROP] * len(tail)
    assert spec.confirm() is None
    assert (spec.started, spec.cancelled) == (1, 1)
    # a later, ordinary reply is not confused with it
    assert set(_feed(spec, _reply("resp_2", "item_2", None))) == {Verdict.PASS}


def test_cancelled_before_the_server_named_it() -> None:
    spec: Speculation[int] = Speculation()
    origin = spec.start()["event_id"]
    undo, _ = spec.cancel()
    assert [(e["type"], e.get("response_id")) for e in undo] == [("response.cancel", None)]
    events = _reply("resp_1", "item_1", origin)
    out = [spec.on_server_event(e, i) for i, e in enumerate(events)]
    assert [v for v, _ in out] == [Verdict.DROP] * len(events)
    # it still streamed: cancelled again by id, and its item deleted once named, exactly once
    sent = [(e["type"], e.get("response_id"), e.get("item_id")) for _, evs in out for e in evs]
    assert sent == [
        ("response.cancel", "resp_1", None),
        ("conversation.item.delete", None, "item_1"),
    ]


def test_a_reply_done_before_the_user_resumed_is_deleted_not_cancelled() -> None:
    spec: Speculation[int] = Speculation()
    origin = spec.start()["event_id"]
    assert set(_feed(spec, _reply("resp_1", "item_1", origin))) == {Verdict.HOLD}
    undo, _ = spec.cancel()
    assert [e["type"] for e in undo] == ["conversation.item.delete"]


def test_a_refused_speculation_asks_again_at_the_window() -> None:
    spec: Speculation[int] = Speculation()
    origin = spec.start()["event_id"]
    error = {"type": "error", "error": {"code": "x", "event_id": origin}}
    assert spec.on_server_event(error, 0)[0] is Verdict.PASS  # surfaced like any error
    release = spec.confirm()
    assert release is not None and release.needs_reply and release.held == []


def test_limits_per_turn() -> None:
    spec: Speculation[int] = Speculation(PreemptiveOptions(max_retries=2, max_speech_duration=3))
    assert not spec.should_speculate(speech_s=3.5, other_response_active=False)
    assert not spec.should_speculate(speech_s=1.0, other_response_active=True)
    for _ in range(2):
        assert spec.should_speculate(speech_s=1.0, other_response_active=False)
        spec.start()
        spec.cancel()
    assert not spec.should_speculate(speech_s=1.0, other_response_active=False)
    spec.end_turn()
    assert spec.should_speculate(speech_s=1.0, other_response_active=False)
    off: Speculation[int] = Speculation(PreemptiveOptions.from_turn_handling({"enabled": False}))
    assert not off.should_speculate(speech_s=1.0, other_response_active=False)
    opts = PreemptiveOptions.from_turn_handling({"max_retries": 1, "preemptive_tts": False})
    assert opts == PreemptiveOptions(enabled=True, max_speech_duration=10.0, max_retries=1)


def test_reset_forgets_the_old_connection() -> None:
    spec: Speculation[int] = Speculation()
    spec.start()
    spec.reset()
    assert not spec.pending and spec.confirm() is None
    assert spec.should_speculate(speech_s=1.0, other_response_active=False)


def _run(pcm: bytes, opts: ClientVad) -> tuple[bytes, list[tuple[GateAction, int, int]]]:
    """(bytes sent, [(action, bytes sent before it, pushed bytes when it came)])."""
    det = ClientTurnDetector(opts)
    sent = bytearray()
    marks: list[tuple[GateAction, int, int]] = []
    step = SR * 10 // 1000 * 2
    for i in range(0, len(pcm), step):
        for action, data in det.push(pcm[i : i + step]):
            if action is GateAction.SEND:
                sent += data
            else:
                marks.append((action, len(sent), i + step))
    return bytes(sent), marks


@pytest.mark.parametrize("name", ["one_turn.wav", "long_turn.wav", "three_turns.wav"])
def test_pause_points_on_clean_turns(name: str) -> None:
    pcm = read_wav(FIXTURES / name)
    sent, marks = _run(pcm, ClientVad())
    # the same bytes as without a pause point: it only marks a position
    assert sent == _run(pcm, ClientVad(preemptive_after_ms=None))[0]
    stops = [i for i, m in enumerate(marks) if m[0] is GateAction.SPEECH_STOPPED]
    segments = speech_segments(name)
    assert len(stops) == len(segments)
    for stop, (_, last) in zip(stops, segments, strict=True):
        # each turn's last pause point comes right before its end
        pause, end = marks[stop - 1], marks[stop]
        assert pause[0] is GateAction.PAUSED
        after_ms = (pause[2] // 2 - last) / SR * 1000
        # at the pause point or, where Silero lags the sound by more, as soon as Silero hears
        # the silence (~170-190 ms after the last sound on these fixtures)
        assert 150 - 5 <= after_ms <= 250, after_ms
        assert end[2] > pause[2]
    # three_turns.wav has two short gaps inside sentences (190 and 160 ms): no more pauses
    assert [m[0] for m in marks].count(GateAction.RESUMED) <= 2


def test_pauses_inside_turns_resume() -> None:
    pcm = read_wav(FIXTURES / "paused_turns.wav")
    _, marks = _run(pcm, ClientVad())
    kinds = [m[0] for m in marks]
    turn = [
        GateAction.SPEECH_STARTED,
        GateAction.PAUSED,
        GateAction.RESUMED,
        GateAction.PAUSED,
        GateAction.SPEECH_STOPPED,
    ]
    assert kinds == turn * 3
    # off, or not shorter than the window: no pause points
    for opts in (ClientVad(preemptive_after_ms=None), ClientVad(preemptive_after_ms=500)):
        kinds = [m[0] for m in _run(pcm, opts)[1]]
        assert kinds == [GateAction.SPEECH_STARTED, GateAction.SPEECH_STOPPED] * 3


def test_preemptive_after_ms_is_validated() -> None:
    with pytest.raises(ValueError, match="preemptive_after_ms"):
        ClientVad(preemptive_after_ms=-1)
    with pytest.raises(ValueError, match="preemptive_after_ms"):
        ClientVad(preemptive_after_ms=0.2)  # type: ignore[arg-type]


def _turn_effects(
    pcm: bytes, preemptive: PreemptiveOptions | None
) -> tuple[list[TurnEffect], bytes, list[bytes]]:
    """(effect kinds, bytes sent, bytes sent between commits) of ClientTurns on ``pcm``."""
    turns = ClientTurns()
    turns.start(ClientTurnDetector(ClientVad()), ClientVad())
    kinds: list[TurnEffect] = []
    sent = bytearray()
    pieces: list[bytes] = []
    piece = bytearray()
    step = SR * 10 // 1000 * 2
    options = None if preemptive is None else (lambda: preemptive)
    for i in range(0, len(pcm), step):
        for effect, data in turns.push(pcm[i : i + step], preemptive=options):
            kinds.append(effect)
            if effect is TurnEffect.SEND:
                sent += data
                piece += data
            elif effect in (TurnEffect.PREEMPT, TurnEffect.COMMIT):
                pieces.append(bytes(piece))
                piece.clear()
            if effect is TurnEffect.RELEASE:
                assert not piece, "audio after the pause point was sent although the turn ended"
            if effect in (TurnEffect.RELEASE, TurnEffect.REPLY):
                # the server: the turn's reply is created and done before the next turn
                turns.on_response_created()
                turns.on_response_done()
    return [k for k in kinds if k is not TurnEffect.SEND], bytes(sent), pieces


def test_client_turns_speculate_undo_and_release() -> None:
    pcm = read_wav(FIXTURES / "paused_turns.wav")
    kinds, sent, pieces = _turn_effects(pcm, PreemptiveOptions())
    turn = [
        TurnEffect.SPEECH_STARTED,
        TurnEffect.PREEMPT,  # at the pause inside the turn
        TurnEffect.UNDO,  # the user went on
        TurnEffect.PREEMPT,  # at the end
        TurnEffect.SPEECH_STOPPED,
        TurnEffect.RELEASE,
    ]
    assert kinds == turn * 3
    # every byte sent was committed, in two adjacent pieces per turn
    assert len(pieces) == 6 and b"".join(pieces) == sent
    # against no speculation: the same turns, minus the window's silence after the pause point
    kinds_off, sent_off, pieces_off = _turn_effects(pcm, None)
    assert kinds_off == [
        TurnEffect.SPEECH_STARTED,
        TurnEffect.SPEECH_STOPPED,
        TurnEffect.COMMIT,
        TurnEffect.REPLY,
    ] * 3
    for k in range(3):
        whole = pieces[2 * k] + pieces[2 * k + 1]
        assert pieces_off[k].startswith(whole)
        held_ms = (len(pieces_off[k]) - len(whole)) / 2 / SR * 1000
        assert 250 <= held_ms <= 350, held_ms  # the window (500 ms) after the pause point


def test_client_turns_respect_max_retries_and_max_speech_duration() -> None:
    pcm = read_wav(FIXTURES / "paused_turns.wav")
    kinds, _, _ = _turn_effects(pcm, PreemptiveOptions(max_retries=1))
    # one speculation per turn: the one at the inner pause, undone; the turn's end commits
    assert kinds == [
        TurnEffect.SPEECH_STARTED,
        TurnEffect.PREEMPT,
        TurnEffect.UNDO,
        TurnEffect.SPEECH_STOPPED,
        TurnEffect.COMMIT,
        TurnEffect.REPLY,
    ] * 3
    kinds, _, _ = _turn_effects(pcm, PreemptiveOptions(max_speech_duration=0.5))
    assert TurnEffect.PREEMPT not in kinds  # every turn is longer than that at its pauses
    kinds, _, _ = _turn_effects(pcm, PreemptiveOptions(enabled=False))
    assert TurnEffect.PREEMPT not in kinds


def test_an_interrupt_does_not_cancel_a_held_reply() -> None:
    # the held reply is not playing: interrupting the agent leaves it to the turn to settle
    pcm = read_wav(FIXTURES / "one_turn.wav")
    turns = ClientTurns()
    turns.start(ClientTurnDetector(ClientVad()), ClientVad())
    step = SR * 10 // 1000 * 2
    for i in range(0, len(pcm), step):
        kinds = [e for e, _ in turns.push(pcm[i : i + step], preemptive=PreemptiveOptions)]
        if TurnEffect.PREEMPT in kinds:
            break
    assert turns.speculation.pending
    assert not turns.cancel(generation_active=False)
    assert turns.cancel(generation_active=True)  # a reply of the app's is being generated


async def test_the_server_socket_holds_and_releases_in_order() -> None:
    import asyncio
    import json

    import aiohttp

    from livekit_plugins_openai_novad._socket import ServerSocket

    class Feed:  # the real socket's side: frames as the server sends them
        def __init__(self) -> None:
            self.q: asyncio.Queue[aiohttp.WSMessage] = asyncio.Queue()

        def send(self, kind: str) -> None:
            data = json.dumps({"type": kind})
            self.q.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, data, None))

        async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
            return await self.q.get()

    feed = Feed()
    kept: list[aiohttp.WSMessage] = []

    def screen(event: dict[str, Any], frame: aiohttp.WSMessage) -> bool:
        if event["type"].startswith("held."):
            kept.append(frame)
            return False
        return True

    sock = ServerSocket(feed, screen)  # type: ignore[arg-type]
    for kind in ("a", "held.1", "held.2", "b"):
        feed.send(kind)
    got = [json.loads((await sock.receive()).data)["type"] for _ in range(2)]
    assert got == ["a", "b"]
    # the reader waits on the socket; a release wakes it, ahead of anything newer
    reader = asyncio.ensure_future(sock.receive())
    await asyncio.sleep(0)
    assert not reader.done()
    sock.release(kept)
    feed.send("c")
    got = [json.loads((await reader).data)["type"]]
    got += [json.loads((await sock.receive()).data)["type"] for _ in range(2)]
    assert got == ["held.1", "held.2", "c"]
    # frames upstream could not survive are dropped
    feed.q.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, "{", None))
    feed.q.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, '{"type": 1}', None))
    feed.send("d")
    assert json.loads((await asyncio.wait_for(sock.receive(), 5)).data)["type"] == "d"
