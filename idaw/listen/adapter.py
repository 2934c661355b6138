"""The listening adapter (design: shared/seeds/aural-architect-adapter.md): from the features of a 2 s frame
(idaw.listen.frames) to an emotion, a tempo, a key and a style, by four small networks, plus the energy sections.

Four heads, each an MLP input → HIDDEN (ReLU) → output, on the frame's features standardised by the training
frames' mean and deviation:

- emotion: EMOTIONS (softmax), each with a (valence, arousal) point in EMOTION_VA that the MIDI generator's mood
  takes;
- BPM: one number, log2(BPM / BPM_CENTRE) (the scale its L1 loss is in: octaves), clamped to BPM_RANGE;
- key: 24 classes, 12 tonics × major/minor (idaw.theory.keys.KeyLabel.index: C major 0 .. B major 11, C minor
  12 .. B minor 23). Not the design's "14 classes (7×2)": seven letter names cannot name F# or Bb, which half of
  the keys need;
- style: an id in STYLE_PROMPTS, a small prompt table.

A recording's (or a section's) answer is the mean of its audible frames' probabilities and the median of their
BPM (`Adapter.judge`). Trained by `idaw train adapter` (idaw.listen.train_adapter) on weak labels (`weak_labels`:
rules of the render, not anyone's judgement of emotion); the weights ship in idaw/listen/weights/adapter.json,
plain JSON (the weight matrices as int8 with one scale per row, base64, to keep it small), read with json and run
with numpy. Its metadata (seeds, versions, settings, data, held-out figures) is in adapter.meta.json beside it.

Also here, one home each: the octave choice between the beat tracker's tempo and the adapter's (`octave_choice`),
and the intro/build/release sections from k-means on frame energy (`energy_sections`).
"""

from __future__ import annotations

import base64
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError
from idaw.listen import frames as frame_features
from idaw.theory.keys import KeyLabel, parse_key_name

F64 = npt.NDArray[np.float64]

EMOTIONS: Final = ("bright", "calm", "tense", "dark", "busy")
EMOTION_VA: Final[Mapping[str, tuple[float, float]]] = {
    "bright": (0.6, 0.6),
    "calm": (0.6, -0.6),
    "tense": (-0.6, 0.6),
    "dark": (-0.6, -0.6),
    "busy": (0.0, 0.9),
}
"""Emotion class → (valence, arousal) in [-1, 1], the mood the MIDI generator takes (live follow): bright is
pleasant and lively, calm pleasant and quiet, tense unpleasant and lively, dark unpleasant and quiet, busy neither
pleasant nor unpleasant and the most lively."""
STYLE_PROMPTS: Final = (
    ("hymn", "hymn: slow, sustained voices, no drums"),
    ("chorale", "chorale: moderate tempo, sustained voices, no drums"),
    ("procession", "procession: brisk, flowing voices, no drums"),
    ("ballad", "ballad: slow band with soft drums"),
    ("groove", "groove: mid-tempo band with drums"),
    ("drive", "drive: fast band with drums"),
)
"""The style table: (id, prompt); a style head's class i is STYLE_PROMPTS[i]."""
KEY_NAMES: Final = tuple(KeyLabel.from_index(i).name for i in range(24))
BPM_RANGE: Final = (60.0, 160.0)
BPM_CENTRE: Final = 100.0
"""The BPM head predicts log2(BPM / BPM_CENTRE)."""
HIDDEN: Final = 128
HEADS: Final = {"emotion": len(EMOTIONS), "bpm": 1, "key": 24, "style": len(STYLE_PROMPTS)}
"""Each head's output size, in the order of the joint loss."""

# Weak labels (rules of the render: `weak_labels`).
BUSY_BPM: Final = 120.0
"""With drums and at least this tempo a piece is busy, whatever its mode."""
LIVELY_BPM: Final = 90.0
"""At or above this tempo a major piece is bright and a minor one tense; below it calm and dark."""
STYLE_BANDS_BPM: Final = (85.0, 115.0)
"""Tempo bands of the style rule: slow below 85, moderate up to 115, fast from 115."""

# Sections.
SECTION_COUNT: Final = 3
MIN_SECTION_FRAMES: Final = 4
"""A run of frames in one energy cluster shorter than this joins its neighbour (sections are contiguous)."""
SECTION_SEED: Final = 0

