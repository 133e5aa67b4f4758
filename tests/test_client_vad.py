"""The client VAD gate on real speech with real Silero, byte by byte, and through a session."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from agent_harness import agent_run
from conftest import FIXTURES, speech_segments
from gate_trace import gate_marks, gate_turns

from livekit_plugins_openai_novad import ClientVad, silero_runtime
from livekit_plugins_openai_novad.client_vad import WINDOW_SAMPLES, ClientTurnDetector, GateAction
from livekit_plugins_openai_novad.testing import FakeRealtimeServer
from livekit_plugins_openai_novad.testing.agent_io import read_wav

pytestmark = pytest.mark.timeout(60)
SR = 24000


def _pcm(x: np.ndarray) -> bytes:
    """Float samples (int16 scale) as PCM16, rounded and clipped."""
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


@pytest.mark.parametrize("frame_ms", [10, 20, 7])
@pytest.mark.parametrize("silence_ms", [300, 500, 800])
def test_turns_are_exact_and_end_one_silence_window_after_the_speech(
    frame_ms: int, silence_ms: int
) -> None:
    pcm = read_wav(FIXTURES / "three_turns.wav")
    opts = ClientVad(silence_duration_ms=silence_ms)
    det = ClientTurnDetector(opts)
    step = SR * frame_ms // 1000 * 2
    trace = gate_turns(det, pcm, step)
    turns, events = trace.turns, trace.events
    assert events.count(GateAction.SPEECH_STARTED) == 3
    assert events.count(GateAction.SPEECH_STOPPED) == 3
    for (first, last), (start, n, decided) in zip(
        speech_segments("three_turns.wav"), turns, strict=True
    ):
        end = start + n
        assert start <= first and end > last, "speech samples missing from the turn"
        assert n / SR <= (last - first + 1) / SR + (300 + silence_ms + 100) / 1000
        # ended one silence window after the last voiced sample, within a frame and a bit
        latency_ms = (decided - last) / SR * 1000
        assert silence_ms - 20 <= latency_ms <= silence_ms + frame_ms + 40, latency_ms
    # the (digital) silence between turns never went out, and nothing went out twice
    assert trace.sent_bytes == sum(n for _, n, _ in turns) * 2


def test_a_click_does_not_start_a_turn_and_silence_sends_nothing() -> None:
    det = ClientTurnDetector(ClientVad())
    out = det.push(bytes(SR * 2 * 3))  # 3 s of digital silence
    assert out == []
    click = (b"\xff\x7f" * 24) + bytes(SR * 2)  # 1 ms full-scale click, then silence
    assert [a for a, _ in det.push(click)] == []


def _gate_output(pcm: bytes, step_bytes: int) -> tuple[bytes, list[tuple[GateAction, int]]]:
    return gate_marks(ClientTurnDetector(ClientVad()), pcm, step_bytes)


def test_decisions_do_not_depend_on_push_size() -> None:
    pcm = read_wav(FIXTURES / "three_turns.wav")
    reference = _gate_output(pcm, 480)  # 10 ms frames
    for step in (2 * 7 * 24, 4800, 24000, 48000 * 3):  # 7 ms, 100 ms, 500 ms, 3 s pushes
        assert _gate_output(pcm, step) == reference, step


# -- real recorded speech: a turn with a pause inside, then a cough and a burst of music ---------

REAL = "real_turn.wav"


def _real_truth() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(speech regions, distractors) of the real-speech fixture, [start, end) in samples."""
    data = json.loads((FIXTURES / "real_turn.json").read_text())
    speech = [(s["start_sample"], s["end_sample"]) for s in data["speech"]]
    return speech, [(d["start_sample"], d["end_sample"]) for d in data["distractors"]]


def _turns(pcm: bytes, step_bytes: int, opts: ClientVad) -> list[tuple[int, int]]:
    """Each turn as the [first, last + 1) samples of the input its gate sent."""
    det = ClientTurnDetector(opts)
    turns = [(start, start + n) for start, n, _ in gate_turns(det, pcm, step_bytes).turns]
    assert not det.speaking, "the clip ends in a turn"
    return turns


