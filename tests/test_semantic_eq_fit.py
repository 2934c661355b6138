"""The vectorised EQ maths matches the engine, and the curve fitter recovers known settings."""

from __future__ import annotations

import numpy as np

import idaw_core
from realtime import params as engine_params
from sidecar.semantic_eq import curvefit, eqmath


def _random_settings(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    unit = rng.uniform(-1.0, 1.0, (count, eqmath.NUM_EQ))
    unit[:, list(eqmath.GAIN_INDEX)] *= 0.75  # gains within +-9 dB, as most SAFE-DB settings
    return eqmath.from_unit(unit)


def test_numpy_and_torch_responses_match_the_engine() -> None:
    import torch

    freqs = eqmath.log_grid(128)
    settings = _random_settings(12, 0)
    settings[3, list(eqmath.GAIN_INDEX)] = 0.0  # all bands bypassed
    ours = eqmath.response_db(settings, freqs, 48000.0)
    theirs = eqmath.response_db_torch(torch.as_tensor(settings), torch.as_tensor(freqs), 48000.0).numpy()
    for row, mine, torch_row in zip(settings, ours, theirs, strict=True):
        snapshot = engine_params.defaults()
        snapshot[engine_params.INDEX["low_gain"] : engine_params.INDEX["high_freq"] + 1] = row.astype(np.float32)
        engine = idaw_core.eq_response_db(snapshot, 48000.0, freqs)
        mine_f32 = eqmath.response_db(snapshot[3:16].astype(np.float64), freqs, 48000.0)
        assert np.max(np.abs(engine - mine_f32)) < 1e-3
        assert np.max(np.abs(mine - torch_row)) < 1e-4


def test_unit_parametrisation_round_trips() -> None:
    settings = _random_settings(50, 1)
    assert np.allclose(eqmath.from_unit(eqmath.to_unit(settings)), settings, rtol=1e-9, atol=1e-9)
    unit = eqmath.to_unit(settings)
    assert unit.min() >= -1.0 and unit.max() <= 1.0


def test_fitter_recovers_known_settings_from_their_response() -> None:
    freqs = eqmath.log_grid()
    errors = []
    for setting in _random_settings(6, 2):
        target = eqmath.response_db(setting, freqs)
        fitted, error = curvefit.fit_curve(target, freqs, starts=6)
        check = float(eqmath.db_rms(eqmath.response_db(fitted, freqs), target))
        assert abs(check - error) < 1e-6
        assert np.all(fitted >= eqmath.LOWER - 1e-9) and np.all(fitted <= eqmath.UPPER + 1e-9)
        errors.append(error)
    assert max(errors) <= 0.5, errors


def test_batched_fitter_agrees() -> None:
    freqs = eqmath.log_grid()
    settings = _random_settings(2, 3)
    fitted, errors = curvefit.fit_curves(eqmath.response_db(settings, freqs), freqs, starts=2, steps=20)
    assert fitted.shape == (2, eqmath.NUM_EQ)
    assert np.all(errors <= 0.5), errors


def _setting(**bands: tuple[float, float]) -> np.ndarray:
    """The flat EQ with peak bands set: mid1=(gain dB, Hz), ..."""
    out = eqmath.DEFAULTS.copy()
    for name, (gain, freq) in bands.items():
        out[engine_params.INDEX[f"{name}_gain"] - engine_params.INDEX["low_gain"]] = gain
        out[engine_params.INDEX[f"{name}_freq"] - engine_params.INDEX["low_gain"]] = freq
    return out


def test_two_opposing_peaks_at_one_frequency_become_one() -> None:
    """The degenerate fit the issue found for "velvety": -8 dB at 1486 Hz beside +5.6 dB at 1502 Hz."""
    freqs = eqmath.log_grid(128)
    fought = _setting(mid1=(-8.0, 1486.0), mid2=(5.6, 1502.0))
    assert curvefit.opposing_peaks(fought) == (1, 2)
    target = eqmath.response_db(fought, freqs, eqmath.REFERENCE_RATE)
    merged, error = curvefit.without_opposing_peaks(fought, target, freqs)
    assert curvefit.opposing_peaks(merged) is None
    gains = merged[list(eqmath.GAIN_INDEX)]
    assert gains[2] == 0.0 and gains[1] < 0.0  # the larger band kept, the other off (bypassed)
    assert error < 0.25  # the pair's net response is one small cut: the merged band still draws it


def test_peaks_apart_or_of_one_sign_are_left_alone() -> None:
    freqs = eqmath.log_grid(128)
    for setting in (_setting(mid1=(-8.0, 500.0), mid2=(5.6, 1502.0)), _setting(mid1=(3.0, 1486.0), mid2=(5.6, 1502.0))):
        assert curvefit.opposing_peaks(setting) is None
        target = eqmath.response_db(setting, freqs, eqmath.REFERENCE_RATE)
        same, error = curvefit.without_opposing_peaks(setting, target, freqs)
        assert np.array_equal(same, setting) and error < 1e-9
