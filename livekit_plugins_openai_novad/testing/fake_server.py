"""An in-process fake of the OpenAI Realtime WebSocket server (GA and Azure-legacy beta).

It behaves as docs/realtime-wire.md describes the real server (``§n`` in comments are that
document's sections). It is meant for tests, offline demos and benchmarks with many concurrent
connections, so the hot path stays plain: ``json.loads`` in, dicts and ``json.dumps`` out, one
writer task per connection, no per-frame logging. Fake-server simplifications are marked
``[fake]``.

The parts, one responsibility each:

- ``_transport`` (the ordered outbox of one socket) and ``_events`` (event logs with waiters,
  the public ``EventHooks``);
- ``_messages`` (ids, the ``error`` event, validation messages), ``_session`` (default
  sessions, turn detection), ``_protocol`` (``session.update``);
- ``_input`` (the input buffer and the energy VAD, I/O-free), ``_items`` (the conversation),
  ``_responses`` (one response stream; per-wire names in ``_names``), ``replies`` (what a
  response says), ``timing`` (how fast);
- ``_connection`` (one socket: read loop, dispatch), ``_handlers`` (``FakeConnection``: one
  handler per client event, by the table in ``_client_events``);
- this module: the server and the handshake.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Collection

from aiohttp import web

from ._events import ALL_SERVERS, ClientEventHook, EventHooks, ServerEventHook, _EventLog
from ._handlers import FakeConnection
from ._messages import JsonDict, Wire
from ._session import DEFAULT_MODEL
from .replies import ReplyContext, ReplyFn, default_reply_audio
from .timing import DEFAULT_REPLY_PACE, DEFAULT_TIME_TO_FIRST_AUDIO, INSTANT

__all__ = [
    "ALL_SERVERS",
    "INSTANT",
    "ClientEventHook",
    "EventHooks",
    "FakeConnection",
    "FakeRealtimeServer",
    "ReplyContext",
    "ReplyFn",
    "ServerEventHook",
    "default_reply_audio",
]

BETA_HEADER_MESSAGE = (
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
)
_PATHS = ("/v1/realtime", "/realtime", "/openai/v1/realtime", "/openai/realtime")


# ---------------------------------------------------------------- server


class FakeRealtimeServer:
    """A local OpenAI Realtime WebSocket server for tests, demos and benchmarks.

    ``hooks`` observe every client event handled and every server event sent (see
    ``EventHooks``). Fault knobs (``ignore_turn_detection_null``, ``echo_delay``,
    ``reject_fields``) and the reply settings (``reply_text``, ``reply_audio``, ``reply``,
    ``time_to_first_audio``, ``reply_pace``,
    ``vad_energy_dbfs``, ``input_transcript``) can be changed at runtime; they are read when
    used.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = "test-key",
        accept_beta_header: bool = False,
        ignore_turn_detection_null: bool = False,
        echo_delay: float = 0.0,
        reject_fields: dict[str, tuple[str, str]] | None = None,
        reply_text: str = "Hello from the fake realtime server.",
        reply_audio: bytes | ReplyFn | None = None,
        reply: ReplyFn | None = None,
        time_to_first_audio: float = DEFAULT_TIME_TO_FIRST_AUDIO,
        reply_pace: float = DEFAULT_REPLY_PACE,
        vad_energy_dbfs: float = -45.0,
        input_transcript: str | Callable[[bytes], str] | None = "hello",
        known_models: Collection[str] | None = None,
        record_events: bool = True,
        ping_interval: float | None = None,
    ) -> None:
        """
        Args:
            api_key: the accepted key (``None`` accepts any key, but one is still required).
            accept_beta_header: accept ``OpenAI-Beta: realtime=v1`` on the GA path and speak
                the beta shapes there (the real server rejects it, §0).
            ignore_turn_detection_null: fault, a ``turn_detection: null`` is ignored.
            echo_delay: fault, seconds to delay each ``session.updated`` (FIFO kept).
            reject_fields: fault, param path -> (code, message); an update containing the
                path (or one under it) is rejected whole.
            reply_text / reply_audio: the content of every response (PCM16 24 kHz mono;
                ``None`` synthesizes a 0.5 s tone). ``reply_audio`` may also be a callable.
            reply: ``ReplyContext -> (text, pcm | None)``, sync or async; overrides both.
            time_to_first_audio: seconds from ``response.created`` to the first output item
                (0 = none).
            reply_pace: wall seconds per second of reply audio: 0 sends the deltas at once,
                1.0 in real time, the default 1/3 at three times real time (the real server
                is faster than real time, so a client holds audio it has not played yet).
                ``time_to_first_audio=0, reply_pace=0`` (``INSTANT``) is the fast test mode.
            vad_energy_dbfs: the fake VAD's speech level for threshold 0.5.
            input_transcript: the input transcription sent when the session enables it
                (a callable gets the committed audio); ``None`` sends none.
            known_models: if given, other models get ``invalid_model`` (close 4000).
            record_events: keep every event in memory (turn off for long benchmarks; the
                waiters and ``hooks`` still see new events).
            ping_interval: send WebSocket pings this often (the real server: ~20 s).
        """
        self.host = host
        self.port = port
        self.api_key = api_key
        self.accept_beta_header = accept_beta_header
        self.ignore_turn_detection_null = ignore_turn_detection_null
        self.echo_delay = echo_delay
        self.reject_fields: dict[str, tuple[str, str]] = dict(reject_fields or {})
        self.reply_text = reply_text
        self.reply_audio = reply_audio
        self.reply = reply
        self.time_to_first_audio = time_to_first_audio
        self.reply_pace = reply_pace
        self.vad_energy_dbfs = vad_energy_dbfs
        self.input_transcript = input_transcript
        self.known_models = set(known_models) if known_models is not None else None
        self.record_events = record_events
        self.ping_interval = ping_interval

        # observers of this server's traffic (ALL_SERVERS observes every server's)
        self.hooks = EventHooks()
        self.connections: list[FakeConnection] = []
        self.received_text_frames: list[str] = []
        self._client_log = _EventLog(record_events)
        self._conn_waiters: list[tuple[int, asyncio.Future[FakeConnection]]] = []
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(256)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def aclose(self) -> None:
        runner = self._runner
        if runner is None:
            return
        self._runner = None
        open_conns = [c for c in self.connections if not c.closed]
        if open_conns:
            await asyncio.wait(
                [asyncio.ensure_future(c.close(1001, "server shutting down")) for c in open_conns],
                timeout=1.0,
            )
            for c in open_conns:
                c.abort()
        await runner.cleanup()
        for _, fut in self._conn_waiters:
            if not fut.done():
                fut.cancel()
        self._conn_waiters.clear()

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ urls

    @property
    def base_url(self) -> str:
        """OpenAI-style HTTP base URL (clients turn it into ws://.../v1/realtime?model=...)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def azure_base_url(self) -> str:
        """Azure-style base URL: /openai/realtime?api-version=..&deployment=.. (legacy beta)
        or /openai/v1/realtime?model=.. (Azure GA)."""
        return f"http://{self.host}:{self.port}/openai"

    def ws_url(self, model: str = DEFAULT_MODEL) -> str:
        return f"ws://{self.host}:{self.port}/v1/realtime?model={model}"

    def azure_ws_url(self, deployment: str = DEFAULT_MODEL, api_version: str | None = None) -> str:
        """Legacy (beta) URL with ``api_version``, else the Azure GA URL."""
        root = f"ws://{self.host}:{self.port}/openai"
        if api_version:
            return f"{root}/realtime?api-version={api_version}&deployment={deployment}"
        return f"{root}/v1/realtime?model={deployment}"

    # ------------------------------------------------------------ inspection

    @property
    def client_events(self) -> list[JsonDict]:
        """Every parsed client event, all connections, in arrival order."""
        return self._client_log.items

    @property
    def open_connections(self) -> list[FakeConnection]:
        return [c for c in self.connections if not c.closed]

    async def wait_for_client_event(
        self,
        type: str | None,
        *,
        count: int = 1,
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float | None = 5.0,
    ) -> JsonDict:
        """The ``count``-th client event of ``type`` over all connections (past ones count)."""
        return await self._client_log.wait(type, count, predicate, timeout, "client event")

    async def wait_for_connection(self, n: int = 1, timeout: float | None = 5.0) -> FakeConnection:
        """The ``n``-th accepted connection (1-based), once it exists."""
        if len(self.connections) >= n:
            return self.connections[n - 1]
        fut: asyncio.Future[FakeConnection] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._conn_waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"timed out after {timeout}s waiting for connection #{n} "
                f"({len(self.connections)} so far)"
            ) from None
        finally:
            if entry in self._conn_waiters:
                self._conn_waiters.remove(entry)

    def drop_connections(self) -> int:
        """Fault: abruptly drop every open socket (no close frame). Returns how many."""
        dropped = 0
        for conn in self.connections:
            if not conn.closed:
                conn.abort()
                dropped += 1
        return dropped

    # ------------------------------------------------------------ handshake (§0, §1)

    def _handshake_check(
        self, request: web.Request
    ) -> tuple[Wire, str | None, tuple[str | None, str, int] | None]:
        path = request.path.rstrip("/")
        azure = path.startswith("/openai")
        wire: Wire = "beta" if path == "/openai/realtime" else "ga"
        headers = request.headers
        query = request.query
        if wire == "ga":
            model = query.get("model")
        else:
            model = query.get("deployment") or query.get("model")

        key: str | None = None
        auth = headers.get("Authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
        if key is None and azure:
            key = headers.get("api-key")
        if key is None:
            return wire, model, (None, "Missing bearer or basic authentication in header", 3000)
        if self.api_key is not None and key != self.api_key:
            masked = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 8 else "***"
            return (
                wire,
                model,
                (
                    "invalid_api_key",
                    f"Incorrect API key provided: {masked}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    3000,
                ),
            )
        if wire == "ga" and "realtime=v1" in headers.get("OpenAI-Beta", ""):
            if not self.accept_beta_header:
                return wire, model, ("beta_api_shape_disabled", BETA_HEADER_MESSAGE, 4000)
            wire = "beta"  # legacy mode: the old client expects the flat shapes
        if not model:
            return wire, model, ("missing_model", "You must provide a model parameter.", 4000)
        if self.known_models is not None and model not in self.known_models:
            return (
                wire,
                model,
                (
                    "invalid_model",
                    f"The model '{model}' does not exist or you do not have access to it.",
                    4000,
                ),
            )
        return wire, model, None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path not in _PATHS:
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(
            timeout=2.0,
            autoping=True,
            heartbeat=self.ping_interval,
            compress=False,
            max_msg_size=32 * 1024 * 1024,
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="expected a WebSocket upgrade")
        wire, model, failure = self._handshake_check(request)
        await ws.prepare(request)
        conn = FakeConnection(self, request, ws, wire, model)
        self.connections.append(conn)
        n = len(self.connections)
        for want, fut in list(self._conn_waiters):
            if want <= n and not fut.done():
                fut.set_result(self.connections[want - 1])
        if failure is not None:
            await conn._reject(*failure)
            return ws
        await conn._run()
        return ws
