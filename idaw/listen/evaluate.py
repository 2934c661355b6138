"""How well idaw hears key, tempo, beats, downbeats and chords, against the libraries people use, on labelled audio.

`python -m idaw.listen.evaluate --testset DIR [--count N] [--json FILE]` renders the evaluation split of the test
set into DIR where it is not there yet (idaw.listen.testset: Bach chorales with human analyses, rendered with
fluidsynth at random tempi, instruments, drums, noise and reverb), then scores every analyser on every item with
mir_eval:

- key: `mir_eval.key.weighted_score` (1 same key, 0.5 fifth, 0.3 relative, 0.2 parallel) of the home key;
- tempo: Accuracy1 (within 4 %), Accuracy2 (also at ×2, ×½, ×3, ×⅓) and TempoCorr, the Pearson correlation of
  log2 BPM over the items (the adapter document's measure);
- beats and downbeats: `mir_eval.beat.f_measure` (±70 ms; the first 5 s are not scored, mir_eval's default);
- chords: `mir_eval.chord.evaluate`'s majmin and sevenths scores, duration-weighted over all items.

Analysers: idaw offline (idaw.listen.analysis) and idaw causal (beats only, idaw.listen.beats.causal_beats);
librosa (`beat_track` for tempo and beats; Krumhansl–Schmuckler on the mean `chroma_cqt` for key; major/minor
triad templates on beat-synchronous `chroma_cqt` for chords); essentia (`RhythmExtractor2013` multifeature for
tempo and beats; `KeyExtractor` with its default profile and with `edma`). tempocnn (tempo only) runs in its own
environment, from benchmarks/bench_listen.py: it needs TensorFlow, whose wheels want an older numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from idaw.theory.pitch_names import PITCH_NAMES

F64 = npt.NDArray[np.float64]

TEMPO_TOLERANCE: Final = 0.04


@dataclass
class Estimate:
    """What one analyser says about one recording (None: it does not estimate that)."""

    key: str | None = None
    bpm: float | None = None
    beats: F64 | None = None
    downbeats: F64 | None = None
    chords: tuple[F64, list[str]] | None = None
    """(intervals n × 2 in seconds, mir_eval labels)."""
    kinds: frozenset[str] = frozenset(("key", "tempo", "beats"))
    """What the analyser estimates at all (one that estimates a key and finds none scores 0 for it)."""


@dataclass
class Tally:
    """Scores of one analyser, summed over items."""

    key: list[float] = field(default_factory=list)
    tempo: list[tuple[float, float]] = field(default_factory=list)
    """(estimated, true) BPM per item."""
    beats: list[float] = field(default_factory=list)
    downbeats: list[float] = field(default_factory=list)
    chord_seconds: float = 0.0
    majmin_seconds: float = 0.0
    sevenths_seconds: float = 0.0
    majmin_weight: float = 0.0
    sevenths_weight: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Means and counts, JSON-ready (absent: the analyser does not estimate it)."""
        out: dict[str, Any] = {}
        if self.key:
            out["key_weighted"] = round(float(np.mean(self.key)), 4)
            out["key_correct"] = round(float(np.mean([k == 1.0 for k in self.key])), 4)
        if self.tempo:
            est, ref = np.array(self.tempo).T
            ok1 = np.abs(est - ref) <= TEMPO_TOLERANCE * ref
            ok2 = ok1.copy()
            for factor in (2.0, 0.5, 3.0, 1 / 3):
                ok2 |= np.abs(est - factor * ref) <= TEMPO_TOLERANCE * factor * ref
            out["tempo_accuracy1"] = round(float(ok1.mean()), 4)
            out["tempo_accuracy2"] = round(float(ok2.mean()), 4)
            if len(est) > 2 and np.std(np.log2(est)) > 0 and np.std(np.log2(ref)) > 0:
                out["tempo_corr_log2"] = round(float(np.corrcoef(np.log2(est), np.log2(ref))[0, 1]), 4)
        if self.beats:
            out["beat_f_measure"] = round(float(np.mean(self.beats)), 4)
        if self.downbeats:
            out["downbeat_f_measure"] = round(float(np.mean(self.downbeats)), 4)
        if self.majmin_weight > 0:
            out["chords_majmin"] = round(self.majmin_seconds / self.majmin_weight, 4)
        if self.sevenths_weight > 0:
            out["chords_sevenths"] = round(self.sevenths_seconds / self.sevenths_weight, 4)
        out["items"] = max(len(self.key), len(self.tempo), len(self.beats))
        return out


def chord_label(root: str, quality: str) -> str:
    """A chord in mir_eval's syntax ('Bb:min7'); 'X' for a quality mir_eval has no shorthand for."""
    from idaw.listen.testset import MIR_EVAL_QUALITY  # here, not at the top: the test set's module loads music21

    shorthand = MIR_EVAL_QUALITY.get(quality)
    return f"{root}:{shorthand}" if shorthand else "X"


