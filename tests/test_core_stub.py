"""The typed engine boundary: the build writes idaw_core.pyi (nanobind stubgen, plugin_cpp/CMakeLists.txt) where
mypy reads it (pyproject.toml [tool.mypy] mypy_path), it describes the module that is installed, and mypy sees
engine objects with their stub types (not Any) and refuses a wrong call into the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import idaw_core
from tests.support.needs import need
from tests.support.repo import REPO

STUB = REPO / "build" / "stubs" / "idaw_core.pyi"
PATTERNS = REPO / "plugin_cpp" / "python" / "idaw_core.stubpatterns"


def test_stub_describes_the_installed_module(tmp_path: Path) -> None:
    need(STUB.is_file(), f"no {STUB.relative_to(REPO)}: `make setup` (pip install -e .) writes it")
    fresh = tmp_path / "idaw_core.pyi"
    stubgen = [sys.executable, "-m", "nanobind.stubgen", "-q", "-m", "idaw_core", "-p", str(PATTERNS), "-o", str(fresh)]
    subprocess.run(stubgen, check=True, timeout=120)
    assert STUB.read_text() == fresh.read_text(), "build/stubs/idaw_core.pyi is stale: run `make setup`"
    text = STUB.read_text()
    for name in ("class Engine:", "class Model:", "class PortAudioBridge:", "def emotion_from_valence_arousal("):
        assert name in text
    public = {n for n in dir(idaw_core) if not n.startswith("_")}
    missing = {n for n in public if f"def {n}(" not in text and f"class {n}" not in text and f"{n}:" not in text}
    assert not missing, f"names of idaw_core the stub lacks: {sorted(missing)}"


@pytest.mark.slow
def test_mypy_sees_engine_objects_with_their_stub_types(tmp_path: Path) -> None:
    need(STUB.is_file(), f"no {STUB.relative_to(REPO)}: `make setup` (pip install -e .) writes it")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import idaw_core\n"
        "engine = idaw_core.Engine()\n"
        "reveal_type(engine)\n"
        "reveal_type(engine.counters()['blocks'])\n"
        "reveal_type(idaw_core.load_model('m.json'))\n"
        "reveal_type(idaw_core.PortAudioBridge(engine, 2, 2).counters())\n"
        "reveal_type(idaw_core.emotion_from_valence_arousal(0.1, 0.2))\n"
        "engine.prepare('48000', 256, 2)\n"
    )
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")]
    command += ["--cache-dir", str(tmp_path / "cache"), str(probe)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = result.stdout
    assert 'probe.py:3: note: Revealed type is "idaw_core.Engine"' in out, out
    assert 'probe.py:4: note: Revealed type is "int"' in out, out
    assert 'probe.py:5: note: Revealed type is "idaw_core.Model"' in out, out
    assert 'probe.py:6: note: Revealed type is "TypedDict(idaw_core.BridgeCounters, {' in out, out
    float32_array = 'probe.py:7: note: Revealed type is "numpy.ndarray[tuple[Any, ...], numpy.dtype[numpy.floating['
    assert float32_array in out and "_32Bit" in out, out
    assert 'probe.py:8: error: Argument 1 to "prepare" of "Engine" has incompatible type "str"; expected "float"' in out
    assert result.returncode == 1 and "Found 1 error in 1 file" in out, out  # exactly the one wrong call above
