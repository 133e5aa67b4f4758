"""How P2 hosts its sessions: the ways a LiveKit worker runs jobs (livekit-agents 1.8).

* ``plain``: every session on the one event loop of a plain Python process, nothing prepared.
* ``job_process``: a process prepared as the framework prepares a job process: the plugins'
  packages and the framework's warm-up (``livekit.agents.ipc._preload``) imported, then
  ``gc.collect()`` + ``gc.freeze()`` (``_preload_freeze``, which the forkserver runs last),
  then the worker's ``setup_fnc`` once; every session on its loop.
* ``thread_executor``: the framework's thread executor (``ipc/job_thread_executor.py``): the
  warm-up imported without a freeze, and each job on its own thread with its own event loop,
  the ``setup_fnc`` run per job in its thread.

The ``setup_fnc`` is ``novad.prewarm`` for novad, and for the anchor the Silero VAD a worker
loads into ``proc.userdata`` (one per job process; in ``plain`` the anchor loads one per
session, as before).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .agents import Impl, load_anchor_vad

__all__ = ["MODES", "prepare_process", "setup_job", "JobLoops"]

T = TypeVar("T")

MODES: dict[str, str] = {
    "plain": "one plain process, one event loop",
    "job_process": "a job process as the framework prepares it (preload, gc.freeze), one loop",
    "thread_executor": "the thread executor: one thread with its own event loop per job",
}

# what the forkserver imports before a job process forks off, in the framework's order
_PLUGIN_PACKAGES = (
    "livekit.plugins.openai",
    "livekit.plugins.silero",
    "livekit_plugins_openai_novad",
)
_WARM_UP = "livekit.agents.ipc._preload"
_FREEZE = "livekit.agents.ipc._preload_freeze"  # must stay last: it freezes what came before


def prepare_process(mode: str) -> None:
    """Before the event loop starts: what the framework does to the process for ``mode``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "job_process":
        for name in (*_PLUGIN_PACKAGES, _WARM_UP, _FREEZE):
            importlib.import_module(name)
    elif mode == "thread_executor":
        importlib.import_module(_WARM_UP)


def setup_job(impl: Impl) -> Any:
    """The worker's ``setup_fnc``; returns what the job's sessions share (the anchor's VAD)."""
    if impl == "novad":
        import livekit_plugins_openai_novad as novad

        novad.prewarm()
        return None
    return load_anchor_vad()


class JobLoops:
    """Where each job's coroutines run: the caller's loop, or one thread and loop per job.

    Invariant: job ``i`` always runs on the same loop, so its session never sees another.
    """

    def __init__(self, threaded: bool) -> None:
        self.threaded = threaded
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._threads: list[threading.Thread] = []

    def add(self) -> int:
        """A place for the next job; returns its index."""
        if self.threaded:
            loop = asyncio.new_event_loop()
            t = threading.Thread(
                target=loop.run_forever, name=f"job_thread_runner-{len(self._loops)}", daemon=True
            )
            t.start()
            self._loops.append(loop)
            self._threads.append(t)
            return len(self._loops) - 1
        self._loops.append(asyncio.get_running_loop())
        return len(self._loops) - 1

    @property
    def distinct_loops(self) -> list[asyncio.AbstractEventLoop]:
        return list(dict.fromkeys(self._loops))

    async def run(self, i: int, factory: Callable[[], Awaitable[T]]) -> T:
        """``await factory()`` on job ``i``'s loop."""
        return await self.on_loop(self._loops[i], factory)

    async def on_loop(
        self, loop: asyncio.AbstractEventLoop, factory: Callable[[], Awaitable[T]]
    ) -> T:
        if loop is asyncio.get_running_loop():
            return await factory()

        async def call() -> T:
            return await factory()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), loop))

    def close(self) -> None:
        if not self.threaded:
            return
        for loop in self._loops:
            loop.call_soon_threadsafe(loop.stop)
        for t in self._threads:
            t.join(timeout=10)
        for loop in self._loops:
            if not loop.is_running():
                loop.close()
