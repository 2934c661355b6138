"""idaw.listen.testset: rendered chorales whose labels say where the beats, bars and chords really are.

The audio checks measure the rendered sound itself (numpy STFTs): onsets on the labelled beats, and the pitch
classes sounding in each labelled chord span, so a label moved in time or left untransposed fails them.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import music21
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from idaw.listen import testset
from idaw.theory import harmony
from idaw.theory.keys import parse_key_name
from tests.support.needs import need, need_module

F64 = npt.NDArray[np.float64]
REPO = Path(__file__).resolve().parent.parent

ITEMS = (("bach/bwv269", 0), ("bach/bwv40.8", 3))
"""(source, seed): 3/4 with a pickup, drums and noise at 15.8 dB SNR; 4/4 without a pickup, reverb, no drums."""


def need_fluidsynth() -> None:
    """Skip (user's machine) or fail (CI) without the renderer."""
    need(
        shutil.which("fluidsynth") is not None and testset.SOUNDFONT.exists(),
        f"rendering needs the fluidsynth program and {testset.SOUNDFONT} (Debian: fluidsynth, fluid-soundfont-gm)",
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """ITEMS rendered once for the module; their label files' paths."""
    need_fluidsynth()
    out = tmp_path_factory.mktemp("testset")
    return [testset.render_item(source, out, seed, "eval") for source, seed in ITEMS]


def read_audio(label_path: Path) -> tuple[F64, int]:
    audio, rate = sf.read(label_path.with_suffix(".flac"), dtype="float64")
    return np.asarray(audio, dtype=np.float64), int(rate)


def magnitudes(audio: F64, n_fft: int, hop: int) -> F64:
    """|STFT| frames (rows) of a Hann-windowed signal."""
    count = 1 + (len(audio) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    return np.asarray(np.abs(np.fft.rfft(audio[index] * np.hanning(n_fft), axis=1)), dtype=np.float64)


def spectral_flux(audio: F64, rate: int) -> tuple[F64, F64]:
    """(times, onset strength): the rise of log magnitude summed over bins, every 10 ms."""
    n_fft, hop = 2048, rate // 100
    log = np.log1p(100.0 * magnitudes(audio, n_fft, hop))
    flux = np.maximum(np.diff(log, axis=0), 0.0).sum(axis=1)
    times = ((np.arange(len(flux)) + 1) * hop + n_fft / 2) / rate
    return times, flux


def onset_strength(times: F64, flux: F64, at: F64) -> float:
    """Mean over `at` of the strongest onset within 30 ms of each time (0 where no frame is that near)."""
    return float(np.mean([np.max(flux[np.abs(times - t) <= 0.03], initial=0.0) for t in at]))


def chromagram(audio: F64, rate: int) -> tuple[F64, F64]:
    """(times, 12 pitch-class energies per frame) from 80 Hz–1.5 kHz, 186 ms frames every 46 ms."""
    n_fft, hop = 8192, 2048
    mags = magnitudes(audio, n_fft, hop)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    band = (freqs > 80.0) & (freqs < 1500.0)
    classes = np.round(12.0 * np.log2(freqs[band] / 440.0) + 9.0).astype(int) % 12
    chroma = np.stack([mags[:, band][:, classes == pc].sum(axis=1) for pc in range(12)], axis=1)
    return (np.arange(len(mags)) * hop + n_fft / 2) / rate, chroma


def chord_pitch_classes(label: str) -> set[int]:
    """Pitch classes of a mir_eval chord label as the test set writes them ('F#:min7/b3')."""
    root_name, shorthand = label.split("/")[0].split(":")
    root = parse_key_name(root_name + " major")
    assert root is not None, label
    quality = testset.SHORTHAND_QUALITY[shorthand]
    return {(root.tonic + step) % 12 for step in harmony.CHORD_TYPES[quality]}


def test_every_quality_has_the_mir_eval_shorthand_of_its_notes_and_reads_back() -> None:
    mir_eval = need_module("mir_eval", "pip install mir_eval")
    assert set(testset.MIR_EVAL_QUALITY) == set(harmony.CHORD_TYPES)
    for quality, shorthand in testset.MIR_EVAL_QUALITY.items():
        # mir_eval's own reading of the shorthand: the same intervals above the root as idaw's chord type.
        assert set(np.flatnonzero(mir_eval.chord.quality_to_bitmap(shorthand))) == set(harmony.CHORD_TYPES[quality])
        assert testset.SHORTHAND_QUALITY[shorthand] == quality
    assert len(testset.SHORTHAND_QUALITY) == len(testset.MIR_EVAL_QUALITY)  # no two qualities share a shorthand


def test_labels_hold_the_scores_grid_and_the_audio_its_length(rendered: list[Path]) -> None:
    for path, (source, _seed) in zip(rendered, ITEMS, strict=True):
        labels = testset.load_labels(path)
        period = 60.0 / labels["tempo_bpm"]
        beats, downbeats = labels["beats"], labels["downbeats"]
        # Every quarter note of the score is a beat, evenly spaced at the rendered tempo.
        score = music21.corpus.parse(source)
        assert len(beats) == round(float(score.highestTime))
        assert np.allclose(np.diff(beats), period, atol=2e-6)
        # Downbeats are beats, one bar apart; the first is where the first full bar starts (after any pickup).
        bar = {"3/4": 3, "4/4": 4}[labels["meter"]]
        assert labels["meter"] == score.recurse().getElementsByClass(music21.meter.TimeSignature).first().ratioString
        assert set(downbeats) <= set(beats)
        assert np.allclose(np.diff(downbeats), bar * period, atol=2e-6)
        first_measure = score.parts[0].getElementsByClass(music21.stream.Measure).first()
        pickup = float(first_measure.duration.quarterLength)
        assert beats.index(downbeats[0]) == (round(pickup) if pickup < bar else 0)
        # Chords tile the music from the first beat to the last note's end, inside the audio.
        chords = labels["chords"]
        assert chords[0][0] == beats[0] and chords[-1][1] == labels["music_end_s"]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chords))
        assert all(0.0 <= start < end <= labels["duration_s"] for start, end, _ in chords)
        assert labels["key"] == labels["keys"][-1][1]
        # The audio lasts as long as the labels say: the music plus a release tail of under 2 s.
        info = sf.info(str(path.with_suffix(".flac")))
        assert (info.samplerate, info.channels) == (labels["sample_rate"], 1)
        assert abs(info.frames / info.samplerate - labels["duration_s"]) < 1.0 / info.samplerate
        assert 0.0 < labels["duration_s"] - labels["music_end_s"] < 2.0
        audio, _rate = read_audio(path)
        assert np.all(np.isfinite(audio)) and 0.1 < np.max(np.abs(audio)) <= testset.PEAK_LIMIT


def test_onsets_fall_on_the_labelled_beats(rendered: list[Path]) -> None:
    for path in rendered:
        labels = testset.load_labels(path)
        audio, rate = read_audio(path)
        times, flux = spectral_flux(audio, rate)

        beats = np.asarray(labels["beats"][:-1])
        period = 60.0 / labels["tempo_bpm"]
        # Chorales strike every voice on the beat; passing eighths (and hi-hats) sound between them more softly.
        on_beats = onset_strength(times, flux, beats)
        assert on_beats > 1.2 * onset_strength(times, flux, beats + period / 2)
        assert on_beats > 1.5 * onset_strength(times, flux, beats + period / 4)
        assert on_beats > 1.5 * onset_strength(times, flux, beats - period / 4)
        # The first onset is the first labelled beat (the lead-in before it is silent or noise).
        window = np.abs(times - labels["beats"][0]) <= 0.4
        assert abs(times[window][np.argmax(flux[window])] - labels["beats"][0]) <= 0.03


def test_the_sound_in_each_chord_span_is_the_labelled_chord_not_a_transposition(rendered: list[Path]) -> None:
    for path in rendered:
        labels = testset.load_labels(path)
        assert labels["settings"]["transpose"] != 0  # otherwise this cannot tell transposed labels from plain ones
        audio, rate = read_audio(path)
        times, chroma = chromagram(audio, rate)
        right = spans = 0
        for start, end, label in labels["chords"]:
            frames = (times >= start) & (times < end)
            if label == "X" or not frames.any():
                continue
            sound = chroma[frames].mean(axis=0)
            template = np.zeros(12)
            template[list(chord_pitch_classes(label))] = 1.0
            # How well the sound matches the labelled chord moved by each number of semitones: 0 must win.
            fits = [float(np.dot(sound, np.roll(template, shift))) / np.linalg.norm(sound) for shift in range(12)]
            right += int(np.argmax(fits) == 0)
            spans += 1
        assert spans >= 30
        assert right / spans >= 0.6, f"{path.name}: {right} of {spans} chord spans sound like their label"


def test_labels_are_valid_mir_eval_keys_and_chords(rendered: list[Path]) -> None:
    mir_eval = need_module("mir_eval", "pip install mir_eval")
    for path in rendered:
        labels = testset.load_labels(path)
        mir_eval.key.validate_key(labels["key_mir_eval"])
        for _at, key in labels["keys"]:
            mir_eval.key.validate_key(key)
        for _start, _end, label in labels["chords"]:
            root, bits, _bass = mir_eval.chord.encode(label)
            if label != "X":
                assert {(root + i) % 12 for i in np.flatnonzero(bits)} == chord_pitch_classes(label)


def test_same_seed_same_labels_and_the_splits_share_no_instrument_or_piece(rendered: list[Path]) -> None:
    source, seed = ITEMS[0]
    written = json.loads(rendered[0].read_text(encoding="utf-8"))
    assert written == testset.item_labels(source, seed, "eval")[0]
    # Rendering it again finds the files up to date and leaves them alone.
    before = rendered[0].stat().st_mtime_ns, rendered[0].with_suffix(".flac").stat().st_mtime_ns
    assert testset.render_item(source, rendered[0].parent, seed, "eval") == rendered[0]
    assert (rendered[0].stat().st_mtime_ns, rendered[0].with_suffix(".flac").stat().st_mtime_ns) == before
    assert testset.draw_settings(source, seed + 1, "eval") != testset.draw_settings(source, seed, "eval")

    drawn = {split: [testset.draw_settings(source, s, split) for s in range(60)] for split in testset.SPLITS}
    programs = {split: {p for d in drawn[split] for p in d.programs} for split in testset.SPLITS}
    kits = {split: {d.drum_kit for d in drawn[split]} for split in testset.SPLITS}
    assert programs["eval"] and programs["train"] and not programs["eval"] & programs["train"]
    assert kits["eval"] and kits["train"] and not kits["eval"] & kits["train"]

    train, evaluated = testset.chorale_items("train"), testset.chorale_items("eval")
    assert len(evaluated) == 19 and len(train) > 200 and not set(train) & set(evaluated)
    assert not set(train) & set(testset.SHARED_TUNES)
    # A chorale on an eval chorale's tune is refused for training even when asked for by name.
    with pytest.raises(testset.SourceError, match="bwv277"):
        testset.item_labels("bach/bwv4.8", 0, "train")
    with pytest.raises(testset.SourceError, match="eval chorale"):
        testset.item_labels(source, 0, "train")


def test_a_broken_label_file_is_one_clear_error(tmp_path: Path) -> None:
    content = testset.item_labels("bach/bwv281", 1, "eval")[0]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(content), encoding="utf-8")
    assert testset.load_labels(good) == content
    moved = dict(content, downbeats=[content["downbeats"][0] + 0.01, *content["downbeats"][1:]])
    for name, text, problem in (
        ("moved.json", json.dumps(moved), "downbeat is not a beat"),
        ("cut.json", json.dumps(content)[:-20], "not JSON"),
        ("nokey.json", json.dumps(dict(content, key="H major")), "names no key"),
    ):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(testset.LabelError, match=problem) as caught:
            testset.load_labels(tmp_path / name)
        assert "\n" not in str(caught.value)


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idaw.listen.testset", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=False,
    )