WEIGHTS_PATH: Final = Path(__file__).parent / "weights" / "adapter.json"
META_PATH: Final = WEIGHTS_PATH.with_name("adapter.meta.json")
FORMAT: Final = "idaw-listen-adapter-1"
MAX_FILE_BYTES: Final = 4 << 20


# --- weak labels ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeakLabels:
    """A rendered piece's targets: class indices into EMOTIONS, STYLE_PROMPTS and KEY_NAMES, and its tempo."""

    emotion: int
    style: int
    key: int
    bpm: float


def emotion_rule(drums: bool, bpm: float, minor: bool) -> str:
    """The weak emotion label: busy with drums at BUSY_BPM or faster; otherwise by mode and tempo (LIVELY_BPM):
    major and lively → bright, major and slow → calm, minor and lively → tense, minor and slow → dark."""
    if drums and bpm >= BUSY_BPM:
        return "busy"
    if minor:
        return "tense" if bpm >= LIVELY_BPM else "dark"
    return "bright" if bpm >= LIVELY_BPM else "calm"


def style_rule(drums: bool, bpm: float) -> str:
    """The weak style label: the tempo band (STYLE_BANDS_BPM: slow, moderate, fast) and whether drums play;
    without drums hymn, chorale, procession; with drums ballad, groove, drive."""
    band = int(np.searchsorted(STYLE_BANDS_BPM, bpm, side="right"))
    return STYLE_PROMPTS[band + (3 if drums else 0)][0]


def weak_labels(labels: Mapping[str, Any]) -> WeakLabels:
    """The targets of a test-set item from its label file's content (idaw.listen.testset: `settings.drums`,
    `tempo_bpm`, `key`); IdawError when the key names none."""
    key = parse_key_name(str(labels.get("key", "")))
    if key is None:
        raise IdawError(f"label key {labels.get('key')!r} names no key")
    drums = bool(labels["settings"]["drums"])
    bpm = float(labels["tempo_bpm"])
    style_ids = [style for style, _ in STYLE_PROMPTS]
    return WeakLabels(
        emotion=EMOTIONS.index(emotion_rule(drums, bpm, key.minor)),
        style=style_ids.index(style_rule(drums, bpm)),
        key=key.index,
        bpm=bpm,
    )


# --- tempo octave --------------------------------------------------------------------------------------------------


def octave_choice(tracker_bpm: float, adapter_bpm: float) -> float:
    """The beat tracker's tempo moved by an octave (× 0.5, × 1 or × 2), whichever is nearest the adapter's BPM in
    log2: the tracker places beats precisely but may count half or double; the adapter hears the pace."""
    candidates = [tracker_bpm * factor for factor in (0.5, 1.0, 2.0)]
    return min(candidates, key=lambda bpm: abs(math.log2(bpm / adapter_bpm)))


# --- the model -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """One MLP head: hidden = relu(w1 @ x + b1); out = w2 @ hidden + b2."""

    w1: F64
    b1: F64
    w2: F64
    b2: F64

    def __call__(self, x: F64) -> F64:
        """The head's outputs (rows × outputs) for standardised features `x` (rows × inputs)."""
        hidden = np.maximum(frame_features.small_product(x, self.w1.T) + self.b1, 0.0)
        out: F64 = frame_features.small_product(hidden, self.w2.T) + self.b2
        return out


@dataclass(frozen=True)
class Prediction:
    """The heads' answers for some frames (rows): probabilities over EMOTIONS, KEY_NAMES and STYLE_PROMPTS, and BPM."""

    emotion: F64
    key: F64
    style: F64
    bpm: F64


@dataclass(frozen=True)
class Judgement:
    """What the adapter says of a span of frames (mean of their probabilities, median BPM)."""

    emotion: F64
    key: F64
    style: F64
    bpm: float

    @property
    def emotion_label(self) -> str:
        """The most likely emotion."""
        return EMOTIONS[int(np.argmax(self.emotion))]

    @property
    def style_index(self) -> int:
        """The most likely style's index in STYLE_PROMPTS."""
        return int(np.argmax(self.style))

    @property
    def key_name(self) -> str:
        """The most likely key ('F# minor')."""
        return KEY_NAMES[int(np.argmax(self.key))]

    def emotion_json(self) -> dict[str, Any]:
        """{"label", "probabilities": {emotion: p}} (p rounded to 3 places)."""
        return {
            "label": self.emotion_label,
            "probabilities": {name: round(float(p), 3) for name, p in zip(EMOTIONS, self.emotion, strict=True)},
        }

    def style_json(self) -> dict[str, Any]:
        """{"id", "prompt"} of the most likely style."""
        style, prompt = STYLE_PROMPTS[self.style_index]
        return {"id": style, "prompt": prompt}


