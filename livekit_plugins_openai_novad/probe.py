"""``probe``: does an endpoint honour ``turn_detection: null``?

Connects with the user's key, prints the turn detection from ``session.created``, sends one
``session.update`` with ``turn_detection: null`` (built by the wire layer) and prints what
``session.updated`` confirmed. Exit codes: 0 honoured, 1 ignored (mismatch), 2 could not
tell (connection, auth or server error). The key is never printed.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from . import wire
from ._upstream import upstream_impl

__all__ = ["ProbeResult", "probe"]

HONOURED, IGNORED, FAILED = 0, 1, 2
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


@dataclass
class ProbeResult:
    exit_code: int
    result: str  # "honoured" | "ignored" | "error"
    url: str
    wire: str
    created_turn_detection: Any = None
    confirmed_turn_detection: Any = None  # after sending turn_detection: null
    error: dict[str, Any] | None = field(default=None)
    reason: str = ""

    def lines(self) -> list[str]:
        if self.exit_code == FAILED:
            return [f"error: {self.reason} [{self.url or 'no endpoint'}]"]
        out = [f"endpoint: {self.url} ({self.wire} wire)"]
        out.append(f"session.created turn_detection: {json.dumps(self.created_turn_detection)}")
        out.append("sent session.update with turn_detection: null")
        out.append(f"session.updated turn_detection: {json.dumps(self.confirmed_turn_detection)}")
        if self.exit_code == HONOURED:
            out.append("result: honoured (server VAD is off)")
        else:
            out.append(
                "result: IGNORED - requested turn_detection=null but the server confirmed "
                f"{json.dumps(self.confirmed_turn_detection)}"
            )
        return out


def _endpoint(
    base_url: str | None,
    model: str,
    azure_deployment: str | None,
    api_version: str | None,
    api_key: str | None,
) -> tuple[str, dict[str, str], wire.Wire, str | None]:
    is_azure = bool(azure_deployment or api_version)
    if is_azure:
        key = api_key or os.environ.get("AZURE_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        endpoint = base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if endpoint and not base_url:
            endpoint = endpoint.rstrip("/") + "/openai"
        if not endpoint:
            raise ValueError("pass --base-url or set AZURE_OPENAI_ENDPOINT")
        headers = {"api-key": key} if key else {}
    else:
        key = api_key or os.environ.get("OPENAI_API_KEY")
        endpoint = base_url or os.environ.get("OPENAI_BASE_URL") or upstream_impl.OPENAI_BASE_URL
        headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = upstream_impl.process_base_url(
        endpoint,
        model,
        is_azure=is_azure,
        azure_deployment=azure_deployment or (model if is_azure else None),
        api_version=api_version,
    )
    return url, headers, ("beta" if is_azure and api_version else "ga"), key


def _scrub(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


async def probe(
    *,
    base_url: str | None = None,
    model: str = "gpt-realtime",
    azure_deployment: str | None = None,
    api_version: str | None = None,
    api_key: str | None = None,
    timeout: float = 10.0,
) -> ProbeResult:
    try:
        url, headers, wire_kind, key = _endpoint(
            base_url, model, azure_deployment, api_version, api_key
        )
    except ValueError as e:
        return ProbeResult(FAILED, "error", base_url or "", "?", reason=str(e))
    result = ProbeResult(FAILED, "error", url, wire_kind)
    if not key:
        result.reason = "no API key: set OPENAI_API_KEY (or AZURE_OPENAI_API_KEY for Azure)"
        return result

    def fail(reason: str, error: dict[str, Any] | None = None) -> ProbeResult:
        result.reason = _scrub(reason, key)
        result.error = json.loads(_scrub(json.dumps(error), key)) if error else None
        return result

    try:
        async with aiohttp.ClientSession() as http:
            ws = await asyncio.wait_for(http.ws_connect(url, headers=headers), timeout)
            async with ws:
                created = await _next_event(ws, timeout)
                if created is None:
                    return fail(_closed_reason(ws))
                if created.get("type") == "error":
                    return fail(_error_reason(created), _as_dict(created.get("error")))
                if created.get("type") != "session.created":
                    return fail(f"unexpected first event {created.get('type')!r}")
                _, result.created_turn_detection = wire.session_turn_detection(
                    wire_kind, created.get("session") or {}
                )

                update = wire.session_update_payload(wire=wire_kind, turn_detection=None)
                await ws.send_str(json.dumps(update))
                while True:
                    event = await _next_event(ws, timeout)
                    if event is None:
                        return fail(_closed_reason(ws))
                    kind = event.get("type")
                    if kind == "error":
                        return fail(_error_reason(event), _as_dict(event.get("error")))
                    if kind == "session.updated":
                        break
                present, echoed = wire.session_turn_detection(
                    wire_kind, event.get("session") or {}
                )
                result.confirmed_turn_detection = echoed
                if present and echoed is None:
                    result.exit_code, result.result = HONOURED, "honoured"
                else:
                    result.exit_code, result.result = IGNORED, "ignored"
                return result
    except asyncio.TimeoutError:
        return fail(f"no answer within {timeout:g} s")
    except aiohttp.WSServerHandshakeError as e:
        return fail(f"handshake rejected: HTTP {e.status} {e.message}")
    except (aiohttp.ClientError, OSError) as e:
        return fail(f"could not connect: {e}")


async def _next_event(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> dict[str, Any] | None:
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        if msg.type in _CLOSED:
            return None
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        try:
            event = json.loads(msg.data)
        except ValueError:
            continue
        if isinstance(event, dict):
            return event


def _error_reason(event: dict[str, Any]) -> str:
    err = event.get("error")
    if not isinstance(err, dict):
        return f"server error: {json.dumps(err)}"
    return (
        f"server error {err.get('code')!s} (param {err.get('param')!s}): {err.get('message', '')}"
    )


def _as_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _closed_reason(ws: aiohttp.ClientWebSocketResponse) -> str:
    return f"the server closed the connection (code {ws.close_code})"


def result_json(result: ProbeResult) -> str:
    return json.dumps(asdict(result))
