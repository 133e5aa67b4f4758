"""A virtual sound card for tests on a machine with no audio hardware.

Runs a private PulseAudio daemon (user mode, all state in one scratch folder) with two
24 kHz mono s16le null sinks:

- ``mic_feed``: play audio into it; its monitor is the default source, i.e. the microphone.
- ``agent_out``: the default sink, i.e. the speaker; its monitor is what gets recorded.

PortAudio (sounddevice) reaches it through the ALSA ``pulse`` device (libasound2-plugins),
so a process started with :attr:`VirtualSoundCard.env` in its environment hears ``mic_feed``
and speaks into ``agent_out``.

Usage::

    with VirtualSoundCard(tmp_path) as card:
        proc = subprocess.Popen(cmd, env={**os.environ, **card.env})
        card.start_recording(tmp_path / "out.wav")
        card.play_into_mic("tests/fixtures/one_turn.wav")
        ...
        card.stop_recording()

Needs the Debian packages pulseaudio, pulseaudio-utils, libasound2-plugins, libportaudio2.
Only the processes started here are stopped, by their own handles.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import wave
from pathlib import Path
from types import TracebackType
from typing import IO

SAMPLE_RATE = 24000
MIC_SINK = "mic_feed"
SPEAKER_SINK = "agent_out"

# sun_path of a unix socket holds 108 bytes including the terminating NUL
_MAX_SOCKET_PATH = 100

# norewinds=1: with rewinds, a null sink that rendered silence ahead rewinds when a player
# connects, and its monitor then loses or delays audio (measured: speech reached a
# sounddevice reader ~0.8 s late with blocks missing, and a parec recording lost the first
# 1.5 s of a clip); without them the monitor delivers the clip whole and on time.
_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name={mic} rate={rate} channels=1 format=s16le norewinds=1
load-module module-null-sink sink_name={speaker} rate={rate} channels=1 format=s16le norewinds=1
set-default-sink {speaker}
set-default-source {mic}.monitor
"""


def tools_available() -> bool:
    """True when the programs this helper runs are installed (for ``pytest.mark.skipif``)."""
    return all(shutil.which(t) for t in ("pulseaudio", "pactl", "paplay", "parec"))


def wav_duration(path: str | os.PathLike[str]) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


