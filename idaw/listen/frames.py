"""The listening adapter's features: one vector per 2 s frame of a recording (idaw.listen.adapter reads them).

`window_features(samples)` describes one 2 s window (what the live sidecar calls on a sliding window every 0.5 s);
`recording_features(samples)` describes a whole recording, one frame every HOP_S, from one spectrogram and one
pitch track of the whole recording cut into frames (the statistics of each frame are the same code,
`_summarise`). Every dimension is named in FEATURE_NAMES, in this order:

- `mel_mean_00..31`: the mean over the frame of each of MEL_BANDS log-mel bands (dB), less the frame's mean over
  all bands: the spectral shape, whatever the level (the level is `energy`). This is a log-mel statistics
  embedding standing in for the design's 512-D CLAP embedding, whose weights cannot be had offline.
- `mel_std_00..31`: each band's standard deviation over the frame (dB): how much it moves.
- `f0_median`, `f0_iqr`, `voiced_share`: librosa's pYIN at a resolution of one semitone (its cheapest that still
  names the pitch: about 16 ms a window here, 250 ms at its default tenth of a semitone), 65 Hz to 1047 Hz; the
  median voiced f0 in octaves from A4 (log2(f0 / 440)), its interquartile range in octaves, and the share of pYIN
  frames that are voiced. An unvoiced frame has 0, 0, 0. pesto-pitch was not used: its wheel pulls torchaudio
  2.11.1 (built for another torch than the pinned 2.13.0) and omegaconf, and would put torch on the analysis path.
- `energy`: RMS level mapped to 0..1: ENERGY_FLOOR_DB (-60 dBFS) and below is 0, 0 dBFS is 1, linear in dB.
- `beat_strength`: the mean onset strength at the beats librosa's beat tracker finds in the frame over the mean
  onset strength of the frame, each plus ENVELOPE_FLOOR so that a steady sound's tiny envelope reads as no beat
  (1 = beats no stronger than anything else; 1 when fewer than 2 beats are found), clipped to
  0..MAX_BEAT_STRENGTH.
- `onset_rate`: onsets per second (librosa's peak picking on the onset envelope).
- `frame_tempo`: log2 of the beat tracker's tempo over 120 BPM (0 when it finds fewer than 2 beats).
- `tempo_ac_060..tempo_ac_202`: the onset envelope's autocorrelation (mean removed, 1 at lag 0; 0 for a flat
  envelope) at the beat periods of TEMPO_PROBES_BPM (60 BPM up, four an octave): the evidence a tempo is read from,
  all of it rather than the tracker's one pick (2 s hold only two beats at 60 BPM; the heads learn which peak is
  the beat).
- `chroma_C..chroma_B`: librosa's STFT chroma, the mean over the frame scaled so its largest pitch class is 1
  (all 0 in silence).
- `tag_<word>`: the "top-5 descriptor tags": a multi-hot over TAGS, 1 for the TAG_COUNT descriptors whose scores
  (`descriptor_scores`) are highest in the frame, of those above their reference (score > 0), so at most 5 (all 0
  in silence). The words are from the semantic EQ's
  vocabulary (sidecar/semantic_eq: SAFE-DB and Audealize words), chosen for having a spectral meaning, scored by
  rules rather than CLAP text similarity (no CLAP here). That vocabulary is 409 words with no audio rule each, so
  this small fixed set is defined here.

Finite for any finite input: silence, noise, a constant, and a window shorter than 2 s (padded with silence) give
finite numbers; a NaN or infinite sample is refused in one line (IdawError), as `idaw.listen.audio` refuses it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import librosa
import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError
from idaw.listen.audio import SAMPLE_RATE

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

FRAME_S: Final = 2.0
"""Seconds of audio each feature vector describes."""
HOP_S: Final = 1.0
"""Seconds between frames of a whole recording (the live sidecar slides its window by 0.5 s)."""
FRAME_SAMPLES: Final = int(FRAME_S * SAMPLE_RATE)
N_FFT: Final = 2048
HOP: Final = 441
"""STFT and pYIN hop (20 ms): a second is 50 hops, so the frames of a recording (`recording_features`, hop 1 s) and
a live window (`window_features`, every 0.5 s) cut the same spectra at the same places."""
SPECTRA: Final = 1 + (FRAME_SAMPLES - N_FFT) // HOP
"""Spectra (STFT frames, not centred: each lies wholly inside the frame) per 2 s frame: 96."""
ONSET_DELTA: Final = 1.0
"""An onset is a peak of the onset envelope at least this far above its local mean: 1 dB of mean spectral flux over
the mel bands (a steady tone's envelope stays below 0.1, a struck chord reaches 3 to 10)."""
ENVELOPE_FLOOR: Final = 0.5
"""Onset-envelope units (dB of flux) added before the punchy ratio, so a steady sound's near-zero envelope does not
make a large ratio out of nothing."""
MEL_BANDS: Final = 32
"""Log-mel bands (32 rather than 64: with mean and std that is 64 of the 101 dimensions, and the four heads' first
layers, which ship as JSON, grow with the input)."""
F0_RANGE_HZ: Final = (65.0, 1047.0)
"""pYIN's search range: C2 to C6."""
ENERGY_FLOOR_DB: Final = -60.0
"""RMS level (dBFS) that maps to energy 0; 0 dBFS maps to 1."""
AUDIBLE_DB: Final = -55.0
"""A frame whose RMS level is below this (dBFS) is silent: the adapter does not judge it (`usable`)."""
MAX_BEAT_STRENGTH: Final = 10.0
TAG_COUNT: Final = 5
TAGS: Final = ("boomy", "warm", "muddy", "thin", "harsh", "bright", "airy", "punchy", "smooth", "noisy")
"""The descriptor vocabulary of the tags (see `descriptor_scores` for each rule)."""
TAG_BANDS_HZ: Final = {
    "boomy": (30.0, 120.0),
    "warm": (120.0, 350.0),
    "muddy": (350.0, 900.0),
    "harsh": (2000.0, 5000.0),
    "airy": (8000.0, SAMPLE_RATE / 2),
}
"""The band whose share of the power (against pink noise's share of it) scores each band descriptor."""
SPECTRUM_HZ: Final = (30.0, SAMPLE_RATE / 2)
"""The range power shares and the centroid are measured over."""
PUNCH_REFERENCE: Final = 2.0
"""log2 of the onset envelope's 95th percentile over its median that reads as neither punchy nor smooth (4:1)."""
NOISE_REFERENCE: Final = 0.1
"""Spectral flatness that reads as neither noisy nor tonal (white noise is about 0.56, a chord about 0.01)."""
TEMPO_PROBES_BPM: Final = tuple(round(60.0 * 2 ** (k / 4)) for k in range(8))
"""Tempi whose beat period the onset envelope's autocorrelation is read at: 60, 71, 85, 101, 120, 143, 170, 202."""
FLAT_ENVELOPE_STD: Final = 0.2
"""An onset envelope whose standard deviation (dB of flux) is below this has no tempo to read (a steady tone's
flicker, from its partials beating against the STFT hop, is about 0.12; 2 s of a rendered chorale 0.46 to 1.2)."""
PITCH_CLASSES: Final = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

FEATURE_NAMES: Final = (
    *(f"mel_mean_{i:02d}" for i in range(MEL_BANDS)),
    *(f"mel_std_{i:02d}" for i in range(MEL_BANDS)),
    "f0_median",
    "f0_iqr",
    "voiced_share",
    "energy",
    "beat_strength",
    "onset_rate",
    "frame_tempo",
    *(f"tempo_ac_{bpm:03d}" for bpm in TEMPO_PROBES_BPM),
    *(f"chroma_{name}" for name in PITCH_CLASSES),
    *(f"tag_{word}" for word in TAGS),
)
"""The name of every feature dimension, in order (see the module docstring)."""
FEATURE_COUNT: Final = len(FEATURE_NAMES)
CHROMA_SLICE: Final = slice(FEATURE_NAMES.index("chroma_C"), FEATURE_NAMES.index("chroma_B") + 1)
"""Where the chroma is in a feature vector (the key augmentation rotates these 12 dimensions)."""
ENERGY_INDEX: Final = FEATURE_NAMES.index("energy")


@dataclass(frozen=True)
class Frames:
    """The features of a recording's frames: `values` (frames × FEATURE_COUNT), `starts` (s) and `levels_db`
    (each frame's RMS level in dBFS, -inf-free: at most -200 for digital silence)."""

    values: F64
    starts: F64
    levels_db: F64

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        """Which frames are loud enough to judge (RMS level at least AUDIBLE_DB)."""
        result: npt.NDArray[np.bool_] = self.levels_db >= AUDIBLE_DB
        return result


@dataclass(frozen=True)
class _Tracks:
    """Frame-rate tracks (one value per HOP) a frame's statistics are read from."""

    power: F64
    """STFT power, bins × frames."""
    f0: F64
    """pYIN's f0 (Hz), NaN where unvoiced."""


def _checked(samples: npt.ArrayLike, name: str) -> F32:
    values = np.asarray(samples, dtype=np.float32).reshape(-1)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise IdawError(f"{name}: {bad} samples are NaN or infinite; allowed: finite samples only")
    return values


def _tracks(samples: F32) -> _Tracks:
    """The STFT power and the pYIN f0 track of mono samples at SAMPLE_RATE."""
    power = np.abs(librosa.stft(samples, n_fft=N_FFT, hop_length=HOP, center=False)).astype(np.float64) ** 2
    with warnings.catch_warnings():  # pYIN warns on silence ("no voiced frames"), which is an answer here
        warnings.simplefilter("ignore")
        f0, _, _ = librosa.pyin(
            samples,
            fmin=F0_RANGE_HZ[0],
            fmax=F0_RANGE_HZ[1],
            sr=SAMPLE_RATE,
            frame_length=N_FFT,
            hop_length=HOP,
            resolution=1.0,
            n_thresholds=20,
            center=False,
        )
    count = power.shape[1]
    track = np.full(count, np.nan)
    track[: min(count, len(f0))] = np.asarray(f0, dtype=np.float64)[:count]
    return _Tracks(power, track)


def window_features(samples: npt.ArrayLike, name: str = "the audio") -> F64:
    """The FEATURE_COUNT features of one window of mono samples at SAMPLE_RATE (the last FRAME_S seconds of it; a
    shorter one is padded with silence in front). IdawError (one line) for a NaN or infinite sample."""
    values = _checked(samples, name)[-FRAME_SAMPLES:]
    if len(values) < FRAME_SAMPLES:
        values = np.concatenate([np.zeros(FRAME_SAMPLES - len(values), np.float32), values])
    features, _ = _summarise(_tracks(values), values)
    return features


def recording_features(samples: npt.ArrayLike, hop_s: float = HOP_S, name: str = "the audio") -> Frames:
    """The features of every FRAME_S frame of mono samples at SAMPLE_RATE, one every `hop_s` seconds (rounded to
    whole STFT hops) from the start, as long as a whole frame fits (the last part of a second may be in none); a
    recording shorter than FRAME_S is one frame padded with silence. Each frame's features are exactly
    `window_features` of its samples. IdawError (one line) for a NaN or infinite sample."""
    values = _checked(samples, name)
    if len(values) < FRAME_SAMPLES:
        values = np.concatenate([values, np.zeros(FRAME_SAMPLES - len(values), np.float32)])
    tracks = _tracks(values)
    hops = max(1, round(hop_s * SAMPLE_RATE / HOP))
    starts = range(0, len(values) - FRAME_SAMPLES + 1, hops * HOP)
    rows, levels = [], []
    for start in starts:
        first = start // HOP
        sliced = _Tracks(tracks.power[:, first : first + SPECTRA], tracks.f0[first : first + SPECTRA])
        row, level = _summarise(sliced, values[start : start + FRAME_SAMPLES])
        rows.append(row)
        levels.append(level)
    return Frames(np.array(rows), np.array(list(starts), dtype=np.float64) / SAMPLE_RATE, np.array(levels))


@lru_cache(maxsize=1)
def _filters() -> tuple[F64, F64, F64]:
    """The mel filter bank, the chroma filter bank and the STFT bin frequencies."""
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=MEL_BANDS).astype(np.float64)
    chroma = librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT).astype(np.float64)
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT).astype(np.float64)
    return mel, chroma, freqs


