"""The offline emulator: ``FakeRealtimeServer`` answering in real (pre-recorded) speech.

Used by the demo worker when no ``OPENAI_API_KEY`` is set, and by
``python -m livekit_plugins_openai_novad emulator``. It says what it heard ("This is the
offline emulator. I heard you speak for about three seconds."), or, for typed input, echoes
the text. Replies are espeak-ng phrases shipped with the package.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import wave
from importlib import resources
from typing import Any

from .fake_server import FakeRealtimeServer, ReplyContext

__all__ = ["emulator_reply", "EmulatorThread"]

_NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


@functools.cache
def _phrase(name: str) -> bytes:
    ref = resources.files("livekit_plugins_openai_novad") / "resources" / f"{name}.wav"
    with resources.as_file(ref) as path, wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def _last_user_text(ctx: ReplyContext) -> str | None:
    for item in reversed(ctx.connection.conversation):
        if item.get("role") != "user":
            continue
        for part in item.get("content") or []:
            if part.get("type") in ("input_text", "text") and part.get("text"):
                return str(part["text"])
        return None
    return None


def emulator_reply(ctx: ReplyContext) -> tuple[str, bytes]:
    """Reply text and PCM16 speech for one response of the emulator."""
    text = _last_user_text(ctx)
    if text is not None:
        return f"This is the offline emulator. You wrote: {text}", _phrase("intro")
    seconds = round(ctx.audio_seconds)
    intro = "This is the offline emulator."
    if seconds < 1:
        return (
            f"{intro} I heard you speak for about less than one second.",
            _phrase("intro") + _phrase("heard") + _phrase("less_than_one"),
        )
    n = min(seconds, 10)
    unit = "second" if n == 1 else "seconds"
    return (
        f"{intro} I heard you speak for about {_NUMBERS[n - 1]} {unit}.",
        _phrase("intro") + _phrase("heard") + _phrase(f"n{n}") + _phrase(unit),
    )


class EmulatorThread:
    """Runs the emulator on its own event loop in a daemon thread (for a worker process)."""

    def __init__(self, **server_kwargs: Any) -> None:
        kwargs: dict[str, Any] = {"reply": emulator_reply, "api_key": None}
        kwargs.update(server_kwargs)
        self._kwargs = kwargs
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="novad-emulator", daemon=True)
        self.server: FakeRealtimeServer | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> FakeRealtimeServer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the offline emulator did not start")
        if self._error is not None:
            raise RuntimeError("the offline emulator failed to start") from self._error
        assert self.server is not None
        return self.server

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.server = FakeRealtimeServer(**self._kwargs)
            await self.server.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.aclose()
