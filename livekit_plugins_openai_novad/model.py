"""``RealtimeModel``: the upstream plugin's model with turn detection that reaches the wire."""

from __future__ import annotations

from typing import Any, Literal, cast

import aiohttp
from livekit.agents import llm
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import is_given

from . import wire
from ._framework import install as install_framework_rules
from ._options import (
    DEFAULT_CLIENT_VAD,
    answers_turns,
    check_client_vad,
    full_session_fields,
    to_upstream_td,
    wire_of,
)
from ._upstream import DEFAULT_VOICE, UpstreamRealtimeModel
from .log import logger
from .realtime import RealtimeSession
from .turn_detection import ClientVad, TurnDetection, TurnDetectionInput, coerce_turn_detection

__all__ = ["RealtimeModel"]


class RealtimeModel(UpstreamRealtimeModel):
    """OpenAI Realtime for ``AgentSession(llm=...)``; turn detection really reaches the wire.

    ``turn_detection``: ``None`` (the default) turns server VAD off with an explicit
    ``"turn_detection": null``; ``novad.ServerVad(...)`` / ``novad.SemanticVad(...)`` (or a
    dict / openai-python model) turns it on. ``client_vad``: how turns are detected on the
    client while server VAD is off (``None`` = push-to-talk: the app commits).
    The other arguments are upstream's.
    """

    def __init__(
        self,
        *,
        model: str = "gpt-realtime",
        voice: str = DEFAULT_VOICE,
        modalities: NotGivenOr[list[Literal["text", "audio"]]] = NOT_GIVEN,
        turn_detection: TurnDetectionInput | None = None,
        client_vad: ClientVad | None = DEFAULT_CLIENT_VAD,
        tool_choice: NotGivenOr[llm.ToolChoice | None] = NOT_GIVEN,
        base_url: NotGivenOr[str] = NOT_GIVEN,
        input_audio_transcription: NotGivenOr[Any] = NOT_GIVEN,
        input_audio_noise_reduction: NotGivenOr[Any] = NOT_GIVEN,
        speed: NotGivenOr[float] = NOT_GIVEN,
        tracing: NotGivenOr[Any] = NOT_GIVEN,
        truncation: NotGivenOr[Any] = NOT_GIVEN,
        reasoning: NotGivenOr[Any] = NOT_GIVEN,
        api_key: str | None = None,
        http_session: aiohttp.ClientSession | None = None,
        azure_deployment: str | None = None,
        entra_token: str | None = None,
        api_version: str | None = None,
        max_session_duration: NotGivenOr[float | None] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        temperature: NotGivenOr[float] = NOT_GIVEN,
    ) -> None:
        td = coerce_turn_detection(turn_detection)  # ValueError before anything else
        check_client_vad(client_vad)
        upstream_args: dict[str, Any] = dict(
            model=model,
            voice=voice,
            modalities=modalities,
            tool_choice=tool_choice,
            base_url=base_url,
            input_audio_transcription=input_audio_transcription,
            input_audio_noise_reduction=input_audio_noise_reduction,
            turn_detection=to_upstream_td(td),
            speed=speed,
            tracing=tracing,
            truncation=truncation,
            reasoning=reasoning,
            api_key=api_key,
            http_session=http_session,
            azure_deployment=azure_deployment,
            entra_token=entra_token,
            max_session_duration=max_session_duration,
            conn_options=conn_options,
            temperature=temperature,
        )
        if api_version:
            upstream_args["api_version"] = api_version
        super().__init__(**upstream_args)
        self._turn_detection: TurnDetection | None = td
        self._client_vad = client_vad
        # fail on what the chosen wire cannot express (e.g. idle_timeout_ms on Azure legacy)
        wire.session_update_payload(
            wire=self.wire, turn_detection=td, **full_session_fields(self._opts, None)
        )
        self._capabilities.turn_detection = answers_turns(td)
        self._capabilities.can_disable_turn_detection = True

    @property
    def wire(self) -> wire.Wire:
        """``"ga"``, or ``"beta"`` for Azure's legacy ``api_version`` endpoint."""
        return wire_of(self._opts)

    @property
    def turn_detection(self) -> TurnDetection | None:
        return self._turn_detection

    @property
    def client_vad(self) -> ClientVad | None:
        return self._client_vad

    @classmethod
    def with_azure(  # type: ignore[override]
        cls,
        *,
        azure_deployment: str,
        turn_detection: TurnDetectionInput | None = None,
        client_vad: ClientVad | None = DEFAULT_CLIENT_VAD,
        **kwargs: Any,
    ) -> RealtimeModel:
        """Azure OpenAI (see upstream ``with_azure``); turn detection defaults to off here too."""
        td = coerce_turn_detection(turn_detection)
        check_client_vad(client_vad)
        model = super().with_azure(
            azure_deployment=azure_deployment, turn_detection=to_upstream_td(td), **kwargs
        )
        model._client_vad = client_vad
        # upstream's with_azure pins this to False once a turn detection is given
        model._capabilities.can_disable_turn_detection = True
        return cast(RealtimeModel, model)

    def update_options(
        self,
        *,
        turn_detection: NotGivenOr[TurnDetectionInput | None] = NOT_GIVEN,
        **kwargs: Any,
    ) -> None:
        """Upstream's options, plus ``turn_detection`` applied to every session of this model.

        Sessions whose turns the AgentSession drives (it opened them with
        ``turn_detection_disabled``) keep server VAD off.
        """
        td: TurnDetection | None = None
        if is_given(turn_detection):
            td = coerce_turn_detection(turn_detection)
            wire.session_update_payload(wire=self.wire, turn_detection=td)
        super().update_options(**kwargs)
        if not is_given(turn_detection):
            return
        self._turn_detection = td
        self._opts.turn_detection = to_upstream_td(td)
        self._capabilities.turn_detection = answers_turns(td)
        for sess in list(self._sessions):
            if isinstance(sess, RealtimeSession) and sess.turn_taking_mode != "framework":
                sess.update_options(turn_detection=td)
            elif td is not None:
                logger.warning(
                    "turn detection not changed on a session whose turns the AgentSession "
                    "drives (its own VAD / turn detector is configured)"
                )

    def session(self, *, turn_detection_disabled: bool = False) -> RealtimeSession:
        sess = RealtimeSession(self, turn_detection_disabled=turn_detection_disabled)
        self._sessions.add(sess)
        return sess


def _runs_client_turns(model: Any) -> bool:
    """The model's sessions decide turns with client VAD (unless the AgentSession takes turn
    taking over, in which case the framework's rules are its own anyway)."""
    return (
        isinstance(model, RealtimeModel)
        and model.turn_detection is None
        and model.client_vad is not None
    )


install_framework_rules(_runs_client_turns)