def _softmax(logits: F64) -> F64:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: F64 = exp / exp.sum(axis=1, keepdims=True)
    return result


@dataclass(frozen=True)
class Adapter:
    """The four heads and the feature standardisation they were trained with."""

    mean: F64
    scale: F64
    heads: Mapping[str, Head]

    def predict(self, features: F64) -> Prediction:
        """Every head's answer for each row of `features` (rows × frames.FEATURE_COUNT)."""
        x = (np.atleast_2d(np.asarray(features, dtype=np.float64)) - self.mean) / self.scale
        log2_bpm = self.heads["bpm"](x)[:, 0]
        bpm = np.clip(BPM_CENTRE * np.exp2(np.clip(log2_bpm, -4.0, 4.0)), *BPM_RANGE)
        return Prediction(
            emotion=_softmax(self.heads["emotion"](x)),
            key=_softmax(self.heads["key"](x)),
            style=_softmax(self.heads["style"](x)),
            bpm=bpm,
        )

    def judge(self, features: F64) -> Judgement:
        """The adapter's answer for a span: the mean probabilities and median BPM of the rows of `features` (at
        least one row)."""
        prediction = self.predict(features)
        return Judgement(
            emotion=prediction.emotion.mean(axis=0),
            key=prediction.key.mean(axis=0),
            style=prediction.style.mean(axis=0),
            bpm=float(np.median(prediction.bpm)),
        )

    def to_json(self) -> dict[str, Any]:
        """The weights as the shipped JSON document (see `from_json`)."""
        return {
            "format": FORMAT,
            "feature_names": list(frame_features.FEATURE_NAMES),
            "emotions": list(EMOTIONS),
            "styles": [list(entry) for entry in STYLE_PROMPTS],
            "keys": list(KEY_NAMES),
            "bpm": {"centre": BPM_CENTRE, "range": list(BPM_RANGE), "output": "log2(BPM / centre)"},
            "hidden": HIDDEN,
            "mean": _floats(self.mean),
            "scale": _floats(self.scale),
            "heads": {
                name: {
                    "w1": _quantised(head.w1),
                    "b1": _floats(head.b1),
                    "w2": _quantised(head.w2),
                    "b2": _floats(head.b2),
                }
                for name, head in self.heads.items()
            },
        }


def _floats(values: F64) -> list[float]:
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _quantised(matrix: F64) -> dict[str, Any]:
    """A matrix as int8 rows with one scale each (symmetric: the row's largest magnitude is 127), base64."""
    rows = np.asarray(matrix, dtype=np.float64)
    scales = np.abs(rows).max(axis=1) / 127.0
    scales = np.where(scales > 0, scales, 1.0)
    codes = np.clip(np.round(rows / scales[:, None]), -127, 127).astype(np.int8)
    return {"shape": list(rows.shape), "scales": _floats(scales), "int8": base64.b64encode(codes.tobytes()).decode()}


def quantise(adapter: Adapter) -> Adapter:
    """The adapter as it reads back from its JSON (weights rounded to int8 × scale): what ships and is scored."""
    return from_json(json.loads(json.dumps(adapter.to_json())))


def _matrix(data: Any, shape: tuple[int, int], what: str, name: str) -> F64:
    if not isinstance(data, dict) or data.get("shape") != list(shape) or not isinstance(data.get("int8"), str):
        raise IdawError(f"{name}: {what} is not an int8 matrix of shape {shape}")
    try:
        codes = np.frombuffer(base64.b64decode(data["int8"], validate=True), dtype=np.int8)
    except ValueError:
        raise IdawError(f"{name}: {what} is not valid base64") from None
    scales = _vector(data.get("scales"), shape[0], f"{what} scales", name)
    if codes.size != shape[0] * shape[1]:
        raise IdawError(f"{name}: {what} holds {codes.size} numbers; allowed: {shape[0] * shape[1]}")
    result: F64 = codes.reshape(shape).astype(np.float64) * scales[:, None]
    return result