@pytest.mark.parametrize("lead_ms", [0, 8, 16, 24])  # four alignments to the 32 ms windows
@pytest.mark.parametrize("frame_ms", [10, 7])
def test_real_speech_with_a_pause_a_cough_and_music_is_one_whole_turn(
    lead_ms: int, frame_ms: int
) -> None:
    lead = SR * lead_ms // 1000
    pcm = bytes(2 * lead) + read_wav(FIXTURES / REAL)
    speech, distractors = _real_truth()
    turns = _turns(pcm, SR * frame_ms // 1000 * 2, ClientVad())
    assert len(turns) == 1, turns  # not split at the 300 ms pause, no turn on cough or music
    start, end = turns[0]
    assert start <= lead + speech[0][0] and end >= lead + speech[-1][1], "speech not committed"
    # ...and the turn ended before the cough: it was not merely stretched over it
    assert end < lead + distractors[0][0]


def test_real_speech_in_noise_decides_the_same_however_it_is_pushed() -> None:
    clean = np.frombuffer(read_wav(FIXTURES / REAL), dtype="<i2").astype(np.float64)
    noise = np.random.default_rng(3).standard_normal(len(clean)) * 300.0  # ~ -41 dBFS
    pcm = _pcm(clean + noise)
    reference = _gate_output(pcm, 480)
    assert reference[1], "no turn at all"
    for step in (2 * 7 * 24, 4800, 24000 * 2 + 2, len(pcm)):
        assert _gate_output(pcm, step) == reference, step


async def test_real_speech_through_an_agent_session_is_one_answered_turn(
    server: FakeRealtimeServer,
) -> None:
    wav = read_wav(FIXTURES / REAL)
    speech, _ = _real_truth()
    # one whole turn, one commit: without preemptive replies (which commit at the pause too)
    async with agent_run(server, client_vad=ClientVad(preemptive_after_ms=None)) as run:
        run.mic.play(wav)
        await run.conn.wait_for_client_event("response.create", count=1, timeout=30)
        await run.mic.wait_drained()
        await asyncio.wait_for(run.speaker.segment_finished.wait(), 10)
        assert len(run.events("response.create")) == 1
        assert len(run.conn.commits) == 1
        committed = run.conn.commits[0]
        pos = wav.find(committed)
        if pos < 0:  # the commit may start in the silence pushed before the clip
            pos = (bytes(SR * 2) + wav).find(committed) - SR * 2
        assert pos > -SR * 2, "committed audio is not a contiguous piece of what was pushed"
        start, end = pos // 2, (pos + len(committed)) // 2
        assert start <= speech[0][0] and end >= speech[-1][1], "a speech sample was not committed"
        assert run.conn.appended_bytes == len(committed)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stop_threshold": 0.6}, "stop_threshold"),  # above the default threshold 0.5
        ({"stop_threshold": -0.1}, "stop_threshold"),
        ({"stop_threshold": True}, "stop_threshold"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"smoothing": -0.2}, "smoothing"),
        ({"smoothing": float("nan")}, "smoothing"),
        ({"smoothing": "0.3"}, "smoothing"),
    ],
)
def test_client_vad_rejects_bad_new_options_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        ClientVad(**kwargs)  # type: ignore[arg-type]


def test_client_vad_stop_threshold_defaults_below_threshold() -> None:
    assert ClientVad().effective_stop_threshold == pytest.approx(0.35)
    assert ClientVad(threshold=0.1).effective_stop_threshold == 0.0
    assert ClientVad(threshold=0.6, stop_threshold=0.6).effective_stop_threshold == 0.6


