"""The demo worker in ``console`` mode, driven as a person would: tmux, a virtual sound card,
spoken audio into the microphone, the agent's voice recorded from the speaker, Ctrl+C."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from headless_audio import VirtualSoundCard, tools_available

from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.emulator import emulator_reply

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "examples" / "minimal_worker.py"

pytestmark = [
    pytest.mark.console,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not tools_available() or shutil.which("tmux") is None,
        reason="needs pulseaudio/paplay/parec/tmux: `make test` installs them",
    ),
]


class Tmux:
    """One tmux session running one command; its exit status lands in a file."""

    def __init__(self, name: str, command: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.status_file = workdir / f"{name}.exit"
        self.log = workdir / f"{name}.log"
        # no pipeline: a Ctrl+C that kills a pipe member would take the wrapper shell with it
        wrapped = f"{command}; echo $? > {shlex.quote(str(self.status_file))}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "50"]
            + ["bash", "-c", wrapped],
            check=True,
            env=env,
        )
        subprocess.run(
            ["tmux", "pipe-pane", "-t", name, f"cat >> {shlex.quote(str(self.log))}"], check=True
        )

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name, "-S", "-200"],
            capture_output=True,
            text=True,
        )
        return out.stdout

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition of an outside process (a file, a screen); bounded."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)



_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# upstream's console, as the worker exits: its sounddevice callbacks (a PortAudio thread) call
# the event loop after it closed; PortAudio prints "Exception ignored from cffi callback"
_TEARDOWN_FILES = ("sounddevice.py", "livekit/agents/cli/_legacy.py", "asyncio/base_events.py")


def _tracebacks(log: str) -> str:
    """The log's tracebacks (its tail, for the failure message) unless every one of them is
    that teardown race: then nothing. Any other traceback, frame or exception counts."""
    log = _ANSI.sub("", log)
    tracebacks = log.count("Traceback (most recent call last)")
    if not tracebacks:
        return ""
    frames = re.findall(r'File "([^"]+)", line \d+', log)
    # an exception line: a (dotted) name ending in Error/Exception/Exit/Interrupt, message or not
    errors = re.findall(r"^([\w.]+(?:Error|Exception|Exit|Interrupt))\b:? ?(.*)$", log, re.M)
    race = (
        tracebacks == log.count("Exception ignored from cffi callback")
        and tracebacks == log.count("RuntimeError: Event loop is closed")
        and all(f.endswith(_TEARDOWN_FILES) for f in frames)
        and all(e == ("RuntimeError", "Event loop is closed") for e in errors)
    )
    return "" if race else log[-3000:]


def voiced_seconds(path: Path) -> float:
    """Seconds of the recording whose 10 ms frames are above -50 dBFS."""
    # read past the 44-byte header: parec writes the final sizes only when it stops
    try:
        data = path.read_bytes()[44:]
    except FileNotFoundError:
        return 0.0
    pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)
    n = len(pcm) // 240
    if n == 0:
        return 0.0
    frames = pcm[: n * 240].reshape(n, 240).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1)) / 32768.0
    voiced = rms > 10 ** (-50 / 20)
    if not voiced.any():
        return 0.0
    idx = np.flatnonzero(voiced)
    return float((idx[-1] - idx[0] + 1) * 0.01)


def worker_env(base: dict[str, str], server: FakeRealtimeServer | None) -> dict[str, str]:
    env = {k: v for k, v in base.items() if "OPENAI" not in k}
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    if server is not None:
        env["OPENAI_BASE_URL"] = server.base_url
        env["OPENAI_API_KEY"] = "test-key"
    return env


async def test_console_audio_mode_answers_and_exits_cleanly(tmp_path: Path) -> None:
    async with FakeRealtimeServer(reply=emulator_reply) as server:
        with VirtualSoundCard(tmp_path / "card") as card:
            env = worker_env(card.full_env(), server)
            tmux = Tmux(
                f"novad-console-{os.getpid()}",
                f"{shlex.quote(sys.executable)} {shlex.quote(str(WORKER))} console",
                env,
                tmp_path,
            )
            try:
                conn = await server.wait_for_connection(timeout=90)
                await conn.wait_for_client_event("session.update", timeout=30)
                await conn.wait_for_sent_event("session.updated", timeout=30)
                recording = tmp_path / "speaker.wav"
                card.start_recording(recording)
                await asyncio.to_thread(card.play_into_mic, FIXTURES / "one_turn.wav")
                await conn.wait_for_client_event("response.create", timeout=30)
                done = await conn.wait_for_sent_event("response.done", timeout=30)
                assert done["response"]["status"] == "completed"
                reply_s = conn.responses[0]["audio_bytes"] / 2 / 24000
                await until(
                    lambda: voiced_seconds(recording) >= reply_s - 0.3,
                    timeout=reply_s + 15,
                    what="the agent's reply on the speaker",
                )
                card.stop_recording()
                heard = voiced_seconds(recording)
                assert reply_s - 0.3 <= heard <= reply_s + 0.5, (heard, reply_s)

                # server VAD was off, confirmed by the server, and the client took the turn
                assert conn.turn_detection is None
                updated = [e for e in conn.sent_events if e["type"] == "session.updated"]
                assert updated[0]["session"]["audio"]["input"]["turn_detection"] is None
                kinds = [e["type"] for e in conn.client_events]
                assert kinds.count("input_audio_buffer.commit") == 1
                assert kinds.count("response.create") == 1

                tmux.send("C-c")
                await until(tmux.status_file.exists, 30, "the worker to exit after Ctrl+C")
                status = int(tmux.status_file.read_text().strip() or "-1")
                assert status in (0, 130), tmux.log.read_text()[-3000:]
                assert not _tracebacks(tmux.log.read_text())
            finally:
                tmux.kill()


async def test_console_text_mode_round_trip_offline(tmp_path: Path) -> None:
    """No key at all: the worker starts its own offline emulator and answers typed text."""
    env = worker_env(dict(os.environ), None)
    tmux = Tmux(
        f"novad-text-{os.getpid()}",
        f"{shlex.quote(sys.executable)} {shlex.quote(str(WORKER))} console --text",
        env,
        tmp_path,
    )
    try:
        await until(
            lambda: "offline emulator" in tmux.screen() and "using transcript io" in tmux.screen(),
            60,
            "the worker to start",
        )
        tmux.send("What can you do?", "Enter")
        await until(
            lambda: "You wrote: What can you do?" in tmux.screen(), 30, "the agent's text reply"
        )
        tmux.send("C-c")
        await until(tmux.status_file.exists, 30, "the worker to exit after Ctrl+C")
        assert "Traceback" not in tmux.log.read_text()
    finally:
        tmux.kill()
