"""The one seam to livekit-plugins-openai / livekit-agents internals (tested range: 1.8.x).

Everything this package uses from upstream that is not public API is imported or named here,
so a new upstream release is checked in one place. ``RealtimeSession`` in ``realtime.py`` and
its base ``TurnTakingSession`` in ``_turn_session.py`` (state in the I/O-free ``_ledger`` and
``_client_turns``) override these upstream methods, each called by upstream code we keep:

* ``_create_session_update_event()``: called by upstream ``__init__`` (the first
  ``session.update``) and by the reconnect routine (the first event on a new socket).
* ``_create_tools_update_event(tools)``: ``update_tools`` and the reconnect routine.
* ``_append_audio(frames)``: upstream's 100 ms append path (hand-built dicts, no pydantic).
* ``_handle_error(event)``: server ``error`` events; we claim the ones answering our updates.
* ``_handle_response_done(event)``: marks a failed generation's future retrieved.
* ``_create_ws_conn()``: wraps the socket so malformed frames cannot end the session, and
  so the events of a preemptive reply reach upstream's receive loop only once released.
* ``truncate(...)``: skipped for an item the (reconnected) server does not hold.

(``update_options``, ``update_instructions``, ``push_audio``, ``commit_audio``,
``clear_audio``, ``interrupt`` and the event emitter's ``on`` are overridden too; they are
public API.) It
reads/writes these attributes: ``_opts`` (the per-session ``_RealtimeOptions`` copy),
``_capabilities``, ``_instructions``, ``_bstream``, ``_pushed_duration_s``, ``_msg_ch`` (the
send queue, drained of stale turn audio after a reconnect), ``_current_generation`` and its
``_done_fut``, ``_remote_chat_ctx``, ``_realtime_model`` (``_provider_label``); the model's
``_opts``, ``_capabilities`` and ``_sessions``; and calls ``_resample_audio``,
``_convert_tools_to_oai``, ``_emit_error`` and ``_is_fatal_error``. All ``session.update``
events upstream would build go through the overrides above, so upstream's pydantic
``_wrap_session_update`` is never reached. Server and client events are observed through
upstream's ``openai_server_event_received`` / ``openai_client_event_queued`` /
``session_reconnected`` session events.

``_framework.py`` (the AgentSession's interruption rules under client VAD) uses
livekit-agents' ``AgentActivity``: it is recognised as the listener the framework registers
for ``input_speech_started``; read: ``current_speech``, ``session.options.interruption``,
``_pause_enabled()``, ``_paused_speech``, ``_rt_session``, ``_rt_turn_detection_enabled``
(set to False while a client-side call runs, then restored), ``preemptive_generation_opts``
(public; the preemptive replies follow it); called: the recognition hooks
``on_start_of_speech`` / ``on_end_of_speech``, ``_interrupt_by_audio_activity()``,
``_cancel_speech_pause(interrupt=True)``; wrapped: ``__init__`` (its start-up check
``allow_interruptions`` may be False for client VAD), ``_generate_reply`` and ``say`` (a
speech's own ``allow_interruptions=False`` is kept), the ``allow_interruptions`` property.
The metrics of a client-VAD turn go through upstream's ``_input_speech_started_at``.
"""

from __future__ import annotations

from livekit.agents.llm._realtime import openai as upstream_impl
from livekit.agents.llm._realtime.openai_utils import (
    to_audio_transcription,
    to_noise_reduction,
    to_oai_tool_choice,
)
from livekit.agents.voice.agent_activity import AgentActivity
from livekit.plugins.openai.realtime import RealtimeModel as UpstreamRealtimeModel
from livekit.plugins.openai.realtime import RealtimeSession as UpstreamRealtimeSession

DEFAULT_VOICE = upstream_impl.DEFAULT_VOICE

__all__ = [
    "AgentActivity",
    "UpstreamRealtimeModel",
    "UpstreamRealtimeSession",
    "DEFAULT_VOICE",
    "to_audio_transcription",
    "to_noise_reduction",
    "to_oai_tool_choice",
    "upstream_impl",
]