@pytest.mark.parametrize("lead_ms", [0, 20])
def test_an_unvoiced_word_start_before_a_short_dip_is_sent_with_the_turn(lead_ms: int) -> None:
    # a fricative-like hiss Silero does not take for speech, 130 ms of quiet (three or four
    # windows, under the 160 ms that end a sound), then real speech: the turn starts on the
    # speech, but is sent from before the hiss
    pcm = np.frombuffer(read_wav(FIXTURES / "three_turns.wav"), np.int16)
    first, last = speech_segments("three_turns.wav")[0]
    speech = pcm[first : last + 1]
    rms = float(np.sqrt(np.mean(speech.astype(np.float64) ** 2)))
    hiss = (np.random.default_rng(3).standard_normal(SR * 4 // 10) * rms * 0.5).astype(np.int16)
    hiss_at = SR + lead_ms * SR // 1000
    audio = np.concatenate(
        [np.zeros(hiss_at, np.int16), hiss, np.zeros(SR * 130 // 1000, np.int16), speech]
    )
    audio = np.concatenate([audio, np.zeros(SR, np.int16)]).tobytes()
    det = ClientTurnDetector(ClientVad())
    sent = bytearray()
    events = []
    for i in range(0, len(audio), SR // 100 * 2):
        for action, data in det.push(audio[i : i + SR // 100 * 2]):
            events.append(action)
            if action is GateAction.SEND:
                sent += data
    assert events.count(GateAction.SPEECH_STARTED) == 1
    assert events.count(GateAction.SPEECH_STOPPED) == 1
    start = audio.find(bytes(sent)) // 2
    assert 0 <= start <= hiss_at, (start, hiss_at)


def test_the_noise_tracker_learns_silero_s_score_on_the_noise_not_on_sounds() -> None:
    from livekit_plugins_openai_novad._noise import NoiseTracker

    rng = np.random.default_rng(0)
    steady, babble = NoiseTracker(), NoiseTracker()
    for _ in range(300):  # ~10 s of windows
        steady.learn(-50.0, float(rng.uniform(0.0, 0.05)), quiet=True)
        # babble Silero half-believes, with loud sounds it is sure of that must not count
        babble.learn(-30.0, float(rng.uniform(0.0, 0.6)), quiet=True)
        babble.learn(-15.0, 1.0, quiet=False)
    assert steady.p < 0.05 and steady.lift(0.5) < 0.53  # silence and steady noise: as set
    assert 0.2 < babble.p < 0.4  # the median of the noise's own score
    assert babble.lift(0.5) == pytest.approx(1.0 - 0.5 * (1.0 - babble.p))
    assert babble.floor_db < babble.mean_db  # a swinging level: the mean stands over the floor


def _noisy(clean: bytes, noise_rms: float, seed: int) -> bytes:
    x = np.frombuffer(clean, dtype="<i2").astype(np.float64)
    return _pcm(x + np.random.default_rng(seed).standard_normal(len(x)) * noise_rms)


@pytest.mark.parametrize("noise_rms", [0.0, 300.0])  # digital silence, ~ -41 dBFS of noise
def test_in_noise_that_may_bury_a_word_the_gap_before_a_turn_is_sent_with_it(
    noise_rms: float,
) -> None:
    real = read_wav(FIXTURES / REAL)
    speech, _ = _real_truth()
    # the recorded turn (the clip's cough and music cut) twice, 1.5 s apart, then 1 s more
    one = real[: 2 * (speech[-1][1] + SR // 4)]
    quieter = (np.frombuffer(one, dtype="<i2") * 0.8).astype("<i2").tobytes()  # not a copy
    pcm = _noisy(one + bytes(SR * 3) + quieter + bytes(SR * 2), noise_rms, seed=5)
    trace = gate_turns(ClientTurnDetector(ClientVad()), pcm, 480)
    assert len(trace.turns) == 2, trace.turns
    (a, n, _), (b, m, _) = trace.turns
    assert a <= speech[0][0] and b <= len(one) // 2 + SR * 3 // 2 + speech[0][0]
    if noise_rms:
        # the noise leaves a quiet word ending no room: the gap is committed, not dropped
        assert b == a + n
    else:
        # in silence the gap is known to hold nothing: it is not sent
        assert b > a + n + SR // 2
    assert trace.sent_bytes == (n + m) * 2  # nothing twice


def test_silero_is_not_asked_about_windows_with_no_sound_between_turns() -> None:
    scored: list[int] = []
    silero = silero_runtime.new_scorer()

    def counting(window: np.ndarray) -> float:
        scored.append(len(window))
        return silero(window)

    det = ClientTurnDetector(ClientVad(), scorer=counting)
    assert det.push(bytes(SR * 2 * 3)) == [] and scored == []  # 3 s of digital silence
    pcm = read_wav(FIXTURES / "one_turn.wav")
    trace = gate_turns(det, pcm + bytes(SR * 2), 480)
    assert len(trace.turns) == 1
    # the turn and its trailing silence were scored, the silence around it was not
    ((first, last),) = speech_segments("one_turn.wav")
    _, n, _ = trace.turns[0]
    assert (last - first) // WINDOW_SAMPLES <= len(scored) <= n // WINDOW_SAMPLES + 2


def _energy_score(window: np.ndarray) -> float:
    """A stand-in for Silero: a tone is speech, silence and faint noise are not."""
    return 1.0 if float(np.abs(window).mean()) > 0.01 else 0.0


def test_decisions_do_not_depend_on_push_size_near_the_deadline() -> None:
    # tones with gaps around the silence window, where a turn either ends or goes on
    rng = np.random.default_rng(11)
    for _ in range(40):
        parts = []
        for _ in range(6):
            t = np.arange(int(SR * rng.uniform(0.1, 0.5))) / SR
            parts.append(np.sin(2 * np.pi * 300 * t) * 6000)
            parts.append(np.zeros(int(SR * rng.uniform(0.35, 0.75))))
        pcm = np.concatenate(parts).astype("<i2").tobytes()

        def out(step: int, pcm: bytes = pcm) -> tuple[bytes, list[tuple[GateAction, int]]]:
            det = ClientTurnDetector(ClientVad(silence_duration_ms=500), scorer=_energy_score)
            return gate_marks(det, pcm, step)

        reference = out(480)
        for step in (2 * 7 * 24, 2 * 13 * 24, 4800 + 2, len(pcm)):
            assert out(step) == reference, step


def _babble_like_score(window: np.ndarray) -> float:
    """A stand-in for Silero in babble: it half-believes the noise (0.4), scores a loud word
    low (0.3) and only the word's soft end, a little over the noise, as likely speech (0.6)."""
    db = 10 * np.log10(float(np.mean(np.square(window))) + 1e-12)
    return 0.3 if db > -16.0 else 0.6 if db > -28.8 else 0.4


def _tone(seconds: float, db: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return np.sin(2 * np.pi * 220 * t) * 32768 * 10 ** (db / 20) * np.sqrt(2)


@pytest.mark.parametrize("loud_first", [True, False])
def test_a_loud_word_silero_scores_low_in_babble_starts_a_turn_by_its_soft_end(
    loud_first: bool,
) -> None:
    # the noise lifts the start threshold to ~0.7, over the soft end's 0.6, and the soft end
    # (~2.5 dB over the noise) does not stand out of it: only in the tail of a sound that does
    # (the word, 18 dB over) does a window vote at the unlifted threshold
    noise_s, word_s, end_s = 4.0, 0.15, 0.3
    rng = np.random.default_rng(7)
    n = int(SR * (noise_s + word_s + end_s + 1.5))
    x = rng.standard_normal(n) * 32768 * 10 ** (-30 / 20)  # -30 dBFS of noise throughout
    at = int(SR * noise_s)
    if loud_first:
        x[at : at + int(SR * word_s)] += _tone(word_s, -12.0)
    soft = at + int(SR * word_s)
    x[soft : soft + int(SR * end_s)] += _tone(end_s, -31.0)
    pcm = _pcm(x)
    det = ClientTurnDetector(ClientVad(), scorer=_babble_like_score)
    trace = gate_turns(det, pcm, 480)
    if not loud_first:
        assert trace.turns == []  # a sound Silero half-believes, alone, is the noise's
        return
    assert len(trace.turns) == 1, trace.turns
    start, _, _ = trace.turns[0]
    assert start <= at  # sent from before the loud word


class _BabbleScorer:
    """A stand-in for Silero in babble: the first ``learn_s`` it half-believes the noise
    (0.3, which the noise tracker learns); after that it takes the noise for speech (0.8, over
    the thresholds that lifts), and a loud sound for speech too (0.95)."""

    def __init__(self, learn_s: float) -> None:
        self._learn_windows = int(learn_s / 0.032)
        self._calls = 0  # every window holds noise, so every window is scored

    def __call__(self, window: np.ndarray) -> float:
        self._calls += 1
        if 10 * np.log10(float(np.mean(np.square(window))) + 1e-12) > -22.0:
            return 0.95
        return 0.3 if self._calls <= self._learn_windows else 0.8


def _white(seconds: float, db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(int(SR * seconds)) * 32768 * 10 ** (db / 20)


def test_in_babble_a_turn_ends_though_silero_goes_on_scoring_the_noise_as_speech() -> None:
    # Silero keeps voting for the noise after the word: only energy can date its end, and
    # the turn ends 1 s of babble plus the silence window after the last sound heard
    learn_s, word_s, after_s = 4.0, 0.6, 4.0
    x = _white(learn_s + word_s + after_s, -30.0, 3)
    word = _tone(word_s, -12.0)
    at = int(SR * learn_s)
    word_end = at + len(word)
    x[at:word_end] += word
    det = ClientTurnDetector(ClientVad(silence_duration_ms=500), scorer=_BabbleScorer(learn_s))
    trace = gate_turns(det, _pcm(x), 480)
    assert len(trace.turns) == 1, trace.turns  # before: the turn never ended
    start, length, decided = trace.turns[0]
    assert start <= at and start + length >= word_end  # the whole word is sent
    # (not before: Silero's vote holds the turn for 1 s of babble after the word)
    late = (decided - word_end) / SR
    assert 1.0 + 0.5 - 0.1 <= late <= 1.0 + 0.5 + 0.1, late
    odd = ClientTurnDetector(ClientVad(silence_duration_ms=500), scorer=_BabbleScorer(learn_s))
    assert [t[:2] for t in gate_turns(odd, _pcm(x), 2 * 337).turns] == [(start, length)]


def test_in_babble_noise_silero_takes_for_speech_starts_no_turn_until_a_voice_does() -> None:
    # louder moments of the noise (+5 dB for 250 ms, every 0.75 s) stand out of its mean and
    # Silero votes for them (the first few, until the noise tracker has learnt that score),
    # but nothing in them is periodic or loud enough to be a talker; a vowel-like tone 11 dB
    # over the noise is periodic (~0.93 against 0.9) and starts the one turn
    learn_s, babble_s, voice_s = 4.0, 6.0, 0.8
    x = _white(learn_s + babble_s + voice_s + 1.0, -30.0, 5)
    for t in np.arange(learn_s + 0.2, learn_s + babble_s - 0.3, 0.75):
        x[int(SR * t) : int(SR * (t + 0.25))] *= 10 ** (5 / 20)
    voice = _tone(voice_s, -19.0)
    at = int(SR * (learn_s + babble_s))
    x[at : at + len(voice)] += voice
    det = ClientTurnDetector(ClientVad(silence_duration_ms=500), scorer=_BabbleScorer(learn_s))
    trace = gate_turns(det, _pcm(x), 480)
    assert trace.events.count(GateAction.SPEECH_STARTED) == 1, trace.turns
    assert len(trace.turns) == 1, trace.turns
    start, length, _ = trace.turns[0]
    assert start <= at < start + length  # the voice, not the noise's louder moments
