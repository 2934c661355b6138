"""The song sketch's first stage: a prompt becomes a structure (genre, mood, key, tempo, form, a progression per
section, instruments, production style), written as `structure.json`.

- Genre: the genre-convention table (genres.json, music-generation-architecture.md §1.3; ten genres), matched to
  the prompt by all-MiniLM-L6-v2: a genre's score is the prompt's cosine similarity with its description plus the
  best one with its name or an alias ("indie rock music"). Below GENRE_MIN_SCORE the prompt names no genre and the
  default is taken (the structure says so); `genre=` overrides (a name or an alias; anything else is refused).
- Mood (valence, arousal in -1..1): idaw.text.mood (Russell's circumplex read by all-MiniLM-L6-v2), the reading
  `--mood` gives the MIDI generator.
- Key: `key=` overrides; else minor when the mood is clearly negative (valence < -0.2), major when clearly
  positive (> 0.2), otherwise by the genre's share of minor songs; the tonic among the genre's usual ones, seeded.
- Tempo: `bpm=` overrides; else the genre's range, placed by arousal.
- Form: the genre's form fitted to the duration (fitted_form): whole sections are repeated or dropped first, then
  choruses take up the rest, so the song has the even number of bars nearest duration * bpm / 240.
- Progressions: the genre's, per section role and mode, in music21's Roman-numeral syntax, one chord a bar.

Everything random draws from one seeded generator, so a prompt, its options and a seed give the same structure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError, check_in_range
from idaw.text.mood import mood
from idaw.theory.keys import KeyLabel, parse_key_name

GENRES_PATH: Final = Path(__file__).with_name("genres.json")
SCHEMA_VERSION: Final = 1
MAX_PROMPT_CHARACTERS: Final = 500
"""Longer prompts are read up to here (MiniLM reads 256 word pieces at most anyway); the structure says so."""
DURATION_RANGE_S: Final = (10.0, 600.0)
BPM_RANGE: Final = (40.0, 220.0)
DEFAULT_DURATION_S: Final = 180.0
DEFAULT_GENRE: Final = "pop"
"""What an empty prompt gets (the structure says it used the default)."""
CLEAR_VALENCE: Final = 0.2
"""A valence beyond +-this decides the mode (major above, minor below)."""

GENRE_MIN_SCORE: Final = 0.6
"""A best genre score below this means the prompt names no genre (measured: prompts naming one score 0.9-1.5,
bare moods such as "happy" or "angry" 0.3-0.6)."""

SECTION_ROLES: Final = {
    "verse": "verse",
    "head": "verse",
    "pre-chorus": "bridge",
    "chorus": "chorus",
    "drop": "chorus",
    "bridge": "bridge",
    "break": "bridge",
    "build": "verse",
    "solo": "verse",
    "intro": "verse",
    "outro": "chorus",
}
"""Which of a genre's progressions each kind of section plays."""
DROPPABLE: Final = ("solo", "bridge", "pre-chorus", "break", "build", "verse", "chorus", "head")
"""Sections removed (later repeats first) when a form is too long for its duration, in this order."""


@dataclass(frozen=True)
class Genre:
    """One row of the genre-convention table (genres.json)."""

    name: str
    aliases: tuple[str, ...]
    description: str
    bpm: tuple[float, float]
    minor_share: float
    tonics: tuple[str, ...]
    progressions: dict[str, dict[str, tuple[str, ...]]]
    """mode ("major" | "minor") -> section role ("verse" | "chorus" | "bridge") -> Roman numerals."""
    form: tuple[tuple[str, int], ...]
    programs: dict[str, int]
    drums: str
    production: tuple[str, ...]


@dataclass(frozen=True)
class Section:
    """One section of the song."""

    name: str
    bars: int
    start_bar: int
    progression: tuple[str, ...]


@dataclass(frozen=True)
class Structure:
    """What structure.json holds (see the module docstring)."""

    prompt: str
    genre: str
    genre_from: str
    """'option', 'prompt, score S' or 'default'."""
    valence: float
    arousal: float
    mood_octants: dict[str, float]
    key: str
    bpm: float
    bars: int
    duration_s: float
    sections: tuple[Section, ...]
    programs: dict[str, int]
    drums: str
    production: tuple[str, ...]
    seed: int
    notes: tuple[str, ...] = field(default=())
    """What the reading did that a user should know (defaults used, a prompt cut)."""

    def to_json(self) -> dict[str, Any]:
        """The structure as structure.json writes it."""
        data = asdict(self)
        data["schema_version"] = SCHEMA_VERSION
        return data


