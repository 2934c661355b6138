"""`idaw sketch PROMPT -o DIR --count N`: N variants of a song (seeds SEED .. SEED + N - 1), each written into
DIR/variant-K by its own Dask task, on a local cluster of single-thread worker processes (loopback only) or on the
cluster at --scheduler (idaw.listen.corpus's cluster options; its workers must see DIR at the same path).

The structures are made here (the sentence model loads once) and sent to the workers; a variant that fails is
named with its error and the others go on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tqdm import tqdm

from idaw.base.errors import IdawError, one_line
from idaw.listen.corpus import dask_client
from idaw.sketch.song import SongResult, write_song
from idaw.sketch.structure import Structure

MAX_COUNT: Final = 100
"""The most variants one command makes."""


@dataclass(frozen=True)
class Variant:
    """One variant's folder and what became of it: its SongResult, or the one line of its error."""

    folder: Path
    structure: Structure
    result: SongResult | None
    error: str | None


def variant_folder(folder: Path, index: int, count: int) -> Path:
    """DIR/variant-K, K from 1, zero-padded to the width of `count` (so they sort)."""
    return folder / f"variant-{index + 1:0{len(str(count))}d}"


def write_one(structure: Structure, folder: str) -> SongResult:
    """A worker's task: the song of `structure` into `folder` (created)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return write_song(structure, path, models=None, progress=False)


def write_variants(
    structures: Sequence[Structure], folder: Path, scheduler: str | None, workers: int, progress: bool
) -> list[Variant]:
    """Each structure's song into its variant folder, in parallel on Dask; the variants in order."""
    from distributed import as_completed

    folders = [variant_folder(folder, i, len(structures)) for i in range(len(structures))]
    outcome: dict[int, tuple[SongResult | None, str | None]] = {}
    with dask_client(scheduler, workers) as client:
        futures: dict[Any, int] = {
            client.submit(write_one, structure, str(path), pure=False): i
            for i, (structure, path) in enumerate(zip(structures, folders, strict=True))
        }
        with tqdm(total=len(futures), unit="song", disable=not progress, file=sys.stderr, leave=False) as bar:
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                index = futures[future]
                try:
                    outcome[index] = (future.result(), None)
                except IdawError as error:
                    outcome[index] = (None, str(error))
                except Exception as error:  # a worker that died (KilledWorker) or a bug: named, the rest go on
                    outcome[index] = (None, f"internal error: {type(error).__name__}: {one_line(str(error))}")
                bar.update(1)
    return [Variant(folders[i], structures[i], *outcome[i]) for i in range(len(structures))]
