#!/usr/bin/env bash
# Regenerates the offline emulator's reply phrases in this folder with espeak-ng
# (default voice) and sox: 24 kHz mono PCM16 WAV, leading/trailing silence trimmed,
# ~60 ms of silence kept at the end of each clip so clips can be joined back to back.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# phrase NAME "TEXT"
phrase() {
    espeak-ng -w "$tmp/$1.raw.wav" "$2"
    # -R: repeatable output, -D: no dither (keeps the padding digitally silent)
    sox -R -D "$tmp/$1.raw.wav" -r 24000 -c 1 -b 16 "$here/$1.wav" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse pad 0 0.06
}

phrase intro "This is the offline emulator."
phrase heard "I heard you speak for about"
numbers=(one two three four five six seven eight nine ten)
for i in "${!numbers[@]}"; do
    phrase "n$((i + 1))" "${numbers[$i]}"
done
phrase second "second"
phrase seconds "seconds"
phrase less_than_one "less than one second"