def small_product(a: F64, b: F64) -> F64:
    """The matrix product a @ b without BLAS (numpy's einsum loop). These products are small (32 × 1025 × 86), and
    OpenBLAS's worker threads, on a machine whose cores are busy, turned one 0.2 ms product into 30 ms here: the
    live window must not depend on how busy the other cores are."""
    result: F64 = np.einsum("ij,jk->ik", a, b, optimize=False)
    return result


def _summarise(tracks: _Tracks, samples: F32) -> tuple[F64, float]:
    """(the features of one frame, its RMS level in dBFS) from its tracks and its samples."""
    mel_bank, chroma_bank, _ = _filters()
    power = tracks.power
    log_mel = 10.0 * np.log10(np.maximum(small_product(mel_bank, power), 1e-10))  # dB, floor -100
    mel_mean = log_mel.mean(axis=1)
    mel_std = log_mel.std(axis=1)
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    level_db = 20.0 * np.log10(max(rms, 1e-10))
    energy = float(np.clip((level_db - ENERGY_FLOOR_DB) / -ENERGY_FLOOR_DB, 0.0, 1.0))
    envelope = librosa.onset.onset_strength(S=log_mel, sr=SAMPLE_RATE, hop_length=HOP)
    strength, tempo = _beats(envelope)
    onsets = librosa.onset.onset_detect(
        onset_envelope=envelope, sr=SAMPLE_RATE, hop_length=HOP, normalize=False, delta=ONSET_DELTA
    )
    chroma = small_product(chroma_bank, power).mean(axis=1)
    chroma = chroma / chroma.max() if chroma.max() > 1e-12 else np.zeros(12)
    audible = level_db >= AUDIBLE_DB
    tags = np.zeros(len(TAGS))
    if audible:
        scores = descriptor_scores(power, envelope)
        top = np.argsort(-scores, kind="stable")[:TAG_COUNT]
        tags[top[scores[top] > 0.0]] = 1.0
    features = np.concatenate(
        [
            mel_mean - mel_mean.mean(),
            mel_std,
            _pitch_statistics(tracks.f0),
            [energy, strength, len(onsets) / FRAME_S, tempo],
            tempo_autocorrelation(envelope),
            chroma,
            tags,
        ]
    )
    return features, level_db


