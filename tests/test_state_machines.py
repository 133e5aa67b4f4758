"""The session's two I/O-free state machines on their own: no socket, no event loop I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad._client_turns import MIN_COMMIT_BYTES, ClientTurns, TurnEffect
from livekit_plugins_openai_novad._ledger import UpdateLedger
from livekit_plugins_openai_novad.client_vad import WINDOW_BYTES, ClientTurnDetector

SR = 24000


def _session(td: dict | None) -> dict:
    return {"type": "realtime", "audio": {"input": {"turn_detection": td}}}


# -- update ledger ------------------------------------------------------------------------


def test_ledger_matches_echoes_in_order_and_resolves_waiters() -> None:
    ledger = UpdateLedger("ga", None)
    ledger.request(novad.ServerVad(silence_duration_ms=300))
    first = ledger.register("u1", carries_td=True)
    ledger.on_queued({"type": "session.update", "event_id": "u1"})
    ledger.register("u2", carries_td=False)
    ledger.on_queued({"type": "session.update", "event_id": "u2"})
    loop = asyncio.new_event_loop()
    try:
        fut: asyncio.Future = loop.create_future()
        first.waiters.append(fut)
        assert not ledger.is_confirmed
        out = ledger.on_echo(True, _session({"type": "server_vad", "silence_duration_ms": 300}))
        assert out.confirmed and out.sent is first and fut.result().silence_duration_ms == 300
        assert ledger.is_confirmed
        # the tools update's echo is matched to the tools update, not to a turn detection
        assert not ledger.on_echo(True, _session({"type": "server_vad"})).confirmed
    finally:
        loop.close()


def test_ledger_mismatch_follows_the_server_and_rejection_moves_back() -> None:
    ledger = UpdateLedger("ga", None)
    ledger.register("u0", carries_td=True)
    ledger.on_queued({"type": "session.update", "event_id": "u0"})
    assert ledger.on_echo(True, _session(None)).confirmed
    ledger.request(novad.ServerVad())
    ledger.register("u1", carries_td=True)
    ledger.on_queued({"type": "session.update", "event_id": "u1"})
    out = ledger.on_echo(True, _session(None))  # the server ignored the request
    assert out.mismatch is not None and out.effective_changed
    assert ledger.effective is None and ledger.mismatch
    assert ledger.wants_change(novad.ServerVad())  # asking again is sent again

    ledger.request(novad.SemanticVad())
    ledger.register("u2", carries_td=True)
    ledger.on_queued({"type": "session.update", "event_id": "u2"})
    answered = ledger.on_error("u2", code="invalid_value", param="session", message="no")
    assert answered is not None and answered[1]  # requested moved back
    assert ledger.requested is None and ledger.latest_td is None
    assert ledger.on_error("nobody", code=None, param=None, message="") is None


def test_ledger_reset_hands_waiters_over() -> None:
    ledger = UpdateLedger("beta", None)
    sent = ledger.register("u1", carries_td=True)
    ledger.on_queued({"type": "session.update", "event_id": "u1"})
    marker = object()
    sent.waiters.append(marker)  # type: ignore[arg-type]
    assert ledger.reset() == [marker]
    assert ledger.reset() == []


# -- client turns ---------------------------------------------------------------------------


def _scorer(voiced: Callable[[float], bool]) -> Callable[[np.ndarray], float]:
    """Scores by energy: a deterministic stand-in for Silero on synthetic audio."""

    def score(x: np.ndarray) -> float:
        return 1.0 if voiced(float(np.sqrt(np.mean(x * x)))) else 0.0

    return score


def _turns(**vad: int) -> ClientTurns:
    """The detector on an energy scorer, with a short onset and no smoothing, so the tone's
    first windows start a turn (the audio before it teaches the detector the noise level)."""
    turns = ClientTurns()
    opts = novad.ClientVad(**{"min_speech_ms": 32, "smoothing": 0.0, **vad})
    turns.start(ClientTurnDetector(opts, scorer=_scorer(lambda rms: rms > 0.01)), opts)
    return turns


def _tone(seconds: float) -> bytes:
    t = np.arange(int(SR * seconds)) / SR
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16).tobytes()


def _silence(seconds: float) -> bytes:
    return bytes(int(SR * seconds) * 2)


def _kinds(effects: list[tuple[TurnEffect, bytes]]) -> list[TurnEffect]:
    return [e for e, _ in effects if e is not TurnEffect.SEND]


def test_turn_commits_what_it_sent_and_is_unanswered_until_done() -> None:
    turns = _turns(silence_duration_ms=200, prefix_padding_ms=0)
    effects = turns.push(_silence(0.3) + _tone(0.5) + _silence(0.5))
    assert _kinds(effects) == [
        TurnEffect.SPEECH_STARTED,
        TurnEffect.SPEECH_STOPPED,
        TurnEffect.COMMIT,
        TurnEffect.REPLY,
    ]
    sent = b"".join(d for e, d in effects if e is TurnEffect.SEND)
    (commit,) = [d for e, d in effects if e is TurnEffect.COMMIT]
    assert commit == sent and len(sent) >= MIN_COMMIT_BYTES
    assert turns.unanswered_turn == commit and turns.response_requested
    turns.on_committed("item_1")
    turns.on_committed("item_2")  # a later commit is not ours
    assert turns.unanswered_item == "item_1"
    turns.on_response_created()
    assert not turns.response_requested
    assert turns.on_response_done() == []
    assert turns.unanswered_turn is None and turns.unanswered_item is None


def test_too_short_a_turn_is_discarded() -> None:
    turns = _turns(silence_duration_ms=32, prefix_padding_ms=0, min_speech_ms=32)
    effects = turns.push(_silence(0.5) + _tone(0.04) + _silence(0.3))
    assert _kinds(effects) == [
        TurnEffect.SPEECH_STARTED,
        TurnEffect.SPEECH_STOPPED,
        TurnEffect.DISCARD,
    ]
    assert turns.unanswered_turn is None


def test_one_cancel_per_response_and_reset_keeps_the_unanswered_turn() -> None:
    turns = _turns()
    assert not turns.cancel(generation_active=False)
    assert turns.cancel(generation_active=True)
    assert not turns.cancel(generation_active=True)
    turns.on_response_done()
    assert turns.cancel(generation_active=True)
    assert _kinds(turns.committed(b"\x00" * MIN_COMMIT_BYTES)) == [
        TurnEffect.COMMIT,
        TurnEffect.REPLY,
    ]
    turns.push(_silence(0.3) + _tone(0.3))
    assert turns.speaking
    turns.reset()
    assert not turns.speaking and not turns.response_requested and not turns.cancel_sent
    assert turns.take_unanswered() == b"\x00" * MIN_COMMIT_BYTES
    assert turns.take_unanswered() is None


def test_stop_and_start_hand_turn_taking_over() -> None:
    turns = _turns()
    turns.push(_tone(0.3))
    turns.stop()
    assert not turns.running and not turns.speaking
    with pytest.raises(AssertionError):
        turns.push(_tone(0.1))
    opts = novad.ClientVad()
    turns.start(ClientTurnDetector(opts, scorer=_scorer(lambda _: False)), opts)
    assert turns.running
    assert turns.push(bytes(WINDOW_BYTES * 4)) == []


def test_a_turn_ending_during_another_response_is_answered_after_it() -> None:
    turns = _turns(silence_duration_ms=200, prefix_padding_ms=0)
    turns.on_response_created()  # the app's reply is on the server
    effects = turns.push(_silence(0.3) + _tone(0.5) + _silence(0.5))
    assert _kinds(effects)[-2:] == [TurnEffect.SPEECH_STOPPED, TurnEffect.COMMIT]
    assert turns.reply_pending
    assert turns.on_response_done() == [(TurnEffect.REPLY, b"")]
    assert turns.unanswered_turn is not None and turns.response_requested
    # the same while the app's response.create is still unanswered, then refused
    turns = _turns(silence_duration_ms=200, prefix_padding_ms=0)
    effects = turns.push(_silence(0.3) + _tone(0.5) + _silence(0.5), generation_active=True)
    assert TurnEffect.REPLY not in _kinds(effects)
    assert turns.on_response_refused() == [(TurnEffect.REPLY, b"")]


def test_held_onset_barges_in_after_min_duration_or_is_a_false_interruption() -> None:
    # short: 0.2 s of speech over the reply -> no barge-in, nothing answered
    turns = _turns(silence_duration_ms=300, prefix_padding_ms=100)
    effects = turns.push(_silence(0.3) + _tone(0.1))
    assert _kinds(effects) == [TurnEffect.SPEECH_STARTED]
    assert _kinds(turns.hold(0.5)) == [TurnEffect.HELD_START]
    effects = turns.push(_tone(0.1) + _silence(0.6))
    assert _kinds(effects) == [TurnEffect.HELD_STOP, TurnEffect.DISCARD]
    assert turns.unanswered_turn is None
    # long: 1.2 s -> barge-in while speaking, then the turn is committed and answered
    turns.on_response_created()
    turns.push(_silence(0.3) + _tone(0.1))
    turns.hold(0.5)
    effects = turns.push(_tone(1.1))
    assert _kinds(effects) == [TurnEffect.BARGE_IN]
    effects = turns.push(_silence(0.6))
    assert _kinds(effects) == [TurnEffect.HELD_STOP, TurnEffect.COMMIT]
    assert turns.on_response_done() == [(TurnEffect.REPLY, b"")]  # after the cut reply ends


def test_uninterruptible_reply_is_never_barged_in_and_the_turn_waits() -> None:
    turns = _turns(silence_duration_ms=200, prefix_padding_ms=0)
    turns.on_response_created()
    turns.push(_silence(0.3) + _tone(0.1))
    turns.hold(None)
    effects = turns.push(_tone(2.0) + _silence(0.4))
    assert _kinds(effects) == [TurnEffect.HELD_STOP, TurnEffect.COMMIT]
    assert turns.on_response_done() == [(TurnEffect.REPLY, b"")]


def test_clear_turn_ends_the_speaking_state() -> None:
    turns = _turns()
    assert turns.clear_turn() == []
    turns.push(_silence(0.3) + _tone(0.3))
    assert turns.speaking
    assert _kinds(turns.clear_turn()) == [TurnEffect.SPEECH_STOPPED]
    assert not turns.speaking
    turns.push(_silence(0.3) + _tone(0.3))
    turns.hold(0.5)
    assert _kinds(turns.clear_turn()) == [TurnEffect.HELD_STOP]
