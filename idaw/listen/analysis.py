"""`idaw analyze song.wav`: the analysis of a recording, in the same JSON fields as a score's, plus its beats.

The recording is heard as notes on a beat grid and then analysed by the theory layer exactly as a score is:
1. onset envelopes → tempo, beats (offline: the whole recording in view) and the meter with its downbeats
   (idaw.listen.beats);
2. each beat's constant-Q spectrum → the notes sounding in it (idaw.listen.features.transcribe), one note event per
   beat and pitch, on a score grid where beat i of the recording is quarter note i, whose tempo map follows the
   beats, so every `time` the theory layer writes is seconds in the recording;
3. idaw.theory.analysis.analyze_notes: keys and modulations, chords with Roman numerals and function (the joint
   key and chord decoder), cadences, harmonic rhythm, rhythm, melody, form.

Fields besides a score's (times in seconds): `tempo_bpm` (null when no steady beat is heard), `beats`,
`downbeats`, `meter_confidence`, `source: "audio"`, `sample_rate` and `channels` of the file. `voice_leading` is
null: a recording does not say which note belongs to which voice. `emotion`, `style` and `energy_sections` come
from the listening adapter (idaw.listen.adapter, on the 2 s frames of idaw.listen.frames): null (and no sections)
with `adapter_found` saying why when no frame is audible. A recording with no steady beat or no notes (silence, noise, a
one-second file) gets `tempo_bpm: null`, `key: null` and empty lists, not an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from idaw.listen import beats as beat_tracking
from idaw.listen import chord_model, features
from idaw.listen.adapter import analysis_fields
from idaw.listen.audio import Recording, read_recording
from idaw.listen.frames import Frames, frames_json, recording_features
from idaw.theory.analysis import analyze_notes
from idaw.theory.decode import BeatEvidence
from idaw.theory.harmony import CHORD_TYPES
from idaw.theory.keys import key_correlations, key_profiles
from idaw.theory.notes import NoteEvent, Notes
from idaw.theory.progressions import QUALITIES

F64 = npt.NDArray[np.float64]

NOTE_THRESHOLD: Final = 0.22
"""A note sounds in a beat when its activation reaches this share of the beat's strongest note."""
SILENCE_SHARE: Final = 0.04
"""A beat whose strongest note is below this share of the recording's loud beats (95th percentile) is silent."""
MIN_BEATS: Final = 4
MODEL_SCALE: Final = 0.5
"""Decoder units per unit of the chord model's log-probability."""
CHORD_SCALE: Final = 8.0
"""Decoder units per unit of cosine between a beat's chroma and a chord's tones."""
BASS_BONUS: Final = 0.1
KEY_HALF_WINDOW: Final = 4
"""Beats on each side whose chroma (weighted by a triangle) is the key evidence of a beat."""


@dataclass
class HeardPiece:
    """What the analysis heard: the beats (s), the meter, the notes on the beat grid, the chroma and bass pitch
    class of each beat, and the score time of the first beat (`lead`)."""

    beats: F64
    meter: beat_tracking.Meter
    notes: Notes
    chroma: F64
    basses: list[int | None]
    chord_scores: F64
    """beats × 12 roots × qualities: the decoder's chord evidence (`beat_chord_scores`)."""
    tempo_bpm: float | None
    lead: float
    sounding: npt.NDArray[np.bool_]
    """Per beat: whether any note sounds in it (`sounding_beats`). A silent beat is no evidence of key or chord:
    its chroma, scaled to its loudest pitch class, is the reverb tail's or the noise floor's."""

    def evidence(self, offsets: list[float]) -> BeatEvidence:
        """What the key and chord decoder hears at each beat offset of `notes` (idaw.theory.decode): chord
        scores from the chroma (`chord_scores`), key evidence from the chroma around the beat, each beat one
        step. Offsets before the first beat heard, and silent beats, are no evidence."""
        count = len(offsets)
        scores = np.zeros((count, 12, len(QUALITIES)))
        keys = np.zeros((count, 24))
        basses: list[int | None] = []
        indices = [round(offset - self.lead) for offset in offsets]
        weights = np.array([1.0 - abs(d) / (KEY_HALF_WINDOW + 1) for d in range(-KEY_HALF_WINDOW, KEY_HALF_WINDOW + 1)])
        profiles = key_profiles()
        for row, index in enumerate(indices):
            if not 0 <= index < len(self.chroma) or not self.sounding[index]:
                basses.append(None)
                continue
            bass = self.basses[index]
            scores[row] = self.chord_scores[index]
            basses.append(None if bass is None else 36 + bass)  # a pitch in the bass register
            lo, hi = max(index - KEY_HALF_WINDOW, 0), min(index + KEY_HALF_WINDOW + 1, len(self.chroma))
            window = weights[lo - index + KEY_HALF_WINDOW : hi - index + KEY_HALF_WINDOW]
            keys[row] = key_correlations(window @ self.chroma[lo:hi], profiles)
        return BeatEvidence(scores, keys, basses, [[i] for i in range(count)])