def idaw_estimate(path: Path) -> tuple[Estimate, Estimate]:
    """idaw's offline analysis and its causal beats of the recording at `path`."""
    from idaw.listen.analysis import analyze_recording, hear
    from idaw.listen.audio import read_recording
    from idaw.listen.beats import causal_beats
    from idaw.listen.features import onset_envelopes

    recording = read_recording(path)
    heard = hear(recording)
    result = analyze_recording(recording, heard)
    chords = result["chords"]
    times = [c["time"] for c in chords]
    ends = [*times[1:], recording.seconds]
    intervals = np.array([[a, max(b, a + 1e-3)] for a, b in zip(times, ends, strict=True)]).reshape(-1, 2)
    labels = [chord_label(c["root"], c["quality"]) for c in chords]
    offline = Estimate(
        key=result["key"],
        bpm=result["tempo_bpm"],
        beats=np.array(result["beats"]),
        downbeats=np.array(result["downbeats"]),
        chords=(intervals, labels),
    )
    causal = Estimate(beats=causal_beats(onset_envelopes(recording.samples).full), kinds=frozenset(("beats",)))
    return offline, causal


def librosa_estimate(path: Path) -> Estimate:
    """librosa's beat tracker; Krumhansl–Schmuckler on its chroma; triad templates on beat-synchronous chroma."""
    import librosa

    samples, rate = librosa.load(path, sr=22050, mono=True)
    tempo, beats = librosa.beat.beat_track(y=samples, sr=rate, units="time")
    chroma = librosa.feature.chroma_cqt(y=samples, sr=rate)
    key = krumhansl_key(chroma.mean(axis=1))
    frames = librosa.time_to_frames(beats, sr=rate)
    synced = librosa.util.sync(chroma, frames, aggregate=np.median)
    bounds = np.concatenate([[0.0], beats, [len(samples) / rate]])
    labels = [triad_template(column) for column in synced.T]
    intervals = np.stack([bounds[: len(labels)], bounds[1 : len(labels) + 1]], axis=1)
    return Estimate(key=key, bpm=float(np.atleast_1d(tempo)[0]), beats=np.asarray(beats), chords=(intervals, labels))