def _vector(data: Any, size: int, what: str, name: str) -> F64:
    try:
        values = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise IdawError(f"{name}: {what} is not a list of numbers") from None
    if values.shape != (size,):
        raise IdawError(f"{name}: {what} has shape {values.shape}; allowed: ({size},)")
    if not np.all(np.isfinite(values)):
        raise IdawError(f"{name}: {what} holds NaN or infinite numbers")
    return values


def from_json(data: Any, name: str = "the adapter") -> Adapter:
    """The adapter in a parsed JSON document; IdawError naming what is wrong (format, features, shapes, numbers)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IdawError(f"{name}: not an idaw listening adapter (format {FORMAT!r} expected)")
    if data.get("feature_names") != list(frame_features.FEATURE_NAMES):
        raise IdawError(f"{name}: its features are not idaw.listen.frames' ({frame_features.FEATURE_COUNT} named)")
    if data.get("emotions") != list(EMOTIONS) or data.get("styles") != [list(e) for e in STYLE_PROMPTS]:
        raise IdawError(f"{name}: its emotion or style classes are not this idaw's")
    inputs = frame_features.FEATURE_COUNT
    mean = _vector(data.get("mean"), inputs, "mean", name)
    scale = _vector(data.get("scale"), inputs, "scale", name)
    if np.any(scale <= 0):
        raise IdawError(f"{name}: scale holds a value <= 0")
    heads_data = data.get("heads")
    if not isinstance(heads_data, dict) or set(heads_data) != set(HEADS):
        raise IdawError(f"{name}: heads must be exactly {', '.join(HEADS)}")
    heads: dict[str, Head] = {}
    for head, outputs in HEADS.items():
        part = heads_data[head]
        if not isinstance(part, dict):
            raise IdawError(f"{name}: head {head} is not an object")
        heads[head] = Head(
            _matrix(part.get("w1"), (HIDDEN, inputs), f"{head}.w1", name),
            _vector(part.get("b1"), HIDDEN, f"{head}.b1", name),
            _matrix(part.get("w2"), (outputs, HIDDEN), f"{head}.w2", name),
            _vector(part.get("b2"), outputs, f"{head}.b2", name),
        )
    return Adapter(mean, scale, heads)


def load(path: str | os.PathLike[str] = WEIGHTS_PATH) -> Adapter:
    """The adapter stored at `path` (IdawError, one line, for a missing, oversized or malformed file)."""
    from idaw.theory.load import read_json_bounded

    name = os.fspath(path)
    return from_json(read_json_bounded(name, MAX_FILE_BYTES, "an idaw listening adapter (.json)"), name)


@lru_cache(maxsize=1)
def shipped() -> Adapter | None:
    """The shipped adapter, or None where its weights file is absent (a checkout before `idaw train adapter`)."""
    return load(WEIGHTS_PATH) if WEIGHTS_PATH.is_file() else None


# --- sections ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A contiguous span of frames [first, stop) and its name: intro, build or release."""

    first: int
    stop: int
    label: str


def _energy_levels(energy: F64, seed: int) -> npt.NDArray[np.int64]:
    """Each frame's energy cluster, ranked 0 (quietest) .. SECTION_COUNT - 1, from k-means on the energies (scipy's
    kmeans2, k-means++ start, seeded); all 0 when there are fewer distinct energies than clusters."""
    from scipy.cluster.vq import kmeans2

    if len(np.unique(np.round(energy, 6))) < SECTION_COUNT:
        return np.zeros(len(energy), dtype=np.int64)
    with warnings.catch_warnings():  # an empty cluster is warned about; its frames simply go to the others
        warnings.simplefilter("ignore")
        centroids, labels = kmeans2(energy.reshape(-1, 1), SECTION_COUNT, seed=seed, minit="++")
    rank = np.argsort(np.argsort(centroids[:, 0], kind="stable"), kind="stable")
    result: npt.NDArray[np.int64] = rank[labels].astype(np.int64)
    return result


def _runs(levels: npt.NDArray[np.int64]) -> list[list[int]]:
    """[first, stop, level] of each run of equal levels, runs shorter than MIN_SECTION_FRAMES merged into the
    neighbour whose level is nearest (the earlier one on a tie), shortest first, until none is short."""
    runs: list[list[int]] = []
    for i, level in enumerate(levels.tolist()):
        if runs and runs[-1][2] == level:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, int(level)])
    while len(runs) > 1:
        lengths = [stop - first for first, stop, _ in runs]
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= MIN_SECTION_FRAMES:
            break
        neighbours = [j for j in (shortest - 1, shortest + 1) if 0 <= j < len(runs)]
        into = min(neighbours, key=lambda j: (abs(runs[j][2] - runs[shortest][2]), j))
        first = min(runs[into][0], runs[shortest][0])
        stop = max(runs[into][1], runs[shortest][1])
        runs[into] = [first, stop, runs[into][2]]
        del runs[shortest]
        merged: list[list[int]] = []  # neighbours that now share a level become one run
        for run in runs:
            if merged and merged[-1][2] == run[2]:
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        runs = merged
    return runs


