"""Parameter steps never click; NaN/Inf never reach the output; nothing leaves louder than full scale, and a neutral
chain leaves everything within full scale untouched."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

import idaw_core
from realtime import params

RATE = 48000.0
BLOCK = 128
SWITCH_AT = 188 * 128  # a block boundary, about 0.5 s in
MARGIN = 1.10  # allowed excess over the larger of the two steady-state jumps


def two_tones(seconds: float = 1.0, level: float = 0.125) -> npt.NDArray[np.float32]:
    """Two tones at `level` each: steady, with a known largest sample-to-sample jump."""
    t = np.arange(int(RATE * seconds)) / RATE
    mono = level * np.sin(2 * np.pi * 220 * t) + level * np.sin(2 * np.pi * 1375 * t)
    return np.repeat(mono[:, None], 2, axis=1).astype(np.float32)


def render(
    vector_before: npt.NDArray[np.float32], vector_after: npt.NDArray[np.float32] | None, audio: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Render `audio` block by block; at SWITCH_AT push `vector_after` as a live snapshot."""
    engine = idaw_core.Engine()
    engine.prepare(RATE, BLOCK, 2)
    engine.set_parameters_now(vector_before)
    out = audio.copy()
    for start in range(0, len(out), BLOCK):
        if start == SWITCH_AT and vector_after is not None:
            assert engine.push_parameters(vector_after, 1)
        engine.process(out[start : start + BLOCK])
    if vector_after is not None:
        assert engine.counters()["applied_sequence"] == 1
    return out


def largest_jump(audio: npt.NDArray[np.float32], start: int, stop: int) -> float:
    return float(np.max(np.abs(np.diff(audio[start:stop].astype(np.float64), axis=0))))


def step_cases() -> list[tuple[str, dict[str, float], float, float]]:
    """(parameter, context settings, from, to): each parameter across its whole range, both ways."""
    band_context = {"low_gain": 12.0, "mid1_gain": 12.0, "mid2_gain": -12.0, "mid3_gain": 12.0, "high_gain": 12.0}
    cases = []
    for spec in params.SPECS:
        context = band_context if spec.name.endswith(("_freq", "_q")) else {}
        if spec.name == "crunch":
            context = {"drive": 24.0}
        cases.append((spec.name, context, spec.minimum, spec.maximum))
        cases.append((spec.name, context, spec.maximum, spec.minimum))
    return cases