def _rounded(values: npt.ArrayLike) -> list[float]:
    return [round(float(v), 3) for v in np.asarray(values, dtype=np.float64)]


def hear(recording: Recording) -> HeardPiece | None:
    """Beats, meter and notes of `recording`, or None when it has no steady beat to hang notes on."""
    envelopes = features.onset_envelopes(recording.samples)
    tempo = beat_tracking.estimate_tempo(envelopes.full)
    if tempo is None:
        return None
    beat_times = beat_tracking.offline_beats(envelopes.full, tempo.bpm)
    beat_times = beat_times[beat_times < recording.seconds]
    if len(beat_times) < MIN_BEATS:
        return None
    cqt = features.constant_q(recording.samples)
    spectra = features.beat_spectra(cqt, list(beat_times), recording.seconds)
    activations = features.transcribe(spectra)
    chroma = features.beat_chroma(recording.samples, list(beat_times), recording.seconds)
    bass_chroma = features.beat_bass_chroma(spectra)
    meter = beat_tracking.find_meter(list(beat_times), envelopes, _harmonic_change(chroma))
    notes, lead = _notes_on_grid(beat_times, activations, meter, recording.seconds)
    bpm = 60.0 / float(np.median(np.diff(beat_times)))
    scores = beat_chord_scores(chroma, bass_chroma)
    basses = features.beat_bass(bass_chroma)
    return HeardPiece(beat_times, meter, notes, chroma, basses, scores, bpm, lead, sounding_beats(activations))


def sounding_beats(activations: F64) -> npt.NDArray[np.bool_]:
    """Per beat: whether its strongest note reaches SILENCE_SHARE of the recording's loud beats (the 95th
    percentile of the beats' strongest notes)."""
    strongest = activations.max(axis=1) if len(activations) else np.zeros(0)
    loud = float(np.percentile(strongest, 95)) if len(strongest) else 0.0
    return (strongest > 0) & (strongest >= SILENCE_SHARE * loud)


def beat_chord_scores(chroma: F64, bass_chroma: F64) -> F64:
    """The decoder's chord evidence of every beat (beats × 12 roots × qualities): the shipped acoustic chord model's
    log-probabilities times MODEL_SCALE (idaw.listen.chord_model), or, without its weights, template scores
    (`template_chord_scores`)."""
    model = chord_model.shipped()
    if model is not None:
        return MODEL_SCALE * model.log_probs(chroma, bass_chroma)
    basses = features.beat_bass(bass_chroma)
    return np.stack([template_chord_scores(c, b) for c, b in zip(chroma, basses, strict=True)])


def template_chord_scores(chroma: F64, bass: int | None) -> F64:
    """Score of every (root, quality) for one beat's chroma: 12 × len(QUALITIES), higher is better, in the units
    the decoder weighs symbolic chord scores in. The cosine between the chroma and the chord's tones
    (CHORD_SCALE per unit), a little more where the bass is the root (inversions are heard, but less often)."""
    out = np.full((12, len(QUALITIES)), -CHORD_SCALE)
    norm = float(np.linalg.norm(chroma))
    if norm <= 1e-9:
        return out
    unit = chroma / norm
    for q, quality in enumerate(QUALITIES):
        template = np.zeros(12)
        template[list(CHORD_TYPES[quality])] = 1.0
        template /= np.linalg.norm(template)
        for root in range(12):
            score = float(unit @ np.roll(template, root))
            if bass is not None and bass == root:
                score += BASS_BONUS
            if quality == "augmented":
                score -= 0.05
            out[root, q] = CHORD_SCALE * score
    return out


def _harmonic_change(chroma: F64) -> F64:
    """1 − cosine similarity of each beat's chroma with the previous beat's (0 for the first)."""
    norms = np.linalg.norm(chroma, axis=1) + 1e-9
    unit = chroma / norms[:, None]
    change = np.zeros(len(chroma))
    change[1:] = 1.0 - np.sum(unit[1:] * unit[:-1], axis=1)
    return change


