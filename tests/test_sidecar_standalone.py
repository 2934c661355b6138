"""The sidecar runs without the engine: `idaw sidecar` never imports the native module idaw_core nor realtime
(and, with the fallback handler, not torch), so a sidecar on another machine needs no engine.

Each sidecar process here runs with an import blocker (a sitecustomize.py on PYTHONPATH, a meta-path finder put
first): importing a blocked package raises ImportError and is written to a log, so an import that the code
caught and survived is still seen. A control run shows the blocker does block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.sidecar_link.process import SidecarProcess
from tests.support.needs import need
from tests.support.repo import REPO

ENGINE_SIDE = ("idaw_core", "realtime")
"""What no sidecar may import."""
WEIGHTS = REPO / "sidecar" / "semantic_eq" / "weights" / "semantic_eq.pt"

BLOCKER = """
import importlib.abc
import os
import sys

_BLOCKED = tuple(n for n in os.environ.get("IDAW_TEST_BLOCK_IMPORTS", "").split(",") if n)
_LOG = os.environ.get("IDAW_TEST_BLOCKED_LOG")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in _BLOCKED):
            if _LOG:
                with open(_LOG, "a", encoding="utf-8") as log:
                    log.write(name + "\\n")
            raise ImportError(f"import of {name} is blocked by the test")
        return None


sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture
def blocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Block imports in every Python process started from the test; returns the log of blocked attempts."""
    folder = tmp_path / "blocker"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    log = tmp_path / "blocked.log"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("IDAW_TEST_BLOCKED_LOG", str(log))
    monkeypatch.delenv("IDAW_DEBUG", raising=False)
    return log


def attempts(log: Path) -> list[str]:
    """The blocked imports that were tried (none when the log was never written)."""
    return log.read_text(encoding="utf-8").split() if log.exists() else []


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False, env=os.environ
    )


def test_the_blocker_blocks(blocked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDAW_TEST_BLOCK_IMPORTS", ",".join(ENGINE_SIDE))
    result = run("-c", "import realtime.params")
    assert result.returncode != 0 and "blocked by the test" in result.stderr
    assert attempts(blocked) == ["realtime"]


IDAW_SIDECAR_HELP = "import sys; from idaw.cli import main; sys.exit(main(['sidecar', '--help']))"
"""`idaw sidecar --help` through the idaw command's main()."""


@pytest.mark.parametrize(
    "command", [("-m", "sidecar", "--help"), ("-c", IDAW_SIDECAR_HELP)], ids=["python -m sidecar", "idaw sidecar"]
)
def test_the_sidecar_command_line_needs_no_engine_model_or_zmq(
    blocked: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("IDAW_TEST_BLOCK_IMPORTS", ",".join((*ENGINE_SIDE, "torch", "zmq")))
    result = run(*command)
    assert result.returncode == 0, result.stderr
    assert "--bind" in result.stdout and "--handler" in result.stdout
    assert attempts(blocked) == []


@pytest.mark.parametrize(
    ("handler", "also_blocked"),
    [("fallback", ("torch",)), ("semantic-eq", ())],
)
def test_a_sidecar_serves_and_answers_describe_without_the_engine(
    blocked: Path, monkeypatch: pytest.MonkeyPatch, handler: str, also_blocked: tuple[str, ...]
) -> None:
    if handler == "semantic-eq":
        need(WEIGHTS.exists(), f"{WEIGHTS} is missing (the shipped semantic-EQ weights)")
    monkeypatch.setenv("IDAW_TEST_BLOCK_IMPORTS", ",".join((*ENGINE_SIDE, *also_blocked)))
    with SidecarProcess(handler=handler) as sidecar:
        result = run("-m", "sidecar", "--describe", "warm", "--intensity", "0.7", "--bind", sidecar.endpoint)
        log = sidecar.log_tail(20)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["used"] == ["warm"] and answer["snapshot"] >= 1
    assert max(abs(v) for name, v in answer["values"].items() if name.endswith("_gain")) > 0.5  # not flat
    assert "Traceback" not in log and "error" not in log.lower(), log
    assert attempts(blocked) == []