def test_the_command_refuses_bad_arguments_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder", encoding="utf-8")
    for args, names in (
        (["--out", str(out), "--split", "nope"], "--split"),
        (["--out", str(out), "--count", "-1"], "--count"),
        (["--out", str(out), "--count", "many"], "--count"),
        (["--out", str(out), "--seed", "-3"], "--seed"),
        (["--split", "eval"], "--out"),
        (["--out", str(a_file / "sub"), "--count", "1"], "a_file"),
    ):
        done = run_command(*args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and names in lines[0] and "Traceback" not in done.stderr, (args, done.stderr)
    assert not out.exists()


def test_the_command_renders_a_training_item(tmp_path: Path) -> None:
    need_fluidsynth()
    done = run_command("--out", str(tmp_path), "--split", "train", "--count", "1", "--seed", "5")
    assert done.returncode == 0, done.stderr
    (path,) = sorted(tmp_path.glob("*.json"))
    labels = testset.load_labels(path)
    assert labels["split"] == "train" and labels["source"] == testset.chorale_items("train")[0]
    assert set(labels["settings"]["programs"]) <= set(testset.PROGRAMS["train"])
    # Weak chord labels (idaw's own analysis of the score): they span the music without gaps.
    assert labels["chords_source"] == testset.WEAK_CHORDS_SOURCE and len(labels["chords"]) >= 8
    starts, ends = [c[0] for c in labels["chords"]], [c[1] for c in labels["chords"]]
    assert starts[0] == labels["beats"][0] and starts[1:] == ends[:-1]
    assert labels["keys"] == [[labels["beats"][0], labels["key"]]]
    assert path.with_suffix(".flac").is_file()


@pytest.mark.parametrize("source", ["bach/bwv339", "bach/bwv433"])
def test_a_first_bar_that_opens_with_a_rest_has_no_downbeat_before_the_first_beat(source: str) -> None:
    labels, _settings, _grid, _notes = testset.item_labels(source, 0, "train")
    testset.validate_labels(labels)  # raised "a downbeat is not a beat" before the grid dropped that bar line
    assert labels["downbeats"][0] >= labels["beats"][0] and set(labels["downbeats"]) <= set(labels["beats"])
