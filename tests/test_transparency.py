"""A neutral chain leaves mastered, full-scale material untouched end to end; added gain never goes beyond ±1.0.

`idaw process` with nothing asked (and `--describe ... --intensity 0`) must write back the very samples it read,
even for a master peaking at -0.01 dBFS: the safety limiter acts only above full scale. With every band at
+12 dB the same material must still leave within ±1.0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from realtime.synth import demo_clip
from tests.support.audio import WriteAudio
from tests.support.idaw_command import RunIdaw

MASTER_PEAK_DBFS = -0.01
EVERY_BAND_PLUS_12 = "low_gain=12,mid1_gain=12,mid2_gain=12,mid3_gain=12,high_gain=12"
RATES = [44100, 48000]


def hot_master(rate: int) -> npt.NDArray[np.float32]:
    """A master-like stereo clip: the demo groove pushed 12 dB into a brickwall at -0.01 dBFS (flat-topped peaks,
    many samples at the peak, as commercial masters have), float32 (frames, 2)."""
    clip = demo_clip(rate, bars=1).astype(np.float64)
    pushed = clip * 10 ** (12 / 20) / np.max(np.abs(clip))
    return np.asarray(np.clip(pushed, -1.0, 1.0) * 10 ** (MASTER_PEAK_DBFS / 20), dtype=np.float32)


def stored_samples(path: Path) -> npt.NDArray[np.generic]:
    """The file's samples in its own format: int32 for PCM (left-aligned by libsndfile), float32 for FLOAT."""
    dtype = "float32" if sf.info(path).subtype == "FLOAT" else "int32"
    data, _ = sf.read(path, dtype=dtype, always_2d=True)
    return np.asarray(data)


def write_hot_master(write_audio: WriteAudio, rate: int, subtype: str) -> Path:
    """The hot master written as `subtype`; checks that it really is hot (far above the old -0.63 dBFS start)."""
    audio = hot_master(rate)
    if subtype == "FLOAT":
        audio[100, 0], audio[101, 1] = 1.0, -1.0  # exactly full scale too (PCM cannot hold +1.0)
    source = write_audio(f"master_{rate}_{subtype}.wav", audio, rate, subtype)
    stored, _ = sf.read(source, dtype="float32", always_2d=True)
    peak_dbfs = 20 * np.log10(np.max(np.abs(stored)))
    assert peak_dbfs > -0.02 and np.mean(np.abs(stored) > 0.93) > 0.01, "the test clip is not hot enough"
    return source


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_24", "PCM_16"])
def test_neutral_chain_writes_back_the_very_samples_it_read(
    rate: int, subtype: str, write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    source = write_hot_master(write_audio, rate, subtype)
    same_format, default_format = tmp_path / "same.wav", tmp_path / "default.wav"

    same = run_idaw("process", source, "-o", same_format, "--subtype", subtype)
    default = run_idaw("process", source, "-o", default_format)  # WAV's default output subtype: FLOAT

    for result in (same, default):
        assert result.returncode == 0, result.stderr
        assert "limiter idle" in result.stdout
    assert sf.info(same_format).subtype == subtype and sf.info(default_format).subtype == "FLOAT"
    # Same format: the stored samples themselves (integers for PCM) are equal.
    np.testing.assert_array_equal(stored_samples(same_format), stored_samples(source))
    # FLOAT output of a PCM input: the same values, exactly (every 16/24-bit value is a float32).
    read_in, _ = sf.read(source, dtype="float32", always_2d=True)
    read_out, _ = sf.read(default_format, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(read_out, read_in)


@pytest.mark.parametrize(("rate", "subtype"), [(44100, "PCM_24"), (48000, "FLOAT")])
def test_describe_at_intensity_zero_is_bit_identical_on_a_hot_master(
    rate: int, subtype: str, write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    """The sidecar (default handler: the trained semantic-EQ model) answers intensity 0 with a flat EQ."""
    source = write_hot_master(write_audio, rate, subtype)
    out = tmp_path / "zero.wav"

    result = run_idaw("process", source, "-o", out, "--subtype", subtype, "--describe", "warm", "--intensity", "0")

    assert result.returncode == 0, result.stderr
    assert "limiter idle" in result.stdout
    np.testing.assert_array_equal(stored_samples(out), stored_samples(source))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(
    "extra",
    [(), ("--drive", "36", "--output-gain", "24"), ("--rate", "96000")],
    ids=["bands", "bands+drive+output", "bands-resampled"],
)
def test_every_band_at_plus_12_db_never_leaves_full_scale(
    rate: int, extra: tuple[str, ...], write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    source = write_hot_master(write_audio, rate, "FLOAT")
    out = tmp_path / "loud.wav"

    result = run_idaw("process", source, "-o", out, "--eq", EVERY_BAND_PLUS_12, *extra)

    assert result.returncode == 0, result.stderr
    assert "limiter on" in result.stdout  # the bound below only means something if the limiter worked
    processed, _ = sf.read(out, dtype="float32", always_2d=True)
    assert np.all(np.isfinite(processed))
    assert np.max(np.abs(processed)) <= 1.0
    assert np.max(np.abs(processed)) > 0.99  # limited to full scale, not silenced or turned far down