def _notes_on_grid(
    beat_times: F64, activations: F64, meter: beat_tracking.Meter, seconds: float
) -> tuple[Notes, float]:
    """The heard notes as a score, and `lead`: beat i is at quarter note `lead + i`, where `lead` covers the time
    before the first beat at the first beat's tempo; a tempo change at every beat keeps score time on the
    recording's."""
    intervals = np.diff(beat_times)
    first_period = float(intervals[0])
    lead = float(beat_times[0]) / first_period
    tempo_map = [(0.0, 60.0 / first_period)]
    tempo_map += [(lead + i, 60.0 / float(interval)) for i, interval in enumerate(intervals)]
    sounding = sounding_beats(activations)
    events: list[NoteEvent] = []
    for i, beat in enumerate(activations):
        if not sounding[i]:
            continue
        strongest = float(beat.max())
        for column in np.flatnonzero(beat >= NOTE_THRESHOLD * strongest):
            velocity = int(np.clip(40 + 80 * beat[column] / strongest, 1, 127))
            events.append(NoteEvent(lead + i, 1.0, features.LOWEST_NOTE + int(column), 0, "", velocity))
    events.sort(key=lambda n: (n.offset, n.pitch))
    last_period = float(intervals[-1])
    duration = lead + len(beat_times) - 1 + max((seconds - float(beat_times[-1])) / last_period, 1.0)
    bar = meter.beats_per_bar
    first_bar = lead + meter.first_downbeat
    measure_offsets = [0.0] if first_bar > 1e-9 else []
    measure_offsets += list(np.arange(first_bar, duration - 1e-9, bar))
    measure_numbers = [0] if first_bar > 1e-9 else []
    measure_numbers += list(range(1, len(measure_offsets) - len(measure_numbers) + 1))
    notes = Notes(
        events=events,
        voices=1,
        duration=duration,
        beat_length=1.0,
        bar_length=float(bar),
        measure_offsets=[float(m) for m in measure_offsets],
        measure_numbers=measure_numbers,
        tempo_map=tempo_map,
        time_signature=f"{bar}/4",
    )
    return notes, lead


def analyze_recording(
    recording: Recording,
    heard: HeardPiece | None = None,
    *,
    file: str | None = None,
    fmt: str | None = None,
    frames: Frames | None = None,
) -> dict[str, Any]:
    """Every analysis of `recording` (what `hear` found in it and its adapter `frames`, each computed when not
    given), JSON-ready (see the module docstring)."""
    if heard is None:
        heard = hear(recording)
    if frames is None:
        frames = recording_features(recording.samples)
    common = {
        "source": "audio",
        "sample_rate": recording.source_rate,
        "channels": recording.channels,
        **analysis_fields(frames, recording.seconds),
        "voice_leading": None,
    }
    if heard is None or not heard.notes.events:
        return {
            "file": file,
            "format": fmt,
            "duration": {"time": round(recording.seconds, 3)},
            "tempo_bpm": None if heard is None else round(heard.tempo_bpm or 0.0, 2) or None,
            "beats": [] if heard is None else _rounded(heard.beats),
            "downbeats": [],
            "key": None,
            "keys": [],
            "chords": [],
            "cadences": [],
            "sections": [],
            **common,
            "found": "no steady beat" if heard is None else "no notes",
        }
    result = analyze_notes(heard.notes, file=file, fmt=fmt, evidence=heard.evidence)
    downbeats = heard.beats[heard.meter.first_downbeat :: heard.meter.beats_per_bar]
    result.update(common)
    result.update(
        {
            "voices": None,
            "duration": {**result["duration"], "time": round(recording.seconds, 3)},
            "tempo_bpm": round(heard.tempo_bpm, 2) if heard.tempo_bpm else None,
            "beats": _rounded(heard.beats),
            "downbeats": _rounded(downbeats),
            "meter_confidence": round(heard.meter.confidence, 3),
        }
    )
    return result


def analyze_audio_path(
    path: str | os.PathLike[str], adapter_features: bool = False
) -> tuple[HeardPiece | None, Recording, dict[str, Any]]:
    """The recording at `path`, what was heard in it and its analysis (IdawError, one line, for a bad file); with
    `adapter_features`, the analysis also holds the adapter's frames (`adapter_frames`: idaw.listen.frames.frames_json),
    what `idaw train adapter` learns from."""
    name = os.fspath(path)
    recording = read_recording(name)
    fmt = "flac" if name.lower().endswith(".flac") else "wav"
    heard = hear(recording)
    frames = recording_features(recording.samples, name=name)
    result = analyze_recording(recording, heard, file=name, fmt=fmt, frames=frames)
    if adapter_features:
        result["adapter_frames"] = frames_json(frames)
    return heard, recording, result
