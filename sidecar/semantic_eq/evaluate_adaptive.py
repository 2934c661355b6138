"""Metrics of the adaptive traversal on held-out real clips, and leave-one-word-out synonym prediction.

Adaptive EQ (every held-out clip that is not pink noise, rendered through the real engine):
- 'warm' / 'bright' at intensity 0.7: Pearson correlation, over 1/3-octave bands that hold energy, between the
  change of the long-term average spectrum (dB) and SAFE-DB's median response for that word;
- intensity 0 is bit-identical to the input;
- the size of the change (RMS over bands of the LTAS change) grows with intensity (0, 0.1, ..., 1);
- the clip pre-filtered with the word's SAFE median EQ ("already has it") gets a smaller change than the
  clip pre-filtered with the opposite word's median EQ.
Synonyms: each vocabulary word is hidden in turn and resolved from its embedding among the others; the curve
decoded from the neighbours' weighted centroid is correlated with the word's own mean curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.semantic_eq import curvefit, engine_render, eqmath, synonyms, traversal
from sidecar.semantic_eq.audio_corpus import Clip
from sidecar.semantic_eq.evaluate_models import RENDER_PEAK, render_through_engine, summary
from sidecar.semantic_eq.handler import SemanticEqHandler
from sidecar.semantic_eq.labelled import Labelled
from sidecar.semantic_eq.median_curves import safe_median_curve
from sidecar.semantic_eq.vocab import Vocabulary

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
BAND_CENTRES = 1000.0 * 2.0 ** (np.arange(-16, 13) / 3.0)
"""1/3-octave band centres, 25 Hz to 16 kHz."""
INTENSITIES = np.round(np.arange(0.0, 1.01, 0.1), 2)
OPPOSITE = {"warm": "bright", "bright": "warm"}


def band_levels(audio: F32, rate: int = 44100, n_fft: int = 16384) -> F64:
    """Long-term average power (dB) in each 1/3-octave band."""
    x = np.asarray(audio, dtype=np.float64)
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    hop = n_fft // 2
    window = np.hanning(n_fft)
    frames = [np.abs(np.fft.rfft(x[i : i + n_fft] * window)) ** 2 for i in range(0, x.shape[0] - n_fft + 1, hop)]
    psd = np.mean(frames, axis=0)
    f = np.fft.rfftfreq(n_fft, 1.0 / rate)
    levels = []
    for fc in BAND_CENTRES:
        sel = (f >= fc * 2 ** (-1 / 6)) & (f < fc * 2 ** (1 / 6))
        levels.append(10.0 * np.log10(psd[sel].sum() + 1e-30))
    return np.array(levels)


def _change(before: F64, after: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
    used = (before > before.max() - 50.0) & (after > after.max() - 60.0)
    return after - before, used


def adaptive_metrics(
    handler: SemanticEqHandler,
    clips: list[Clip],
    lab: Labelled,
    split: str = "test",
    intensities: npt.ArrayLike = INTENSITIES,
) -> dict[str, Any]:
    """The adaptive-EQ figures over every non-noise clip of `split` (see the module docstring)."""
    freqs = handler.bundle.freqs
    medians = {w: safe_median_curve(lab, w, BAND_CENTRES) for w in OPPOSITE}
    median_eq = {w: curvefit.fit_curve(safe_median_curve(lab, w, freqs), freqs)[0] for w in OPPOSITE}
    corr: dict[str, list[float]] = {w: [] for w in OPPOSITE}
    identical: list[bool] = []
    monotonic: list[bool] = []
    smaller: dict[str, list[bool]] = {w: [] for w in OPPOSITE}
    ratios: dict[str, list[float]] = {w: [] for w in OPPOSITE}
    names: list[str] = []
    for clip in (c for c in clips if c.split == split and c.kind != "pink"):
        names.append(clip.name)
        before = band_levels(clip.audio)
        quiet = (clip.audio * min(1.0, RENDER_PEAK / max(float(np.abs(clip.audio).max()), 1e-9))).astype(np.float32)
        for word in OPPOSITE:
            sizes = []
            for t in np.asarray(intensities, dtype=np.float64):
                result = handler.describe([word], float(t), clip.audio, 44100)
                if t == 0.0:  # the engine's own output for the snapshot, compared bit for bit
                    rendered = engine_render.render_mono(quiet, 44100, result.snapshot)
                    identical.append(bool(np.array_equal(rendered, quiet)))
                change, used = _change(before, band_levels(render_through_engine(clip.audio, result.eq)))
                sizes.append(float(np.sqrt(np.mean(change[used] ** 2))))
                if abs(t - 0.7) < 1e-9:
                    corr[word].append(float(np.corrcoef(change[used], medians[word][used])[0, 1]))
            if len(sizes) > 2:
                monotonic.append(bool(np.all(np.diff(sizes) > 0.0)))
            same = render_through_engine(clip.audio, median_eq[word])
            other = render_through_engine(clip.audio, median_eq[OPPOSITE[word]])
            size_same = _eq_size(handler, word, same, freqs)
            size_other = _eq_size(handler, word, other, freqs)
            smaller[word].append(size_same < size_other)
            ratios[word].append(size_same / max(size_other, 1e-9))
    return {
        "clips": len(names),
        "clip_names": names,
        "ltas_change_correlation_with_safe_median_at_0.7": {
            w: {**summary(v), "fraction_ge_0.8": float(np.mean(np.array(v) >= 0.8)) if v else float("nan")}
            for w, v in corr.items()
        },
        "intensity_0_bit_identical_fraction": float(np.mean(identical)) if identical else float("nan"),
        "change_strictly_increasing_with_intensity_fraction": float(np.mean(monotonic)) if monotonic else float("nan"),
        "already_has_character_gets_smaller_change_fraction": {w: float(np.mean(v)) for w, v in smaller.items()},
        "change_ratio_already_vs_opposite": {w: summary(v) for w, v in ratios.items()},
    }


def _eq_size(handler: SemanticEqHandler, word: str, audio: F32, freqs: F64) -> float:
    """RMS (dB over the grid) of the response of the EQ chosen for `word` at 0.7 on `audio`."""
    eq = handler.describe([word], 0.7, audio, 44100).eq
    return float(np.sqrt(np.mean(eqmath.response_db(eq, freqs) ** 2)))


def synonym_metrics(handler: SemanticEqHandler, vocab: Vocabulary) -> dict[str, Any]:
    """Leave-one-word-out: correlation of the synonym-predicted curve with each word's own mean curve."""
    bundle = handler.bundle
    if bundle.embeddings is None:
        return {"available": False}
    correlations, own, baseline, refused, examples = [], [], [], [], {}
    overall = vocab.curves.mean(axis=0)
    for i, word in enumerate(bundle.words):
        target = vocab.curves[i]
        own.append(float(np.corrcoef(traversal.latent_curve(bundle, bundle.centroids[i]), target)[0, 1]))
        baseline.append(float(np.corrcoef(overall, target)[0, 1]))
        try:
            r = synonyms.resolve(word, bundle.words, bundle.embeddings, exclude=i, query=bundle.embeddings[i])
        except synonyms.NoCloseDescriptorError:
            refused.append(word)
            continue
        z = sum(w * bundle.centroids[bundle.words.index(n)] for n, w, _ in r.neighbours)
        c = float(np.corrcoef(traversal.latent_curve(bundle, np.asarray(z)), target)[0, 1])
        correlations.append(c)
        if word in ("warm", "bright", "dark", "muddy", "airy", "harsh", "soft", "thin", "boomy", "tinny"):
            examples[word] = {"neighbours": [n for n, _, _ in r.neighbours], "correlation": c}
    hist, edges = np.histogram(correlations, bins=np.linspace(-1.0, 1.0, 11))
    return {
        "available": True,
        "words": len(bundle.words),
        "predicted_vs_own_correlation": summary(correlations),
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(h) for h in hist]},
        "fraction_positive": float(np.mean(np.array(correlations) > 0)) if correlations else float("nan"),
        "refused_no_close_neighbour": {"count": len(refused), "words": refused[:40]},
        "reference_own_centroid_vs_own_curve": summary(own),
        "baseline_mean_curve_of_all_words_vs_own_curve": summary(baseline),
        "examples": examples,
    }