@lru_cache(maxsize=1)
def genres() -> tuple[Genre, ...]:
    """The genre-convention table, read and checked once."""
    rows = json.loads(GENRES_PATH.read_text(encoding="utf-8"))["genres"]
    table = []
    for row in rows:
        table.append(
            Genre(
                name=row["name"],
                aliases=tuple(row["aliases"]),
                description=row["description"],
                bpm=(float(row["bpm"][0]), float(row["bpm"][1])),
                minor_share=float(row["minor_share"]),
                tonics=tuple(row["tonics"]),
                progressions={
                    mode: {role: tuple(chords) for role, chords in roles.items()}
                    for mode, roles in row["progressions"].items()
                },
                form=tuple((str(name), int(bars)) for name, bars in row["form"]),
                programs={part: int(program) for part, program in row["programs"].items()},
                drums=row["drums"],
                production=tuple(row["production"]),
            )
        )
    return tuple(table)


def genre_named(text: str) -> Genre:
    """The genre called `text` (its name or an alias, any case); raises IdawError listing the genres."""
    wanted = text.strip().lower()
    for genre in genres():
        if wanted == genre.name or wanted in (a.lower() for a in genre.aliases):
            return genre
    names = ", ".join(g.name for g in genres())
    raise IdawError(f"unknown genre '{text}'; known genres: {names} (or one of their aliases)")


@lru_cache(maxsize=1)
def _genre_vectors() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], tuple[int, ...]]:
    """(descriptions (G, D), names and aliases as "NAME music" (N, D), how many names each genre has)."""
    from idaw.text.embedding import embed_texts

    table = genres()
    names = [[g.name.replace("-", " "), *g.aliases] for g in table]
    descriptions = embed_texts([g.description for g in table])
    labels = embed_texts([f"{n} music" for ns in names for n in ns])
    return descriptions, labels, tuple(len(ns) for ns in names)


def genre_scores(prompt: str) -> dict[str, float]:
    """Each genre's score for the prompt (see the module docstring), by genre name."""
    from idaw.text.embedding import embed_texts

    descriptions, labels, counts = _genre_vectors()
    query = embed_texts([prompt])[0]
    label_similarity = labels @ query
    scores = {}
    start = 0
    for genre, description, count in zip(genres(), descriptions, counts, strict=True):
        scores[genre.name] = float(description @ query) + float(np.max(label_similarity[start : start + count]))
        start += count
    return scores


