"""`idaw analyze song.wav`: tempo, beats, meter, key and chords heard from audio, as a user runs it, and every kind
of bad audio answered with a result that says what was not found or one line and exit 2.

The signals here are synthesised (harmonic tones with a decaying envelope, one chord per beat, a bass note on each
bar's first beat): what they hold is known exactly. The rendered-music evaluation is in
tests/test_listen_evaluation.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.image
import mir_eval
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from idaw.listen.analysis import analyze_recording, hear
from idaw.listen.audio import SAMPLE_RATE, recording_from_samples
from idaw.listen.beats import causal_beats, estimate_tempo
from idaw.listen.features import onset_envelopes
from tests.support.idaw_command import RunIdaw, one_error_line
from tests.support.listen_signals import A_MINOR, C_MAJOR, progression, with_kick_drum


@pytest.mark.parametrize(
    ("bars", "bpm", "beats_per_bar", "transpose", "key"),
    [
        (C_MAJOR, 120.0, 4, 0, "C major"),
        (C_MAJOR, 84.0, 4, 2, "D major"),
        (A_MINOR, 100.0, 4, 0, "A minor"),
        (A_MINOR, 138.0, 3, 5, "D minor"),
    ],
)
def test_tempo_beats_meter_key_and_chords_of_a_progression(
    bars: tuple[tuple[int, tuple[int, ...]], ...], bpm: float, beats_per_bar: int, transpose: int, key: str
) -> None:
    samples, truth = progression(bars, bpm, beats_per_bar, transpose=transpose)
    result = analyze_recording(recording_from_samples(samples, SAMPLE_RATE))
    assert abs(result["tempo_bpm"] - bpm) <= 0.04 * bpm, result["tempo_bpm"]
    assert mir_eval.beat.f_measure(truth, np.array(result["beats"])) >= 0.9
    assert result["time_signature"] == f"{beats_per_bar}/4"
    downbeats = np.array(result["downbeats"])
    assert mir_eval.beat.f_measure(truth[::beats_per_bar], downbeats) >= 0.8
    assert result["key"] == key
    # Each bar's chord is heard: the chord sounding at the middle of each bar has the bar's root and quality.
    times = np.array([c["time"] for c in result["chords"]])
    right = 0
    bar_count = len(truth) // beats_per_bar
    for b in range(bar_count):
        middle = truth[b * beats_per_bar] + 0.5 * beats_per_bar * 60.0 / bpm
        chord = result["chords"][int(np.searchsorted(times, middle, side="right")) - 1]
        root, intervals = bars[b % len(bars)]
        wanted = "major" if intervals == (0, 4, 7) else "minor"
        names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
        alternatives = {
            names[(root + transpose) % 12],
            {"C#": "Db", "Eb": "D#", "F#": "Gb", "Ab": "G#", "Bb": "A#"}.get(names[(root + transpose) % 12], ""),
        }
        right += chord["root"] in alternatives and chord["quality"] == wanted
    assert right >= 0.85 * bar_count, (right, bar_count)


@pytest.mark.parametrize(
    ("bars", "transpose", "key"), [(C_MAJOR, 0, "C major"), (C_MAJOR, 7, "G major"), (A_MINOR, 0, "A minor")]
)
def test_a_kick_drum_ringing_at_f1_does_not_pull_the_key(
    bars: tuple[tuple[int, tuple[int, ...]], ...], transpose: int, key: str
) -> None:
    # The body of a kick is pitched: read from C1 up, this one made F the loudest pitch class and all three
    # progressions F major or C major. The chroma starts at C2 (idaw.listen.features.CHROMA_FMIN_HZ).
    samples, beats = progression(bars, 100.0, transpose=transpose)
    result = analyze_recording(recording_from_samples(with_kick_drum(samples, beats), SAMPLE_RATE))
    assert result["key"] == key


def test_silent_beats_are_no_evidence_of_key_or_chord() -> None:
    # Four bars of music, then two seconds of faint noise (a reverb tail or a noise floor, 60 dB down): the
    # beats there sound no note, so the decoder hears nothing in them rather than chords in the noise.
    samples, chord_beats = progression(C_MAJOR, 120.0, repeats=1)
    tail = 0.0008 * np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE).astype(np.float32)
    recording = recording_from_samples(np.concatenate([samples, tail]), SAMPLE_RATE)
    heard = hear(recording)
    assert heard is not None
    music_end = chord_beats[-1] + 0.5  # the last chord's beat ends here; two beats of its ring follow
    assert heard.sounding[heard.beats < music_end - 0.1].all()
    quiet = heard.beats > music_end + 1.0
    assert quiet.sum() >= 2 and not heard.sounding[quiet].any()
    offsets = [heard.lead + i for i in range(len(heard.beats))]
    evidence = heard.evidence(offsets)
    assert not evidence.chord_scores[quiet].any() and not evidence.key_evidence[quiet].any()
    assert all(evidence.basses[i] is None for i in np.flatnonzero(quiet))


def test_the_causal_tracker_locks_on_after_its_warm_up() -> None:
    samples, truth = progression(C_MAJOR, 126.0, repeats=6)
    beats = causal_beats(onset_envelopes(samples).full)
    assert len(beats) > 0 and beats[0] >= 3.0 - 1e-9  # nothing before the warm-up is over: it only hears the past
    assert mir_eval.beat.f_measure(truth, beats) >= 0.85


@pytest.mark.parametrize("seconds", [0.5, 1.0])
def test_a_file_too_short_for_a_beat_has_no_tempo(seconds: float) -> None:
    samples, _ = progression(C_MAJOR, 120.0)
    assert estimate_tempo(onset_envelopes(samples[: int(seconds * SAMPLE_RATE)]).full) is None


def write(path: Path, samples: npt.NDArray[np.floating], rate: int, subtype: str | None = None) -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


def bad_audio(tmp_path: Path) -> dict[str, tuple[Path, str | None]]:
    """Name → (file, None when a result without tempo or key is expected, else the words of the error line)."""
    rng = np.random.default_rng(7)
    music, _ = progression(C_MAJOR, 120.0)
    nan = music.copy()
    nan[100] = np.nan
    return {
        "silence": (write(tmp_path / "silence.wav", np.zeros(SAMPLE_RATE * 10, np.float32), SAMPLE_RATE), None),
        "white noise": (write(tmp_path / "noise.flac", 0.3 * rng.standard_normal(44100 * 15), 44100), None),
        "one second": (write(tmp_path / "short.wav", music[:SAMPLE_RATE], SAMPLE_RATE), None),
        "NaN": (write(tmp_path / "nan.wav", nan, SAMPLE_RATE, "FLOAT"), "NaN or infinite"),
        "not audio": (tmp_path / "text.wav", "not a readable WAV or FLAC file"),
        "empty": (tmp_path / "empty.flac", "not a readable WAV or FLAC file"),
        "folder": (tmp_path / "folder.wav", "it is a folder"),
        "missing": (tmp_path / "missing.wav", "no such file"),
    }


def test_bad_audio_gives_no_tempo_or_one_line(tmp_path: Path, run_idaw: RunIdaw) -> None:
    cases = bad_audio(tmp_path)
    (tmp_path / "text.wav").write_text("RIFF but not really\n")
    (tmp_path / "empty.flac").write_bytes(b"")
    (tmp_path / "folder.wav").mkdir()
    for name, (path, error) in cases.items():
        done = run_idaw("analyze", path, "--format", "json")
        if error is None:
            assert done.returncode == 0, (name, done.stderr)
            result = json.loads(done.stdout)
            assert result["tempo_bpm"] is None and result["key"] is None and result["chords"] == [], name
        else:
            assert done.returncode == 2 and done.stdout == "", (name, done.stdout)
            assert error in one_error_line(done.stderr).lower() or error in done.stderr, (name, done.stderr)


def test_eight_kilohertz_mono_and_stereo_read_the_same(tmp_path: Path, run_idaw: RunIdaw) -> None:
    import soxr

    music, _ = progression(A_MINOR, 100.0)
    low = soxr.resample(music, SAMPLE_RATE, 8000)
    mono = write(tmp_path / "mono.wav", low, 8000)
    stereo = write(tmp_path / "stereo.flac", np.stack([low, low], axis=1), 8000)
    results = [json.loads(run_idaw("analyze", p, "--format", "json").stdout) for p in (mono, stereo)]
    assert results[0]["key"] == results[1]["key"] == "A minor"
    assert results[0]["tempo_bpm"] == pytest.approx(results[1]["tempo_bpm"], rel=0.01)
    assert results[0]["sample_rate"] == 8000 and results[1]["channels"] == 2


def test_summary_and_report(tmp_path: Path, run_idaw: RunIdaw) -> None:
    music, _ = progression(C_MAJOR, 120.0)
    path = write(tmp_path / "song.wav", music, SAMPLE_RATE)
    report = tmp_path / "song.png"
    done = run_idaw("analyze", path, "--report", report)
    assert done.returncode == 0, done.stderr
    assert "Tempo: 1" in done.stdout and "Key: C major" in done.stdout, done.stdout
    image = matplotlib.image.imread(report)
    assert image.shape[0] == 700 and image.shape[1] >= 1200
    # The report draws something in every lane (not a blank figure): many distinct colours.
    assert len(np.unique(image.reshape(-1, image.shape[2])[:, :3].round(2), axis=0)) > 20
    unwritable = tmp_path / "no" / "such" / "folder" / "r.png"
    done = run_idaw("analyze", path, "--report", unwritable)
    assert done.returncode == 2 and "report" in one_error_line(done.stderr)
    assert not os.path.exists(unwritable)
