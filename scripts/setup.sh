#!/usr/bin/env bash
# Sets up this repo on a fresh Debian 12 machine; safe to run again (it skips what is done).
#   - Debian packages: audio tools for the console demo/tests, espeak-ng + sox for fixtures,
#     python3-venv + make for the rest, recorded human prompts (Spanish, Russian, French) for the
#     real-speech benchmark (apt only runs as root, and only if something is missing)
#   - .venv with the package installed editable, with its dev extras
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
    espeak-ng sox libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils tmux
    python3 python3-venv make
    asterisk-core-sounds-es-wav asterisk-core-sounds-ru-wav asterisk-prompt-es-co
    asterisk-prompt-fr-armelle
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -qq -o DPkg::Lock::Timeout=300 update
        apt-get -qq -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
            "${PACKAGES[@]}" >/dev/null
    else
        echo "setup: not root, so not installing Debian packages. Missing: ${missing[*]}" >&2
        echo "setup: as root run: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    fi
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
fi
# pip's build backend prints warnings even with -q: show its output only when it fails
if ! log="$(.venv/bin/python -m pip install -q -e '.[dev]' 2>&1)"; then
    echo "$log" >&2
    echo "setup: pip install -e '.[dev]' failed" >&2
    exit 1
fi
