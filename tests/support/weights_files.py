"""Weights files for the tests of bad input: a shipped model's JSON with some keys changed, or any text."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class StoredModel(Protocol):
    """A model that stores itself as a JSON document (idaw.listen.adapter.Adapter, chord_model.ChordModel)."""

    def to_json(self) -> dict[str, Any]:
        """The model as the JSON document its load() reads."""
        ...


def weights_file(
    path: Path, model: Callable[[], StoredModel], change: dict[str, Any] | None = None, text: str | None = None
) -> Path:
    """Write `text` to `path` as it is, or else model()'s JSON document with the keys of `change` replaced (model is
    called only then: a test of text needs no shipped weights); returns `path`."""
    if text is not None:
        path.write_text(text)
        return path
    data = model().to_json()
    data.update(change or {})
    path.write_text(json.dumps(data))
    return path
