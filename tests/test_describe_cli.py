"""`idaw process --describe`: the trained semantic EQ (the default handler) through a real sidecar process, end to
end; the fallback table stays selectable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from realtime import offline
from realtime.synth import demo_clip
from tests.support.audio import WriteAudio
from tests.support.idaw_command import RunIdaw

RATE = 48000
HANDLER: tuple[str, ...] = ()
"""No --sidecar-handler: the default, the trained semantic-EQ model."""


def band_change_db(before: np.ndarray, after: np.ndarray, low: float, high: float) -> float:
    """Level change (dB) of the mono mix between `low` and `high` Hz."""
    f, p_in = welch(before.mean(axis=1), fs=RATE, nperseg=4096)
    _, p_out = welch(after.mean(axis=1), fs=RATE, nperseg=4096)
    band = (f >= low) & (f < high)
    return float(10 * np.log10(p_out[band].sum() / p_in[band].sum()))


@pytest.mark.parametrize("handler", [HANDLER, ("--sidecar-handler", "fallback")], ids=["default", "fallback"])
def test_warm_and_bright_move_the_spectrum_their_ways(
    tmp_path: Path, write_audio: WriteAudio, run_idaw: RunIdaw, handler: tuple[str, ...]
) -> None:
    clip = demo_clip(RATE)
    source = write_audio("in.wav", clip, RATE)
    changes = {}
    for word in ("warm", "bright"):
        out = tmp_path / f"{word}.wav"
        result = run_idaw("process", source, "-o", out, "--describe", word, "--intensity", "0.7", *handler)
        assert result.returncode == 0, result.stderr
        processed, _ = sf.read(out, dtype="float32")
        changes[word] = band_change_db(clip, processed, 4000, 12000) - band_change_db(clip, processed, 150, 600)
    # Warm tilts energy toward the low mids, bright toward the treble.
    assert changes["warm"] < -1.0 < 1.0 < changes["bright"], changes


def test_intensity_zero_is_bit_identical(tmp_path: Path, write_audio: WriteAudio, run_idaw: RunIdaw) -> None:
    clip = demo_clip(RATE)
    source = write_audio("in.wav", clip, RATE)
    out = tmp_path / "zero.wav"
    result = run_idaw("process", source, "-o", out, "--describe", "warm", "--intensity", "0", *HANDLER)
    assert result.returncode == 0, result.stderr
    processed, _ = sf.read(out, dtype="float32")
    np.testing.assert_array_equal(processed, clip)


def test_unknown_word_gets_one_line_listing_close_words(
    tmp_path: Path, write_audio: WriteAudio, run_idaw: RunIdaw
) -> None:
    source = write_audio("in.wav", demo_clip(RATE)[: RATE * 3], RATE)
    result = run_idaw("process", source, "-o", tmp_path / "x.wav", "--describe", "xqzv", *HANDLER)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idaw process: error:") and "Traceback" not in result.stderr
    assert "closest known words" in lines[0]
    assert not (tmp_path / "x.wav").exists()


def test_describe_keeps_the_loudness_of_the_same_command_without_it(
    tmp_path: Path, write_audio: WriteAudio, run_idaw: RunIdaw
) -> None:
    """The issue's bar: the loudness change (ITU-R BS.1770) at most 0.3 LU median across words; --no-level-match
    keeps the words' own change (which is what made an A/B favour the processed sound)."""
    clip = demo_clip(RATE)
    source = write_audio("in.wav", clip, RATE)
    plain_out = tmp_path / "plain.wav"
    assert run_idaw("process", source, "-o", plain_out).returncode == 0
    plain = offline.integrated_loudness(sf.read(plain_out, dtype="float32")[0], RATE)
    assert plain is not None

    def loudness_change(*args: str) -> tuple[float, str]:
        """(loudness of `idaw process ARGS` less the plain command's, in LU; what it printed)."""
        out = tmp_path / f"{'_'.join(args)}.wav"
        result = run_idaw("process", source, "-o", out, *args)
        assert result.returncode == 0, result.stderr
        after = offline.integrated_loudness(sf.read(out, dtype="float32")[0], RATE)
        assert after is not None
        return after - plain, result.stdout

    matched = {}
    for word in ("warm", "bright", "boomy", "airy"):
        matched[word], said = loudness_change("--describe", word, "--intensity", "1")
        assert "level matched" in said or abs(matched[word]) < offline.LEVEL_DEAD_BAND_LU
    raw, said = loudness_change("--describe", "bright", "--intensity", "1", "--no-level-match")
    print(f"loudness change (LU): matched {matched}, bright unmatched {raw:+.2f}")
    assert float(np.median(np.abs(list(matched.values())))) <= 0.3, matched
    assert "level matched" not in said and abs(raw) > abs(matched["bright"]) + 0.2, (raw, matched)
