"""The music21 corpus as symbolic training pieces: which pieces, parsed into note events and per-beat chords.

Three sources ship inside music21 (nothing is downloaded):

* ``chorale`` — the Bach chorales (371 numbers, 350 distinct scores; four voices; the only source with harmony,
  so chord targets come from here).
* ``essen``  — German folk songs from the Essen collection (monophonic; major and minor; sung, moderate tempo).
* ``ryans``  — Ryan's Mammoth Collection of fiddle tunes (monophonic; reels, jigs, hornpipes, airs ...).

`select_pieces` lists them in a fixed, seeded-independent order so a ``--max-pieces`` subset always takes the same
pieces; `load_piece` parses one (music21 imported lazily) and caches the result as ``.npz`` under the cache dir.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from realtime.nets.chords import label_beats

CACHE_VERSION = "symbolic-v2"
SOURCES = ("chorale", "essen", "ryans")
DEFAULT_QUOTAS: dict[str, int] = {"chorale": 350, "essen": 220, "ryans": 220}
ESSEN_FILES = ("erk10.abc", "altdeu10.abc", "boehme10.abc", "kinder0.abc", "ballad10.abc", "fink0.abc")
MAX_SECONDS = 60.0  # pieces are cut here so one long tune cannot dominate an epoch

# Note flags (bit mask in column 5 of SymbolicPiece.notes).
STACCATO, ACCENT, TENUTO, FERMATA, SLUR, ORNAMENT = 1, 2, 4, 8, 16, 32

# Conventional speed of the "running" (most common) note value, notes per second, used when a score has no
# metronome mark (almost always). Chorales ~ quarter = 80; reels ~ 7.5 sixteenths (or eighths) a second, etc.
_RUNNING_RATE: dict[str, float] = {
    "chorale": 1.33,
    "essen": 2.5,
    "reel": 7.5,
    "hornpipe": 5.5,
    "clog": 5.5,
    "jig": 6.0,
    "slipjig": 6.0,
    "strathspey": 4.5,
    "fling": 5.0,
    "march": 4.0,
    "waltz": 2.6,
    "air": 2.0,
    "ryans": 4.5,
}


@dataclass(frozen=True)
class PieceRef:
    """Where one piece lives: ``pid`` is unique and stable, e.g. ``chorale/bwv269`` or ``essen/erk10.abc#12``."""

    pid: str
    source: str
    locator: str  # corpus name (chorales), or file path (ABC)
    index: int = -1  # tune number inside an ABC collection file, -1 for whole files


@dataclass
class SymbolicPiece:
    """One parsed piece.

    notes: float32 (N, 6) — onset and duration in quarter notes, MIDI pitch, velocity (0 = unspecified),
        part index, flag bits (STACCATO ...). Sorted by onset.
    dynamics: float32 (M, 2) — offset in quarter notes and level 0..1 of each dynamics marking (often empty).
    chords: int16 (B, 3) per beat — root pitch class, quality code (`chords.QUALITIES`), bass pitch class; -1 where
        the piece has no harmony (monophonic sources).
    meta: tempo_qpm, tempo_source ('marking' | 'convention'), key_tonic (pc), key_mode ('major' | 'minor'),
        key_confidence, ts_num, ts_den, beat_ql, bar_ql, pickup_ql (bar position = (offset + pickup_ql) % bar_ql),
        length_ql, tune_type, running_rate (notes/s of the most common note value), title, group (pieces of one
        group never go to different splits), n_parts.
    """

    ref: PieceRef
    notes: npt.NDArray[np.float32]
    dynamics: npt.NDArray[np.float32]
    chords: npt.NDArray[np.int16]
    meta: dict[str, Any]

    @property
    def seconds_per_ql(self) -> float:
        """Seconds per quarter note at the piece's tempo."""
        return 60.0 / float(self.meta["tempo_qpm"])

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return float(self.meta["length_ql"]) * self.seconds_per_ql


def _corpus_dir() -> Path:
    from music21 import corpus

    return Path(str(corpus.getWork("bach/bwv269"))).parent.parent


def _abc_tunes(path: Path) -> list[str]:
    """The tunes of an ABC collection file, each as text starting with its X: line."""
    text = path.read_text(encoding="latin-1")
    parts = re.split(r"(?m)^X:", text)
    return ["X:" + p for p in parts[1:] if re.search(r"(?m)^K:", p)]


