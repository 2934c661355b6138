"""What the analysis hears in a recording: an onset envelope for tempo and beats, and the notes sounding in each
beat for keys and chords.

- Onset envelope: librosa's spectral flux on a log-mel spectrogram (`librosa.onset.onset_strength`), hop
  ONSET_HOP (11.6 ms at 22.05 kHz): the beat decoders' evidence. Also a low band (below 200 Hz) for the bass and
  the kick, which mark downbeats more often than other beats.
- Notes per beat: librosa's constant-Q transform (3 bins per semitone, A1 to G#8) averaged over each beat, then
  unmixed into notes by non-negative least squares against harmonic templates (each note a comb of partials
  decaying by PARTIAL_DECAY): the approximate transcription of Mauch and Dixon's NNLS chroma (ISMIR 2010),
  written here (no library offers it). Without it the third partial of every note (a twelfth above) reads as a
  fifth and pulls keys toward the dominant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import librosa
import numpy as np
import numpy.typing as npt
import scipy.optimize

from idaw.listen.audio import SAMPLE_RATE

F64 = npt.NDArray[np.float64]

ONSET_HOP: Final = 256
"""Samples between onset-envelope frames (11.6 ms): fine enough for the ±70 ms window beats are scored in."""
ONSET_RATE: Final = SAMPLE_RATE / ONSET_HOP
"""Onset-envelope frames per second."""
CQT_HOP: Final = 512
CQT_BINS_PER_SEMITONE: Final = 3
LOWEST_NOTE: Final = 33
"""A1 (55 Hz): the lowest note transcribed."""
NOTE_COUNT: Final = 84
"""A1 .. G#8."""
PARTIALS: Final = 8
PARTIAL_DECAY: Final = 0.7
"""Amplitude of partial k+1 relative to partial k in the note templates (Mauch and Dixon use 0.6-0.9)."""
BASS_CUTOFF_HZ: Final = 200.0
CHROMA_FMIN_HZ: Final = 65.4
"""C2: the chroma that keys and chords are read from starts here. The octave below holds the kick drum's body
(40-60 Hz), which is pitched and would read as a pitch class: the Hydrogen kits' kicks put E and F first in the
chroma of a G major song. Bass notes lose only their fundamentals there; their partials above stay."""
CHROMA_OCTAVES: Final = 6
"""C2 to B7, the top of librosa's default chroma range."""


@dataclass(frozen=True)
class OnsetEnvelopes:
    """Onset strength per ONSET_HOP frame: `full` from the whole spectrum, `low` from below BASS_CUTOFF_HZ."""

    full: F64
    low: F64

    @property
    def rate(self) -> float:
        """Frames per second."""
        return ONSET_RATE


def onset_envelopes(samples: npt.NDArray[np.float32]) -> OnsetEnvelopes:
    """The onset envelopes of a mono recording at SAMPLE_RATE, each scaled to a median absolute deviation of 1
    (so thresholds mean the same on quiet and loud recordings); all zero for silence."""
    mel = librosa.feature.melspectrogram(
        y=samples, sr=SAMPLE_RATE, n_fft=2048, hop_length=ONSET_HOP, n_mels=128, fmax=SAMPLE_RATE / 2
    )
    log_mel = librosa.power_to_db(mel, ref=np.max(mel) if mel.max() > 0 else 1.0, top_db=80.0)
    freqs = librosa.mel_frequencies(n_mels=128, fmax=SAMPLE_RATE / 2)
    full = librosa.onset.onset_strength(S=log_mel, sr=SAMPLE_RATE, hop_length=ONSET_HOP, center=False)
    low = librosa.onset.onset_strength(
        S=log_mel[freqs < BASS_CUTOFF_HZ], sr=SAMPLE_RATE, hop_length=ONSET_HOP, center=False
    )
    return OnsetEnvelopes(_normalised(full), _normalised(low))


def _normalised(envelope: npt.NDArray[np.floating]) -> F64:
    values = np.asarray(envelope, dtype=np.float64)
    scale = float(np.median(np.abs(values - np.median(values)))) if len(values) else 0.0
    if scale <= 1e-9:
        scale = float(values.std()) if len(values) and values.std() > 1e-9 else 1.0
    return values / scale


def constant_q(samples: npt.NDArray[np.float32]) -> F64:
    """Magnitude constant-Q spectrogram, NOTE_COUNT × 3 bins (A1 up) × frames of CQT_HOP samples."""
    magnitude: F64 = np.abs(
        librosa.cqt(
            samples,
            sr=SAMPLE_RATE,
            hop_length=CQT_HOP,
            fmin=librosa.midi_to_hz(LOWEST_NOTE) / 2 ** (1 / 36),  # bin 1 of each semitone's three is centred
            n_bins=NOTE_COUNT * CQT_BINS_PER_SEMITONE,
            bins_per_octave=12 * CQT_BINS_PER_SEMITONE,
        )
    ).astype(np.float64)
    return magnitude


