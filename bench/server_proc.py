"""``FakeRealtimeServer`` in its own process, so its CPU is not counted in the worker's.

The server process timestamps the client events the benchmark cares about with
``time.perf_counter()`` as they are handled (the server's public client event hook). On Linux
``perf_counter`` is ``CLOCK_MONOTONIC``, one clock for every process, so the server's
timestamps compare directly with the worker's ``WavAudioInput.push_times``.

Each connection is named by its API key (the server accepts any key), which the worker sets
per session. The worker talks to the process over a pipe: ``stats``, ``reset`` and ``stop``.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["ServerHandle", "start_server"]


@dataclass
class _ConnStats:
    appends: int = 0
    append_bytes: int = 0
    commit_times: list[float] = field(default_factory=list)
    commit_bytes: list[int] = field(default_factory=list)
    create_times: list[float] = field(default_factory=list)
    update_times: list[float] = field(default_factory=list)
    clear_times: list[float] = field(default_factory=list)


class _Probes:
    """Per-connection stats, from the fake server's public event hooks (in this process)."""

    def __init__(self) -> None:
        self.stats: dict[Any, _ConnStats] = {}  # FakeConnection -> its stats

    def of(self, conn: Any) -> _ConnStats:
        st = self.stats.get(conn)
        if st is None:
            st = self.stats[conn] = _ConnStats()
        return st

    def on_client_event(self, conn: Any, event: dict[str, Any], error: Any) -> None:
        # called once the event is handled, so a commit's audio is the last commit
        t = time.perf_counter()
        if error is not None:
            return  # e.g. an empty commit: not counted
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            st = self.of(conn)
            st.appends += 1
            st.append_bytes = conn.appended_bytes
        elif kind == "input_audio_buffer.commit":
            st = self.of(conn)
            st.commit_times.append(t)
            st.commit_bytes.append(len(conn.commits[-1]))
            conn.commits.clear()  # the bytes are not needed here; keep memory flat for big N
        elif kind == "response.create":
            self.of(conn).create_times.append(t)
        elif kind == "session.update":
            self.of(conn).update_times.append(t)
        elif kind == "input_audio_buffer.clear":
            self.of(conn).clear_times.append(t)


def _conn_key(conn: Any) -> str:
    auth = conn.headers.get("Authorization", "")
    return auth.partition(" ")[2].strip()


def _snapshot(server: Any, probes: _Probes) -> dict[str, Any]:
    conns: dict[str, Any] = {}
    for conn in server.connections:
        st = probes.stats.get(conn) or _ConnStats()
        conns[_conn_key(conn)] = {
            "appended_bytes": conn.appended_bytes,
            "buffered_bytes": len(conn.input_audio),
            "appends": st.appends,
            "commit_times": list(st.commit_times),
            "commit_bytes": list(st.commit_bytes),
            "create_times": list(st.create_times),
            "update_times": list(st.update_times),
            "clear_times": list(st.clear_times),
            "responses": len(conn.responses),
            "turn_detection": conn.turn_detection,
            "closed": conn.closed,
        }
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "connections": conns,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "now": time.perf_counter(),
    }


async def _serve(pipe: Connection, reply_s: float) -> None:
    from livekit_plugins_openai_novad.testing import INSTANT, FakeRealtimeServer, tone

    probes = _Probes()
    server = FakeRealtimeServer(
        api_key=None,  # any key: the key names the session
        record_events=False,
        reply_text="Okay.",
        reply_audio=tone(reply_s, freq=440.0, dbfs=-20.0),
        **INSTANT,  # the measured latencies are the client's, not a simulated model's
    )
    server.hooks.on_client_event(probes.on_client_event)
    await server.start()
    pipe.send({"port": server.port})
    loop = asyncio.get_running_loop()

    async def handle(cmd: str) -> Any:
        if cmd == "stats":
            return _snapshot(server, probes)
        if cmd == "reset":
            server.connections.clear()
            probes.stats.clear()
            return True
        return None

    def reader() -> None:
        while True:
            try:
                cmd = pipe.recv()
            except (EOFError, OSError):
                return
            if cmd == "stop":
                return
            fut = asyncio.run_coroutine_threadsafe(handle(cmd), loop)
            pipe.send(fut.result())

    try:
        await asyncio.to_thread(reader)
    finally:
        await server.aclose()
        try:
            pipe.send("stopped")
        except (EOFError, OSError, BrokenPipeError):
            pass


def _server_main(pipe: Connection, reply_s: float) -> None:
    asyncio.run(_serve(pipe, reply_s))


class ServerHandle:
    """The worker's end: the port, and blocking requests (call them from a thread)."""

    def __init__(self, proc: mp.process.BaseProcess, pipe: Connection, port: int) -> None:
        self.proc = proc
        self._pipe = pipe
        self._lock = threading.Lock()
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def request(self, cmd: str) -> Any:
        with self._lock:
            self._pipe.send(cmd)
            return self._pipe.recv()

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.request, "stats")

    def stop(self) -> None:
        try:
            self._pipe.send("stop")
            if self._pipe.poll(5):
                self._pipe.recv()
        except (EOFError, OSError, BrokenPipeError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2)


def start_server(reply_s: float = 0.3) -> ServerHandle:
    """Spawn the fake server process and wait for its port."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_server_main, args=(child, reply_s), daemon=True)
    proc.start()
    if not parent.poll(60):
        proc.terminate()
        raise RuntimeError("the fake server process did not start")
    msg = parent.recv()
    return ServerHandle(proc, parent, int(msg["port"]))
