"""Server event names that differ between the GA and the legacy (beta) wire, as data.

docs/realtime-wire.md §6: the legacy wire names the response deltas ``response.text.*``,
``response.audio.*`` and ``response.audio_transcript.*`` and announces items with
``conversation.item.created``, where GA has ``response.output_*`` and ``conversation.item.added``
then ``conversation.item.done``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._messages import Wire

__all__ = ["NAMES", "WireNames"]


@dataclass(frozen=True)
class WireNames:
    text_delta: str
    text_done: str
    transcript_delta: str
    transcript_done: str
    audio_delta: str
    audio_done: str
    item_started: str  # an item entering the conversation (the assistant's while in progress)
    item_done: str | None  # a finished item, if the wire says so separately
    modalities_key: str  # in the session and in response.create
    text_content: str  # the content part types of an assistant item
    audio_content: str
    rate_limits_after_created: bool  # GA sends rate_limits.updated after response.done


NAMES: dict[Wire, WireNames] = {
    "ga": WireNames(
        text_delta="response.output_text.delta",
        text_done="response.output_text.done",
        transcript_delta="response.output_audio_transcript.delta",
        transcript_done="response.output_audio_transcript.done",
        audio_delta="response.output_audio.delta",
        audio_done="response.output_audio.done",
        item_started="conversation.item.added",
        item_done="conversation.item.done",
        modalities_key="output_modalities",
        text_content="output_text",
        audio_content="output_audio",
        rate_limits_after_created=False,
    ),
    "beta": WireNames(
        text_delta="response.text.delta",
        text_done="response.text.done",
        transcript_delta="response.audio_transcript.delta",
        transcript_done="response.audio_transcript.done",
        audio_delta="response.audio.delta",
        audio_done="response.audio.done",
        item_started="conversation.item.created",
        item_done=None,
        modalities_key="modalities",
        text_content="text",
        audio_content="audio",
        rate_limits_after_created=True,
    ),
}