class VirtualSoundCard:
    """Context manager running a private PulseAudio daemon with state under ``tmpdir``."""

    def __init__(self, tmpdir: str | os.PathLike[str], *, start_timeout: float = 10.0) -> None:
        self.dir = Path(tmpdir).resolve()
        self.start_timeout = start_timeout
        self.config_path = self.dir / "pulse.pa"
        self.log_path = self.dir / "pulseaudio.log"
        home = self.dir / "home"
        xdg_runtime = self.dir / "xdg-runtime"
        self.runtime_dir = self.dir / "pulse-runtime"
        state = self.dir / "pulse-state"
        cookie = self.dir / "pulse-cookie"

        # a long tmpdir (deep pytest tmp_path) can make the socket path too long for
        # AF_UNIX: then only the socket goes to a short folder removed on exit
        self._socket_dir: Path | None = None
        self.socket_path = self.runtime_dir / "native"
        if len(os.fsencode(self.socket_path)) > _MAX_SOCKET_PATH:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="vsc-"))
            self.socket_path = self._socket_dir / "native"

        self._dirs = (home, xdg_runtime, self.runtime_dir, state)
        self.env: dict[str, str] = {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(xdg_runtime),
            "PULSE_RUNTIME_PATH": str(self.runtime_dir),
            "PULSE_STATE_PATH": str(state),
            "PULSE_COOKIE": str(cookie),
            "PULSE_SERVER": f"unix:{self.socket_path}",
        }
        self._daemon: subprocess.Popen[bytes] | None = None
        self._recorder: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> VirtualSoundCard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def full_env(self) -> dict[str, str]:
        """``os.environ`` with :attr:`env` on top, for subprocesses that use the card."""
        return {**os.environ, **self.env}

    def start(self) -> None:
        if self._daemon is not None:
            raise RuntimeError("already started")
        for d in self._dirs:
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)  # pulseaudio refuses a runtime dir others can read
        self.config_path.write_text(
            _CONFIG.format(
                socket=self.socket_path, mic=MIC_SINK, speaker=SPEAKER_SINK, rate=SAMPLE_RATE
            )
        )
        log = open(self.log_path, "wb")  # closed in stop()
        self._log_file = log
        self._daemon = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "-F",
                str(self.config_path),
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--use-pid-file=no",
            ],
            env=self.full_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the test run does not reach it
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Retry ``pactl info`` with a short backoff until the daemon has its config loaded."""
        assert self._daemon is not None
        deadline = time.monotonic() + self.start_timeout
        delay = 0.02
        while True:
            if self._daemon.poll() is not None:
                raise RuntimeError(
                    f"pulseaudio exited with {self._daemon.returncode}: {self._log_tail()}"
                )
            try:
                info = self._pactl("info", timeout=2.0)
            except subprocess.TimeoutExpired:
                info = None
            if (
                info is not None
                and info.returncode == 0
                and f"Default Sink: {SPEAKER_SINK}" in info.stdout
            ):
                return
            if time.monotonic() + delay > deadline:
                raise TimeoutError(
                    f"pulseaudio did not answer within {self.start_timeout:.0f} s: "
                    f"{self._log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def stop(self) -> None:
        """Stop the recorder and the daemon if this object started them; idempotent."""
        if self._recorder is not None:
            try:
                self.stop_recording()
            except Exception:
                pass
        if self._daemon is not None:
            _terminate(self._daemon, signal.SIGTERM, grace=5.0)
            self._daemon = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    # -- audio -------------------------------------------------------------------------

    def play(self, wav_path: str | os.PathLike[str], device: str) -> None:
        """Play a WAV into a sink and return when it has been played."""
        timeout = wav_duration(wav_path) + 15.0
        subprocess.run(
            ["paplay", f"--device={device}", str(wav_path)],
            env=self.full_env(),
            check=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )

    def play_into_mic(self, wav_path: str | os.PathLike[str]) -> None:
        """Play a WAV into the virtual microphone (blocking)."""
        self.play(wav_path, MIC_SINK)

    def start_recording(self, out_wav: str | os.PathLike[str]) -> None:
        """Record the virtual speaker (``agent_out.monitor``) into a 24 kHz mono PCM16 WAV.

        Returns once the recording stream is connected, so nothing played after this
        call is missed.
        """
        if self._daemon is None:
            raise RuntimeError("the sound card is not running")
        if self._recorder is not None:
            raise RuntimeError("already recording")
        monitor = f"{SPEAKER_SINK}.monitor"
        source_index = self._source_index(monitor)
        before = self._source_outputs_of(source_index)
        self._recorder = subprocess.Popen(
            [
                "parec",
                f"--device={monitor}",
                "--format=s16le",
                f"--rate={SAMPLE_RATE}",
                "--channels=1",
                "--file-format=wav",
                str(out_wav),
            ],
            env=self.full_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 5.0
        delay = 0.01
        while not (self._source_outputs_of(source_index) - before):
            if self._recorder.poll() is not None:
                err = self._recorder.stderr.read() if self._recorder.stderr else b""
                self._recorder = None
                raise RuntimeError(f"parec exited: {err.decode(errors='replace').strip()}")
            if time.monotonic() > deadline:
                raise TimeoutError("parec did not connect within 5 s")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def stop_recording(self) -> None:
        """Stop the recorder; parec finalises the WAV header on SIGINT."""
        rec, self._recorder = self._recorder, None
        if rec is None:
            return
        _terminate(rec, signal.SIGINT, grace=5.0)
        if rec.stderr is not None:
            rec.stderr.close()

    # -- helpers -----------------------------------------------------------------------

    def _pactl(self, *args: str, timeout: float = 5.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pactl", *args],
            env=self.full_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def _source_index(self, name: str) -> str:
        out = self._pactl("list", "short", "sources")
        for line in out.stdout.splitlines():
            fields = line.split("\t")
            if len(fields) > 1 and fields[1] == name:
                return fields[0]
        raise RuntimeError(f"no source named {name!r}: {out.stdout!r}")

    def _source_outputs_of(self, source_index: str) -> set[str]:
        out = self._pactl("list", "short", "source-outputs")
        ids = set()
        for line in out.stdout.splitlines():
            fields = line.split("\t")
            if len(fields) > 1 and fields[1] == source_index:
                ids.add(fields[0])
        return ids

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip()
        except OSError:
            return "(no log)"


def _terminate(proc: subprocess.Popen[bytes], sig: int, grace: float) -> None:
    """Signal one process we started, then kill it if it outlives ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5.0)
    except ProcessLookupError:
        pass
