"""The chain's compressor (plugin_cpp/core/include/idaw/compressor.h) measured through the real engine.

The test signal is a square wave at the Nyquist frequency (+A, -A, ...): its absolute value is A on every sample,
so the compressor's peak detector sees a constant level and the gain it applies is simply |output| / A, sample by
sample. Checked:
- the static curve: settled gain against Giannoulis, Massberg and Reiss (JAES 2012) eq. 4, transcribed here on its
  own, within 0.1 dB from -60 to 0 dBFS for hard and soft knees, several ratios and a makeup gain;
- the time constants: after a level step the gain reduction follows 1 - exp(-t / attack), after the step back
  exp(-t / release); the constant fitted to the measured curve is within 5 % of the one set;
- ratio 1 is bit-transparent (whatever the other settings), and its makeup is a plain gain;
- the detector is linked: both channels get the same gain, set by the louder one;
- the meter (Engine.counters()) holds the reduction now and its peak, and the --stats line shows it;
- `idaw process --comp-*` narrows the level difference of loud and quiet sections; a bad value gives one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

import idaw_core
from realtime import params
from realtime.live import stats_line
from realtime.offline import render
from tests.support.idaw_command import one_error_line, run_idaw

RATE = 48000
BRIDGE: idaw_core.BridgeCounters = {
    "callbacks": 100,
    "frames": 25600,
    "xruns": 0,
    "input_underflows": 0,
    "input_overflows": 0,
    "output_underflows": 0,
    "output_overflows": 0,
    "last_callback_frames": 256,
}
"""A live stream's counters, for the --stats line."""
STEP_S = 0.1
"""Length of each level step of the static-curve signal: 20 release time constants of 5 ms."""


def static_gain_db(level: float, threshold: float, ratio: float, knee: float) -> float:
    """Giannoulis et al. eq. 4: the output level of the gain computer, minus the input level (knee 0: the hard
    knee, eq. 3)."""
    if knee == 0.0:
        return 0.0 if level <= threshold else threshold + (level - threshold) / ratio - level
    if 2.0 * (level - threshold) < -knee:
        out = level
    elif 2.0 * abs(level - threshold) <= knee:
        out = level + (1.0 / ratio - 1.0) * (level - threshold + knee / 2.0) ** 2 / (2.0 * knee)
    else:
        out = threshold + (level - threshold) / ratio
    return out - level


def nyquist(levels_db: list[float], frames_each: int, channels: int = 1) -> npt.NDArray[np.float32]:
    """A Nyquist square wave whose amplitude steps through `levels_db` (dBFS), `frames_each` frames per level."""
    amplitude = np.repeat(10.0 ** (np.asarray(levels_db) / 20.0), frames_each)
    sign = np.where(np.arange(amplitude.size) % 2 == 0, 1.0, -1.0)
    mono = (amplitude * sign).astype(np.float32)
    return np.repeat(mono[:, np.newaxis], channels, axis=1) if channels > 1 else mono


def compressed(audio: npt.NDArray[np.float32], **settings: float) -> npt.NDArray[np.float32]:
    """`audio` through the engine with the compressor set by name (threshold=..., ratio=...) and all else neutral."""
    vector = params.build({f"comp_{name}": value for name, value in settings.items()})
    return render(audio, RATE, vector).audio