def energy_sections(energy: Sequence[float] | F64, seed: int = SECTION_SEED) -> list[Section]:
    """The recording cut into contiguous sections, in time order, from its frames' energies: k-means (k =
    SECTION_COUNT) on the energies, runs shorter than MIN_SECTION_FRAMES merged, then named: the sections at the
    loudest level and those between the first and the loudest are "build", the first is "intro" (unless it is
    itself the loudest), those after the last loudest section are "release". Empty for no frames."""
    values = np.asarray(energy, dtype=np.float64)
    if len(values) == 0:
        return []
    runs = _runs(_energy_levels(values, seed))
    top = max(level for _, _, level in runs)
    peaks = [i for i, run in enumerate(runs) if run[2] == top]
    sections = []
    for i, (first, stop, _) in enumerate(runs):
        if i > peaks[-1]:
            label = "release"
        elif i == 0 and i not in peaks:
            label = "intro"
        else:
            label = "build"
        sections.append(Section(first, stop, label))
    return sections


# --- the analysis's fields -----------------------------------------------------------------------------------------


def analysis_fields(frames: frame_features.Frames, seconds: float, model: Adapter | None = None) -> dict[str, Any]:
    """The fields `idaw analyze song.wav` gets from the adapter: `emotion` ({"label", "probabilities"}), `style`
    ({"id", "prompt"}) and `energy_sections` ([{"time", "end", "label", "emotion"}], seconds), judged on the audible
    frames; with `emotion: null`, `style: null`, no sections and `adapter_found` saying why when there are none or
    the weights are missing."""
    model = shipped() if model is None else model
    usable = frames.usable
    reason = None
    if model is None:
        reason = f"no listening adapter weights ({WEIGHTS_PATH.name}); run `idaw train adapter`"
    elif not usable.any():
        quiet = frame_features.AUDIBLE_DB
        reason = f"no audible frames (every {frame_features.FRAME_S:g} s frame is below {quiet:g} dBFS)"
    if model is None or reason is not None:
        return {"emotion": None, "style": None, "energy_sections": [], "adapter_found": reason}
    prediction = model.predict(frames.values)
    whole = model.judge(frames.values[usable])
    sections = []
    for section in energy_sections(frames.values[:, frame_features.ENERGY_INDEX]):
        span = np.zeros(len(usable), dtype=bool)
        span[section.first : section.stop] = True
        heard = span & usable
        start = 0.0 if section.first == 0 else float(frames.starts[section.first])
        end = seconds if section.stop >= len(frames.starts) else float(frames.starts[section.stop])
        sections.append(
            {
                "time": round(start, 3),
                "end": round(end, 3),
                "label": section.label,
                "emotion": EMOTIONS[int(np.argmax(prediction.emotion[heard].mean(axis=0)))] if heard.any() else None,
            }
        )
    return {"emotion": whole.emotion_json(), "style": whole.style_json(), "energy_sections": sections}


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """The adapter's fields of an analysis as lines of the readable summary."""
    emotion, style = result.get("emotion"), result.get("style")
    if not isinstance(emotion, Mapping) or not isinstance(style, Mapping):
        reason = result.get("adapter_found")
        return [f"Emotion and style: none ({reason})"] if reason else []
    probabilities = emotion.get("probabilities") or {}
    ranked = sorted(probabilities.items(), key=lambda item: -float(item[1]))
    lines = [
        f"Emotion: {emotion['label']} (" + ", ".join(f"{name} {float(p):.2f}" for name, p in ranked[:3]) + ")",
        f"Style: {style['id']} ({style['prompt']})",
    ]
    sections = result.get("energy_sections") or []
    if sections:
        parts = [
            f"{s['label']} {float(s['time']):.0f}-{float(s['end']):.0f} s ({s['emotion'] or '-'})" for s in sections
        ]
        lines.append("Energy: " + "; ".join(parts))
    return lines
