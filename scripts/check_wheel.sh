#!/usr/bin/env bash
# Packaging check: build the wheel and the sdist, install the wheel (not editable) into a fresh
# virtualenv, and from a directory outside the checkout use it as a user would: import it, run
# the emulator and the probe against it, and a typed console round trip of the example.
#   bash scripts/check_wheel.sh        (uses .venv for the build; `make test` sets it up)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_PY="$ROOT/.venv/bin/python"
WORK="$(mktemp -d)"
EMULATOR_PID=""
cleanup() {
    if [ -n "$EMULATOR_PID" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "check_wheel: $*"; }
fail() { echo "check_wheel: FAILED: $*" >&2; exit 1; }

say "building the wheel and the sdist"
"$BUILD_PY" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; fail "python -m build"; }
WHEEL="$(ls "$WORK"/dist/*.whl)"
SDIST="$(ls "$WORK"/dist/*.tar.gz)"
say "built $(basename "$WHEEL") and $(basename "$SDIST")"

say "checking what the wheel and the sdist hold"
"$BUILD_PY" - "$WHEEL" "$SDIST" "$ROOT" <<'PY'
import sys, tarfile, zipfile
from email.parser import Parser
from pathlib import Path

wheel, sdist, root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
names = set(zipfile.ZipFile(wheel).namelist())
pkg = "livekit_plugins_openai_novad"
wavs = sorted(p.name for p in (root / pkg / "resources").glob("*.wav"))
data = sorted(p.name for p in (root / pkg / "resources").glob("*.json"))
missing = [w for w in wavs + data if f"{pkg}/resources/{w}" not in names]
assert wavs and data and not missing, f"wheel lacks resources: {missing}"
assert f"{pkg}/py.typed" in names, "wheel lacks py.typed"
assert not any(n.startswith(("tests/", "bench/", "examples/")) for n in names), "stray files"
meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
meta = Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
for field in ("Summary", "License-Expression", "Requires-Python", "Classifier", "Project-URL"):
    assert meta.get_all(field), f"METADATA has no {field}"
requires = meta.get_all("Requires-Dist") or []
for dist in ("livekit-agents", "livekit-plugins-openai", "livekit-plugins-silero"):
    spec = next((r for r in requires if r.startswith(dist + "<") or r.startswith(dist + ">")), "")
    assert ">=1.8.9" in spec and "<1.9" in spec, f"{dist} range is not the tested one: {spec!r}"
members = tarfile.open(sdist).getnames()
for need in ("LICENSE", "README.md", "examples/minimal_worker.py", "tests/conftest.py"):
    assert any(m.endswith("/" + need) for m in members), f"sdist lacks {need}"
print(f"  {len(wavs)} speech resources, {len(data)} data files, py.typed, metadata: {meta['Requires-Python']}, "
      f"license {meta['License-Expression']}")
PY

say "installing the wheel into a fresh virtualenv (not editable)"
python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# [dev] brings pytest for the console round trip below
"$PY" -m pip install -q "${WHEEL}[dev]" >"$WORK/pip.log" 2>&1 \
    || { cat "$WORK/pip.log" >&2; fail "pip install the wheel"; }

OUTSIDE="$WORK/elsewhere"
mkdir -p "$OUTSIDE"
cd "$OUTSIDE"
env -u PYTHONPATH "$PY" - "$WORK/venv" "$ROOT" <<'PY'
import sys
from importlib import resources
sys.path[:0] = [sys.argv[2] + "/tests", sys.argv[2] + "/examples"]  # as the round trip sees it
import livekit_plugins_openai_novad as novad
from livekit_plugins_openai_novad.testing.emulator import emulator_reply  # noqa: F401

assert novad.__file__.startswith(sys.argv[1]), f"imported from {novad.__file__}, not the wheel"
wavs = [p.name for p in resources.files(novad).joinpath("resources").iterdir()]
assert any(w.endswith(".wav") for w in wavs), wavs
novad.prewarm()  # Silero and the sample server events, from the wheel's own data
print(f"  imported {novad.__name__} {novad.__version__} from the installed wheel")
PY

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
say "running the emulator on port $PORT and the probe against it"
env -u PYTHONPATH "$PY" -m livekit_plugins_openai_novad emulator --port "$PORT" >"$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 1 300); do
    grep -q "listening" "$WORK/emulator.log" && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$WORK/emulator.log" >&2; fail "emulator exited"; }
    sleep 0.1
done
grep -q "listening" "$WORK/emulator.log" || fail "the emulator did not start in 30 s"
env -u PYTHONPATH -u OPENAI_BASE_URL OPENAI_API_KEY=any-key \
    "$PY" -m livekit_plugins_openai_novad probe --base-url "http://127.0.0.1:$PORT/v1" --timeout 10 \
    || fail "probe against the emulator (exit $?)"
kill "$EMULATOR_PID"
wait "$EMULATOR_PID" 2>/dev/null || true
EMULATOR_PID=""

say "typed console round trip of the example against the installed wheel"
if ! env -u PYTHONPATH "$PY" -m pytest -q -p no:cacheprovider -rs \
    "$ROOT/tests/test_console_demo.py" -k text_mode >"$WORK/console.log" 2>&1 \
    || ! grep -q "1 passed" "$WORK/console.log"; then
    cat "$WORK/console.log" >&2
    fail "the typed console round trip did not pass"
fi
tail -1 "$WORK/console.log"
say "ok"
