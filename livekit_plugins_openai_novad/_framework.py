"""The seam to the AgentSession: its interruption rules, applied to client-VAD turns.

While client VAD runs, the model reports turn detection (``capabilities.turn_detection``) so
the framework adds no VAD of its own and leaves the turns to this session; the framework then
believes a server decides them, and three of its rules for server turn detection would apply:
``allow_interruptions=False`` is refused at start, a speech's own ``allow_interruptions=False``
is dropped, and its VAD interruption path (``min_duration``, pausing the playout, resuming a
false interruption) is skipped. Here the session decides turns on the client, so those rules
are lifted for it, and the framework's own VAD path is driven with this session's speech
onsets and ends: ``user_state_changed``, ``agent_state_changed`` and
``agent_false_interruption`` fire as they do for the framework's VAD. While the server's VAD
runs, nothing here applies. Every framework internal used is named in ``_upstream.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from livekit.agents.llm import ChatMessage
from livekit.agents.metrics import EOUMetrics
from livekit.agents.utils import is_given
from livekit.agents.vad import VADEvent, VADEventType
from livekit.agents.voice.events import MetricsCollectedEvent

from ._upstream import AgentActivity

__all__ = ["Floor", "install"]


@contextlib.contextmanager
def _client_side(activity: Any) -> Iterator[None]:
    """While inside, the activity treats turn taking as the client's (as it is)."""
    before = activity._rt_turn_detection_enabled
    activity._rt_turn_detection_enabled = False
    try:
        yield
    finally:
        activity._rt_turn_detection_enabled = before


def _client_turns_rt(activity: Any) -> bool:
    rt = getattr(activity, "_rt_session", None)
    return getattr(rt, "turn_taking_mode", None) == "client_vad"


class Floor:
    """What the agent is doing, as the session's client VAD needs to know it, and the
    framework's reactions to the user's speech over it. Without an AgentSession (a bare
    RealtimeSession) there is no floor: ``attached`` is False."""

    def __init__(self) -> None:
        self._activity: weakref.ref[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, callback: Callable[..., Any]) -> None:
        """Called with every listener of the session's ``input_speech_started``: the
        AgentActivity that owns the session registers one."""
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, AgentActivity):
            self._activity = weakref.ref(owner)

    @property
    def _act(self) -> Any:
        return self._activity() if self._activity is not None else None

    @property
    def attached(self) -> bool:
        return self._act is not None

    def reply(self) -> Any:
        """The speech handle of the agent's reply in progress, if any."""
        act = self._act
        speech = act.current_speech if act is not None else None
        if speech is None or speech.done() or speech.interrupted:
            return None
        return speech

    def interruption(self) -> dict[str, Any]:
        return dict(self._act.session.options.interruption)

    def preemptive_generation(self) -> dict[str, Any]:
        """``turn_handling["preemptive_generation"]``, agent-level keys over session-level."""
        return dict(self._act.preemptive_generation_opts)

    def can_pause(self) -> bool:
        return bool(self._act._pause_enabled())

    # -- the framework's VAD path, driven by client VAD -------------------------------------

    def user_started(self) -> None:
        act = self._act
        act.on_start_of_speech(None, time.time())
        if self.can_pause():
            with _client_side(act):
                act._interrupt_by_audio_activity()  # pauses the playout (false if short)

    def barge_in(self) -> None:
        """The held speech is an interruption: cut the reply (paused or playing)."""
        act = self._act
        if act._paused_speech is not None:
            # the framework's own resolution of a pause by a committed turn
            task = asyncio.ensure_future(act._cancel_speech_pause(interrupt=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            with _client_side(act):
                act._interrupt_by_audio_activity()

    def user_stopped(self, *, speech_s: float, silence_s: float) -> None:
        """The user stopped ``silence_s`` ago; a paused reply resumes after the session's
        ``false_interruption_timeout`` unless a turn interrupts it."""
        self._act.on_end_of_speech(
            VADEvent(
                type=VADEventType.END_OF_SPEECH,
                samples_index=0,
                timestamp=time.time(),
                speech_duration=speech_s,
                silence_duration=silence_s,
            )
        )


    # -- metrics, as the framework's VAD path gives them ---------------------------------------

    def end_of_utterance(self, delay_s: float) -> None:
        """The session decided the user's turn ended ``delay_s`` after their last speech."""
        act = self._act
        if act is None:
            return
        eou = EOUMetrics(
            timestamp=time.time(),
            end_of_utterance_delay=delay_s,
            transcription_delay=0.0,
            on_user_turn_completed_delay=0.0,
        )
        act.session.emit("metrics_collected", MetricsCollectedEvent(metrics=eou))

    def user_stopped_at(self, item_id: str, stopped_at: float) -> None:
        """Complete the metrics of the user's message ``item_id`` (the framework sets when the
        turn started, from the transcription event) with when the speech stopped."""
        act = self._act
        msg = act.session.history.get_by_id(item_id) if act is not None else None
        if isinstance(msg, ChatMessage) and "started_speaking_at" in msg.metrics:
            msg.metrics["stopped_speaking_at"] = stopped_at


# -- lifting the server-turn-detection rules ------------------------------------------------

_installed = False


def install(model_runs_client_turns: Callable[[Any], bool]) -> None:
    """Patch the three rules once per process (see the module docstring)."""
    global _installed
    if _installed:
        return
    _installed = True
    allow_prop: property = AgentActivity.__dict__["allow_interruptions"]
    orig_init = AgentActivity.__init__
    orig_generate = AgentActivity._generate_reply
    orig_say = AgentActivity.say

    def allow_interruptions(self: Any) -> bool:
        if self.__dict__.get("_novad_starting"):
            return True  # only the start-up check reads it while starting
        assert allow_prop.fget is not None
        return bool(allow_prop.fget(self))

    def __init__(self: Any, agent: Any, sess: Any) -> None:
        llm = agent.llm if is_given(agent.llm) else sess.llm
        if not model_runs_client_turns(llm):
            orig_init(self, agent, sess)
            return
        self.__dict__["_novad_starting"] = True
        try:
            orig_init(self, agent, sess)
        finally:
            self.__dict__.pop("_novad_starting", None)

    def _generate_reply(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("allow_interruptions") is False and _client_turns_rt(self):
            with _client_side(self):
                return orig_generate(self, *args, **kwargs)
        return orig_generate(self, *args, **kwargs)

    def say(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("allow_interruptions") is False and _client_turns_rt(self):
            with _client_side(self):
                return orig_say(self, *args, **kwargs)
        return orig_say(self, *args, **kwargs)

    AgentActivity.allow_interruptions = property(allow_interruptions)  # type: ignore[method-assign,assignment]
    AgentActivity.__init__ = __init__  # type: ignore[method-assign]
    AgentActivity._generate_reply = _generate_reply  # type: ignore[method-assign]
    AgentActivity.say = say  # type: ignore[method-assign]
