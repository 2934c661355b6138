"""The live follower: tempo, beat phase, key and mood from a stream of audio, as `idaw live --midi --follow` needs
them (the sidecar runs one per engine that asked to be followed; realtime/follow.py turns what it hears into the MIDI
generator's controls).

It is fed the engine's analysis stream piece by piece (each piece with its index in the stream) and after each
piece says what it has heard so far, deciding from what came before only:

- Tempo: every piece, the comb tempo (idaw.listen.beats.estimate_tempo, the one offline analysis uses) of the onset
  envelope (idaw.listen.features.onset_envelopes) of the last TEMPO_WINDOW_S. A new reading at about half or
  twice the current beat is folded onto the current metrical level; the period then moves TEMPO_GAIN of the way
  toward it (the smoothing: one odd reading does not jerk the generator).
- Beat phase: the offset whose comb of beats at that period gathers the most onset strength over the last
  PHASE_WINDOW_S, recent beats weighing more (a phase changes with the music; old beats should not hold it back).
  The predicted beat train moves PHASE_GAIN of the way toward it. The newest beat of the train at or before the
  end of what was heard is reported, with the tempo: a receiver extrapolates (beat + n periods).
- Key: librosa's constant-Q chroma of the stream, summed with an exponential forgetting of KEY_MEMORY_S and
  correlated with the theory layer's 24 key profiles (idaw.theory.keys). A new key is taken when it has led the
  current one for KEY_CONFIRM_HOPS pieces in a row (a passing secondary dominant does not change the key). A
  modulation is told apart from a chord of the key by a second, short memory (RECENT_S): when it stops fitting
  the current key (MIN_RECENT_CORRELATION), the long memory is replaced by it, so a new key is heard in seconds.
- Mood: optional, a callable given the last MOOD_WINDOW_S of audio that returns (label, valence, arousal): the
  listening adapter's emotion.

No tempo is reported until MIN_HEARD_S of audio have come and FIRST_READINGS readings in a row agree (noise gives
none): a result then says so (None fields). Gaps in the
stream (windows the network dropped) are filled with silence; a stream index that goes backwards (the engine
restarted its stream) or jumps ahead by more than HISTORY_S starts the follower afresh (memory stays bounded
whatever index a window claims).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import librosa
import numpy as np
import numpy.typing as npt

from idaw.listen.audio import SAMPLE_RATE
from idaw.listen.beats import autocorrelation, estimate_tempo
from idaw.listen.features import CHROMA_FMIN_HZ, ONSET_HOP, ONSET_RATE, onset_envelopes
from idaw.theory.keys import KeyLabel, key_correlations, key_profiles

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

HISTORY_S: Final = 8.0
"""Audio kept (the longest window any estimate reads)."""
TEMPO_WINDOW_S: Final = 5.0
"""Audio the tempo is read from: long enough for 4 beats at 48 BPM, short enough that a new tempo dominates it
within about 5 beats of a change."""
PHASE_WINDOW_S: Final = 4.0
PHASE_MEMORY_BEATS: Final = 2.0
"""Weight of a beat in the phase comb: exp(-age in beats / this)."""
TEMPO_GAIN: Final = 0.7
"""Fraction of the way the period moves toward each new reading."""
PHASE_GAIN: Final = 0.5
"""Fraction of the way the beat train moves toward each new phase reading."""
REFINE_SPAN: Final = 0.01
"""The refined period lies within this fraction of the comb's (half a step of its grid, and some)."""
REFINE_MULTIPLES: Final = 4
ENVELOPE_LEAD_S: Final = 0.015
"""How much earlier than the note the onset envelope peaks (the log-mel flux rises as soon as the note's first
energy enters the analysis window); added to the phase. Measured on the follow test's band (piano, bass and drums
rendered with fluidsynth): 15-25 ms; other sounds' attacks differ by a few ms."""
FIRST_READINGS: Final = 3
"""Before a first tempo is reported, this many readings in a row must agree within FIRST_AGREEMENT (a comb over
a few seconds of noise can find a periodicity; it does not find the same one twice)."""
FIRST_AGREEMENT: Final = 0.04
MAX_STEP: Final = 0.08
"""A reading further than this from the current tempo (after folding octaves) is taken only when FIRST_READINGS
of them in a row agree within FIRST_AGREEMENT: a tempo change, not one odd window."""
MIN_HEARD_S: Final = 3.0
"""No tempo is reported before this much audio (CAUSAL_WARMUP_S of the offline causal tracker)."""
KEY_MEMORY_S: Final = 10.0
"""Time constant of the chroma sum the key is read from: long enough to hold several bars' chords (a key is more
than the chord of the moment)."""
RECENT_S: Final = 1.0
"""Time constant of the short chroma memory that tells a modulation."""
MIN_RECENT_CORRELATION: Final = 0.1
"""When the short memory correlates less than this with the current key's profile, and best with another key, for
KEY_CONFIRM_HOPS pieces in a row, the key is read again from the short memory alone."""
KEY_CONFIRM_HOPS: Final = 2
"""Pieces in a row a new key must lead (or the music must have left the key) before the key changes."""
MIN_KEY_CORRELATION: Final = 0.3
"""Below this best correlation no key is taken (noise, drums alone)."""
CHROMA_HOP: Final = 512
CHROMA_CONTEXT_S: Final = 1.5
"""The chroma of each piece is read with this much audio before it (the low notes' filters are long: librosa's
lowest octave needs 1,024 samples after its five halvings of the rate)."""
CHROMA_OCTAVES: Final = 5
"""Octaves of chroma the key is read from, from idaw.listen.features.CHROMA_FMIN_HZ (C2) up."""
MOOD_WINDOW_S: Final = 2.0

