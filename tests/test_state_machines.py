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
    turns = ClientTurns()
    detector = ClientTurnDetector(
        novad.ClientVad(**vad), scorer=_scorer(lambda rms: rms > 0.01)
    )
    turns.start(detector)
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
    turns.on_response_done()
    assert turns.unanswered_turn is None and turns.unanswered_item is None


def test_too_short_a_turn_is_discarded() -> None:
    turns = _turns(silence_duration_ms=32, prefix_padding_ms=0, min_speech_ms=32)
    effects = turns.push(_silence(0.2) + _tone(0.04) + _silence(0.3))
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
    turns.committed(b"\x00" * MIN_COMMIT_BYTES)
    turns.push(_tone(0.3))
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
    turns.start(ClientTurnDetector(novad.ClientVad(), scorer=_scorer(lambda _: False)))
    assert turns.running
    assert turns.push(bytes(WINDOW_BYTES * 4)) == []