KRUMHANSL_MAJOR: Final = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KRUMHANSL_MINOR: Final = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def krumhansl_key(chroma: F64) -> str | None:
    """The key whose Krumhansl–Kessler profile correlates best with a 12-bin chroma (None for silence)."""
    if float(np.ptp(chroma)) <= 0:
        return None
    best, best_r = "C major", -2.0
    for mode, profile in (("major", KRUMHANSL_MAJOR), ("minor", KRUMHANSL_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            if r > best_r:
                best, best_r = f"{PITCH_NAMES[tonic]} {mode}", r
    return best


def triad_template(chroma: F64) -> str:
    """The major or minor triad whose binary template correlates best with a chroma vector ('N' for silence)."""
    if float(np.ptp(chroma)) <= 0:
        return "N"
    best, best_r = "N", -2.0
    for quality, intervals in (("maj", (0, 4, 7)), ("min", (0, 3, 7))):
        template = np.zeros(12)
        template[list(intervals)] = 1.0
        for root in range(12):
            r = float(np.corrcoef(chroma, np.roll(template, root))[0, 1])
            if r > best_r:
                best, best_r = f"{PITCH_NAMES[root]}:{quality}", r
    return best


def essentia_estimates(path: Path) -> dict[str, Estimate]:
    """essentia's RhythmExtractor2013 (multifeature) and KeyExtractor (default profile, and 'edma')."""
    import essentia
    import essentia.standard as es

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    samples = es.MonoLoader(filename=str(path), sampleRate=44100)()
    bpm, beats, _confidence, _estimates, _intervals = es.RhythmExtractor2013(method="multifeature")(samples)
    out: dict[str, Estimate] = {}
    for name, profile in (("essentia", None), ("essentia_edma", "edma")):
        extractor = es.KeyExtractor() if profile is None else es.KeyExtractor(profileType=profile)
        key, scale, _strength = extractor(samples)
        out[name] = Estimate(key=f"{_mir_eval_tonic(key)} {scale}", kinds=frozenset(("key",)))
    out["essentia"].kinds = frozenset(("key", "tempo", "beats"))
    out["essentia"].bpm = float(bpm)
    out["essentia"].beats = np.asarray(beats, dtype=np.float64)
    return out


def _mir_eval_tonic(name: str) -> str:
    flats = {"A#": "Bb", "D#": "Eb", "G#": "Ab", "C#": "C#", "F#": "F#"}
    return flats.get(name, name)


def score_item(tally: Tally, estimate: Estimate, labels: dict[str, Any]) -> None:
    """Add one analyser's scores on one item to its tally."""
    import mir_eval

    if "key" in estimate.kinds:  # an analyser that finds no key scores 0 for it
        tally.key.append(mir_eval.key.weighted_score(labels["key_mir_eval"], estimate.key) if estimate.key else 0.0)
    truth_beats = np.asarray(labels["beats"], dtype=np.float64)
    if estimate.bpm is not None or estimate.beats is not None:
        if estimate.bpm is not None:
            tally.tempo.append((max(float(estimate.bpm), 1e-3), float(labels["tempo_bpm"])))
        if estimate.beats is not None:
            tally.beats.append(float(mir_eval.beat.f_measure(truth_beats, np.sort(estimate.beats))))
    if estimate.downbeats is not None:
        truth_downbeats = np.asarray(labels["downbeats"], dtype=np.float64)
        tally.downbeats.append(float(mir_eval.beat.f_measure(truth_downbeats, np.sort(estimate.downbeats))))
    if estimate.chords is not None and labels.get("chords"):
        ref_intervals = np.array([[c[0], c[1]] for c in labels["chords"]], dtype=np.float64)
        ref_labels = [c[2] for c in labels["chords"]]
        est_intervals, est_labels = estimate.chords
        if len(est_labels) == 0:
            est_intervals, est_labels = np.array([[0.0, float(labels["duration_s"])]]), ["N"]
        est_intervals, est_labels = mir_eval.util.adjust_intervals(
            est_intervals, est_labels, ref_intervals.min(), ref_intervals.max(), "N", "N"
        )
        merged = mir_eval.util.merge_labeled_intervals(ref_intervals, ref_labels, est_intervals, est_labels)
        intervals, refs, ests = merged
        durations = mir_eval.util.intervals_to_durations(intervals)
        for name, compare in (("majmin", mir_eval.chord.majmin), ("sevenths", mir_eval.chord.sevenths)):
            comparisons = np.asarray(compare(refs, ests), dtype=np.float64)
            counted = comparisons >= 0
            right = float(np.sum(durations[counted] * comparisons[counted]))
            weight = float(np.sum(durations[counted]))
            if name == "majmin":
                tally.majmin_seconds += right
                tally.majmin_weight += weight
            else:
                tally.sevenths_seconds += right
                tally.sevenths_weight += weight


ANALYSERS: Final = ("idaw", "idaw_causal", "librosa", "essentia", "essentia_edma")


def evaluate(
    items: Sequence[Path],
    analysers: Sequence[str] = ANALYSERS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every analyser's scores over the labelled items (paths of label JSON files beside their audio), plus the
    seconds each analyser took per item (`seconds_per_item`; idaw's include its causal beats, essentia's both
    key profiles)."""
    from idaw.listen.testset import load_labels

    tallies = {name: Tally() for name in analysers}
    seconds: dict[str, list[float]] = {"idaw": [], "librosa": [], "essentia": []}
    for item in items:
        labels = load_labels(item)
        audio = item.with_suffix(".flac")
        estimates: dict[str, Estimate] = {}
        if "idaw" in analysers or "idaw_causal" in analysers:
            start = time.perf_counter()
            estimates["idaw"], estimates["idaw_causal"] = idaw_estimate(audio)
            seconds["idaw"].append(time.perf_counter() - start)
        if "librosa" in analysers:
            start = time.perf_counter()
            estimates["librosa"] = librosa_estimate(audio)
            seconds["librosa"].append(time.perf_counter() - start)
        if "essentia" in analysers or "essentia_edma" in analysers:
            start = time.perf_counter()
            estimates.update(essentia_estimates(audio))
            seconds["essentia"].append(time.perf_counter() - start)
        for name in analysers:
            score_item(tallies[name], estimates[name], labels)
        if progress is not None:
            progress(item.stem)
    return {
        "analysers": {name: tally.summary() for name, tally in tallies.items()},
        "seconds_per_item": {name: [round(t, 3) for t in times] for name, times in seconds.items() if times},
        "items": [str(item.stem) for item in items],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit code."""
    from tqdm import tqdm

    from idaw.base.errors import IdawError
    from idaw.listen.testset import build_testset

    parser = argparse.ArgumentParser(prog="python -m idaw.listen.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--testset", type=Path, default=Path("out/listen_testset"), help="folder of the test set")
    parser.add_argument("--count", type=int, default=None, help="evaluate only the first N items")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rendering (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write the scores to this JSON file")
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error(f"--count {args.count}: allowed: 1 or more")
    try:
        items = build_testset(args.testset, split="eval", count=args.count, seed=args.seed)
        with tqdm(total=len(items), desc="analysing", unit="file", file=sys.stderr) as bar:
            scores = evaluate(items, progress=lambda _name: bar.update(1))
    except IdawError as error:
        print(f"python -m idaw.listen.evaluate: {error}", file=sys.stderr)
        return error.exit_code
    text = json.dumps(scores, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