def _beats(envelope: F64) -> tuple[float, float]:
    """(beat strength, log2 of the tempo over 120 BPM) of one frame's onset envelope (see the module docstring)."""
    mean = float(envelope.mean()) if len(envelope) else 0.0
    if mean <= 1e-12:
        return 1.0, 0.0
    tempo, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=SAMPLE_RATE, hop_length=HOP)
    if len(beats) < 2:
        return 1.0, 0.0
    strength = float(np.clip((envelope[beats].mean() + ENVELOPE_FLOOR) / (mean + ENVELOPE_FLOOR), 0, MAX_BEAT_STRENGTH))
    bpm = float(np.atleast_1d(tempo)[0])
    return strength, float(np.log2(bpm / 120.0)) if bpm > 0 else 0.0


def tempo_autocorrelation(envelope: F64) -> F64:
    """The autocorrelation of an onset envelope (mean removed, divided by its value at lag 0) at the beat period of
    each of TEMPO_PROBES_BPM, read between whole lags by linear interpolation; all 0 for a flat envelope (standard
    deviation below FLAT_ENVELOPE_STD: a steady sound's flicker has no tempo)."""
    centred = np.asarray(envelope, dtype=np.float64) - float(np.mean(envelope)) if len(envelope) else np.zeros(1)
    energy = float(centred @ centred)
    if energy <= len(centred) * FLAT_ENVELOPE_STD**2:
        return np.zeros(len(TEMPO_PROBES_BPM))
    lags = np.arange(len(centred))
    full = np.array([centred[: len(centred) - lag] @ centred[lag:] for lag in lags]) / energy
    periods = 60.0 / np.array(TEMPO_PROBES_BPM) * SAMPLE_RATE / HOP  # envelope frames per beat
    result: F64 = np.interp(periods, lags, full, right=0.0)
    return result


