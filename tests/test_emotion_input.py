"""`--emotion input`: the EmotionRecognizer on the input audio drives the MIDI generator.

Checked with the real parts: the streaming log-mel is bit-identical to realtime/nets/audio_features.log_mel however
the audio is chunked; the tracker (the core's C++ runtime on the exported JSON, state carried across calls) gives the
embeddings PyTorch gives (realtime/nets/chain.er_embeddings on the trained checkpoint) within 1e-4; the sidecar's
WindowMaker hands its listeners exactly the stream it cuts windows from; offline, a calm slow piano piece and fast loud
brass (fluidsynth renders) are heard with clearly different arousal, the generator answers the excited one with
denser, shorter notes, and the same input gives the same MIDI file byte for byte, whatever the block size.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from idaw.base.errors import IdawError
from realtime import midi_offline, midi_settings
from realtime.emotion_input import EmotionTracker, model_path
from realtime.nets.audio_features import SOUNDFONT, StreamingLogMel, fluidsynth_command, log_mel
from realtime.sidecar_link.analysis import WindowMaker
from tests.support.midi_helpers import mido_notes
from tests.support.needs import need
from tests.support.repo import REPO

MODEL = REPO / "realtime" / "nets" / "weights" / "EmotionRecognizer.json"
CHECKPOINT = MODEL.with_suffix(".pt")
RATE = 48000
SECONDS = 20.0

F32 = npt.NDArray[np.float32]


def music_like(seconds: float, rate: int = 22050, seed: int = 0) -> F32:
    """Mono test audio with changing spectra: decaying tones over a little noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    out = 0.01 * rng.standard_normal(n)
    for start in range(0, n, rate // 4):
        length = min(n - start, rate // 2)
        t = np.arange(length) / rate
        freq = float(rng.uniform(100, 2000))
        out[start : start + length] += 0.3 * np.sin(2 * np.pi * freq * t) * np.exp(-4 * t)
    return out.astype(np.float32)


def random_pieces(audio: F32, seed: int, largest: int) -> list[F32]:
    """`audio` cut at random points (pieces of 0..largest samples, zero-length ones included)."""
    rng = np.random.default_rng(seed)
    pieces, at = [], 0
    while at < len(audio):
        n = int(rng.integers(0, largest + 1))
        pieces.append(audio[at : at + n])
        at += n
    return pieces


@pytest.mark.parametrize(("seed", "largest"), [(1, 40), (2, 700), (3, 5000), (4, 60000)])
def test_streaming_log_mel_is_bit_identical_to_log_mel(seed: int, largest: int) -> None:
    audio = music_like(6.0, seed=seed)
    want = log_mel(audio)
    stream = StreamingLogMel()
    got = np.concatenate([stream.feed(piece) for piece in random_pieces(audio, seed, largest)])
    assert got.dtype == np.float32 and got.shape == want.shape == (1 + (len(audio) - 2048) // 512, 128)
    assert np.array_equal(got, want)
    assert stream.frames == len(want) and stream.samples == len(audio)


def test_tracker_matches_pytorch_er_embeddings() -> None:
    need(CHECKPOINT.is_file() and MODEL.is_file(), f"no trained EmotionRecognizer in {MODEL.parent}")
    import torch

    from realtime.nets.architectures import EmotionRecognizer
    from realtime.nets.chain import er_embeddings

    net = EmotionRecognizer()
    net.load_state_dict(torch.load(CHECKPOINT, map_location="cpu", weights_only=True))
    audio = music_like(12.0, seed=5)
    (want,) = er_embeddings(net, [log_mel(audio)])
    tracker = EmotionTracker(MODEL)
    assert np.array_equal(tracker.latest(), np.zeros(64, np.float32))  # zeros before the first frame, as trained
    got = np.concatenate([tracker.feed(piece) for piece in random_pieces(audio, 7, 3000)])
    assert got.shape == want.shape and len(got) > 500
    diff = float(np.max(np.abs(got - want)))
    print(f"tracker vs PyTorch over {len(got)} frames: max |diff| {diff:.2e}")
    assert diff <= 1e-4
    assert np.array_equal(tracker.latest(), got[-1])
    heard = tracker.describe()
    assert heard["frames"] == len(got)
    assert heard["mean_arousal"] == pytest.approx(float(np.mean(got[:, 1], dtype=np.float64)), abs=1e-5)


def test_window_maker_listeners_get_the_stream_the_windows_come_from() -> None:
    class Ring:
        def __init__(self, samples: F32) -> None:
            self.samples = samples

        def read_analysis(self, out: F32) -> int:
            count = min(out.size, self.samples.size, 3001)
            out[:count] = self.samples[:count]
            self.samples = self.samples[count:]
            return count

    audio = music_like(5.0, rate=RATE)
    maker = WindowMaker(RATE)
    heard: list[tuple[F32, int]] = []
    other: list[F32] = []

    def second(samples: F32, rate: int) -> None:
        other.append(samples.copy())

    maker.add_listener(lambda samples, rate: heard.append((samples.copy(), rate)))
    maker.add_listener(second)
    ring = Ring(audio)
    windows: list[tuple[int, F32]] = []
    for pump in range(100):
        window = maker.pump(ring)
        if window is not None:
            windows.append(window)
        if pump == 50:
            maker.remove_listener(second)
    stream = np.concatenate([piece for piece, _ in heard])
    assert {rate for _, rate in heard} == {22050} and stream.size == maker.total_out
    assert len(windows) >= 5
    for start, samples in windows:
        assert np.array_equal(samples, stream[start : start + samples.size])
    assert 0 < sum(p.size for p in other) < stream.size


def test_options_and_errors(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    midi_settings.add_arguments(parser)
    args = parser.parse_args(["--emotion", "input"])
    settings = midi_settings.settings_from_args(args)
    assert settings.emotion_source == "input" and settings.emotion == (0.0,) * 64
    assert midi_settings.settings_from_args(parser.parse_args([])).emotion_source == "manual"
    with pytest.raises(IdawError, match="--valence/--arousal set the emotion by hand"):
        midi_settings.settings_from_args(parser.parse_args(["--emotion", "input", "--arousal", "0.5"]))
    with pytest.raises(IdawError, match="--emotion input needs --midi-out"):
        midi_offline.from_args(args)
    with pytest.raises(IdawError, match=r"--emotion input needs .*EmotionRecognizer\.json"):
        model_path(tmp_path)
    bad = tmp_path / "EmotionRecognizer.json"
    bad.write_text("{}")
    with pytest.raises(IdawError, match=r"cannot use .* as the EmotionRecognizer"):
        EmotionTracker(bad)


# ---- offline: idaw process --midi-out --emotion input ----------------------------------------------------------


def fluidsynth_piece(folder: Path, name: str, fast: bool) -> Path:
    """20 s at 48 kHz (pretty_midi + fluidsynth): slow soft long low piano notes, or fast loud short brass ones."""
    import pretty_midi

    exe = shutil.which("fluidsynth")
    need(exe is not None and SOUNDFONT.exists(), f"need fluidsynth and {SOUNDFONT} (fluidsynth fluid-soundfont-gm)")
    assert exe is not None
    rng = np.random.default_rng(3)
    pm = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=61 if fast else 0)  # GM 62 brass section, GM 1 piano
    step, length, velocity = (0.1, 0.08, 127) if fast else (2.0, 1.9, 30)
    pitches = [60, 62, 64, 65, 67, 69, 71, 72] if fast else [48, 52, 55, 57]
    t = 0.0
    while t < SECONDS:
        pitch = int(rng.choice(pitches))
        instrument.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=t, end=t + length))
        t += step
    pm.instruments.append(instrument)
    mid, wav = folder / f"{name}.mid", folder / f"{name}.wav"
    pm.write(str(mid))
    cmd = fluidsynth_command(exe, mid, wav, SOUNDFONT, RATE, gain=0.8)
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return wav


def run_process(audio: Path, mid: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `idaw process audio --midi-out mid --emotion input`; returns the finished process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "idaw.cli",
            "process",
            str(audio),
            "-o",
            str(mid.with_suffix(".wav")),
            "--no-progress",
            "--no-sidecar",
            "--midi-out",
            str(mid),
            "--emotion",
            "input",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
    )


def process(audio: Path, mid: Path, *extra: str) -> tuple[dict[str, float], str]:
    """Run `idaw process audio --midi-out mid --emotion input`; returns the emotion its summary reports, and stdout."""
    result = run_process(audio, mid, *extra)
    assert result.returncode == 0, result.stderr
    found = re.search(
        r"emotion from the input: (\d+) frames, mean valence ([-+.\d]+), mean arousal ([-+.\d]+)", result.stdout
    )
    assert found, result.stdout
    return {"frames": float(found[1]), "valence": float(found[2]), "arousal": float(found[3])}, result.stdout


@pytest.fixture(scope="module")
def offline_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, float], Path]]:
    need(MODEL.is_file(), f"no trained EmotionRecognizer in {MODEL.parent}")
    folder = tmp_path_factory.mktemp("emotion-offline")
    out: dict[str, tuple[dict[str, float], Path]] = {}
    for name, fast in (("calm", False), ("fast", True)):
        wav = fluidsynth_piece(folder, name, fast)
        for run, extra in (("", ()), ("-again", ("--block-size", "64"))):
            mid = folder / f"{name}{run}.mid"
            heard, _ = process(wav, mid, *extra)
            out[name + run] = (heard, mid)
    return out


