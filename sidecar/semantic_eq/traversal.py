"""Adaptive traversal: from the audio's latent toward a descriptor's centroid, as an EQ the engine applies.

Formula (D(z) is the dB response, on the log-frequency grid, of the VAE decoder's setting for latent z):

    R        = D(z_audio + 1 * (z_target - z_audio)) - D(z_audio)  =  D(z_target) - D(z_audio)
    R       <- R - mean(R)                          (a change of character, not of overall level)
    P        = argmin_P || response(P) - R ||^2     (13 parameters, bounded least squares)
    EQ(t)    = P with every band gain multiplied by t, for intensity t in [0, 1]

Why: the document's z_final = z_audio + t (z_target - z_audio) decoded as an absolute EQ is not flat at
t = 0 (it re-applies the EQ the audio already "has"). Subtracting D(z_audio) makes the EQ *relative*:
the change that takes audio whose character is D(z_audio) to the target's character D(z_target).
Audio that already has the target character has z_audio near z_target, so R, and the change, are small;
audio with the opposite character gets a large R. The endpoint t = 1 is the document's traversal; scaling
the fitted gains by t (instead of re-fitting along the latent path) makes t = 0 exactly flat (all gains
0 dB, which the engine bypasses: bit-transparent), makes the change grow monotonically with t (each band's
dB response grows monotonically with its gain), and lets the intensity knob move without re-running models.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from sidecar.semantic_eq import curvefit, eqmath, features
from sidecar.semantic_eq.bundle import Bundle

F64 = npt.NDArray[np.float64]
MIN_SECONDS = 0.25
SILENCE_DB = -70.0
TINY_GAIN_DB = 0.01
"""Band gains this small after scaling are set to exactly 0 dB (bypassed)."""


def flat_eq() -> F64:
    """The flat setting: every gain exactly 0 dB, frequencies and Qs at their defaults."""
    flat = eqmath.DEFAULTS.copy()
    for g in eqmath.GAIN_INDEX:
        flat[g] = 0.0
    return flat


def audio_latent(bundle: Bundle, audio: npt.ArrayLike, rate: int, normalise: bool = True,
                 power_scale: float | None = None) -> F64 | None:
    """The audio encoder's latent for a clip, or None when it is shorter than MIN_SECONDS or silent.

    `power_scale` (evaluation only) multiplies the power spectrogram instead of normalising it.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.shape[0] < MIN_SECONDS * rate or features.rms_db(x) < SILENCE_DB:
        return None
    power = features.power_spectrogram(features.to_analysis(x, rate))
    if power_scale is not None:
        power = (power * power_scale).astype(np.float32)
    elif normalise:
        power = features.normalise_level(power)
    log_mel, ltas = features.log_mel(torch.as_tensor(power)[None])
    with torch.no_grad():
        z = bundle.encoder(log_mel, ltas)
    out: F64 = z[0].double().numpy()
    return out


def decode(bundle: Bundle, z: npt.ArrayLike) -> F64:
    """Settings (N, 13) in natural units decoded from latents (N, 32) (or (13,) from one latent)."""
    z_arr = np.asarray(z, dtype=np.float64)
    with torch.no_grad():
        unit = bundle.vae.decode(torch.as_tensor(np.atleast_2d(z_arr), dtype=torch.float32))
    params = eqmath.from_unit(unit.double().numpy())
    out: F64 = params[0] if z_arr.ndim == 1 else params
    return out


def latent_curve(bundle: Bundle, z: npt.ArrayLike) -> F64:
    """D(z): dB response on the bundle's grid of the setting decoded from z."""
    return eqmath.response_db(decode(bundle, z), bundle.freqs)


def relative_curve(bundle: Bundle, z_audio: F64, z_target: F64) -> F64:
    """R = D(z_target) - D(z_audio), mean removed: the full-intensity change in dB on the grid."""
    r = latent_curve(bundle, z_target) - latent_curve(bundle, z_audio)
    out: F64 = r - r.mean()
    return out


def full_intensity_eq(bundle: Bundle, z_audio: F64, z_target: F64, starts: int = 6) -> tuple[F64, float, F64]:
    """(setting P fitted to R, its fit error in dB RMS, R) for the traversal's endpoint."""
    curve = relative_curve(bundle, z_audio, z_target)
    params, error = curvefit.fit_curve(curve, bundle.freqs, starts=starts)
    return params, error, curve


def at_intensity(full: F64, intensity: float) -> F64:
    """The setting for intensity t in [0, 1]: gains of `full` times t; t = 0 gives exactly `flat_eq()`."""
    t = float(intensity)
    if not np.isfinite(t) or not 0.0 <= t <= 1.0:
        raise ValueError(f"intensity must be within 0..1, got {intensity!r}")
    if t == 0.0:
        return flat_eq()
    out = np.array(full, dtype=np.float64, copy=True)
    for g in eqmath.GAIN_INDEX:
        gain = float(np.clip(out[g] * t, -eqmath.MAX_GAIN_DB, eqmath.MAX_GAIN_DB))
        out[g] = 0.0 if abs(gain) < TINY_GAIN_DB else gain
    return out
