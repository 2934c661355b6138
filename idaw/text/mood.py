"""The mood a text names, as valence and arousal (-1..1): what `--mood TEXT` gives the MIDI generator and the song
sketch reads from its prompt.

The eight octants of Russell's circumplex of affect (J. A. Russell, "A circumplex model of affect", JPSP 39(6),
1980: pleasure, excitement, arousal, distress, displeasure, depression, sleepiness, relaxation, 45 degrees apart in
that order), each named by the words of his 28 that lie in it plus common words for the mood of music (ours:
"upbeat", "mellow", ...). An octant's similarity to the text is the best all-MiniLM-L6-v2 cosine similarity of the
text with "WORD music" over its words; the softmax of the eight weighs their unit vectors, and the weighted sum is
(valence, arousal). No valence/arousal lexicon can be had offline, so this is the reading; its tests hold it to
clear cases (tests/test_sketch_structure.py, tests/test_mood_option.py).

A text that joins two moods with "but", "yet" or "though" ("melancholic but hopeful") names a mixed mood: each
clause is read alone and the readings are averaged (octant weights, so valence and arousal too). Read whole, the
sentence model hears the first word loudest and "melancholic but hopeful" lands in depression (-0.69, -0.70).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from idaw.text.embedding import embed_texts

MOOD_TEMPERATURE: Final = 0.03
"""Softmax temperature over the octants' cosine similarities: MiniLM's similarities of a prompt to the octants
differ by a few hundredths, so a small temperature lets the nearest octant lead without silencing the others."""
CONTRAST: Final = re.compile(r"\b(?:but|yet|though|although)\b", re.IGNORECASE)
"""Words that join two moods into a mixed one: the text is read clause by clause around them."""
CIRCUMPLEX: Final = (
    ("pleasure", 0, ("happy", "pleased", "glad"), ("joyful", "cheerful", "sunny", "hopeful")),
    ("excitement", 45, ("excited", "delighted", "astonished"), ("upbeat", "energetic", "euphoric", "triumphant")),
    ("arousal", 90, ("aroused", "alarmed", "tense"), ("intense", "aggressive", "urgent")),
    ("distress", 135, ("afraid", "angry", "annoyed", "distressed"), ("furious", "anxious")),
    ("displeasure", 180, ("frustrated", "miserable", "sad"), ("heartbroken", "bitter")),
    ("depression", 225, ("gloomy", "depressed", "bored"), ("melancholic", "dark", "lonely")),
    ("sleepiness", 270, ("droopy", "tired", "sleepy"), ("drowsy", "dreamy")),
    (
        "relaxation",
        315,
        ("calm", "relaxed", "at ease", "serene", "content", "satisfied"),
        ("peaceful", "mellow", "tender"),
    ),
)
"""Russell's eight octants: (name, angle in degrees from the valence axis, the words of his 28 in that octant,
our words for the same mood in music)."""


@lru_cache(maxsize=1)
def _mood_vectors() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """("WORD music" for every octant word (W, D), the octant of each word (W,))."""
    words = [(octant, word) for octant, (_, _, his, ours) in enumerate(CIRCUMPLEX) for word in (*his, *ours)]
    return embed_texts([f"{word} music" for _, word in words]), np.array(
        [octant for octant, _ in words], dtype=np.int64
    )


def mood(prompt: str) -> tuple[float, float, dict[str, float]]:
    """(valence, arousal, weight of each octant) the prompt reads as (see the module docstring)."""
    clauses = [c for c in (part.strip(" ,;.") for part in CONTRAST.split(prompt)) if c] or [prompt]
    weights = np.mean([_octant_weights(clause) for clause in clauses], axis=0)
    angles = np.radians([octant[1] for octant in CIRCUMPLEX])
    valence = float(weights @ np.cos(angles))
    arousal = float(weights @ np.sin(angles))
    return valence, arousal, {octant[0]: round(float(w), 4) for octant, w in zip(CIRCUMPLEX, weights, strict=True)}


def _octant_weights(text: str) -> npt.NDArray[np.float64]:
    """The softmax over the eight octants of the text's similarity to each (its best word)."""
    word_vectors, octant_of = _mood_vectors()
    word_similarity = word_vectors @ embed_texts([text])[0]
    similarity = np.array([word_similarity[octant_of == k].max() for k in range(len(CIRCUMPLEX))], dtype=np.float64)
    weights: npt.NDArray[np.float64] = np.exp((similarity - similarity.max()) / MOOD_TEMPERATURE)
    weights /= weights.sum()
    return weights
