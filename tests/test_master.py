"""Mastering (realtime/master.py) through the core's true-peak limiter, measured on a band rendered with fluidsynth.

Checked, with meters the limiter does not share (pyloudnorm for BS.1770 loudness, scipy's resampler for true peak):
- the master reaches its loudness target within 0.1 LU and its true peak stays at or under the ceiling, read at 4x
  (BS.1770-4's definition) and at 8x, for a gentle target, a loud one that needs 10 dB of limiting, and a quiet one;
- where the limiter has nothing to do the master is the input times one gain, sample for sample (time-aligned, as
  long as the input, nothing else changed);
- the meter itself reads a sine whose samples miss its crests 3 dB above its sample peak;
- `idaw master` writes the file and says what it did in one line; bad settings, silence and a missing file give
  one line and exit 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest
import soundfile as sf

from idaw.base.errors import IdawError
from realtime.master import master, true_peak_dbtp
from tests.support.follow_music import Half, render
from tests.support.idaw_command import one_error_line, run_idaw
from tests.support.levels import peak_db

RATE = 48000
F32 = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def band(tmp_path_factory: pytest.TempPathFactory) -> F32:
    """16 bars of a band (piano, bass, arpeggio, drums; 120 then 140 BPM), stereo, peaking at -6 dBFS."""
    music = render((Half(0, 120.0, 8), Half(7, 140.0, 8)), RATE, tmp_path_factory.mktemp("master"), level=0.5)
    mono = music.audio.astype(np.float32)
    right = np.concatenate([np.zeros(24, np.float32), 0.8 * mono[:-24]])  # a little width: later and quieter
    return np.ascontiguousarray(np.stack([mono, right], axis=1))


def loudness(audio: F32) -> float:
    """BS.1770 integrated loudness by pyloudnorm, measured here on its own."""
    return float(pyloudnorm.Meter(RATE).integrated_loudness(audio.astype(np.float64)))


@pytest.mark.parametrize(
    ("target", "ceiling"),
    [(-14.0, -1.0), (-9.0, -1.0), (-20.0, -3.0)],
    ids=["streaming", "loud", "quiet"],
)
def test_the_master_reaches_its_loudness_under_its_true_peak_ceiling(band: F32, target: float, ceiling: float) -> None:
    result = master(band, RATE, target, ceiling)
    out = result.audio
    print(
        f"{loudness(band):.2f} -> {loudness(out):.2f} LUFS, true peak {peak_db(band, 4):.2f} -> {peak_db(out, 4):.2f}"
        f" dBTP (8x: {peak_db(out, 8):.2f}), gain {result.gain_db:+.2f} dB, limiter {result.limiter_peak_db:.2f} dB,"
        f" {result.rounds} rounds"
    )
    assert out.shape == band.shape and out.dtype == np.float32
    assert abs(loudness(out) - target) <= 0.1
    assert peak_db(out, 4) <= ceiling
    assert peak_db(out, 8) <= ceiling
    assert result.true_peak_out <= ceiling and result.loudness_out == pytest.approx(loudness(out), abs=1e-6)
    if target == -9.0:
        assert result.limiter_peak_db > 6.0  # loud: the peaks had to come down a long way
        assert peak_db(out, 4) > ceiling - 0.5  # and they were brought to the ceiling, not below it


def test_a_target_the_ceiling_cannot_allow_is_approached_and_reported_as_missed(band: F32) -> None:
    result = master(band, RATE, -5.0, -20.0)
    assert not result.reached and result.loudness_out < -6.0 and abs(result.gain_db) <= 60.0
    assert peak_db(result.audio, 4) <= -20.0 and np.all(np.isfinite(result.audio))
    assert master(band, RATE, -14.0, -1.0).reached


def test_where_the_limiter_has_nothing_to_do_the_master_is_the_input_times_one_gain(band: F32) -> None:
    result = master(band, RATE, -22.0, -1.0)
    assert result.limiter_peak_db == 0.0 and result.rounds == 1
    gain = np.float32(10.0 ** (result.gain_db / 20.0))
    np.testing.assert_array_equal(result.audio, (band * gain).astype(np.float32))


def test_the_meter_reads_a_crest_between_samples() -> None:
    # A sine at a quarter of the rate, sampled 45 degrees off its crests: every sample is 3.01 dB below them. It
    # fades in and out over 20 ms (an abrupt start would ring above its crests in any band-limited reading).
    n = np.arange(RATE)
    fade = np.minimum(1.0, np.minimum(n, RATE - 1 - n) / 960.0)
    sine = (0.5 * fade * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)
    sample_peak = 20 * math.log10(float(np.max(np.abs(sine))))
    assert sample_peak == pytest.approx(20 * math.log10(0.5) - 3.01, abs=0.01)
    assert true_peak_dbtp(sine, RATE) == pytest.approx(20 * math.log10(0.5), abs=0.05)
    assert true_peak_dbtp(np.zeros((100, 2), np.float32), RATE) == -math.inf


@pytest.mark.parametrize(
    ("setting", "value"),
    [("target loudness", {"target_lufs": -3.0}), ("true-peak ceiling", {"ceiling_dbtp": 1.0})],
)
def test_settings_out_of_range_are_refused(band: F32, setting: str, value: dict[str, Any]) -> None:
    with pytest.raises(IdawError, match=f"{setting} .* out of range; allowed"):
        master(band, RATE, **value)


def test_the_limiter_refuses_bad_audio_and_leaves_it_untouched() -> None:
    import idaw_core

    limiter = idaw_core.TruePeakLimiter(RATE, 2, -1.0)
    audio = np.full((2, 1000), 0.5, np.float32)
    audio[1, 500] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        limiter.process(audio)
    assert np.isnan(audio[1, 500]) and np.all(audio[0] == 0.5)
    with pytest.raises(ValueError, match="with 2 channels, got 3"):
        limiter.process(np.zeros((3, 10), np.float32))
    with pytest.raises(IdawError, match="NaN or infinite"):
        master(audio.T, RATE)


def test_idaw_master_writes_the_master_and_says_what_it_did(band: F32, tmp_path: Path) -> None:
    source, target = tmp_path / "mix.wav", tmp_path / "master.flac"
    sf.write(source, band, RATE, subtype="FLOAT")
    done = run_idaw("master", source, "-o", target, "--lufs", "-14", "--ceiling", "-1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and "-> -14.0 LUFS (target -14)" in lines[0] and "(ceiling -1)" in lines[0], lines
    out, rate = sf.read(target, dtype="float32")
    assert rate == RATE and out.shape == band.shape
    assert abs(loudness(out) - -14.0) <= 0.1 and peak_db(out, 4) <= -1.0  # after 24-bit FLAC too


@pytest.mark.parametrize(
    ("what", "make", "words"),
    [
        ("silence", lambda p: sf.write(p, np.zeros((RATE, 2), np.float32), RATE), "too short or too quiet"),
        ("missing", lambda p: None, "not found"),
        ("not audio", lambda p: p.write_text("hello"), "not a readable audio file"),
    ],
)
def test_idaw_master_refuses_what_it_cannot_master_in_one_line(
    tmp_path: Path, what: str, make: Any, words: str
) -> None:
    source = tmp_path / "in.wav"
    make(source)
    done = run_idaw("master", source, "-o", tmp_path / "out.wav")
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and words in line, (what, line)
    assert not (tmp_path / "out.wav").exists()


def test_idaw_master_refuses_a_target_out_of_range_in_one_line(band: F32, tmp_path: Path) -> None:
    source = tmp_path / "mix.wav"
    sf.write(source, band, RATE)
    done = run_idaw("master", source, "-o", tmp_path / "out.wav", "--lufs", "0")
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "target loudness 0 LUFS is out of range; allowed: -40..-5 LUFS" in line, line