def _pitch_statistics(f0: F64) -> F64:
    """[median f0 in octaves from A4, its interquartile range in octaves, voiced share] (0, 0, 0 when unvoiced)."""
    voiced = f0[np.isfinite(f0) & (f0 > 0)]
    if len(f0) == 0 or len(voiced) == 0:
        return np.zeros(3)
    octaves = np.log2(voiced / 440.0)
    q1, median, q3 = np.percentile(octaves, [25, 50, 75])
    return np.array([median, q3 - q1, len(voiced) / len(f0)])


def descriptor_scores(power: F64, envelope: F64) -> F64:
    """One score per word of TAGS for a frame's STFT power (bins × spectra) and onset envelope; higher means more
    so, all in log2 units so that they rank against each other:

    - boomy, warm, muddy, harsh, airy: log2 of the band's share of the power (TAG_BANDS_HZ, out of SPECTRUM_HZ)
      over pink noise's share of it (equal power per octave), so 0 is "as much as pink noise";
    - thin: minus the same for 30-350 Hz (the low end missing);
    - bright: log2 of the spectral centroid over pink noise's centroid in SPECTRUM_HZ;
    - punchy: log2 of the onset envelope's 95th percentile over its median, less PUNCH_REFERENCE; smooth: minus it;
    - noisy: log2 of the mean spectral flatness over NOISE_REFERENCE."""
    _, _, freqs = _filters()
    lo, hi = SPECTRUM_HZ
    inside = (freqs >= lo) & (freqs <= hi)
    spectrum = power.mean(axis=1)
    total = float(spectrum[inside].sum()) + 1e-20

    def band_score(band: tuple[float, float]) -> float:
        share = float(spectrum[(freqs >= band[0]) & (freqs < band[1])].sum()) / total
        pink = np.log(band[1] / band[0]) / np.log(hi / lo)
        return float(np.log2(max(share, 1e-9) / pink))

    scores = {word: band_score(band) for word, band in TAG_BANDS_HZ.items()}
    scores["thin"] = -band_score((30.0, 350.0))
    centroid = float((freqs[inside] * spectrum[inside]).sum()) / total
    pink_centroid = (hi - lo) / np.log(hi / lo)
    scores["bright"] = float(np.log2(max(centroid, 1.0) / pink_centroid))
    median = float(np.median(envelope)) if len(envelope) else 0.0
    peak = float(np.percentile(envelope, 95)) if len(envelope) else 0.0
    punch = float(np.log2((peak + ENVELOPE_FLOOR) / (median + ENVELOPE_FLOOR))) - PUNCH_REFERENCE
    scores["punchy"], scores["smooth"] = punch, -punch
    flatness = np.exp(np.mean(np.log(power[inside] + 1e-20), axis=0)) / (np.mean(power[inside], axis=0) + 1e-20)
    scores["noisy"] = float(np.log2(max(float(flatness.mean()), 1e-9) / NOISE_REFERENCE))
    return np.array([scores[word] for word in TAGS])