@lru_cache(maxsize=1)
def note_templates() -> F64:
    """(NOTE_COUNT × 3 bins) × NOTE_COUNT: each note's expected constant-Q magnitude, its partials spread over
    the neighbouring bins (a triangle one semitone wide, which absorbs tuning off by up to a third of a tone)."""
    bins = NOTE_COUNT * CQT_BINS_PER_SEMITONE
    templates = np.zeros((bins, NOTE_COUNT))
    positions = np.arange(bins)
    for note in range(NOTE_COUNT):
        for k in range(1, PARTIALS + 1):
            centre = (note + 12 * np.log2(k)) * CQT_BINS_PER_SEMITONE + 1
            if centre > bins - 1:
                break
            weight = np.clip(1.0 - np.abs(positions - centre) / CQT_BINS_PER_SEMITONE, 0.0, None)
            templates[:, note] += PARTIAL_DECAY ** (k - 1) * weight
    normalised: F64 = templates / np.linalg.norm(templates, axis=0, keepdims=True)
    return normalised


def beat_spectra(cqt: F64, beat_times: Sequence[float], end: float) -> F64:
    """The mean constant-Q magnitude of each beat span [beat, next beat) (the last one up to `end` seconds),
    skipping the first fifth of the span, where the previous chord's release and the attack's noise sound."""
    frame_times = librosa.frames_to_time(np.arange(cqt.shape[1]), sr=SAMPLE_RATE, hop_length=CQT_HOP)
    bounds = [*beat_times, end]
    spectra = np.zeros((len(beat_times), cqt.shape[0]))
    for i in range(len(beat_times)):
        start, stop = bounds[i], bounds[i + 1]
        start += 0.2 * (stop - start)
        frames = (frame_times >= start) & (frame_times < stop)
        if frames.any():
            spectra[i] = cqt[:, frames].mean(axis=1)
        else:  # a span shorter than a frame: the frame nearest its middle
            spectra[i] = cqt[:, int(np.argmin(np.abs(frame_times - 0.5 * (start + stop))))]
    return spectra


def beat_chroma(samples: npt.NDArray[np.float32], beat_times: Sequence[float], end: float) -> F64:
    """librosa's constant-Q chroma (`chroma_cqt` from CHROMA_FMIN_HZ up, each frame scaled to its loudest pitch
    class), the median of each beat span after its first fifth: beats × 12, C = 0. The chords and keys are read
    from this (it names chords better than the transcription's pitch classes: 0.72 against 0.59 of beats on the
    test set with the same triad templates)."""
    chroma = librosa.feature.chroma_cqt(
        y=samples, sr=SAMPLE_RATE, hop_length=CQT_HOP, fmin=CHROMA_FMIN_HZ, n_octaves=CHROMA_OCTAVES
    )
    frame_times = librosa.frames_to_time(np.arange(chroma.shape[1]), sr=SAMPLE_RATE, hop_length=CQT_HOP)
    bounds = [*beat_times, end]
    out = np.zeros((len(beat_times), 12))
    for i in range(len(beat_times)):
        start, stop = bounds[i], bounds[i + 1]
        start += 0.2 * (stop - start)
        frames = (frame_times >= start) & (frame_times < stop)
        out[i] = (
            np.median(chroma[:, frames], axis=1)
            if frames.any()
            else chroma[:, int(np.argmin(np.abs(frame_times - 0.5 * (start + stop))))]
        )
    return out


def beat_bass_chroma(spectra: F64) -> F64:
    """Pitch-class magnitudes of the two lowest octaves (A1 to G#3) of each beat's spectrum (beats × 12, C = 0,
    the centre bin of each semitone): what the bass plays."""
    semitones = spectra.reshape(len(spectra), NOTE_COUNT, CQT_BINS_PER_SEMITONE)[:, :24, 1]
    chroma = np.zeros((len(spectra), 12))
    for column in range(24):
        chroma[:, (LOWEST_NOTE + column) % 12] += semitones[:, column]
    return chroma


def beat_bass(bass_chroma: F64) -> list[int | None]:
    """The loudest bass pitch class of each beat, None where the bass band is silent (below 1 % of the recording's
    loudest beat there)."""
    loudest = float(bass_chroma.max()) if bass_chroma.size else 0.0
    return [int(np.argmax(row)) if loudest > 0 and row.max() >= 0.01 * loudest else None for row in bass_chroma]


def transcribe(spectra: F64) -> F64:
    """Note activations (beats × NOTE_COUNT, MIDI note LOWEST_NOTE + column) that best explain each spectrum as a
    non-negative sum of note templates. The spectra are first whitened along frequency (a running mean over an
    octave subtracted, as NNLS chroma does), so broadband noise and a timbre's formants do not read as notes."""
    templates = note_templates()
    activations = np.zeros((len(spectra), NOTE_COUNT))
    for i, spectrum in enumerate(spectra):
        if spectrum.max() <= 0:
            continue
        activations[i] = scipy.optimize.nnls(templates, _whitened(spectrum), maxiter=20 * NOTE_COUNT)[0]
    return activations


def _whitened(spectrum: F64) -> F64:
    width = 12 * CQT_BINS_PER_SEMITONE
    kernel = np.ones(width) / width
    floor = np.convolve(spectrum, kernel, mode="same")
    return np.clip(spectrum - floor, 0.0, None)


def chroma_of(activations: F64) -> F64:
    """Pitch-class weights (beats × 12, C = 0) of note activations."""
    chroma = np.zeros((len(activations), 12))
    for column in range(NOTE_COUNT):
        chroma[:, (LOWEST_NOTE + column) % 12] += activations[:, column]
    return chroma
