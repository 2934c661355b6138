"""`idaw train semantic-eq --size tiny` runs end to end; bundles load with weights_only=True."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sidecar.semantic_eq import bundle as bundle_module
from sidecar.semantic_eq import median_curves, train_cli
from sidecar.semantic_eq.handler import SemanticEqHandler
from tests.support.needs import need, need_program
from tests.support.repo import REPO

DATA = REPO.parent / "shared" / "data"


def test_tiny_training_run_writes_weights_and_metrics(tmp_path: Path) -> None:
    need((DATA / "safedb").exists(), f"shared data not found under {DATA}")
    need_program("fluidsynth", "fluidsynth")
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    args = parser.parse_args(["--data", str(DATA), "--out", str(tmp_path / "out"), "--size", "tiny", "--threads", "1"])
    assert train_cli.run(args) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["data"]["contributor_overlap_between_splits"] == 0
    assert metrics["eq_vae"]["reconstruction_db_rms_test"]["n"] > 100
    assert "adaptive_eq" in metrics and "synonyms_leave_one_word_out" in metrics
    handler = SemanticEqHandler(weights_dir=tmp_path / "out")
    result = handler.describe(["warm"], 0.5)
    assert result.words_used == ("warm",) and np.all(np.isfinite(result.eq))
    # The median curves come from the data alone: a training run reproduces the shipped file exactly.
    written = median_curves.load(tmp_path / "out" / median_curves.FILE_NAME)
    shipped = median_curves.load()
    assert written.counts == shipped.counts and set(written.curves) >= {"warm", "bright"}
    for word in shipped.curves:
        np.testing.assert_allclose(written.curves[word], shipped.curves[word], atol=1e-4)


def test_shipped_weights_load_with_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = bundle_module.load_bundle()
    assert calls and all(c.get("weights_only") is True for c in calls)
    path = bundle_module.DEFAULT_DIR / bundle_module.FILE_NAME
    assert path.stat().st_size < 2_000_000
    assert len(loaded.words) == loaded.centroids.shape[0] > 100
    assert loaded.embeddings is not None and loaded.embeddings.shape == (len(loaded.words), 768)
    metrics = json.loads((bundle_module.DEFAULT_DIR / "metrics.json").read_text())
    assert metrics["size"] == "full"
