"""`idaw demo`: by default the clip is made warm through a real sidecar (the semantic-EQ model), the picture shows
what happened next to SAFE-DB's median warm curve, and the sidecar is gone afterwards; explicit chain options
render without a sidecar. The shipped SAFE median curves match the data and carry nothing but curves and counts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from matplotlib import image
from scipy.signal import welch

import idaw_core
from idaw.cli import build_parser
from realtime import demo, params
from realtime.demo import DEFAULT_PRESET, DEMO_RATE, average_spectrum_db
from realtime.sidecar_link.process import SidecarProcess
from realtime.synth import demo_clip
from sidecar.semantic_eq import median_curves
from tests.support.idaw_command import RunIdaw
from tests.support.needs import need
from tests.support.repo import REPO

DATA = REPO.parent / "shared" / "data"
BAND_CENTRES = 1000.0 * 2.0 ** (np.arange(-15, 13) / 3.0)
"""1/3-octave band centres, 31.5 Hz to 16 kHz."""


def band_levels(audio: npt.NDArray[np.float32], rate: int = DEMO_RATE) -> npt.NDArray[np.float64]:
    """Long-term power (dB) of the mono mix in each 1/3-octave band."""
    f, p = welch(audio.mean(axis=1), fs=rate, nperseg=16384)
    return np.array(
        [10 * np.log10(p[(f >= c * 2 ** (-1 / 6)) & (f < c * 2 ** (1 / 6))].sum() + 1e-30) for c in BAND_CENTRES]
    )


def warm_correlation(before: npt.NDArray[np.float32], after: npt.NDArray[np.float32]) -> float:
    """Correlation, over the 1/3-octave bands that hold energy, of the measured change with SAFE's median warm."""
    level_in, level_out = band_levels(before), band_levels(after)
    used = level_in > level_in.max() - 50.0
    warm = median_curves.load().curve("warm", BAND_CENTRES[used])
    return float(np.corrcoef((level_out - level_in)[used], warm)[0, 1])


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_demo_makes_the_clip_warm_through_its_own_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plotted: list[dict[str, Any]] = []
    real_plot = demo.plot_comparison

    def record_plot(*args: Any, **kwargs: Any) -> None:
        plotted.append({"args": args, "kwargs": kwargs})
        real_plot(*args, **kwargs)

    pids: list[int] = []
    real_start = SidecarProcess.start

    def record_start(self: SidecarProcess, *args: Any, **kwargs: Any) -> str:
        endpoint = real_start(self, *args, **kwargs)
        assert self.pid is not None
        pids.append(self.pid)
        return endpoint

    monkeypatch.setattr(demo, "plot_comparison", record_plot)
    monkeypatch.setattr(SidecarProcess, "start", record_start)
    args = build_parser().parse_args(["demo", "--out", str(tmp_path)])
    assert args._module.run(args) == 0

    # It started a sidecar, with the trained model, and stopped it.
    assert len(pids) == 1 and args.sidecar_handler == "semantic-eq"
    assert not alive(pids[0]), "the demo's sidecar is still running"

    before, rate = sf.read(tmp_path / "before.wav", dtype="float32")
    after, _ = sf.read(tmp_path / "after.wav", dtype="float32")
    assert rate == DEMO_RATE and before.shape == after.shape
    np.testing.assert_array_equal(before, demo_clip(DEMO_RATE))
    assert np.max(np.abs(after)) <= 1.0
    # Warmer: the measured change has SAFE's median warm shape.
    assert warm_correlation(before, after) >= 0.8

    # The picture got the applied EQ (the vector the output was rendered with) and SAFE's median warm curve.
    assert len(plotted) == 1
    call = plotted[0]
    vector = call["args"][3]
    np.testing.assert_array_equal(call["args"][1], after)
    references = call["args"][5] if len(call["args"]) > 5 else call["kwargs"]["references"]
    (label, curve), *others = references.items()
    assert not others and "warm" in label
    np.testing.assert_allclose(curve, median_curves.load().curve("warm", demo.CURVE_FREQS))
    eq = idaw_core.eq_response_db(vector, float(DEMO_RATE), demo.CURVE_FREQS)
    assert np.max(np.abs(eq)) > 1.0, "no EQ was applied"
    picture = image.imread(tmp_path / "spectrum.png")
    assert picture.shape[0] > 400 and picture.shape[1] > 600
    assert float(np.std(picture[..., :3])) > 0.05, "the picture is blank"
    red = (picture[..., 0] > 0.75) & (picture[..., 1] < 0.3) & (picture[..., 2] < 0.3)
    assert red.sum() > 200, "SAFE's median curve (red, dashed) is not in the picture"