def select_pieces(max_pieces: int | None = None, quotas: dict[str, int] | None = None) -> list[PieceRef]:
    """The training pieces in a fixed order: all sources interleaved, ``max_pieces`` scaling the quotas down.

    Returns at most ``max_pieces`` refs (every source represented when ``max_pieces >= 3``).
    """
    from music21 import corpus

    want = dict(quotas or DEFAULT_QUOTAS)
    if max_pieces is not None and max_pieces < sum(want.values()):
        total = sum(want.values())
        scaled = {s: max(1, round(q * max_pieces / total)) for s, q in want.items() if q > 0}
        while sum(scaled.values()) > max_pieces:
            biggest = max(scaled, key=lambda s: scaled[s])
            scaled[biggest] -= 1
        while sum(scaled.values()) < max_pieces:
            smallest = min(scaled, key=lambda s: scaled[s] / want[s])
            scaled[smallest] += 1
        want = scaled
    root = _corpus_dir()
    lists: dict[str, list[PieceRef]] = {}
    # The Riemenschneider numbering lists 21 chorales twice: 371 numbers, 350 distinct scores.
    names = list(dict.fromkeys(str(n) for n in corpus.chorales.Iterator(returnType="filename")))
    lists["chorale"] = [PieceRef(f"chorale/{n.split('/')[-1]}", "chorale", n) for n in names]
    per_file = [(f, len(_abc_tunes(root / "essenFolksong" / f))) for f in ESSEN_FILES]
    essen: list[PieceRef] = []
    for i in range(max(n for _, n in per_file)):  # round-robin over files for variety
        essen.extend(
            PieceRef(f"essen/{f}#{i}", "essen", str(root / "essenFolksong" / f), i) for f, n in per_file if i < n
        )
    lists["essen"] = essen
    ryans = sorted((root / "ryansMammoth").glob("*.abc"))
    stride = max(1, len(ryans) // max(1, want.get("ryans", 1)))
    order = ryans[::stride] + [p for i, p in enumerate(ryans) if i % stride]
    lists["ryans"] = [PieceRef(f"ryans/{p.stem}", "ryans", str(p)) for p in order]
    chosen = {s: lists[s][: want.get(s, 0)] for s in SOURCES}
    out: list[PieceRef] = []
    for i in range(max(len(v) for v in chosen.values())):
        out.extend(v[i] for v in chosen.values() if i < len(v))
    return out[:max_pieces] if max_pieces is not None else out


def _parse(ref: PieceRef) -> tuple[Any, str]:
    """(music21 score, ABC header text or '') for a ref."""
    from music21 import converter, corpus

    if ref.source == "chorale":
        return corpus.parse(ref.locator), ""
    path = Path(ref.locator)
    text = _abc_tunes(path)[ref.index] if ref.index >= 0 else path.read_text(encoding="latin-1")
    return converter.parse(text, format="abc"), text


def _tune_type(ref: PieceRef, header: str, title: str) -> str:
    if ref.source != "ryans":
        return ref.source
    field = re.search(r"(?m)^R:\s*(.+)$", header)
    words = f"{field.group(1) if field else ''} {title}".lower().replace(" ", "")
    for kind in ("slipjig", "reel", "hornpipe", "clog", "jig", "strathspey", "fling", "march", "waltz", "air"):
        if kind in words:
            return kind
    return "ryans"


def _group(ref: PieceRef, header: str, top_pitches: list[int]) -> str:
    """Split group: Essen variants share their catalogue number, chorales share a hymn tune (soprano contour)."""
    if ref.source == "essen":
        number = re.search(r"(?m)^N:\s*(\S+)", header)
        return "essen/" + re.sub(r"[A-Z]+$", "", number.group(1)) if number else ref.pid
    if ref.source == "chorale":
        steps = np.diff(np.asarray(top_pitches[:13], dtype=np.int64))
        return "chorale/" + ",".join(str(int(s)) for s in steps)
    return ref.pid


def _flags(element: Any) -> int:
    from music21 import articulations, expressions

    bits = 0
    for art in element.articulations:
        if isinstance(art, articulations.Staccato | articulations.Staccatissimo | articulations.Spiccato):
            bits |= STACCATO
        elif isinstance(art, articulations.Accent | articulations.StrongAccent):
            bits |= ACCENT
        elif isinstance(art, articulations.Tenuto | articulations.DetachedLegato):
            bits |= TENUTO
    for expr in element.expressions:
        if isinstance(expr, expressions.Fermata):
            bits |= FERMATA
        elif isinstance(expr, expressions.Ornament | expressions.Trill | expressions.Turn):
            bits |= ORNAMENT
    if element.editorial.get("slurred", False):
        bits |= SLUR
    return bits


def extract(ref: PieceRef, score: Any, header: str = "") -> SymbolicPiece:
    """Parse a music21 score into a SymbolicPiece (see its docstring for what each array holds)."""
    from music21 import dynamics, spanner, tempo

    for slur in score.recurse().getElementsByClass(spanner.Slur):
        for element in slur.getSpannedElements():
            element.editorial["slurred"] = True
    ts = score.recurse().getElementsByClass("TimeSignature").first()
    ts_num, ts_den = (ts.numerator, ts.denominator) if ts is not None else (4, 4)
    beat_ql = float(ts.beatDuration.quarterLength) if ts is not None else 1.0
    bar_ql = float(ts.barDuration.quarterLength) if ts is not None else 4.0
    first_bar = score.parts[0].getElementsByClass("Measure").first() if score.parts else None
    pickup = float(first_bar.paddingLeft) if first_bar is not None else 0.0
    rows: list[tuple[float, float, float, float, float, float]] = []
    top: list[tuple[float, int]] = []
    parts = list(score.parts) or [score]
    for p_index, part in enumerate(parts):
        for n in part.flatten().stripTies().notes:
            dur = float(n.duration.quarterLength)
            if dur <= 0:  # grace notes
                continue
            velocity = float(n.volume.velocity or 0)
            for pitch in n.pitches:
                rows.append((float(n.offset), dur, float(pitch.midi), velocity, float(p_index), float(_flags(n))))
                if p_index == 0:
                    top.append((float(n.offset), int(pitch.midi)))
    notes = np.asarray(sorted(rows), dtype=np.float32).reshape(-1, 6)
    marks = score.recurse().getElementsByClass(tempo.MetronomeMark)
    explicit = [m for m in marks if m.number is not None and not m.numberImplicit]
    title = str(score.metadata.title) if score.metadata is not None and score.metadata.title else ref.pid
    kind = _tune_type(ref, header, title)
    top_durs = notes[notes[:, 4] == 0, 1] if len(notes) else np.asarray([1.0])
    values, counts = np.unique(np.round(top_durs * 12) / 12, return_counts=True)
    running = float(values[np.argmax(counts)])
    if explicit:
        qpm, tempo_source = float(explicit[0].getQuarterBPM()), "marking"
    else:
        qpm, tempo_source = _RUNNING_RATE.get(kind, _RUNNING_RATE[ref.source]) * 60.0 * running, "convention"
    qpm = float(np.clip(qpm, 30.0, 400.0))
    max_ql = MAX_SECONDS * qpm / 60.0
    notes = notes[notes[:, 0] < max_ql]
    notes[:, 1] = np.minimum(notes[:, 1], max_ql - notes[:, 0])
    length_ql = float(np.max(notes[:, 0] + notes[:, 1])) if len(notes) else 0.0
    dyn = [
        (float(d.getOffsetInHierarchy(score)), float(d.volumeScalar or 0.5))
        for d in score.recurse().getElementsByClass(dynamics.Dynamic)
    ]
    key = score.analyze("key")
    meta: dict[str, Any] = {
        "tempo_qpm": qpm,
        "tempo_source": tempo_source,
        "key_tonic": int(key.tonic.pitchClass),
        "key_mode": str(key.mode),
        "key_confidence": float(key.correlationCoefficient),
        "ts_num": int(ts_num),
        "ts_den": int(ts_den),
        "beat_ql": beat_ql,
        "bar_ql": bar_ql,
        "pickup_ql": pickup,
        "length_ql": length_ql,
        "tune_type": kind,
        "running_rate": qpm / 60.0 / running,
        "title": title,
        "group": _group(ref, header, [p for _, p in sorted(top)]),
        "n_parts": len(parts),
    }
    n_beats = int(np.ceil((length_ql + pickup % beat_ql) / beat_ql)) if beat_ql > 0 else 0
    if len(parts) >= 3:
        chords = label_beats(score, n_beats, beat_ql, pickup % beat_ql)
    else:
        chords = np.full((n_beats, 3), -1, dtype=np.int16)
    return SymbolicPiece(ref, notes, np.asarray(dyn, dtype=np.float32).reshape(-1, 2), chords, meta)


def _cache_path(cache_dir: Path, ref: PieceRef) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", ref.pid)
    return cache_dir / CACHE_VERSION / f"{safe}.npz"


def load_piece(ref: PieceRef, cache_dir: Path) -> SymbolicPiece | None:
    """The parsed piece (from the cache when there), or None when it cannot be parsed or has no notes."""
    path = _cache_path(cache_dir, ref)
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("empty"):
                return None
            return SymbolicPiece(ref, data["notes"], data["dynamics"], data["chords"], meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        score, header = _parse(ref)
        piece: SymbolicPiece | None = extract(ref, score, header)
    except Exception:
        piece = None
    if piece is None or len(piece.notes) < 8:
        np.savez(path, meta=json.dumps({"empty": True}))
        return None
    np.savez_compressed(
        path,
        notes=piece.notes,
        dynamics=piece.dynamics,
        chords=piece.chords,
        meta=json.dumps(piece.meta),
    )
    return piece
