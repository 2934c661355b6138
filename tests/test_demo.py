"""`idaw demo`: the clip is rendered through the chain and the picture shows what happened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from matplotlib import image

import idaw_core
from realtime import params
from realtime.demo import DEFAULT_PRESET, DEMO_RATE, average_spectrum_db
from realtime.synth import demo_clip


def test_demo_writes_before_after_and_picture(tmp_path: Path, run_idaw) -> None:  # type: ignore[no-untyped-def]
    result = run_idaw("demo", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    before, rate_before = sf.read(tmp_path / "before.wav", dtype="float32")
    after, rate_after = sf.read(tmp_path / "after.wav", dtype="float32")
    assert rate_before == rate_after == DEMO_RATE
    assert before.shape == after.shape and before.shape[1] == 2
    np.testing.assert_array_equal(before, demo_clip(DEMO_RATE))
    assert np.max(np.abs(after)) <= 1.0

    # The audible change follows the EQ curve the picture draws.
    freqs, level_in = average_spectrum_db(before, DEMO_RATE)
    _, level_out = average_spectrum_db(after, DEMO_RATE)
    band = (freqs > 60) & (freqs < 12000) & (level_in > np.max(level_in) - 50)
    curve = idaw_core.eq_response_db(params.build(DEFAULT_PRESET), float(DEMO_RATE), freqs[band])
    change = (level_out - level_in)[band]
    assert np.corrcoef(change, curve)[0, 1] > 0.9
    assert np.median(np.abs(change - curve)) < 0.5

    picture = image.imread(tmp_path / "spectrum.png")
    assert picture.shape[0] > 400 and picture.shape[1] > 600
    assert float(np.std(picture[..., :3])) > 0.05, "the picture is blank"


def test_demo_clip_is_deterministic_and_sane() -> None:
    clip = demo_clip(DEMO_RATE)
    np.testing.assert_array_equal(clip, demo_clip(DEMO_RATE))
    assert clip.dtype == np.float32 and clip.shape[1] == 2
    assert 5.0 < clip.shape[0] / DEMO_RATE < 15.0
    np.testing.assert_allclose(np.max(np.abs(clip)), 0.5, rtol=1e-6)
