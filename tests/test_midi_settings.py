"""MIDI generator settings: key parsing, the valence/arousal -> emotion mapping (the training labels' formula), the
option checks, and the Python side agreeing with the core's scale table."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import idaw_core
from idaw.base.errors import IdawError
from realtime import midi_settings


@pytest.mark.parametrize(
    ("text", "tonic", "scale"),
    [
        ("C:major", 0, "major"),
        ("A:minor", 9, "minor"),
        ("F#:dorian", 6, "dorian"),
        ("Bb:mixolydian", 10, "mixolydian"),
        ("eb", 3, "major"),
        ("Cb:minor", 11, "minor"),
        ("G:harmonic-minor", 7, "harmonic_minor"),
        ("E:minor_pentatonic", 4, "minor_pentatonic"),
    ],
)
def test_parse_key(text: str, tonic: int, scale: str) -> None:
    assert midi_settings.parse_key(text) == (tonic, midi_settings.SCALES.index(scale))


@pytest.mark.parametrize("text", ["H:major", "C:bebop", "C$:major", ""])
def test_parse_key_refuses(text: str) -> None:
    with pytest.raises(IdawError, match="key"):
        midi_settings.parse_key(text)


def test_scales_match_the_core() -> None:
    assert midi_settings.SCALES[:2] == ("major", "minor")
    assert len(midi_settings.SCALES) == len(idaw_core.MIDI_SCALES)
    c_major = [p for p in range(60, 72) if midi_settings.in_key(p, 0, 0)]
    assert c_major == [60, 62, 64, 65, 67, 69, 71]
    # A minor: the natural minor, plus G# (the raised leading tone of the theory layer's dominant chords).
    assert [p % 12 for p in range(60, 72) if midi_settings.in_key(p, 9, 1)] == [0, 2, 4, 5, 7, 8, 9, 11]
    # Modes keep to their scale: D dorian.
    assert [p % 12 for p in range(60, 72) if midi_settings.in_key(p, 2, 4)] == [0, 2, 4, 5, 7, 9, 11]


@pytest.mark.parametrize(("valence", "arousal"), [(0.0, 0.0), (0.8, 0.5), (-0.7, -0.6), (1.0, -1.0), (-0.2, 0.9)])
def test_emotion_mapping_is_the_training_labels_formula(valence: float, arousal: float) -> None:
    from realtime.nets import labels
    from realtime.nets.architectures import EMOTION

    neutral = {"loudness": 0.0, "register": 0.0, "density": 0.0, "articulation": 0.0, "mode": 0.0}
    want = labels.emotion_dims(valence, arousal, neutral)
    got = midi_settings.emotion_from_valence_arousal(valence, arousal)
    assert got.shape == (64,) and got.dtype == np.float32
    np.testing.assert_allclose(got[:12], want, atol=1e-6)
    latent = EMOTION["latent"]
    assert isinstance(latent, slice)  # EMOTION maps a group of dimensions to a slice
    assert not got[latent].any()
    assert np.all(np.abs(got) <= 1.0)


def _args(**overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    midi_settings.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_settings_from_args() -> None:
    s = midi_settings.settings_from_args(_args(tempo=96.0, key="D:minor", valence=0.5, arousal=-0.25, midi_channel=2))
    assert (s.tempo_bpm, s.key_tonic, s.scale, s.melody_channel, s.chord_channel) == (96.0, 2, 1, 1, 1)
    assert s.key_name == "D:minor" and s.emotion[:2] == (0.5, -0.25)
    assert s.track_names == {1: "melody + chords", 2: "bass", 9: "drums"}
    s = midi_settings.settings_from_args(_args())  # four tracks on four channels by default, the theory layer on
    assert (s.melody_channel, s.chord_channel, s.bass_channel, s.drum_channel, s.theory) == (0, 1, 2, 9, True)
    assert s.track_names == {0: "melody", 1: "chords", 2: "bass", 9: "drums"}
    s = midi_settings.settings_from_args(_args(chord_channel=16, bass_channel=5, drum_channel=11, theory=False))
    assert (s.melody_channel, s.chord_channel, s.bass_channel, s.drum_channel, s.theory) == (0, 15, 4, 10, False)
    for bad, text in (
        (dict(tempo=301.0), "--tempo"),
        (dict(arousal=-1.5), "--arousal"),
        (dict(chord_channel=0), "--chord-channel"),
        (dict(bass_channel=17), "--bass-channel"),
        (dict(drum_channel=0), "--drum-channel"),
    ):
        with pytest.raises(IdawError, match=text):
            midi_settings.settings_from_args(_args(**bad))


def test_engine_refuses_bad_controls() -> None:
    engine = idaw_core.Engine()
    engine.prepare(48000.0, 256, 2)
    emotion = np.zeros(64, np.float32)
    assert engine.set_midi_control(True, 120.0, 0, 0, 0, 0, emotion)
    with pytest.raises(ValueError, match="tempo"):
        engine.set_midi_control(True, 500.0, 0, 0, 0, 0, emotion)
    with pytest.raises(ValueError, match="channel"):
        engine.set_midi_control(True, 120.0, 0, 0, 16, 0, emotion)
    with pytest.raises(ValueError, match="emotion"):
        engine.set_midi_control(True, 120.0, 0, 0, 0, 0, np.full(64, 2.0, np.float32))
    with pytest.raises(ValueError, match="64"):
        engine.set_midi_control(True, 120.0, 0, 0, 0, 0, np.zeros(12, np.float32))
    assert engine.set_midi_control(True, 120.0, 0, 0, 0, 0, emotion, chord_plan=[0, -1, 60, 31])
    for plan, text in (([0] * 17, "longer than 16"), ([61], "chord plan entry"), ([-2], "chord plan entry")):
        with pytest.raises(ValueError, match=text):
            engine.set_midi_control(True, 120.0, 0, 0, 0, 0, emotion, chord_plan=plan)
    assert engine.set_midi_control(True, 120.0, 0, 0, 0, 0, emotion, start_voicing=[36, 52, 55, 60], start_melody=67)
    for voicing, melody in (([36, 52, 55], -1), ([36, 52, -1, 60], -1), ([36, 52, 55, 128], -1), ([], 200)):
        with pytest.raises(ValueError, match="start"):
            engine.set_midi_control(True, 120.0, 0, 0, 0, 0, emotion, start_voicing=voicing, start_melody=melody)
    with pytest.raises(ValueError, match="unknown MIDI net"):
        engine.install_midi_net("Emotion", "/nonexistent.json")
    with pytest.raises(ValueError, match="nonexistent"):
        engine.install_midi_net("melody", "/nonexistent.json")