def fitted_form(template: tuple[tuple[str, int], ...], bars: int) -> list[tuple[str, int]]:
    """The sections of `template` with exactly `bars` bars in all. Too short: another verse and chorus go in
    after the first chorus (a form without them repeats its middle section) while a whole pair fits. Too long:
    sections are dropped (the kinds in DROPPABLE order, later ones first; never the first or the last section, never
    the last chorus), then the longest is shortened. What remains is filled by the choruses from the last one
    back, each at most doubled, and then by the last section."""
    names = [name for name, _ in template]
    lengths = [length for _, length in template]

    def put(at: int, name: str, length: int) -> None:
        names.insert(at, name)
        lengths.insert(at, length)

    def remove(at: int) -> None:
        del names[at], lengths[at]

    if "verse" in names and "chorus" in names:
        verse, chorus = lengths[names.index("verse")], lengths[names.index("chorus")]
        while sum(lengths) + verse + chorus <= bars:
            after_first_chorus = names.index("chorus") + 1
            put(after_first_chorus, "chorus", chorus)
            put(after_first_chorus, "verse", verse)
    else:
        middle = len(names) // 2
        while sum(lengths) + lengths[middle] <= bars:
            put(middle, names[middle], lengths[middle])
    for kind in DROPPABLE:
        while sum(lengths) > bars and len(names) > 2:
            candidates = [i for i in range(1, len(names) - 1) if names[i] == kind]
            if kind == "chorus":
                candidates = candidates[:-1]  # the last chorus stays
            if not candidates:
                break
            remove(candidates[-1])
    while sum(lengths) > bars:
        longest = max(range(len(lengths)), key=lambda i: lengths[i])
        if lengths[longest] == 1:  # more sections than bars: the first one goes
            remove(0)
            continue
        lengths[longest] -= max(1, min(lengths[longest] // 2, sum(lengths) - bars))
    remainder = bars - sum(lengths)
    for i in reversed(range(len(names))):
        if names[i] in ("chorus", "drop", "head") and remainder > 0:
            added = min(remainder, lengths[i])
            lengths[i] += added
            remainder -= added
    lengths[-1] += remainder
    return list(zip(names, lengths, strict=True))


def make_structure(
    prompt: str,
    duration_s: float = DEFAULT_DURATION_S,
    genre: str | None = None,
    key: str | None = None,
    bpm: float | None = None,
    seed: int = 0,
) -> Structure:
    """The structure for a prompt (see the module docstring); options override what the prompt says. Raises
    IdawError for an unknown genre or key, a duration or tempo out of range, or a prompt that is not text."""
    if not isinstance(prompt, str):
        raise IdawError("the prompt must be text")
    check_in_range("duration", duration_s, DURATION_RANGE_S, "s")
    if bpm is not None:
        check_in_range("tempo", bpm, BPM_RANGE, "BPM")
    notes: list[str] = []
    text = " ".join(prompt.split())
    if len(text) > MAX_PROMPT_CHARACTERS:
        text = text[:MAX_PROMPT_CHARACTERS]
        notes.append(f"the prompt was read up to its first {MAX_PROMPT_CHARACTERS} characters")
    chosen_key = None
    if key is not None:
        chosen_key = parse_key_name(key.replace(":", " "))
        if chosen_key is None:
            raise IdawError(f"unknown key '{key}'; write a tonic and a mode, e.g. 'A minor', 'Bb major', 'F#'")
    rng = np.random.default_rng(seed)
    if genre is not None:
        picked, genre_from = genre_named(genre), "option"
    else:
        scores = genre_scores(text) if text else {}
        best = max(scores, key=lambda name: scores[name]) if scores else DEFAULT_GENRE
        if scores and scores[best] >= GENRE_MIN_SCORE:
            picked, genre_from = genre_named(best), f"prompt, score {scores[best]:.2f}"
        else:
            picked, genre_from = genre_named(DEFAULT_GENRE), "default"
            notes.append(
                f"the prompt names no genre: the default ({DEFAULT_GENRE}) was used"
                if text
                else f"an empty prompt: the default genre ({DEFAULT_GENRE}) and a neutral mood"
            )
    valence, arousal, octants = mood(text) if text else (0.0, 0.0, {})
    if chosen_key is None:
        if valence < -CLEAR_VALENCE:
            minor = True
        elif valence > CLEAR_VALENCE:
            minor = False
        else:
            minor = bool(rng.random() < picked.minor_share)
        tonic = parse_key_name(str(rng.choice(list(picked.tonics))))
        assert tonic is not None, picked.tonics  # the table's tonics are checked by the tests
        chosen_key = KeyLabel(tonic.tonic, minor)
    if bpm is None:
        low, high = picked.bpm
        bpm = float(round(low + (high - low) * (arousal + 1.0) / 2.0))
    bars = max(2, 2 * round(duration_s * bpm / 480.0))  # an even number of bars: sections pair up
    mode = "minor" if chosen_key.minor else "major"
    sections = []
    start = 0
    for name, length in fitted_form(picked.form, bars):
        progression = picked.progressions[mode][SECTION_ROLES.get(name, "verse")]
        sections.append(Section(name, length, start, progression))
        start += length
    return Structure(
        prompt=prompt[:MAX_PROMPT_CHARACTERS],
        genre=picked.name,
        genre_from=genre_from,
        valence=round(valence, 4),
        arousal=round(arousal, 4),
        mood_octants=octants,
        key=chosen_key.name,
        bpm=bpm,
        bars=bars,
        duration_s=round(bars * 240.0 / bpm, 3),
        sections=tuple(sections),
        programs=dict(picked.programs),
        drums=picked.drums,
        production=picked.production,
        seed=seed,
        notes=tuple(notes),
    )
