"""The real-speech corpus: recorded human prompts built into multi-turn conversations.

Sources are the telephone prompts of four Debian packages (``scripts/setup.sh`` installs them):
``asterisk-core-sounds-es-wav`` (Mexican Spanish, female), ``asterisk-core-sounds-ru-wav``
(Russian, female), ``asterisk-prompt-es-co`` (Colombian Spanish) and
``asterisk-prompt-fr-armelle`` (French, female), 8 kHz, decoded by sox to 24 kHz mono.

A build is fully determined by its seed:

* the prompts are split in two pools by position in the sorted file list: even for the turns,
  odd for the babble, so no voice in a turn is also in the noise under it;
* a turn is 1-3 prompts with 150-350 ms pauses between them (measured between the prompts'
  speech regions); turns are separated by 1.5-3 s gaps, and every other gap holds one
  synthesised non-speech distractor, starting 0.9 s after the turn and ending at least 0.8 s
  before the next one (so a detector that ends the previous turn on time, or starts a false
  turn on it and ends that on time, never touches a real turn);
* ground truth comes from the clean sources: a prompt's speech region is its first to last
  10 ms frame within 40 dB of its loudest frame (and above -55 dBFS); a prompt with an
  internal pause longer than 300 ms, or a speech region outside 0.5-3.5 s, is not used;
* noise (pink, or babble of eight talkers from the other pool) runs under the whole
  conversation, scaled to the SNR against the mean power of the ground-truth speech.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SOURCES", "Conversation", "Prompt", "build", "load_prompts", "CONDITIONS"]

SR = 24000
SOURCE_ROOT = Path("/usr/share/asterisk/sounds")
# one directory per package; prompts that are not speech are left out by name
SOURCES = {
    "asterisk-core-sounds-es-wav": "es_MX_f_Allison",
    "asterisk-core-sounds-ru-wav": "ru_RU_f_IvrvoiceRU",
    "asterisk-prompt-es-co": "es",
    "asterisk-prompt-fr-armelle": "fr",
}
_NOT_SPEECH = re.compile(r"beep|tone|silence|music|ring|dtmf|dial|click", re.IGNORECASE)
_FRAME = SR // 100  # 10 ms: the ground-truth resolution
_BELOW_PEAK_DB = 40.0
_FLOOR_DB = -55.0
_MAX_INNER_PAUSE_S = 0.30
_SPEECH_S = (0.5, 3.5)
_MARGIN_S = (0.04, 0.06)  # source audio kept before / after the speech region
_FADE = SR // 100

# (name, noise kind, SNR dB); "clean" has no added noise
CONDITIONS: tuple[tuple[str, str | None, float | None], ...] = (
    ("clean", None, None),
    ("pink 20 dB", "pink", 20.0),
    ("babble 20 dB", "babble", 20.0),
    ("pink 10 dB", "pink", 10.0),
    ("babble 10 dB", "babble", 10.0),
)


@dataclass(frozen=True)
class Prompt:
    name: str
    audio: np.ndarray  # float32, full scale 1, trimmed to the speech region plus margins
    speech: tuple[int, int]  # speech region inside ``audio``: [first, last + 1)


@dataclass
class Conversation:
    clean: np.ndarray  # float32 speech + distractors, no noise
    speech_power: float  # mean power over the ground-truth speech samples
    turns: list[tuple[int, int]] = field(default_factory=list)  # [first, last + 1) per turn
    speech: list[tuple[int, int]] = field(default_factory=list)  # every prompt's speech region
    distractors: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def speech_samples(self) -> int:
        return sum(b - a for a, b in self.speech)


def _decode(path: Path, cache: Path) -> np.ndarray:
    key = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    out = cache / f"{key}.npy"
    if out.exists():
        return np.load(out)
    raw = subprocess.run(
        ["sox", str(path), "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(SR), "-"],
        check=True,
        capture_output=True,
    ).stdout
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    np.save(out, x)
    return x


def _frame_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // _FRAME
    f = x[: n * _FRAME].reshape(n, _FRAME).astype(np.float64)
    return np.asarray(10.0 * np.log10(np.mean(f * f, axis=1) + 1e-12))


def _prompt(name: str, x: np.ndarray) -> Prompt | None:
    db = _frame_db(x)
    if db.size == 0:
        return None
    voiced = db >= max(_FLOOR_DB, float(db.max()) - _BELOW_PEAK_DB)
    idx = np.flatnonzero(voiced)
    if idx.size == 0:
        return None
    first, last = int(idx[0]), int(idx[-1])
    length_s = (last + 1 - first) * _FRAME / SR
    if not _SPEECH_S[0] <= length_s <= _SPEECH_S[1]:
        return None
    inner_gaps = np.diff(idx) - 1
    if inner_gaps.size and inner_gaps.max() * _FRAME / SR > _MAX_INNER_PAUSE_S:
        return None
    s0, s1 = first * _FRAME, (last + 1) * _FRAME
    a = max(0, s0 - int(_MARGIN_S[0] * SR))
    b = min(len(x), s1 + int(_MARGIN_S[1] * SR))
    audio = x[a:b].copy()
    ramp = np.linspace(0.0, 1.0, _FADE, dtype=np.float32)
    audio[:_FADE] *= ramp[: len(audio[:_FADE])]
    audio[-_FADE:] *= ramp[::-1][: len(audio[-_FADE:])]
    return Prompt(name, audio, (s0 - a, s1 - a))


def load_prompts(cache: Path) -> tuple[list[Prompt], list[Prompt]]:
    """(turn pool, babble pool), each in a fixed order; missing packages raise ``RuntimeError``."""
    cache.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for package, sub in SOURCES.items():
        root = SOURCE_ROOT / sub
        found = sorted(
            p
            for p in root.rglob("*")
            if p.suffix in (".wav", ".gsm") and not _NOT_SPEECH.search(p.name)
        )
        if not found:
            raise RuntimeError(f"no prompts under {root}: install {package} (scripts/setup.sh)")
        files += found
    turn_pool: list[Prompt] = []
    babble_pool: list[Prompt] = []
    for i, path in enumerate(files):
        p = _prompt(str(path.relative_to(SOURCE_ROOT)), _decode(path, cache))
        if p is not None:
            (turn_pool if i % 2 == 0 else babble_pool).append(p)
    return turn_pool, babble_pool


# -- distractors: synthesised non-speech sounds -----------------------------------------------


def _band(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz (FFT mask), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spec[(f < lo) | (f > hi)] = 0.0
    y = np.fft.irfft(spec, n)
    return y / (np.sqrt(np.mean(y * y)) + 1e-12)


def _cough(rng: np.random.Generator) -> np.ndarray:
    parts = []
    for _ in range(int(rng.integers(1, 3))):
        n = int(rng.uniform(0.15, 0.35) * SR)
        t = np.arange(n) / SR
        env = (1.0 - np.exp(-t / 0.004)) * np.exp(-t / rng.uniform(0.05, 0.10))
        parts += [_band(rng, n, 300.0, rng.uniform(2500.0, 4000.0)) * env, np.zeros(SR // 12)]
    return np.concatenate(parts)


def _beep(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(0.1, 0.4) * SR)
    t = np.arange(n) / SR
    tones = [rng.uniform(400.0, 1600.0) for _ in range(int(rng.integers(1, 3)))]
    y = sum(np.sin(2 * np.pi * f * t) for f in tones)
    return np.asarray(y) * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)


def _keyboard(rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(int(rng.uniform(0.4, 0.9) * SR))
    pos = 0
    while True:
        pos += int(rng.uniform(0.06, 0.16) * SR)
        n = int(rng.uniform(0.003, 0.008) * SR)
        if pos + n > len(y):
            return y
        t = np.arange(n) / SR
        y[pos : pos + n] += _band(rng, n, 1000.0, 8000.0) * np.exp(-t / 0.0015) * rng.uniform(1, 3)


def _burst(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(0.1, 0.3) * SR)
    t = np.arange(n) / SR
    return _band(rng, n, 50.0, 11000.0) * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)


def _music(rng: np.random.Generator) -> np.ndarray:
    """A tonal bed: harmonic notes of a random chord, changing every 150-250 ms."""
    notes = []
    for _ in range(int(rng.integers(3, 6))):
        n = int(rng.uniform(0.15, 0.25) * SR)
        t = np.arange(n) / SR
        y = np.zeros(n)
        for semis in rng.choice([0, 3, 4, 7, 10, 12], size=3, replace=False):
            f0 = 220.0 * 2 ** ((int(rng.integers(-5, 8)) + int(semis)) / 12)
            y += sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3, 4))
        notes.append(y * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01))
    return np.concatenate(notes)


def _breath(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(0.3, 0.6) * SR)
    return _band(rng, n, 200.0, rng.uniform(1500.0, 3000.0)) * np.hanning(n)


DISTRACTORS = {
    "cough": _cough,
    "beep": _beep,
    "keyboard": _keyboard,
    "noise burst": _burst,
    "music": _music,
    "breath": _breath,
}


def _at_level(y: np.ndarray, power: float) -> np.ndarray:
    return y * np.sqrt(power / (np.mean(y * y) + 1e-12))


# -- conversations ----------------------------------------------------------------------------


def build(turn_pool: list[Prompt], n_turns: int, seed: int) -> Conversation:
    """``n_turns`` turns, with 0.5 s of silence before the first and 1 s after the last."""
    rng = np.random.default_rng(seed)
    kinds = list(DISTRACTORS)
    pieces: list[tuple[int, np.ndarray]] = []  # (start sample, audio)
    conv = Conversation(clean=np.zeros(0, np.float32), speech_power=0.0)
    pos = SR // 2  # where the next speech region starts
    pending: list[tuple[int, np.ndarray]] = []  # distractors: (start sample, audio)
    for k in range(n_turns):
        turn_first = pos
        for j in range(int(rng.integers(1, 4))):
            p = turn_pool[int(rng.integers(len(turn_pool)))]
            if j:
                pos += int(rng.uniform(0.15, 0.35) * SR)
            start = pos - p.speech[0]
            pieces.append((start, p.audio))
            conv.speech.append((pos, start + p.speech[1]))
            pos = start + p.speech[1]
        conv.turns.append((turn_first, pos))
        if k == n_turns - 1:
            break
        if k % 2 == 0:
            kind = kinds[(k // 2) % len(kinds)]
            audio = DISTRACTORS[kind](rng)
            gap = rng.uniform(max(1.5, 1.7 + len(audio) / SR), max(3.0, 1.7 + len(audio) / SR))
            pending.append((pos + int(0.9 * SR), audio))
            conv.distractors.append((pos + int(0.9 * SR), pos + int(0.9 * SR) + len(audio), kind))
        else:
            gap = rng.uniform(1.5, 3.0)
        pos += int(gap * SR)
    total = pos + SR
    clean = np.zeros(total, np.float64)
    for start, audio in pieces:
        clean[start : start + len(audio)] += audio
    mask = np.zeros(total, bool)
    for a, b in conv.speech:
        mask[a:b] = True
    conv.speech_power = float(np.mean(clean[mask] ** 2))
    for at, audio in pending:
        level_db = rng.uniform(-12.0, -2.0)  # relative to the speech
        clean[at : at + len(audio)] += _at_level(audio, conv.speech_power * 10 ** (level_db / 10))
    conv.clean = clean.astype(np.float32)
    return conv


def pink(n: int, seed: int) -> np.ndarray:
    """Pink noise (1/f power, 20 Hz - 11 kHz), unit RMS."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spec *= np.where((f >= 20.0) & (f <= 11000.0), 1.0 / np.sqrt(np.maximum(f, 20.0)), 0.0)
    y = np.fft.irfft(spec, n)
    return (y / np.sqrt(np.mean(y * y))).astype(np.float32)


