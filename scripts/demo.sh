#!/usr/bin/env bash
# Runs the demo worker in console mode. Audio mode needs a microphone and a speaker; on a
# machine without a sound card (a server, CI, a container) it starts the typed console instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

args=("$@")
if [[ " ${args[*]-} " != *" --text "* ]]; then
    if ! .venv/bin/python -c "import sounddevice as sd; sd.query_devices(kind='input'); sd.query_devices(kind='output')" >/dev/null 2>&1; then
        echo "demo: no sound card found, so the console starts in text mode (type to the agent)."
        echo "demo: for audio on a headless machine, see 'Running it' in README.md."
        args+=(--text)
    fi
fi
exec .venv/bin/python examples/minimal_worker.py console "${args[@]}"