def frame_tags(features: F64) -> list[str]:
    """The descriptor words whose tag is set in a feature vector."""
    start = FEATURE_NAMES.index(f"tag_{TAGS[0]}")
    return [word for i, word in enumerate(TAGS) if features[start + i] > 0.5]


FRAMES_FORMAT: Final = "idaw-adapter-frames-1"
"""The tag of `frames_json`'s object (what `idaw analyze --adapter-features` adds to each line)."""


def frames_json(frames: Frames) -> dict[str, Any]:
    """A recording's frames as JSON-ready values (rounded to 4 decimals, plenty for features in dB and octaves)."""
    return {
        "format": FRAMES_FORMAT,
        "frame_s": FRAME_S,
        "features": FEATURE_COUNT,
        "starts": [round(float(s), 3) for s in frames.starts],
        "levels_db": [round(float(v), 2) for v in frames.levels_db],
        "values": np.round(frames.values, 4).tolist(),
    }


def frames_from_json(data: Any, where: str) -> Frames:
    """The frames `frames_json` wrote; IdawError naming `where` when `data` is not that (another version, other
    features, non-finite or ragged numbers)."""
    if not isinstance(data, dict) or data.get("format") != FRAMES_FORMAT or data.get("features") != FEATURE_COUNT:
        raise IdawError(
            f"{where}: the adapter features are not {FRAMES_FORMAT} with {FEATURE_COUNT} features (another idaw "
            "version wrote them); analyse the folder again"
        )
    try:
        values = np.asarray(data.get("values"), dtype=np.float64)
        starts = np.asarray(data.get("starts"), dtype=np.float64)
        levels = np.asarray(data.get("levels_db"), dtype=np.float64)
    except (TypeError, ValueError):
        raise IdawError(f"{where}: the adapter features are not lists of numbers") from None
    count = len(starts)
    if values.shape != (count, FEATURE_COUNT) or levels.shape != (count,) or count == 0:
        raise IdawError(f"{where}: the adapter features' lists do not match (frames × {FEATURE_COUNT})")
    if not (np.isfinite(values).all() and np.isfinite(starts).all() and np.isfinite(levels).all()):
        raise IdawError(f"{where}: the adapter features hold NaN or infinite numbers")
    return Frames(values, starts, levels)