def babble(n: int, pool: list[Prompt], seed: int, talkers: int = 8) -> np.ndarray:
    """Eight talkers from ``pool``, each its prompts back to back, summed; unit RMS."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, np.float64)
    for _ in range(talkers):
        pos = -int(rng.integers(SR * 2))
        gain = 10 ** (rng.uniform(-3.0, 3.0) / 20)
        while pos < n:
            p = pool[int(rng.integers(len(pool)))]
            a, b = max(0, pos), min(n, pos + len(p.audio))
            if b > a:
                y[a:b] += gain * p.audio[a - pos : b - pos] / (np.sqrt(np.mean(p.audio**2)) + 1e-9)
            pos += len(p.audio)
    return (y / np.sqrt(np.mean(y * y))).astype(np.float32)


def with_noise(conv: Conversation, noise: np.ndarray | None, snr_db: float | None) -> bytes:
    """The condition's 24 kHz PCM16: the conversation plus noise at ``snr_db`` (clipped)."""
    x = conv.clean.astype(np.float64)
    if noise is not None and snr_db is not None:
        x = x + noise[: len(x)] * np.sqrt(conv.speech_power / 10 ** (snr_db / 10))
    return np.asarray(np.clip(np.round(x * 32768.0), -32768, 32767), dtype="<i2").tobytes()
