"""How far a descriptor's character fit moves when its inputs move by one float32 rounding step.

The training command fits every word's character (traversal.character_fit) and ships the fits in the bundle. On
another x86 CPU the VAE decoder's float32 sums run through other SIMD widths (AVX-512 vs AVX2 vs SSE) and differ in
the last bit; the multi-start least-squares fit then amplifies that (a band with almost no gain has an almost free
frequency, and the fit keeps the first start under 0.05 dB). This measures the amplification: every element of a
word's decoded settings (float32, unit space), and of the flat latent's, moves by a random whole number of ulps in
-ULPS..ULPS, the character is fitted again, and the result is compared with the unperturbed fit on the unperturbed
character curve: largest change of a parameter (unit space), largest change of the fitted response (dB, on the
bundle's grid), and how much the fit error (dB RMS against the character curve) rose. The last two are what a fit
shipped from another CPU is held to by the reproducibility test (tests/test_semantic_eq_fast_start.py).

    .venv/bin/python -m benchmarks.character_fit_sensitivity [--perturbations 8] [--ulps 1] [--word W ...]

Without --word: every word of the vocabulary (about 7 minutes at 8 perturbations). Prints JSON: per measure the
maximum and the 99th percentile over every (word, perturbation), and the maxima per word.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import numpy.typing as npt
import torch

from sidecar.semantic_eq import curvefit, eqmath
from sidecar.semantic_eq.bundle import Bundle, load_bundle

F64 = npt.NDArray[np.float64]


def decoded_unit(bundle: Bundle, z: F64) -> npt.NDArray[np.float32]:
    """The VAE decoder's settings in unit space (float32, as the decoder computes them) for latent `z`."""
    with torch.no_grad():
        unit = bundle.vae.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32))
    out: npt.NDArray[np.float32] = unit[0].numpy().astype(np.float32)
    return out


def ulp_noise(unit: npt.NDArray[np.float32], ulps: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """`unit` with each element moved by a random whole number of float32 ulps in -ulps..ulps (another summation
    order's last bits)."""
    steps = rng.integers(-ulps, ulps + 1, unit.shape)
    out = unit.copy()
    for _ in range(ulps):
        out = np.where(steps > 0, np.nextafter(out, np.float32(np.inf)), out)
        out = np.where(steps < 0, np.nextafter(out, np.float32(-np.inf)), out)
        steps = steps - np.sign(steps)
    return out.astype(np.float32)


def character_curve(bundle: Bundle, unit: npt.NDArray[np.float32], flat_unit: npt.NDArray[np.float32]) -> F64:
    """The word's character (traversal._character) from decoded unit settings of the word and of the flat latent."""
    c = eqmath.response_db(eqmath.from_unit(unit.astype(np.float64)), bundle.freqs) - eqmath.response_db(
        eqmath.from_unit(flat_unit.astype(np.float64)), bundle.freqs
    )
    out: F64 = c - c.mean()
    return out


def fit_error(bundle: Bundle, params: F64, curve: F64) -> float:
    """dB RMS between the response of `params` and the character `curve` (the fit's own error measure)."""
    return float(np.sqrt(np.mean((eqmath.response_db(params, bundle.freqs) - curve) ** 2)))


MEASURES = ("unit_params", "response_db", "fit_error_rise_db")


def measure(perturbations: int, ulps: int, words: list[str], seed: int = 0) -> dict[str, object]:
    """Max and p99 over words x perturbations of each of MEASURES, and the maxima per word."""
    bundle = load_bundle()
    rng = np.random.default_rng(seed)
    flat_unit = decoded_unit(bundle, bundle.flat_latent())
    moves: dict[str, list[float]] = {name: [] for name in MEASURES}
    per_word: dict[str, dict[str, float]] = {}
    for word in words or bundle.words:
        unit = decoded_unit(bundle, bundle.centroids[bundle.words.index(word)])
        curve = character_curve(bundle, unit, flat_unit)
        base, _ = curvefit.fit_curve(curve, bundle.freqs)
        base_response = eqmath.response_db(base, bundle.freqs)
        mine: dict[str, list[float]] = {name: [] for name in MEASURES}
        for _ in range(perturbations):
            moved_curve = character_curve(bundle, ulp_noise(unit, ulps, rng), ulp_noise(flat_unit, ulps, rng))
            moved, _ = curvefit.fit_curve(moved_curve, bundle.freqs)
            mine["unit_params"].append(float(np.max(np.abs(eqmath.to_unit(moved) - eqmath.to_unit(base)))))
            mine["response_db"].append(float(np.max(np.abs(eqmath.response_db(moved, bundle.freqs) - base_response))))
            mine["fit_error_rise_db"].append(fit_error(bundle, moved, curve) - fit_error(bundle, base, curve))
        for name in MEASURES:
            moves[name] += mine[name]
        per_word[word] = {name: float(np.max(mine[name])) for name in MEASURES}
    summary: dict[str, object] = {
        name: {"max": float(np.max(v)), "p99": float(np.percentile(v, 99)), "cases": len(v)}
        for name, v in moves.items()
    }
    if words:
        summary["per_word_max"] = per_word
    return summary


def main() -> None:
    """Command line: prints the measurement as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perturbations", type=int, default=8, help="perturbed refits per word")
    parser.add_argument("--ulps", type=int, default=1, help="largest move of each decoded value, in float32 ulps")
    parser.add_argument("--word", action="append", default=[], help="a word to measure (default: every word)")
    args = parser.parse_args()
    result = measure(args.perturbations, args.ulps, args.word)
    print(json.dumps({"torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), **result}, indent=2))


if __name__ == "__main__":
    main()
