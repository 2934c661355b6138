"""SAFE-DB is split by contributor: no contributor's settings are in two splits."""

from __future__ import annotations

from collections import Counter

import pytest

from sidecar.semantic_eq import data
from tests.support.needs import need
from tests.support.repo import REPO

DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="module")
def safe_rows() -> list[data.SafeRow]:
    need((DATA / data.SAFE_FILE).exists(), f"SAFE-DB not found under {DATA}")
    return data.read_safe(DATA)


def test_junk_descriptor_dropped(safe_rows: list[data.SafeRow]) -> None:
    words = Counter(r.word for r in safe_rows)
    assert "test" not in words
    assert words["warm"] == 532 and words["bright"] == 504


@pytest.mark.parametrize("seed", [0, 1])
def test_contributor_split_has_no_overlap(safe_rows: list[data.SafeRow], seed: int) -> None:
    split_of = data.split_contributors(safe_rows, seed)
    assert set(split_of) == {r.contributor for r in safe_rows}
    members: dict[str, set[str]] = {s: set() for s in data.SPLITS}
    for row in safe_rows:
        members[split_of[row.contributor]].add(row.contributor)
    assert not members["train"] & members["val"]
    assert not members["train"] & members["test"]
    assert not members["val"] & members["test"]
    for split in data.SPLITS:  # every split can measure warm vs bright
        words = Counter(r.word for r in safe_rows if split_of[r.contributor] == split)
        assert words["warm"] >= 30 and words["bright"] >= 30, (split, words["warm"], words["bright"])
    assert split_of == data.split_contributors(safe_rows, seed)  # deterministic


def test_curves_are_read_in_the_documented_format() -> None:
    need((DATA / data.SOCIALFX_FILE).exists(), f"SocialFX not found under {DATA}")
    social = data.read_socialfx(DATA)
    audealize = data.read_audealize(DATA)
    assert len(social) == 1595 and len({c.word for c in social}) == 765
    assert len(audealize) == 394
    assert all(len(c.weights) == 40 for c in social + audealize)
    curve = data.curve_to_db(next(c for c in audealize if c.word == "warm").weights, data.BAND_FREQS)
    assert abs(curve.mean()) < 1e-9
    assert curve[data.BAND_FREQS < 300].mean() > curve[(data.BAND_FREQS > 1000) & (data.BAND_FREQS < 4000)].mean()