def melody_stats(mid: Path) -> tuple[int, float]:
    """(melody notes, mean melody note length in s) of a generated file."""
    melody = [n for n in mido_notes(mid) if n[0] == 0]  # the melody's channel (1, the default)
    return len(melody), float(np.mean([n[4] - n[3] for n in melody]))


def test_offline_arousal_follows_the_input_and_the_midi_follows_the_arousal(
    offline_runs: dict[str, tuple[dict[str, float], Path]],
) -> None:
    calm, calm_mid = offline_runs["calm"]
    fast, fast_mid = offline_runs["fast"]
    assert calm["frames"] > 800 and fast["frames"] > 800  # ~43 frames a second over 20 s
    (calm_notes, calm_length), (fast_notes, fast_length) = melody_stats(calm_mid), melody_stats(fast_mid)
    print(
        f"calm: arousal {calm['arousal']:+.3f}, {calm_notes} melody notes of {calm_length:.3f} s; "
        f"fast: arousal {fast['arousal']:+.3f}, {fast_notes} melody notes of {fast_length:.3f} s"
    )
    assert fast["arousal"] - calm["arousal"] > 0.5
    # Higher arousal: denser melody (the design: arousal drives note density), and shorter notes.
    assert fast_notes > 1.5 * calm_notes
    assert fast_length < calm_length


def test_offline_midi_is_reproducible(offline_runs: dict[str, tuple[dict[str, float], Path]]) -> None:
    for name in ("calm", "fast"):
        first, again = offline_runs[name][1], offline_runs[name + "-again"][1]
        assert first.read_bytes() == again.read_bytes(), name  # same input (other block size): same file
        assert offline_runs[name][0] == offline_runs[name + "-again"][0]


# ---- a net that loads but computes NaN or infinity (issue 9, finding 5) ---------------------------------------------


def dense_layer(inputs: int, outputs: int, kernel: list[list[float]], bias: float, activation: str) -> dict[str, Any]:
    """An RTNeural dense layer; every bias entry `bias`."""
    return {
        "type": "dense",
        "activation": activation,
        "shape": [None, None, outputs],
        "weights": [kernel, [bias] * outputs],
    }


def recognizer(output: str) -> dict[str, Any]:
    """A log-mel 128 -> 64 EmotionRecognizer the loader accepts (finite weights) whose every output is `output`:
    "nan" (3e38 through rows of +10 and -10: +inf + -inf, then tanh), "inf" (3e38 x 10, no activation), "zero", or
    "five" (beyond the generator's -1..1)."""
    first_bias = {"nan": 3e38, "inf": 3e38, "zero": 0.0, "five": 5.0}[output]
    layers = [dense_layer(128, 64, [[0.0] * 64 for _ in range(128)], first_bias, "")]
    if output in ("nan", "inf"):
        rows = [[10.0 if output == "inf" or i % 2 == 0 else -10.0] * 64 for i in range(64)]
        layers.append(dense_layer(64, 64, rows, 0.0, "tanh" if output == "nan" else ""))
    return {"in_shape": [None, None, 128], "layers": layers}


def nets_folder_with(root: Path, output: str) -> Path:
    """A model folder: the four trained MIDI nets (symlinks) and recognizer(output) as the EmotionRecognizer."""
    folder = root / f"nets-{output}"
    folder.mkdir()
    for name in midi_settings.NETS:
        trained = MODEL.parent / f"{name}.json"
        need(trained.is_file(), f"no trained {name} in {MODEL.parent}")
        (folder / f"{name}.json").symlink_to(trained)
    (folder / "EmotionRecognizer.json").write_text(json.dumps(recognizer(output)), encoding="utf-8")
    return folder


@pytest.mark.parametrize("output", ["nan", "inf"])
def test_tracker_treats_non_finite_outputs_as_failure(tmp_path: Path, output: str) -> None:
    tracker = EmotionTracker(nets_folder_with(tmp_path, output) / "EmotionRecognizer.json")
    assert tracker.take_failure() is None
    got = tracker.feed(music_like(1.0))
    assert got.shape == (0, 64)  # no frame's embedding is usable
    assert np.array_equal(tracker.latest(), np.zeros(64, np.float32)) and tracker.version == 1
    failure = tracker.take_failure()
    assert failure is not None and "\n" not in failure
    assert "gave a non-finite output at frame 1; the emotion falls back to its stand-in (zeros" in failure
    assert tracker.take_failure() is None  # reported once
    assert tracker.feed(music_like(1.0, seed=1)).shape == (0, 64) and tracker.version == 1  # the net stays off
    assert tracker.describe()["failure"] == failure and tracker.describe()["frames"] == 0


def test_tracker_clips_finite_outputs_to_the_generators_range(tmp_path: Path) -> None:
    tracker = EmotionTracker(nets_folder_with(tmp_path, "five") / "EmotionRecognizer.json")
    got = tracker.feed(music_like(1.0))
    assert len(got) > 10 and np.array_equal(got, np.ones_like(got))
    assert tracker.failure is None and np.array_equal(tracker.latest(), np.ones(64, np.float32))


def test_process_with_a_nan_recognizer_warns_once_and_uses_the_stand_in(tmp_path: Path) -> None:
    """Before the fix the NaN embedding reached the generator's range check and the run ended with
    "internal error: ValueError: emotion value out of range". Now: exit 0, one warning line, and the MIDI file is
    byte for byte the one a recognizer that always says zeros (the stand-in) gives."""
    import soundfile as sf

    wav = tmp_path / "in.wav"
    sf.write(wav, music_like(4.0, rate=RATE), RATE, subtype="FLOAT")
    runs = {}
    for output in ("nan", "zero"):
        mid = tmp_path / f"{output}.mid"
        runs[output] = (run_process(wav, mid, "--midi-models", str(nets_folder_with(tmp_path, output))), mid)
    failed, nan_mid = runs["nan"]
    assert failed.returncode == 0, failed.stderr
    warning = failed.stderr.splitlines()
    assert len(warning) == 1, failed.stderr
    assert warning[0].startswith("idaw process: warning: the EmotionRecognizer (")
    assert "gave a non-finite output at frame 1;" in warning[0] and "stand-in" in warning[0]
    assert "emotion from the input: 0 frames" in failed.stdout
    assert "(then the EmotionRecognizer failed: stand-in emotion)" in failed.stdout
    zeros, zero_mid = runs["zero"]
    assert zeros.returncode == 0 and zeros.stderr == "", zeros.stderr
    assert len(mido_notes(nan_mid)) > 0
    assert nan_mid.read_bytes() == zero_mid.read_bytes()
