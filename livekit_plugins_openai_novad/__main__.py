"""Command line: ``python -m livekit_plugins_openai_novad {probe,emulator} ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from .testing.timing import DEFAULT_REPLY_PACE, DEFAULT_TIME_TO_FIRST_AUDIO


def _probe(args: argparse.Namespace) -> int:
    from .probe import probe, result_json

    result = asyncio.run(
        probe(
            base_url=args.base_url,
            model=args.model,
            azure_deployment=args.azure_deployment,
            api_version=args.api_version,
            timeout=args.timeout,
        )
    )
    if args.json:
        print(result_json(result))
    else:
        for line in result.lines():
            print(line)
    return result.exit_code


def _emulator(args: argparse.Namespace) -> int:
    from .testing.emulator import emulator_reply
    from .testing.fake_server import FakeRealtimeServer

    async def main() -> None:
        server = FakeRealtimeServer(
            host=args.host,
            port=args.port,
            api_key=None,  # any key is accepted, as long as one is sent
            accept_beta_header=args.legacy,
            ignore_turn_detection_null=args.ignore_turn_detection_null,
            reply=emulator_reply,
            time_to_first_audio=0.0 if args.instant else args.time_to_first_audio,
            reply_pace=0.0 if args.instant else args.reply_pace,
            record_events=False,
        )
        await server.start()
        print(f"offline Realtime emulator listening: GA {server.base_url}", flush=True)
        print(f"  Azure legacy: {server.azure_base_url} (api_version=...)", flush=True)

        def log(event: dict[str, Any]) -> bool:
            kind = event.get("type")
            if kind == "input_audio_buffer.append":
                return False  # one per 100 ms of audio: too chatty to log
            detail = ""
            if kind == "session.update":
                detail = " " + json.dumps(event.get("session"))
            print(f"client event: {kind}{detail}", flush=True)
            return False  # never resolves: a hook called for every client event

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = asyncio.ensure_future(
            server.wait_for_client_event(None, predicate=log, timeout=None)
        )
        try:
            await stop.wait()
        finally:
            watcher.cancel()
            await server.aclose()

    asyncio.run(main())
    return 0


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livekit_plugins_openai_novad")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "probe",
        help="check that an endpoint honours turn_detection: null "
        "(exit 0 honoured, 1 ignored, 2 error)",
        description="Key from OPENAI_API_KEY, or AZURE_OPENAI_API_KEY for Azure.",
    )
    p.add_argument("--base-url", help="e.g. https://api.openai.com/v1 (default: OPENAI_BASE_URL)")
    p.add_argument("--model", default="gpt-realtime")
    p.add_argument("--azure-deployment", help="Azure deployment name (selects Azure)")
    p.add_argument("--api-version", help="Azure legacy api-version (selects the beta wire)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_probe)

    e = sub.add_parser("emulator", help="run the offline Realtime emulator (fake server)")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=8765)
    e.add_argument(
        "--legacy",
        action="store_true",
        help="also accept the retired 'OpenAI-Beta: realtime=v1' header (beta shapes on /v1)",
    )
    e.add_argument(
        "--ignore-turn-detection-null",
        action="store_true",
        help="fault: keep server VAD when a client sends turn_detection: null",
    )
    e.add_argument(
        "--time-to-first-audio",
        type=_non_negative,
        default=DEFAULT_TIME_TO_FIRST_AUDIO,
        metavar="SECONDS",
        help="delay from response.created to the first output (default: %(default)s)",
    )
    e.add_argument(
        "--reply-pace",
        type=_non_negative,
        default=DEFAULT_REPLY_PACE,
        metavar="RATIO",
        help="wall seconds per second of reply audio; 0 = at once, 1 = real time "
        "(default: %(default).3f, three times real time)",
    )
    e.add_argument(
        "--instant",
        action="store_true",
        help="replies at once: same as --time-to-first-audio 0 --reply-pace 0",
    )
    e.set_defaults(func=_emulator)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
