"""`idaw process --midi-out`: the engine generates MIDI during an offline render; the file reads back the same
through mido and pretty_midi, lines up with the audio, keeps to the key, and does not depend on the block size.
Also the standard-MIDI-file writer on its own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

import idaw_core
from realtime import midi_settings
from realtime.midi_file import MidiRecording
from tests.support.audio import WriteAudio, noise
from tests.support.idaw_command import RunIdaw
from tests.support.midi_helpers import generator_nets, mido_notes, pretty_notes
from tests.support.needs import need
from tests.support.repo import REPO

RATE = 48000
TICK_SECONDS = 60.0 / 150.0 / 480  # at --tempo 150, 480 ticks per quarter


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 20 s file rendered with --midi-out at block sizes 64 and 1024 (and the CLI's output lines)."""
    folder = tmp_path_factory.mktemp("midi-offline")
    audio = folder / "in.wav"
    sf.write(audio, noise(RATE, 20.0), RATE, subtype="FLOAT")
    out: dict[str, Path] = {}
    for block in (64, 1024):
        mid = folder / f"song{block}.mid"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "idaw.cli",
                "process",
                str(audio),
                "-o",
                str(folder / f"out{block}.wav"),
                "--no-progress",
                "--no-sidecar",
                "--block-size",
                str(block),
                "--midi-out",
                str(mid),
                "--midi-models",
                str(generator_nets()),
                "--tempo",
                "150",
                "--key",
                "E:minor",
                "--valence",
                "-0.3",
                "--arousal",
                "0.6",
                "--midi-channel",
                "3",
                "--chord-channel",
                "4",
                "--bass-channel",
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        assert f"wrote {mid}:" in result.stdout and "E:minor at 150 BPM" in result.stdout
        out[f"mid{block}"] = mid
    return out


def test_file_reads_back_the_same_with_mido_and_pretty_midi(rendered: dict[str, Path]) -> None:
    path = rendered["mid1024"]
    by_mido, by_pretty = mido_notes(path), pretty_notes(path)
    assert len(by_mido) > 40
    assert len(by_mido) == len(by_pretty)
    for a, b in zip(by_mido, by_pretty, strict=True):
        assert a[:3] == b[:3]
        assert abs(a[3] - b[3]) < 1e-6 and abs(a[4] - b[4]) < 1e-6
    midi = mido.MidiFile(str(path))
    tempos = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(150)]
    # Within the audio (20 s): melody on channel 3, chords on 4, bass on 5, drums on 10, each on its own named
    # track and in its range; every pitch in E minor (with its raised leading tone under the dominant).
    tonic, scale = midi_settings.parse_key("E:minor")
    ranges = {2: idaw_core.MIDI_MELODY_RANGE, 3: idaw_core.MIDI_CHORD_RANGE, 4: idaw_core.MIDI_BASS_RANGE}
    for channel, pitch, velocity, start, end in by_mido:
        assert 0 <= start < end <= 20.0 + TICK_SECONDS
        assert 1 <= velocity <= 127
        if channel != 9:
            assert midi_settings.in_key(pitch, tonic, scale), pitch
            assert ranges[channel][0] <= pitch <= ranges[channel][1], (channel, pitch)
    assert {n[0] for n in by_mido} == {2, 3, 4, 9}
    names = [m.name for track in midi.tracks for m in track if m.type == "track_name"]
    assert names == ["idaw", "melody", "chords", "bass", "drums"]
    for track in midi.tracks[1:]:
        assert len({m.channel for m in track if not m.is_meta}) == 1


def test_midi_does_not_depend_on_the_block_size(rendered: dict[str, Path]) -> None:
    assert rendered["mid64"].read_bytes() == rendered["mid1024"].read_bytes()


