"""Keyboard mashes and random letter strings: what a user types when they are testing whether anything is listening
(the words-to-timbre issue asks that 1,000 of them be refused)."""

from __future__ import annotations

import numpy as np

KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def keyboard_mashes(count: int, seed: int) -> list[str]:
    """`count` distinct strings of four kinds, drawn at random: a walk along one keyboard row (sometimes backwards),
    a short stretch of a row repeated ("asdasd"), random letters, and random keys under the resting hands."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        kind = int(rng.integers(4))
        row = KEYBOARD_ROWS[int(rng.integers(len(KEYBOARD_ROWS)))]
        if kind == 0:
            length = int(rng.integers(4, min(9, len(row) + 1)))
            start = int(rng.integers(0, len(row) - length + 1))
            word = row[start : start + length]
            word = word[::-1] if rng.random() < 0.3 else word
        elif kind == 1:
            length = int(rng.integers(2, 4))
            start = int(rng.integers(0, len(row) - length + 1))
            word = row[start : start + length] * int(rng.integers(2, 4))
        elif kind == 2:
            word = "".join(rng.choice(list(LETTERS), size=int(rng.integers(4, 11))))
        else:
            keys = KEYBOARD_ROWS[1] if rng.random() < 0.5 else KEYBOARD_ROWS[0] + KEYBOARD_ROWS[1]
            word = "".join(rng.choice(list(keys), size=int(rng.integers(4, 9))))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out
