"""Tempo, beats and downbeats from an onset envelope: offline with the whole recording, and causal (each beat
decided from what was heard before it, as the live follower needs).

- Tempo: the envelope's autocorrelation read through a comb (a beat period is also seen at 2, 3 and 4 periods),
  weighted by a log-normal preference around PREFERRED_BPM; the octave (a half or double tempo) is chosen by
  the same score, so a piece with running eighths is not read at twice its beat.
- Offline beats: the dynamic programme of Ellis (2007), as librosa implements it (`librosa.beat.beat_track`),
  given the tempo found here.
- Causal beats: a phase-locked predictor written here (librosa has none). Once CAUSAL_WARMUP_S are heard, the
  period comes from the autocorrelation of the last CAUSAL_WINDOW_S and the phase from a comb over them; each
  beat is emitted at its predicted time, and the onset heard near it pulls the next prediction toward it.
- Downbeats: for bars of 3 or 4 beats and each phase, how much more the low band (bass, kick) and the change of
  harmony strike on the first beat than on the others; the best (meter, phase) wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import librosa
import numpy as np
import numpy.typing as npt

from idaw.listen.audio import SAMPLE_RATE
from idaw.listen.features import ONSET_HOP, ONSET_RATE, OnsetEnvelopes

F64 = npt.NDArray[np.float64]

MIN_BPM: Final = 40.0
MAX_BPM: Final = 240.0
PREFERRED_BPM: Final = 110.0
PREFERENCE_OCTAVES: Final = 0.9
"""Standard deviation, in octaves, of the log-normal tempo preference."""
MIN_BEATS_FOR_TEMPO: Final = 4
"""A tempo is reported only where the envelope holds this many of its beats (two strokes a second apart are not
yet a tempo)."""
MIN_PERIODICITY: Final = 0.25
"""Least comb score (a sum of autocorrelations, 1 for a perfectly periodic envelope's first peak) that counts as
a beat. Measured: white and pink noise 0.03-0.10; rendered chorales with and without drums 1.4-1.8."""
CAUSAL_WARMUP_S: Final = 3.0
CAUSAL_WINDOW_S: Final = 6.0
CAUSAL_RETRY_S: Final = 0.5
"""Until a tempo is heard, it is asked for again every this many seconds."""
PHASE_GAIN: Final = 0.35
"""How far one beat's timing error moves the next prediction (0: never corrects, 1: jumps to the onset)."""
PERIOD_GAIN: Final = 0.25


@dataclass(frozen=True)
class TempoEstimate:
    """A tempo in beats per minute."""

    bpm: float


def autocorrelation(envelope: F64) -> F64:
    """The envelope's autocorrelation (mean removed), normalised to 1 at lag 0 (all zero for a constant)."""
    centred = envelope - envelope.mean()
    size = 1 << int(np.ceil(np.log2(2 * len(centred) + 1)))
    spectrum = np.fft.rfft(centred, size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[: len(centred)]
    return ac / ac[0] if ac[0] > 0 else np.zeros(len(centred))


def _comb_scores(ac: F64, rate: float) -> tuple[F64, F64]:
    """Candidate tempi (BPM, log-spaced) and their comb scores on the autocorrelation `ac`."""
    bpms = MIN_BPM * 2.0 ** (np.arange(0, np.log2(MAX_BPM / MIN_BPM), 1 / 120))
    scores = np.zeros(len(bpms))
    for i, bpm in enumerate(bpms):
        lag = 60.0 * rate / bpm
        total = 0.0
        for k, weight in ((1, 1.0), (2, 0.5), (3, 0.33), (4, 0.25)):
            position = k * lag
            if position >= len(ac) - 1:
                break
            low = int(position)
            # the best of the samples around the lag (a tempo between two candidates of the grid)
            window = ac[max(low - 1, 0) : low + 3]
            total += weight * (float(window.max()) if len(window) else 0.0)
        scores[i] = total
    return bpms, scores


def estimate_tempo(envelope: F64, rate: float = ONSET_RATE) -> TempoEstimate | None:
    """The tempo of an onset envelope, or None when it has no periodicity to speak of (silence, noise, or too
    short to hold MIN_BEATS_FOR_TEMPO beats at any tempo)."""
    if len(envelope) < MIN_BEATS_FOR_TEMPO * 60.0 / MAX_BPM * rate or float(np.ptp(envelope)) <= 1e-9:
        return None
    ac = autocorrelation(envelope)
    bpms, scores = _comb_scores(ac, rate)
    preference = np.exp(-0.5 * (np.log2(bpms / PREFERRED_BPM) / PREFERENCE_OCTAVES) ** 2)
    weighted = scores * preference
    best = int(np.argmax(weighted))
    if scores[best] < MIN_PERIODICITY or len(envelope) < MIN_BEATS_FOR_TEMPO * 60.0 / bpms[best] * rate:
        return None
    return TempoEstimate(float(bpms[best]))


def offline_beats(envelope: F64, bpm: float, rate: float = ONSET_RATE) -> F64:
    """Beat times (s) with the whole envelope in view: Ellis's dynamic programme at `bpm`."""
    _, frames = librosa.beat.beat_track(
        onset_envelope=envelope,
        sr=SAMPLE_RATE,
        hop_length=ONSET_HOP,
        bpm=bpm,
        tightness=200,
        trim=False,
        units="frames",
    )
    return np.asarray(frames, dtype=np.float64) / rate


def causal_beats(envelope: F64, rate: float = ONSET_RATE) -> F64:
    """Beat times (s) as a live tracker would emit them: each from the envelope up to that time only.

    The first beat comes once CAUSAL_WARMUP_S are heard (later, where no tempo is heard by then); then every beat
    is the previous one plus the period, corrected by PHASE_GAIN times the offset of the strongest onset within a
    fifth of a period around the previous beat (heard by then), and the period follows the recent
    autocorrelation by PERIOD_GAIN a beat."""
    warmup = int(CAUSAL_WARMUP_S * rate)
    window = int(CAUSAL_WINDOW_S * rate)
    retry = int(CAUSAL_RETRY_S * rate)
    heard = warmup
    first = None
    while heard <= len(envelope):  # no beat yet: listen a little longer and ask again
        first = estimate_tempo(envelope[max(0, heard - window) : heard], rate)
        if first is not None:
            break
        heard += retry
    if first is None:
        return np.zeros(0)
    period = 60.0 * rate / first.bpm
    phase = _phase(envelope[:heard], period)
    next_beat = phase + period * np.ceil((heard - phase) / period)  # the first beat still to come
    beats: list[float] = []
    while next_beat < len(envelope):
        beats.append(next_beat)
        # What is heard up to a fifth of a period after this beat decides the next one (still before it).
        now = int(min(next_beat + 0.2 * period, len(envelope) - 1))
        lo = int(max(next_beat - 0.2 * period, 0))
        segment = envelope[lo : now + 1]
        if len(segment) and segment.max() > 1.0:
            weights = np.exp(-0.5 * ((np.arange(lo, now + 1) - next_beat) / (0.1 * period)) ** 2)
            error = float(np.argmax(segment * weights) + lo - next_beat)
        else:
            error = 0.0
        recent = envelope[max(0, now - window) : now + 1]
        estimate = estimate_tempo(recent, rate) if len(recent) >= warmup else None
        if estimate is not None:
            heard_period = 60.0 * rate / estimate.bpm
            for factor in (1.0, 2.0, 0.5):  # stay on the current metrical level unless the change is real
                if abs(np.log2(heard_period * factor / period)) < 0.1:
                    heard_period *= factor
                    break
            period += PERIOD_GAIN * (heard_period - period)
        next_beat += period + PHASE_GAIN * error
    return np.asarray(beats) / rate


def _phase(envelope: F64, period: float) -> float:
    """The frame offset (0 .. period) whose comb of beats gathers the most onset strength."""
    best, best_score = 0.0, -np.inf
    for offset in np.arange(0.0, period, 1.0):
        positions = np.arange(offset, len(envelope), period).astype(int)
        score = float(envelope[positions].sum()) / max(len(positions), 1)
        if score > best_score:
            best, best_score = float(offset), score
    return best


@dataclass(frozen=True)
class Meter:
    """Beats per bar and which beat (index into the beat list) is the first downbeat."""

    beats_per_bar: int
    first_downbeat: int
    confidence: float


def find_meter(beat_times: Sequence[float], envelopes: OnsetEnvelopes, harmonic_change: F64) -> Meter:
    """Bars of 3 or 4 beats and their phase: the grouping under which the bass/kick onsets and the changes of
    harmony (one value per beat, 0-1) fall most on first beats. 4 wins ties (most music is in 4)."""
    count = len(beat_times)
    if count < 6:
        return Meter(4, 0, 0.0)
    frames = np.clip(np.round(np.asarray(beat_times) * envelopes.rate).astype(int), 0, len(envelopes.low) - 1)
    low = np.array([envelopes.low[max(f - 2, 0) : f + 3].max() for f in frames])
    low = (low - low.mean()) / (low.std() + 1e-9)
    change = (harmonic_change - harmonic_change.mean()) / (harmonic_change.std() + 1e-9)
    evidence = low + change
    best = Meter(4, 0, 0.0)
    best_score = -np.inf
    scores: list[float] = []
    for beats_per_bar in (4, 3):
        for phase in range(beats_per_bar):
            first = np.arange(count) % beats_per_bar == phase
            score = float(evidence[first].mean() - evidence[~first].mean())
            if beats_per_bar == 3:
                score -= 0.1
            scores.append(score)
            if score > best_score:
                best, best_score = Meter(beats_per_bar, phase, 0.0), score
    ordered = sorted(scores, reverse=True)
    return Meter(best.beats_per_bar, best.first_downbeat, float(np.clip(ordered[0] - ordered[1], 0.0, 1.0)))