def test_recording_cuts_at_the_end_and_orders_offs_first() -> None:
    rec = MidiRecording(48000, 120)
    rec.add(1000, 0x90, 60, 100)
    rec.add(0, 0x90, 64, 90)  # out of order on purpose
    rec.add(4000, 0x80, 64, 0)
    rec.add(6000, 0x80, 60, 0)  # beyond the end: ends at the end
    rec.add(6000, 0x90, 67, 80)  # starts at the end: dropped
    rec.add(7000, 0x80, 67, 0)
    rec.add(3000, 0x91, 40, 70)  # never ended: ends at the end
    notes = rec.notes(end_sample=5000)
    assert [(n.channel, n.pitch, n.start, n.end) for n in notes] == [
        (0, 64, 0, 4000),
        (0, 60, 1000, 5000),
        (1, 40, 3000, 5000),
    ]
    # An off and an on of the same pitch on the same tick: the off comes first.
    rec = MidiRecording(48000, 120)
    rec.add(0, 0x90, 60, 100)
    rec.add(1000, 0x90, 60, 100)
    rec.add(999, 0x80, 60, 0)
    rec.add(2000, 0x80, 60, 0)
    assert [(n.start, n.end) for n in rec.notes()] == [(0, 999), (1000, 2000)]
    # All Notes Off ends every note of its channel.
    rec = MidiRecording(48000, 120)
    rec.add(0, 0x92, 50, 100)
    rec.add(10, 0x92, 52, 100)
    rec.add(500, 0xB2, 123, 0)
    assert [(n.pitch, n.end) for n in rec.notes()] == [(50, 500), (52, 500)]


def test_missing_nets_give_one_line(run_idaw: RunIdaw, write_audio: WriteAudio, tmp_path: Path) -> None:
    audio = write_audio("in.wav", noise(RATE, 1.0), RATE)
    result = run_idaw(
        "process",
        audio,
        "-o",
        tmp_path / "out.wav",
        "--no-sidecar",
        "--midi-out",
        tmp_path / "x.mid",
        "--midi-models",
        tmp_path / "none",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no MelodyTransformer.json" in lines[0] and "realtime.nets.export_nets" in lines[0]
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--key", "H:major"], "is not a key"),
        (["--key", "C:bebop"], "is not a key"),
        (["--tempo", "10"], "--tempo 10 is out of range"),
        (["--valence", "2"], "--valence 2 is out of range"),
        (["--midi-channel", "17"], "--midi-channel 17 is out of range"),
    ],
)
def test_bad_options_give_one_line(
    run_idaw: RunIdaw, write_audio: WriteAudio, tmp_path: Path, args: list[str], text: str
) -> None:
    audio = write_audio("in.wav", np.zeros((4800, 2), np.float32), RATE)
    result = run_idaw(
        "process",
        audio,
        "-o",
        tmp_path / "out.wav",
        "--no-sidecar",
        "--midi-out",
        tmp_path / "x.mid",
        "--midi-models",
        generator_nets(),
        *args,
    )
    assert result.returncode == 2
    assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_shipped_nets_make_a_melody_and_chords_in_the_key(
    run_idaw: RunIdaw, write_audio: WriteAudio, tmp_path: Path
) -> None:
    folder = midi_settings.DEFAULT_MODELS
    need(all((folder / f"{name}.json").is_file() for name in midi_settings.NETS), f"no trained nets in {folder}")
    audio = write_audio("in.wav", noise(RATE, 12.0), RATE)
    mid = tmp_path / "shipped.mid"
    result = run_idaw(
        "process",
        audio,
        "-o",
        tmp_path / "out.wav",
        "--no-sidecar",
        "--no-progress",
        "--midi-out",
        mid,
        "--key",
        "G:major",
        "--tempo",
        "110",
        "--valence",
        "0.5",
        "--arousal",
        "0.3",
    )
    assert result.returncode == 0, result.stderr
    notes = mido_notes(mid)
    melody, chords, bass, drums = ([n for n in notes if n[0] == channel] for channel in (0, 1, 2, 9))
    assert len(melody) >= 10 and len(chords) >= 8 and len(bass) >= 4 and len(drums) >= 10
    assert len({n[1] for n in melody}) >= 2  # a line, not one frozen pitch
    tonic, scale = midi_settings.parse_key("G:major")
    assert all(midi_settings.in_key(n[1], tonic, scale) for n in melody + chords + bass)
