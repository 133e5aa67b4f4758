"""The probe command, run as a user would, against the fake server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

import pytest

from livekit_plugins_openai_novad.testing import FakeRealtimeServer

pytestmark = pytest.mark.timeout(60)
KEY = "sk-test-SECRET-98765"


async def run_probe(*args: str, key: str = KEY) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if "OPENAI" not in k}
    env["OPENAI_API_KEY"] = key
    env["AZURE_OPENAI_API_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livekit_plugins_openai_novad",
        "probe",
        "--timeout",
        "5",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_probe_honoured_ga_and_legacy() -> None:
    async with FakeRealtimeServer(api_key=KEY) as server:
        rc, out, err = await run_probe("--base-url", server.base_url)
        assert rc == 0, out + err
        assert "session.updated turn_detection: null" in out
        assert '"server_vad"' in out  # the session.created default was shown
        rc, out, err = await run_probe(
            "--base-url",
            server.azure_base_url,
            "--azure-deployment",
            "gpt-realtime",
            "--api-version",
            "2024-10-01-preview",
            "--json",
        )
        assert rc == 0, out + err
        result = json.loads(out)
        assert result["wire"] == "beta" and result["confirmed_turn_detection"] is None
        for text in (out, err):
            assert KEY not in text
        # what crossed the socket was the explicit null
        updates = [e for e in server.client_events if e["type"] == "session.update"]
        assert updates[0]["session"]["audio"]["input"]["turn_detection"] is None
        assert updates[1]["session"]["turn_detection"] is None


async def test_probe_ignored_shows_both_values() -> None:
    async with FakeRealtimeServer(api_key=KEY, ignore_turn_detection_null=True) as server:
        rc, out, err = await run_probe("--base-url", server.base_url)
        assert rc == 1, out + err
        assert "IGNORED" in out
        assert "turn_detection=null" in out and '"server_vad"' in out
        assert KEY not in out + err
        rc, out, _ = await run_probe("--base-url", server.base_url, "--json")
        data = json.loads(out)
        assert rc == 1 and data["result"] == "ignored"
        assert data["confirmed_turn_detection"]["type"] == "server_vad"


async def test_probe_closed_port_and_bad_key_exit_2_with_one_line() -> None:
    rc, out, err = await run_probe("--base-url", f"http://127.0.0.1:{_free_port()}/v1")
    assert rc == 2
    assert len(out.strip().splitlines()) == 1 and out.startswith("error: could not connect")
    assert KEY not in out + err
    async with FakeRealtimeServer(api_key="sk-the-right-one") as server:
        rc, out, err = await run_probe("--base-url", server.base_url)
        assert rc == 2
        assert len(out.strip().splitlines()) == 1 and "invalid_api_key" in out
        assert KEY not in out + err