def gain_db(out: npt.NDArray[np.float32], audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return np.asarray(20.0 * np.log10(np.abs(out.astype(np.float64)) / np.abs(audio.astype(np.float64))))


@pytest.mark.parametrize(
    ("threshold", "ratio", "knee", "makeup"),
    [
        (-20.0, 4.0, 0.0, 0.0),
        (-20.0, 4.0, 12.0, 0.0),
        (-40.0, 20.0, 6.0, 0.0),
        (-10.0, 1.5, 24.0, 0.0),
        (-50, 8, 6, 12),
    ],
)
def test_the_static_curve_is_the_formula(threshold: float, ratio: float, knee: float, makeup: float) -> None:
    levels = [float(level) for level in range(-60, 1, 2)]
    frames = round(STEP_S * RATE)
    audio = nyquist(levels, frames)
    out = compressed(audio, threshold=threshold, ratio=ratio, knee=knee, makeup=makeup, attack=1.0, release=5.0)
    measured = gain_db(out, audio).reshape(len(levels), frames)[:, -frames // 10 :].mean(axis=1)
    want = np.array([static_gain_db(level, threshold, ratio, knee) + makeup for level in levels])
    worst = float(np.max(np.abs(measured - want)))
    print(f"threshold {threshold}, ratio {ratio}, knee {knee}, makeup {makeup}: worst error {worst:.4f} dB")
    assert worst <= 0.1
    assert np.all(np.abs(out) <= 1.0)
    if ratio > 1.0:  # it does compress: the top level comes out quieter than it went in (less the makeup)
        assert measured[-1] - makeup < -1.0


def fitted_time_constant_ms(reduction: npt.NDArray[np.float64], final: float, rising: bool) -> float:
    """The time constant of an exponential approach of `reduction` (dB, one value per sample) towards its end
    (`final` when rising, 0 when falling), fitted over the part between 10 % and 90 % of the way."""
    remaining = (final - reduction) / final if rising else reduction / final
    n = np.arange(reduction.size)
    part = (remaining > 0.1) & (remaining < 0.9)
    slope = np.polyfit(n[part], np.log(remaining[part]), 1)[0]
    return float(-1.0 / (slope * RATE) * 1000.0)


@pytest.mark.parametrize(("attack", "release"), [(0.5, 20.0), (5.0, 200.0), (50.0, 1000.0)])
def test_attack_and_release_follow_their_time_constants(attack: float, release: float) -> None:
    # Threshold -30 dBFS, ratio 4, hard knee: a step from -40 to -10 dBFS asks for 15 dB of reduction.
    hold = round(10 * max(attack, release) / 1000.0 * RATE)
    audio = nyquist([-40.0, -10.0, -40.0], hold)
    out = compressed(audio, threshold=-30.0, ratio=4.0, knee=0.0, attack=attack, release=release)
    reduction = -gain_db(out, audio)
    final = 15.0
    assert reduction[hold - 1] == pytest.approx(0.0, abs=1e-6)  # nothing before the step
    assert reduction[2 * hold - 1] == pytest.approx(final, abs=0.01)
    got_attack = fitted_time_constant_ms(reduction[hold : 2 * hold], final, rising=True)
    got_release = fitted_time_constant_ms(reduction[2 * hold :], final, rising=False)
    print(f"attack {attack} ms -> {got_attack:.4f} ms; release {release} ms -> {got_release:.4f} ms")
    assert got_attack == pytest.approx(attack, rel=0.05)
    assert got_release == pytest.approx(release, rel=0.05)


def noise(seconds: float, channels: int = 2, seed: int = 7) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    audio = rng.standard_normal((round(seconds * RATE), channels)) * 0.2
    return np.clip(audio, -0.99, 0.99).astype(np.float32)


def test_ratio_one_is_bit_transparent_and_its_makeup_a_gain() -> None:
    audio = noise(2.0)
    plain = render(audio, RATE, params.defaults()).audio
    settings: dict[str, Any] = {"threshold": -50.0, "ratio": 1.0, "knee": 0.0, "attack": 0.1, "release": 5.0}
    assert np.array_equal(compressed(audio, **settings), plain)
    soft = (audio / 4).astype(
        np.float32
    )  # peaks below -6 dBFS, so 6 dB of makeup stays below the safety limiter's full scale
    louder = compressed(soft, **settings, makeup=6.0)
    np.testing.assert_allclose(louder, soft * 10.0 ** (6.0 / 20.0), rtol=1e-6, atol=1e-8)
    # Compressing does change it (the test above could not pass by the compressor doing nothing).
    assert not np.array_equal(compressed(audio, **{**settings, "ratio": 4.0}), plain)


def test_the_meter_reports_the_reduction_now_and_its_peak() -> None:
    engine = idaw_core.Engine()
    engine.prepare(float(RATE), 256, 1)
    engine.set_parameters_now(params.build({"comp_threshold": -30.0, "comp_ratio": 4.0, "comp_knee": 0.0}))
    assert engine.counters()["compressor_peak_reduction_db"] == 0.0
    loud = nyquist([-10.0], RATE)[:, np.newaxis].copy()  # 20 dB above the threshold: 15 dB of reduction once settled
    engine.render(loud, 256)
    counters = engine.counters()
    assert counters["compressor_reduction_db"] == pytest.approx(15.0, abs=1e-3)
    assert counters["compressor_peak_reduction_db"] == pytest.approx(15.0, abs=1e-3)
    engine.render(nyquist([-60.0], RATE)[:, np.newaxis].copy(), 256)  # far below: released (100 ms), the peak stays
    counters = engine.counters()
    assert counters["compressor_reduction_db"] < 1e-3
    assert counters["compressor_peak_reduction_db"] == pytest.approx(15.0, abs=1e-3)
    line = stats_line(1.0, engine.timing_window(), BRIDGE, 256 / RATE, counters["compressor_reduction_db"])
    assert line.endswith("| compressor -0.0 dB"), line
    assert "compressor" not in stats_line(1.0, engine.timing_window(), BRIDGE, 256 / RATE)


def test_the_detector_is_linked() -> None:
    frames = round(0.3 * RATE)
    loud, quiet = nyquist([-6.0], frames), nyquist([-30.0], frames)
    audio = np.stack([loud, quiet], axis=1)
    out = compressed(audio, threshold=-20.0, ratio=4.0, knee=0.0, attack=1.0, release=50.0)
    gains = gain_db(out, audio)
    np.testing.assert_allclose(gains[:, 0], gains[:, 1], atol=1e-4)
    assert gains[-1, 0] == pytest.approx(static_gain_db(-6.0, -20.0, 4.0, 0.0), abs=0.05)  # the louder one rules


def section_levels_db(audio: npt.NDArray[np.float32], seconds: float) -> npt.NDArray[np.float64]:
    """RMS level (dBFS) of the middle half of each `seconds`-long section."""
    size = round(seconds * RATE)
    sections = audio[: audio.size // size * size].astype(np.float64).reshape(-1, size)[:, size // 4 : 3 * size // 4]
    return np.asarray(10.0 * np.log10(np.mean(sections**2, axis=1)))


def test_idaw_process_narrows_the_dynamics(tmp_path: Path) -> None:
    # Noise in 1 s sections, loud (-12 dBFS RMS) and quiet (-36 dBFS RMS) by turns: 24 dB apart.
    rng = np.random.default_rng(3)
    gains = np.repeat(np.tile([10 ** (-12 / 20), 10 ** (-36 / 20)], 3), RATE)
    audio = np.clip(rng.standard_normal(gains.size) * gains, -0.99, 0.99).astype(np.float32)
    source, target = tmp_path / "sections.wav", tmp_path / "out.wav"
    sf.write(source, audio, RATE, subtype="FLOAT")
    command = ["process", str(source), "-o", str(target), "--no-progress"]
    done = run_idaw(
        *command, "--comp-threshold", "-30", "--comp-ratio", "4", "--comp-attack", "5", "--comp-release", "50"
    )
    assert done.returncode == 0, done.stderr
    assert "compressor up to 1" in done.stdout, done.stdout  # its meter: 13.5 dB asked for at the loud sections
    out, rate = sf.read(target, dtype="float32")
    assert rate == RATE and out.shape == audio.shape
    before, after = section_levels_db(audio, 1.0), section_levels_db(out, 1.0)
    spread_before = float(np.mean(before[0::2]) - np.mean(before[1::2]))
    spread_after = float(np.mean(after[0::2]) - np.mean(after[1::2]))
    print(f"loud minus quiet: {spread_before:.2f} dB in, {spread_after:.2f} dB out")
    assert spread_before == pytest.approx(24.0, abs=0.5)
    # Quiet sections sit below the threshold (untouched, but for the knee); loud ones lose about 3/4 of the 18 dB
    # above it (peaks of noise ride higher than its RMS, so a little more).
    assert np.all(np.abs(after[1::2] - before[1::2]) < 0.5)
    assert 8.0 <= spread_after <= 14.0

    bad = run_idaw(*command, "--comp-ratio", "0.5")
    line = one_error_line(bad.stderr)
    assert bad.returncode == 2 and "comp_ratio" in line and "1..20" in line, line
