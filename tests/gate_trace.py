"""What a ``ClientTurnDetector`` does with a clip pushed in fixed steps, in two shapes."""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit_plugins_openai_novad.client_vad import ClientTurnDetector, GateAction

__all__ = ["gate_marks", "gate_turns", "GateTurns"]


def gate_marks(
    det: ClientTurnDetector, pcm: bytes, step_bytes: int
) -> tuple[bytes, list[tuple[GateAction, int]]]:
    """The bytes sent, and every other action with the bytes sent before it."""
    sent = bytearray()
    marks: list[tuple[GateAction, int]] = []
    for i in range(0, len(pcm), step_bytes):
        for action, data in det.push(pcm[i : i + step_bytes]):
            if action is GateAction.SEND:
                sent += data
            else:
                marks.append((action, len(sent)))
    return bytes(sent), marks


@dataclass
class GateTurns:
    turns: list[tuple[int, int, int]] = field(default_factory=list)
    # (first input sample sent, samples sent, input sample at which the end was decided)
    events: list[GateAction] = field(default_factory=list)
    sent_bytes: int = 0


def gate_turns(det: ClientTurnDetector, pcm: bytes, step_bytes: int) -> GateTurns:
    """Each turn as the piece of the input its gate sent (checked to be one contiguous piece)."""
    out = GateTurns()
    sent = bytearray()
    turn_start = 0
    for i in range(0, len(pcm), step_bytes):
        for action, data in det.push(pcm[i : i + step_bytes]):
            out.events.append(action)
            if action is GateAction.SEND:
                sent += data
            elif action is GateAction.SPEECH_STARTED:
                turn_start = len(sent)
            elif action is GateAction.SPEECH_STOPPED:
                piece = bytes(sent[turn_start:])
                pos = pcm.find(piece)
                assert pos >= 0, "a turn is not a contiguous piece of the input"
                out.turns.append((pos // 2, len(piece) // 2, (i + step_bytes) // 2))
    out.sent_bytes = len(sent)
    return out
