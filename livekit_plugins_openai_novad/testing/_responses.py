"""One response of the fake server: from ``response.created`` to ``response.done``.

The event order is the real server's (docs/realtime-wire.md §5): created, output item added,
the item entering the conversation, content part added, interleaved transcript and audio
deltas, audio done, transcript done, content part done, the conversation's item done (GA),
output item done, done; names per wire come from ``_names.NAMES``. Timing follows the server's
``time_to_first_audio`` and ``reply_pace`` (``timing.py``).

Invariants: a response finishes exactly once (completed, cancelled or failed), with whatever
it sent so far; from ``response.content_part.added`` on, the conversation holds the item with
its content part and the audio sent so far, so it can be truncated while it streams; once the
client truncated it, later deltas no longer extend the stored item.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._input import SAMPLE_RATE
from ._items import Conversation
from ._messages import JsonDict, new_id, server_event
from ._names import NAMES
from .replies import ReplyContext, default_reply_audio, make_reply

if TYPE_CHECKING:
    from ._handlers import FakeConnection

__all__ = ["ResponseStream", "rate_limits_event"]

_CHUNK_BYTES = 4800  # 100 ms of PCM16 24 kHz per audio delta
_BYTES_PER_SECOND = SAMPLE_RATE * 2
_TEXT_WORD_SECONDS = 0.05  # [fake] a text-only reply streams one word per 50 ms at pace 1
_WORDS = re.compile(r"\S+\s*")


def rate_limits_event() -> JsonDict:
    return server_event(
        "rate_limits.updated",
        rate_limits=[
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
        ],
    )


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


class ResponseStream:
    """Streams one response on a connection (see the module invariants)."""

    def __init__(
        self,
        conn: FakeConnection,
        emit: Callable[[JsonDict], None],
        conversation: Conversation,
        on_done: Callable[[ResponseStream], None],
        *,
        trigger: str,
        request: JsonDict,
        in_conversation: bool,
        last_commit: bytes,
    ) -> None:
        self.conn = conn
        self.names = names = NAMES[conn.wire]
        self._emit = emit
        self._conversation = conversation
        self._on_done = on_done
        self.id = new_id("resp")
        self.trigger = trigger
        self.request = request
        self.in_conversation = in_conversation
        self._last_commit = last_commit
        session = conn.session
        ga = conn.wire == "ga"
        mods = request.get(names.modalities_key)
        if isinstance(mods, list) and mods:
            self.text_only = "audio" not in mods
        else:
            self.text_only = "audio" not in session.get(names.modalities_key, ["audio"])
        if self.text_only:
            modalities = ["text"]
        else:
            modalities = ["audio"] if ga else ["audio", "text"]
        self.metadata = request.get("metadata")
        conv_id = conversation.id if in_conversation else None
        if ga:
            out = session["audio"]["output"]
            self._base: JsonDict = {
                "conversation_id": conv_id,
                "output_modalities": modalities,
                "max_output_tokens": session.get("max_output_tokens", "inf"),
                "audio": {"output": {"format": out["format"], "voice": out["voice"]}},
            }
        else:
            self._base = {
                "conversation_id": conv_id,
                "modalities": modalities,
                "voice": session.get("voice"),
                "output_audio_format": session.get("output_audio_format"),
                "temperature": session.get("temperature"),
                "max_output_tokens": session.get("max_response_output_tokens", "inf"),
            }
        # the public record of this response (FakeConnection.responses)
        self.record: JsonDict = {
            "id": self.id,
            "created_at": time.monotonic(),
            "status": "in_progress",
            "trigger": trigger,
            "status_details": None,
            "metadata": self.metadata,
            "conversation": in_conversation,
            "output_modalities": modalities,
            "item_id": None,
            "text": "",
            "audio_bytes": 0,
            "done_at": None,
        }
        self.item_id: str | None = None
        self._item_prev: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._part_added = False
        self.sent_text = ""
        self.audio_bytes = 0
        self.truncated = False
        self.done = False
        self._started_at = 0.0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._started_at = loop.time()
        self._emit(
            server_event(
                "response.created", response=self._response_obj("in_progress", None, [], None)
            )
        )
        if self.names.rate_limits_after_created:
            self._emit(rate_limits_event())
        self._task = loop.create_task(self._run())

    def cancel(self, reason: str) -> None:
        """End now with status ``cancelled`` (``client_cancelled`` / ``turn_detected``)."""
        if self.done:
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._finish("cancelled", {"type": "cancelled", "reason": reason})

    def abandon(self) -> None:
        """The socket closed: stop streaming, send nothing more."""
        self.done = True
        if self._task is not None:
            self._task.cancel()

    # ------------------------------------------------------------ streaming

    async def _run(self) -> None:
        server = self.conn.server
        loop = asyncio.get_running_loop()
        ctx = ReplyContext(self.conn, self._last_commit, self.trigger, self.id, self.request)
        try:
            text, pcm = await make_reply(server, ctx)
        except Exception as e:  # a broken reply callable fails the response, not the socket
            error = {"type": "server_error", "code": None, "message": f"reply failed: {e!r}"}
            self._finish("failed", {"type": "failed", "error": error})
            return
        if self.done:
            return
        if self.text_only:
            pcm = b""
        elif not pcm:
            pcm = default_reply_audio()
        # the time to first audio counts from response.created; the model "thinks" before its
        # first output item, so a cancel in this window ends the response with no output
        if server.time_to_first_audio > 0:
            await _sleep_until(loop, self._started_at + server.time_to_first_audio)
        self._open_item()
        names = self.names
        ids = self._ids()
        words = _WORDS.findall(text)
        pace = server.reply_pace
        t0 = loop.time()
        if self.text_only:
            for i, word in enumerate(words):
                if pace > 0:
                    await _sleep_until(loop, t0 + i * _TEXT_WORD_SECONDS * pace)
                self._emit(server_event(names.text_delta, **ids, delta=word))
                self.sent_text += word
                self._store_partial()
        else:
            n_chunks = max(1, math.ceil(len(pcm) / _CHUNK_BYTES))
            sent_words = 0
            for i in range(n_chunks):
                if pace > 0:
                    await _sleep_until(loop, t0 + i * _CHUNK_BYTES / _BYTES_PER_SECOND * pace)
                # transcript deltas interleaved with the audio, proportionally
                target = (i + 1) * len(words) // n_chunks
                while sent_words < target:
                    word = words[sent_words]
                    self._emit(server_event(names.transcript_delta, **ids, delta=word))
                    self.sent_text += word
                    sent_words += 1
                chunk = pcm[i * _CHUNK_BYTES : (i + 1) * _CHUNK_BYTES]
                self._emit(
                    server_event(
                        names.audio_delta, **ids, delta=base64.b64encode(chunk).decode("ascii")
                    )
                )
                self.audio_bytes += len(chunk)
                self._store_partial()
            if pace > 0:
                # the last chunk takes its share of generation time before response.done
                await _sleep_until(loop, t0 + len(pcm) / _BYTES_PER_SECOND * pace)
        self._finish("completed", None)

    def _ids(self) -> JsonDict:
        return {
            "response_id": self.id,
            "item_id": self.item_id,
            "output_index": 0,
            "content_index": 0,
        }

    def _open_item(self) -> None:
        """Output item added, into the conversation, content part added."""
        self.item_id = item_id = new_id("item")
        self.record["item_id"] = item_id
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self._emit(
            server_event(
                "response.output_item.added", response_id=self.id, output_index=0, item=item
            )
        )
        if self.in_conversation:
            self._item_prev = self._conversation.append(item)
            self._emit(
                server_event(self.names.item_started, previous_item_id=self._item_prev, item=item)
            )
            self._conversation.set_audio_ms(item_id, 0.0)
        part = (
            {"type": "text", "text": ""} if self.text_only else {"type": "audio", "transcript": ""}
        )
        self._emit(server_event("response.content_part.added", **self._ids(), part=part))
        self._part_added = True
        self._store_partial()

    def _content(self, text: str) -> list[JsonDict]:
        if self.text_only:
            return [{"type": self.names.text_content, "text": text}]
        return [{"type": self.names.audio_content, "transcript": text}]

    def _store_partial(self) -> None:
        """Replace the stored in-progress item with one holding what was streamed so far."""
        if not self.in_conversation or self.item_id is None or self.truncated:
            return
        conv = self._conversation
        item = conv.get(self.item_id)
        if item is not None:
            conv.replace({**item, "content": self._content(self.sent_text)})
            if not self.text_only:
                conv.set_audio_ms(self.item_id, self.audio_bytes / (_BYTES_PER_SECOND / 1000))

    # ------------------------------------------------------------ the end

    def _finish(self, status: str, details: JsonDict | None) -> None:
        if self.done:
            return
        self.done = True
        names = self.names
        text = self.sent_text
        if self._part_added:
            ids = self._ids()
            if self.text_only:
                self._emit(server_event(names.text_done, **ids, text=text))
                part: JsonDict = {"type": "text", "text": text}
            else:
                # audio done, then transcript done, then content_part.done
                self._emit(server_event(names.audio_done, **ids))
                self._emit(server_event(names.transcript_done, **ids, transcript=text))
                part = {"type": "audio", "transcript": text}
            self._emit(server_event("response.content_part.done", **ids, part=part))
        output: list[JsonDict] = []
        if self.item_id is not None:
            # a truncation mid-stream dropped the transcript: the finished item keeps it dropped
            item = {
                "id": self.item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "completed" if status == "completed" else "incomplete",
                "role": "assistant",
                "content": self._content("" if self.truncated else text),
            }
            output.append(item)
            if self.in_conversation:
                self._conversation.replace(item)
                if names.item_done is not None:
                    self._emit(
                        server_event(names.item_done, previous_item_id=self._item_prev, item=item)
                    )
            self._emit(
                server_event(
                    "response.output_item.done", response_id=self.id, output_index=0, item=item
                )
            )
        self._emit(
            server_event(
                "response.done", response=self._response_obj(status, details, output, self._usage())
            )
        )
        if not names.rate_limits_after_created:
            self._emit(rate_limits_event())
        rec = self.record
        rec["status"] = status
        rec["status_details"] = details
        rec["text"] = text
        rec["audio_bytes"] = self.audio_bytes
        rec["done_at"] = time.monotonic()
        self._on_done(self)

    def _response_obj(
        self, status: str, details: JsonDict | None, output: list[JsonDict], usage: JsonDict | None
    ) -> JsonDict:
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": status,
            "status_details": details,
            "output": output,
            **self._base,
            "usage": usage,
            "metadata": self.metadata,
        }

    def _usage(self) -> JsonDict:
        # [fake] token counts: 10 per second of input audio, 20 per second of output audio
        in_audio = int(len(self._last_commit) / _BYTES_PER_SECOND * 10)
        in_text = len(str(self.conn.session.get("instructions", ""))) // 4
        out_audio = int(self.audio_bytes / _BYTES_PER_SECOND * 20)
        out_text = len(self.sent_text.split())
        return {
            "total_tokens": in_audio + in_text + out_audio + out_text,
            "input_tokens": in_audio + in_text,
            "output_tokens": out_audio + out_text,
            "input_token_details": {
                "text_tokens": in_text,
                "audio_tokens": in_audio,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }
