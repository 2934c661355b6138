"""`idaw process` end to end: files in, files out, through the real command line."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import termios
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from scipy import signal

import idaw_core
from realtime import offline, params
from tests.support.audio import WriteAudio, noise
from tests.support.idaw_command import RunIdaw

RATES = [44100, 48000, 96000]


def band_change_db(
    before: npt.NDArray[np.float32], after: npt.NDArray[np.float32], rate: int, low: float, high: float
) -> float:
    """Change in power (dB) between two mono signals over the band low..high Hz, from Welch PSDs."""
    freqs, p_before = signal.welch(before, rate, nperseg=rate // 2)
    _, p_after = signal.welch(after, rate, nperseg=rate // 2)
    band = (freqs >= low) & (freqs <= high)
    return float(10 * np.log10(p_after[band].sum() / p_before[band].sum()))


def sine(rate: int, seconds: float, freq: float, level: float = 0.5) -> npt.NDArray[np.float32]:
    """A mono sine, shape (frames, 1)."""
    t = np.arange(round(rate * seconds)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, np.newaxis]


def peak_frequency(x: npt.NDArray[np.float32], rate: int) -> float:
    """Frequency of the strongest spectral peak, refined by parabolic interpolation of the log spectrum."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + offset) * rate / len(x))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_default_settings_pass_audio_bit_exactly(
    rate: int, channels: int, write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    audio = noise(rate, 0.5, channels, seed=channels)
    source = write_audio("in.wav", audio, rate)
    out = tmp_path / "out.wav"

    result = run_idaw("process", source, "-o", out)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal, no warnings
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(f"wrote {out}")
    info = sf.info(out)
    assert (info.channels, info.samplerate, info.frames) == (channels, rate, len(audio))
    assert info.subtype == "FLOAT"
    processed, _ = sf.read(out, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(processed, audio)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(
    ("setting", "changed_band", "expected_db", "unchanged_band"),
    [
        ("low_gain=12", (20.0, 50.0), 12.0, (2000.0, 15000.0)),  # shelf at 150 Hz: full gain far below it
        ("high_gain=-12", (17000.0, 20000.0), -12.0, (30.0, 1000.0)),  # shelf at 8.2 kHz
    ],
)
def test_eq_setting_changes_the_spectrum_as_asked(
    rate: int,
    setting: str,
    changed_band: tuple[float, float],
    expected_db: float,
    unchanged_band: tuple[float, float],
    write_audio: WriteAudio,
    run_idaw: RunIdaw,
    tmp_path: Path,
) -> None:
    audio = noise(rate, 4.0, 1, level=0.03)
    source = write_audio("in.wav", audio, rate)
    out = tmp_path / "out.wav"

    result = run_idaw("process", source, "-o", out, "--eq", setting)

    assert result.returncode == 0, result.stderr
    assert "limiter idle" in result.stdout
    processed, _ = sf.read(out, dtype="float32")
    changed = band_change_db(audio[:, 0], processed, rate, *changed_band)
    assert changed == pytest.approx(expected_db, abs=1.0), f"{setting}: {changed_band} moved {changed:.2f} dB"
    unchanged = band_change_db(audio[:, 0], processed, rate, *unchanged_band)
    assert abs(unchanged) < 0.3, f"{setting}: band {unchanged_band} changed {unchanged:.2f} dB"


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("source_name", "out_name"), [("in.wav", "out.flac"), ("in.flac", "out.wav")])
def test_flac_round_trip(
    rate: int, source_name: str, out_name: str, write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    audio = noise(rate, 0.5, 2)
    source = write_audio(source_name, audio, rate)
    stored, _ = sf.read(source, dtype="float32", always_2d=True)  # what the FLAC input actually holds
    out = tmp_path / out_name

    result = run_idaw("process", source, "-o", out)

    assert result.returncode == 0, result.stderr
    info = sf.info(out)
    expected_format = "FLAC" if out_name.endswith(".flac") else "WAV"
    expected_subtype = "PCM_24" if expected_format == "FLAC" else "FLOAT"
    assert (info.format, info.subtype) == (expected_format, expected_subtype)
    assert (info.channels, info.samplerate, info.frames) == (2, rate, len(audio))
    processed, _ = sf.read(out, dtype="float32", always_2d=True)
    np.testing.assert_allclose(processed, stored, rtol=0, atol=2.0**-23)  # within one 24-bit step


def test_subtype_option_selects_the_sample_format(write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path) -> None:
    audio = noise(48000, 0.2, 2)
    out = tmp_path / "out.wav"

    result = run_idaw("process", write_audio("in.wav", audio, 48000), "-o", out, "--subtype", "pcm_16")

    assert result.returncode == 0, result.stderr
    assert sf.info(out).subtype == "PCM_16"
    processed, _ = sf.read(out, dtype="float32", always_2d=True)
    np.testing.assert_allclose(processed, audio, rtol=0, atol=2.0**-15)


@pytest.mark.parametrize(("file_rate", "engine_rate"), [(44100, 96000), (48000, 44100), (96000, 48000)])
def test_engine_rate_resamples_there_and_back(
    file_rate: int, engine_rate: int, write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    audio = sine(file_rate, 1.0, 997.0)[: file_rate - 7]  # odd length: no rate ratio divides it evenly
    out = tmp_path / "out.wav"

    result = run_idaw("process", write_audio("in.wav", audio, file_rate), "-o", out, "--rate", engine_rate)

    assert result.returncode == 0, result.stderr
    assert f"engine at {engine_rate} Hz" in result.stdout
    info = sf.info(out)
    assert (info.samplerate, info.frames, info.channels) == (file_rate, len(audio), 1)
    processed, _ = sf.read(out, dtype="float32")
    assert peak_frequency(processed, file_rate) == pytest.approx(997.0, abs=0.05)
    inner = slice(file_rate // 10, -file_rate // 10)  # away from the resamplers' edge transients
    np.testing.assert_allclose(processed[inner], audio[inner, 0], rtol=0, atol=1e-3)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("block_size", [1, 64, 256, 1000])
def test_render_array_is_the_cli_render_path(
    rate: int, block_size: int, write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    audio = noise(rate, 0.5, 2, level=0.2)
    chain = ["--eq", "low_gain=6,mid2_gain=-4,mid2_q=2", "--drive", "12", "--crunch", "0.3", "--mix", "0.8"]
    vector = params.build({"low_gain": 6, "mid2_gain": -4, "mid2_q": 2})
    vector = params.build({"drive": 12, "crunch": 0.3, "mix": 0.8}, base=vector)
    source = write_audio("in.wav", audio, rate)
    out = tmp_path / "out.wav"

    result = run_idaw("process", source, "-o", out, "--block-size", block_size, *chain)

    assert result.returncode == 0, result.stderr
    from_cli, _ = sf.read(out, dtype="float32", always_2d=True)
    from_api = offline.render_array(audio, rate, vector, block_size=block_size)
    assert not np.array_equal(from_api, audio)  # the setting does something
    np.testing.assert_array_equal(from_api, from_cli)
    # How the stream is cut into blocks must not change the result.
    np.testing.assert_array_equal(offline.render_array(audio, rate, vector, block_size=4096), from_cli)


def test_render_array_keeps_shape_and_leaves_the_input_alone() -> None:
    audio = noise(48000, 0.3, 1)[:, 0] * 4  # mono 1-D, loud enough to engage the limiter
    before = audio.copy()
    vector = params.build({"output_gain": 6})

    out = offline.render_array(audio, 48000, vector)
    resampled = offline.render_array(audio, 48000, vector, engine_rate=96000)

    np.testing.assert_array_equal(audio, before)
    assert out.shape == resampled.shape == audio.shape and out.dtype == np.float32
    assert np.max(np.abs(out)) <= idaw_core.LIMITER_CEILING < np.max(np.abs(audio))


def test_processing_is_faster_than_real_time(write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path) -> None:
    audio = noise(48000, 5.0, 2)
    out = tmp_path / "out.wav"

    result = run_idaw("process", write_audio("in.wav", audio, 48000), "-o", out, "--eq", "low_gain=3", "--drive", "6")

    assert result.returncode == 0, result.stderr
    match = re.search(r"5\.00 s, 2 ch, 48000 Hz FLOAT; (\d+)x real time", result.stdout)
    assert match, result.stdout
    assert int(match.group(1)) > 1


@pytest.mark.parametrize(
    ("seconds", "flags", "shown"), [(12.0, [], True), (12.0, ["--no-progress"], False), (5.0, [], False)]
)
def test_progress_bar_only_on_a_terminal_for_long_files(
    seconds: float, flags: list[str], shown: bool, write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    source = write_audio("in.wav", noise(8000, seconds, 1), 8000)
    controller, terminal = pty.openpty()
    # A new pty is 0 columns wide, and tqdm draws nothing in 0 columns.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        result = run_idaw("process", source, "-o", tmp_path / "out.wav", *flags, stderr=terminal)
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)

    assert result.returncode == 0
    assert ("frame" in b"".join(chunks).decode(errors="replace")) is shown


def test_output_replaces_an_existing_file_with_the_usual_permissions(
    write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    """The output is written as a hidden part file and renamed over the old one: the folder ends with the new file
    alone, with the permissions the umask gives a new file (0644 under umask 022), not the part file's."""
    source = write_audio("in.wav", noise(48000, 0.5, 2), 48000)
    out = tmp_path / "out.wav"
    out.write_bytes(b"old contents")
    previous = os.umask(0o027)
    try:
        result = run_idaw("process", source, "-o", out)
    finally:
        os.umask(previous)

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.wav"]
    assert out.stat().st_mode & 0o777 == 0o640
    processed, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == 48000 and processed.shape == (24000, 2)