def test_explicit_chain_renders_without_a_sidecar(tmp_path: Path, run_idaw: RunIdaw) -> None:
    chain = ",".join(f"{k}={v:g}" for k, v in DEFAULT_PRESET.items())
    # A sidecar that could not start would fail the run: this proves none is asked for.
    result = run_idaw("demo", "--out", str(tmp_path), "--eq", chain, "--sidecar-handler", "no.such:handler")
    assert result.returncode == 0, result.stderr
    assert "chain options" in result.stderr
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


def test_no_sidecar_renders_the_preset_and_describe_needs_the_sidecar(tmp_path: Path, run_idaw: RunIdaw) -> None:
    result = run_idaw("demo", "--out", str(tmp_path), "--no-sidecar", "--sidecar-handler", "no.such:handler")
    assert result.returncode == 0 and "built-in warm preset" in result.stderr, result.stderr
    before, _ = sf.read(tmp_path / "before.wav", dtype="float32")
    after, _ = sf.read(tmp_path / "after.wav", dtype="float32")
    assert warm_correlation(before, after) >= 0.8
    result = run_idaw("demo", "--out", str(tmp_path), "--no-sidecar", "--describe", "warm")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "drop --no-sidecar" in lines[0], result.stderr


def test_demo_clip_is_deterministic_and_sane() -> None:
    clip = demo_clip(DEMO_RATE)
    np.testing.assert_array_equal(clip, demo_clip(DEMO_RATE))
    assert clip.dtype == np.float32 and clip.shape[1] == 2
    assert 5.0 < clip.shape[0] / DEMO_RATE < 15.0
    np.testing.assert_allclose(np.max(np.abs(clip)), 0.5, rtol=1e-6)


def test_shipped_median_curves_hold_only_curves_and_counts() -> None:
    shipped = median_curves.load()
    assert {"warm", "bright"} <= set(shipped.curves) and shipped.counts["warm"] >= 100
    # Warm lifts the low mids over the treble, bright the other way round.
    at = np.array([300.0, 6000.0])
    assert np.diff(shipped.curve("warm", at))[0] < -2.0 < 2.0 < np.diff(shipped.curve("bright", at))[0]
    document = json.loads(median_curves.SHIPPED.read_text())
    assert set(document) == {"format", "description", "freqs_hz", "rows", "median_db"}


def test_shipped_median_curves_name_no_contributor() -> None:
    """No pseudonym of a SAFE-DB contributor (longer than three characters) appears in the shipped file."""
    need((DATA / "safedb").is_dir(), f"SAFE-DB is not in {DATA / 'safedb'} (../shared/data beside the clone)")
    with open(DATA / "safedb" / "SAFEEqualiserUserData.csv", encoding="utf-8", errors="replace", newline="") as f:
        pseudonyms = {row[2].strip() for row in csv.reader(f) if len(row) > 2} - {""}
    text = median_curves.SHIPPED.read_text()
    assert not [p for p in pseudonyms if len(p) > 3 and p in text], "a contributor pseudonym is in the shipped file"


def test_shipped_median_curves_match_the_data(tmp_path: Path) -> None:
    need((DATA / "safedb").is_dir(), f"SAFE-DB is not in {DATA / 'safedb'} (../shared/data beside the clone)")
    computed = median_curves.compute(DATA)
    shipped = median_curves.load()
    assert computed.counts == shipped.counts
    for word in computed.curves:
        np.testing.assert_allclose(shipped.curves[word], computed.curves[word], atol=1e-3)
    written = median_curves.write(tmp_path, computed)
    assert written == tmp_path / median_curves.FILE_NAME
    assert median_curves.load(written).counts == computed.counts
    assert written.stat().st_size < 20_000