@pytest.mark.parametrize(
    ("name", "context", "start", "end"), step_cases(), ids=lambda v: v if isinstance(v, str) else None
)
def test_parameter_step_does_not_click(name: str, context: dict[str, float], start: float, end: float) -> None:
    # -30 dBFS tones keep the chain below full scale even with +24 dB of gain and +12 dB of EQ:
    # this test is about the parameter ramps; the limiter's own behaviour is tested below.
    audio = two_tones(level=0.0316)
    before = params.build({**context, name: start})
    after = params.build({**context, name: end})
    stepped = render(before, after, audio)
    steady_before = render(before, None, audio)
    steady_after = render(after, None, audio)
    # The reference is the same signal rendered, without any change, at each setting the ramp passes
    # through (a boost sweeping over a tone legitimately makes it louder on the way).
    spec = params.SPECS[params.INDEX[name]]
    path = np.geomspace(start, end, 17) if spec.scale == "log" else np.linspace(start, end, 17)
    allowed = max(
        largest_jump(render(params.build({**context, name: float(v)}), None, audio), 4800, len(audio)) for v in path
    )
    window = (SWITCH_AT - 2 * BLOCK, SWITCH_AT + 8 * BLOCK + idaw_core.Engine().ramp_samples)
    jump = largest_jump(stepped, *window)
    assert jump <= allowed * MARGIN + 1e-4, f"{name} {start:g}->{end:g}: jump {jump:.4f} > {allowed:.4f}"
    # And the change really happened: after the ramp the output equals the steady render of the new setting
    # up to filter-state history, i.e. it must be much closer to it than to the old one.
    tail = slice(SWITCH_AT + 9600, len(audio))
    if not np.array_equal(steady_before[tail], steady_after[tail]):
        assert (
            np.max(np.abs(stepped[tail] - steady_after[tail]))
            < 0.1 * np.max(np.abs(steady_before[tail] - steady_after[tail])) + 1e-6
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("block", [1, 64, 256])
def test_nonfinite_input_never_reaches_output(bad: float, block: int) -> None:
    engine = idaw_core.Engine()
    engine.prepare(RATE, 256, 2)
    engine.set_parameters_now(params.build({"low_gain": 12.0, "drive": 12.0, "mid2_q": 10.0, "mid2_gain": 12.0}))
    audio = two_tones(0.5)
    rng = np.random.default_rng(3)
    poisoned = rng.choice(len(audio), 200, replace=False)
    audio[poisoned, rng.integers(0, 2, 200)] = bad
    out = audio.copy()
    engine.render(out, block)
    assert np.all(np.isfinite(out))
    assert engine.counters()["nonfinite_samples"] == 200
    # Recovery: clean audio afterwards is processed exactly like in a fresh engine fed silence for the
    # poisoned samples (the engine turns them into silence).
    clean = two_tones(0.5)
    reference = idaw_core.Engine()
    reference.prepare(RATE, 256, 2)
    reference.set_parameters_now(params.build({"low_gain": 12.0, "drive": 12.0, "mid2_q": 10.0, "mid2_gain": 12.0}))
    expected_input = audio.copy()
    expected_input[~np.isfinite(expected_input)] = 0.0
    reference.render(expected_input, block)
    np.testing.assert_array_equal(out, expected_input)
    after = clean.copy()
    engine.render(after, block)
    assert np.all(np.isfinite(after)) and np.max(np.abs(after)) > 0.05


@pytest.mark.parametrize("rate", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("block", [1, 32, 512])
def test_output_never_exceeds_full_scale(rate: float, block: int) -> None:
    engine = idaw_core.Engine()
    engine.prepare(rate, 512, 2)
    hot = {name: 12.0 for name in ("low_gain", "mid1_gain", "mid2_gain", "mid3_gain", "high_gain")}
    engine.set_parameters_now(
        params.build({**hot, "input_gain": 24.0, "drive": 36.0, "crunch": 1.0, "output_gain": 24.0, "mid2_q": 10.0})
    )
    rng = np.random.default_rng(11)
    n = int(rate)
    square = np.sign(np.sin(2 * np.pi * 55 * np.arange(n) / rate))
    audio = np.stack([rng.uniform(-1, 1, n), square], axis=1).astype(np.float32) * 4.0  # beyond full scale
    engine.render(audio, block)
    assert idaw_core.LIMITER_CEILING == 1.0  # full scale, exactly: not a float step above, not a margin below
    assert np.max(np.abs(audio)) <= idaw_core.LIMITER_CEILING
    assert np.all(np.isfinite(audio))
    assert engine.counters()["limited_samples"] > 0


def test_limiter_rides_the_gain_instead_of_clipping() -> None:
    """A sine driven 6 dB past full scale keeps its shape (gain reduction), unlike a clipper's flat tops."""
    engine = idaw_core.Engine()
    engine.prepare(RATE, 256, 1)
    t = np.arange(int(RATE)) / RATE
    source = (2.0 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)[:, None]
    audio = source.copy()
    engine.render(audio, 256)
    steady, steady_in = audio[24000:, 0], source[24000:, 0]
    # The instant attack puts each crest's loudest samples exactly on full scale, never beyond.
    assert np.max(np.abs(steady)) == idaw_core.LIMITER_CEILING
    at_full_scale = np.mean(np.abs(steady) == idaw_core.LIMITER_CEILING)
    assert at_full_scale < 0.05, "a hard clip would hold two thirds of the samples at full scale"
    # Output = input x a gain that barely moves (held 5 ms, released over 100 ms) around 1/2, the sine's 1/peak.
    loud = np.abs(steady_in) > 0.1
    gain = steady[loud].astype(np.float64) / steady_in[loud]
    assert gain.min() >= 0.5 and gain.max() < 0.52, (gain.min(), gain.max())


@pytest.mark.parametrize("block", [1, 7, 64, 128, 1000])
def test_default_chain_is_bit_transparent_up_to_full_scale(block: int) -> None:
    audio = two_tones(0.25)
    audio *= np.float32(10 ** (-0.01 / 20)) / np.max(np.abs(audio))  # peaks at -0.01 dBFS
    audio[100, 0], audio[200, 1] = 1.0, -1.0  # and exactly at full scale
    out = audio.copy()
    engine = idaw_core.Engine()
    engine.prepare(RATE, 256, 2)
    engine.render(out, block)
    np.testing.assert_array_equal(out, audio)
    assert engine.counters()["limited_samples"] == 0


def test_absurd_finite_input_is_clamped_not_remembered() -> None:
    """One 1e20 sample with drive on behaves exactly like a +36 dBFS one (the clamp), then audio is normal."""
    vector = params.build({"drive": 24.0, "crunch": 0.5, "low_gain": 6.0})
    audio = two_tones(0.5)
    audio[1000, 0] = 1e20
    clamped = audio.copy()
    clamped[1000, 0] = 64.0
    out, expected = audio.copy(), clamped.copy()
    for buffer in (out, expected):
        engine = idaw_core.Engine()
        engine.prepare(RATE, 256, 2)
        engine.set_parameters_now(vector)
        engine.render(buffer, 256)
    np.testing.assert_array_equal(out, expected)
    # Normal audio afterwards: finite, present, and (this setting drives the tones to full scale) never beyond it.
    assert np.all(np.isfinite(out)) and 0.5 < np.max(np.abs(out[12000:])) <= idaw_core.LIMITER_CEILING