Mood = Callable[[F32], tuple[str, float, float]]
"""Given the last MOOD_WINDOW_S of audio at SAMPLE_RATE: (emotion label, valence, arousal), each in [-1, 1]."""


@dataclass(frozen=True)
class Heard:
    """What the follower has heard by stream index `upto` (exclusive), at SAMPLE_RATE."""

    upto: int
    tempo_bpm: float | None
    """None until a steady beat is heard."""
    beat: int | None
    """Stream index of the newest beat at or before `upto` (the next ones: beat + n * 60 / tempo_bpm seconds)."""
    key: KeyLabel | None
    key_correlation: float
    """How well the key's profile fits the chroma memory (-1..1)."""
    emotion: str | None = None
    valence: float = 0.0
    arousal: float = 0.0


class Follower:
    """Follows one stream (see the module comment). feed() pieces in order; each call returns what is heard."""

    def __init__(self, mood: Mood | None = None) -> None:
        self.mood = mood
        self._profiles = key_profiles()
        self._reset()

    def _reset(self) -> None:
        self._audio = np.zeros(0, dtype=np.float32)
        self._end = 0  # stream index just past the last sample held
        self._heard = 0  # samples heard since the (re)start
        self._period: float | None = None  # samples per beat
        self._anchor: float | None = None  # stream index of a beat of the predicted train
        self._first: list[float] = []  # readings (samples per beat) before the first tempo
        self._jump: list[float] = []  # readings far from the current tempo, in a row
        self._chroma = np.zeros(12)
        self._recent = np.zeros(12)
        self._left_hops = 0
        self._key: KeyLabel | None = None
        self._key_correlation = 0.0
        self._challenger: int | None = None
        self._challenger_hops = 0
        self._mood: tuple[str, float, float] | None = None

    def feed(self, samples: npt.ArrayLike, start: int) -> Heard:
        """Add the piece of the stream that starts at index `start` (mono, SAMPLE_RATE; overlapping what was fed
        before is fine: only the new part is taken) and return what is heard by its end."""
        piece = np.nan_to_num(np.asarray(samples, dtype=np.float32).ravel(), nan=0.0, posinf=0.0, neginf=0.0)
        end = start + piece.size
        if start < 0 or (self._heard and end < self._end - piece.size):
            self._reset()  # the stream went backwards: a new stream
        elif self._heard and start - self._end > HISTORY_S * SAMPLE_RATE:
            self._reset()  # a gap longer than all the follower keeps: nothing heard before it still counts
        if not self._heard:
            self._end = start
        if end <= self._end:
            return self.heard()
        gap = max(0, start - self._end)
        new = np.concatenate([np.zeros(gap, dtype=np.float32), piece[max(0, self._end - start) :]])
        self._end = end
        self._heard += new.size
        self._audio = np.concatenate([self._audio, new])[-int(HISTORY_S * SAMPLE_RATE) :]
        self._listen_key(new.size)
        if self._heard >= MIN_HEARD_S * SAMPLE_RATE:
            self._listen_beat()
            if self.mood is not None:
                self._mood = self.mood(self._audio[-int(MOOD_WINDOW_S * SAMPLE_RATE) :])
        return self.heard()

    def heard(self) -> Heard:
        """What is heard by the end of what was fed."""
        beat = None
        tempo = None
        if self._period is not None and self._anchor is not None:
            tempo = 60.0 * SAMPLE_RATE / self._period
            beat = round(self._anchor + math.floor((self._end - self._anchor) / self._period) * self._period)
        label, valence, arousal = self._mood if self._mood is not None else (None, 0.0, 0.0)
        return Heard(self._end, tempo, beat, self._key, self._key_correlation, label, valence, arousal)

    # ---- tempo and phase ----------------------------------------------------------------------------------

    def _listen_beat(self) -> None:
        window = self._audio[-int(max(TEMPO_WINDOW_S, PHASE_WINDOW_S) * SAMPLE_RATE) :]
        envelope = onset_envelopes(window).full
        estimate = estimate_tempo(envelope[-int(TEMPO_WINDOW_S * ONSET_RATE) :])
        if estimate is None:
            self._first, self._jump = [], []
            if float(np.ptp(envelope)) <= 1e-9:
                self._period = self._anchor = None  # silence: the beat is gone
            return
        reading = _refined_period(envelope[-int(TEMPO_WINDOW_S * ONSET_RATE) :], 60.0 * ONSET_RATE / estimate.bpm)
        reading *= ONSET_HOP  # frames -> samples
        if self._period is None:
            self._first = [*self._first, reading][-FIRST_READINGS:]
            if len(self._first) < FIRST_READINGS or np.ptp(np.log(self._first)) > math.log1p(FIRST_AGREEMENT):
                return
            self._period = float(np.median(self._first))
        else:
            for factor in (1.0, 2.0, 0.5):  # the same beat heard at another metrical level
                if abs(math.log2(reading * factor / self._period)) < 0.1:
                    reading *= factor
                    break
            if abs(math.log(reading / self._period)) > math.log1p(MAX_STEP):
                # A new tempo, or a stray reading (the end of the music, a fill): taken once readings agree.
                self._jump = [*self._jump, reading][-FIRST_READINGS:]
                if len(self._jump) < FIRST_READINGS or np.ptp(np.log(self._jump)) > math.log1p(FIRST_AGREEMENT):
                    return
                self._period = float(np.median(self._jump))
            else:
                self._period += TEMPO_GAIN * (reading - self._period)
            self._jump = []
        phase_frames = min(len(envelope), int(PHASE_WINDOW_S * ONSET_RATE))
        phase = _beat_phase(envelope[-phase_frames:], self._period / ONSET_HOP)
        measured = self._end - window.size + (len(envelope) - phase_frames + phase) * ONSET_HOP
        measured += ENVELOPE_LEAD_S * SAMPLE_RATE
        if self._anchor is None:
            self._anchor = measured
            return
        predicted = self._anchor + round((measured - self._anchor) / self._period) * self._period
        self._anchor = predicted + PHASE_GAIN * (measured - predicted)

    # ---- key ----------------------------------------------------------------------------------------------

    def _listen_key(self, new_samples: int) -> None:
        # The constant-Q chroma of the last CHROMA_CONTEXT_S, of which the frames of the new audio are kept.
        context = self._audio[-int(CHROMA_CONTEXT_S * SAMPLE_RATE) :]
        frames = min(round(new_samples / CHROMA_HOP), context.size // CHROMA_HOP)
        if frames == 0 or context.size < CHROMA_CONTEXT_S * SAMPLE_RATE or float(np.abs(context).max()) == 0.0:
            return
        chroma = librosa.feature.chroma_cqt(
            y=context, sr=SAMPLE_RATE, hop_length=CHROMA_HOP, fmin=CHROMA_FMIN_HZ, n_octaves=CHROMA_OCTAVES, norm=None
        )[:, -frames:]
        decay = math.exp(-CHROMA_HOP / SAMPLE_RATE / KEY_MEMORY_S)
        recent_decay = math.exp(-CHROMA_HOP / SAMPLE_RATE / RECENT_S)
        for frame in chroma.T:
            self._chroma = self._chroma * decay + frame
            self._recent = self._recent * recent_decay + frame
        if self._key is not None:
            recent = key_correlations(self._recent, self._profiles)
            left = int(np.argmax(recent)) != self._key.index and recent[self._key.index] < MIN_RECENT_CORRELATION
            self._left_hops = self._left_hops + 1 if left else 0
            if self._left_hops >= KEY_CONFIRM_HOPS:  # a modulation: forget the old key
                self._chroma = self._recent * (1.0 - recent_decay) / (1.0 - decay)
                self._left_hops = 0
        correlations = key_correlations(self._chroma, self._profiles)
        best = int(np.argmax(correlations))
        if float(correlations[best]) < MIN_KEY_CORRELATION:
            self._challenger, self._challenger_hops = None, 0
            return
        if self._key is None or best == self._key.index:
            if self._key is None:
                self._key = KeyLabel.from_index(best)
            self._key_correlation = float(correlations[best])
            self._challenger, self._challenger_hops = None, 0
            return
        self._challenger_hops = self._challenger_hops + 1 if best == self._challenger else 1
        self._challenger = best
        self._key_correlation = float(correlations[self._key.index])
        if self._challenger_hops >= KEY_CONFIRM_HOPS:
            self._key = KeyLabel.from_index(best)
            self._key_correlation = float(correlations[best])
            self._challenger, self._challenger_hops = None, 0


def _refined_period(envelope: F64, frames: float) -> float:
    """The beat period (frames, fractional) near `frames` whose first REFINE_MULTIPLES multiples gather the most
    autocorrelation, read between lags by linear interpolation: the comb's tempo grid (1/120 octave, 0.6 %) is too
    coarse for a beat train extrapolated over seconds (0.6 % of a 0.6 s beat is 3.6 ms a beat)."""
    ac = autocorrelation(envelope)
    candidates = frames * np.linspace(1.0 - REFINE_SPAN, 1.0 + REFINE_SPAN, 121)
    multiples = np.arange(1, REFINE_MULTIPLES + 1)
    lags = np.outer(candidates, multiples)
    usable = lags < len(ac) - 1
    scores = np.where(usable, np.interp(lags, np.arange(len(ac)), ac), 0.0).sum(axis=1)
    return float(candidates[int(np.argmax(scores))])


def _beat_phase(envelope: F64, period_frames: float) -> float:
    """The frame offset (0 .. period) whose comb of beats over `envelope` gathers the most onset strength, each beat
    weighted by exp(-its age in beats / PHASE_MEMORY_BEATS) (the envelope ends now)."""
    frames = len(envelope)
    best, best_score = 0.0, -math.inf
    for offset in np.arange(0.0, period_frames, 1.0):
        positions = np.arange(offset, frames, period_frames)
        ages = (frames - positions) / period_frames
        index = np.minimum(np.rint(positions).astype(int), frames - 1)
        score = float((envelope[index] * np.exp(-ages / PHASE_MEMORY_BEATS)).sum())
        if score > best_score:
            best, best_score = float(offset), score
    return best


MOOD_MEMORY_S: Final = 4.0
"""Time constant of the smoothing of the adapter's valence and arousal (one window's class must not jerk the
generator's mood)."""


def adapter_mood(hop_s: float = 0.5) -> Mood | None:
    """The shipped listening adapter's emotion as a Mood (None when no adapter weights ship): each window's class,
    with valence and arousal (adapter.EMOTION_VA of the class probabilities' mean) smoothed over MOOD_MEMORY_S,
    given that the mood is asked once every `hop_s`."""
    from idaw.listen import adapter, frames

    model = adapter.shipped()
    if model is None:
        return None
    keep = math.exp(-hop_s / MOOD_MEMORY_S)
    centres = np.array([adapter.EMOTION_VA[name] for name in adapter.EMOTIONS])
    state: list[F64] = []

    def mood(samples: F32) -> tuple[str, float, float]:
        judgement = model.judge(frames.window_features(samples))
        point = judgement.emotion @ centres  # the probabilities' mean (valence, arousal)
        state[:] = [point if not state else keep * state[0] + (1.0 - keep) * point]
        valence, arousal = np.clip(state[0], -1.0, 1.0)
        return judgement.emotion_label, float(valence), float(arousal)

    return mood
