"""Peak memory of loading RTNeural JSON with the core's loader (idaw_core.load_model), shipped nets and hostile files.

Each file is loaded in a fresh Python process (``import idaw_core`` first), which reports its resident set before
the load and its peak (VmHWM, reset just before) after it; "growth_mb" is what the load added to the peak,
"growth_per_file_byte" that growth over the file's size. Files:
  shipped <Name>      the trained nets in realtime/nets/weights (MelodyTransformer is the largest);
  objects_top_level   a valid model plus an unknown top-level key holding `{}` after `{}` (issue 9, finding 5: at
                      51 MB it took 1.8 GB before the loader bounded its parse);
  objects_in_layer    the same objects under an unknown key of a layer;
  arrays_in_weights   `[]` after `[]` inside a layer's weights;
  rows_of_one_zero    `[0]` after `[0]` (the densest structure a valid dense layer with one output can have);
  zeros               one weight row of `0` after `0` (the densest numbers can be);
  nested_arrays       lists of 16,000 `[]` (no array longer than a model's) under an unknown key of a layer;
  keys_in_layer       `"k1":0` after `"k2":0` in a layer (members the loader ignores).
The hostile files are about 51 MB (8 MB with --quick), under the loader's 64 MB file cap.
Run alone with `python -m benchmarks.bench_model_load_memory [--quick] [--out F]`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import common

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "realtime" / "nets" / "weights"
NETS = ("MelodyTransformer", "EmotionRecognizer", "HarmonyPredictor", "GroovePredictor", "DynamicsEngine")

PROBE = """
import json, sys, time
import idaw_core

def status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the current resident set
before = status_kb("VmRSS")
start = time.perf_counter()
try:
    idaw_core.load_model(sys.argv[1])
    error = None
except ValueError as e:
    error = str(e)
seconds = time.perf_counter() - start
after = status_kb("VmHWM")
print(json.dumps({"before_kb": before, "after_kb": after, "seconds": seconds, "error": error}))
"""
"""Run in a child process: resets the peak resident set (Linux clear_refs 5), loads argv[1] and prints the resident set
before and its peak after (KiB), the time and the error, as JSON."""


def measure(path: Path) -> common.Json:
    """Peak RSS of loading `path` in a fresh process: {file_mb, peak_mb, growth_mb, growth_per_file_byte, ...}."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True, timeout=600
    )
    probe = json.loads(done.stdout)
    size = path.stat().st_size
    growth = (probe["after_kb"] - probe["before_kb"]) * 1024
    error = probe["error"]
    return {
        "file_mb": round(size / 1e6, 2),
        "peak_mb": round(probe["after_kb"] * 1024 / 1e6, 1),
        "growth_mb": round(growth / 1e6, 1),
        "growth_per_file_byte": round(growth / size, 2),
        "seconds": round(probe["seconds"], 3),
        "loaded": error is None,
        "error": None if error is None else error[:160],
    }


def _valid_layer(width: int = 1) -> str:
    """A dense layer 1 -> `width` with zero weights, as JSON text."""
    zeros = ",".join(["0"] * width)
    return f'{{"type":"dense","activation":"","shape":[null,null,{width}],"weights":[[[{zeros}]],[{zeros}]]}}'


def _repeat(unit: str, size: int) -> str:
    """`unit` comma-joined until the text is about `size` bytes."""
    return ",".join([unit] * max(1, size // (len(unit) + 1)))


HOSTILE: dict[str, Callable[[int], str]] = {
    "objects_top_level": lambda n: (
        f'{{"in_shape":[null,null,1],"layers":[{_valid_layer()}],"junk":[{_repeat("{}", n)}]}}'
    ),
    "objects_in_layer": lambda n: (
        '{"in_shape":[null,null,1],"layers":[{"type":"dense","activation":"","shape":[null,null,1],'
        f'"junk":[{_repeat("{}", n)}],"weights":[[[0]],[0]]}}]}}'
    ),
    "arrays_in_weights": lambda n: (
        '{"in_shape":[null,null,1],"layers":[{"type":"dense","activation":"","shape":[null,null,1],'
        f'"weights":[[{_repeat("[]", n)}],[0]]}}]}}'
    ),
    "rows_of_one_zero": lambda n: (
        '{"in_shape":[null,null,4096],"layers":[{"type":"dense","activation":"","shape":[null,null,1],'
        f'"weights":[[{_repeat("[0]", n)}],[0]]}}]}}'
    ),
    "nested_arrays": lambda n: (
        '{"in_shape":[null,null,1],"layers":[{"type":"dense","activation":"","shape":[null,null,1],'
        f'"junk":[{_repeat("[" + _repeat("[]", 48000) + "]", n)}],"weights":[[[0]],[0]]}}]}}'
    ),
    "keys_in_layer": lambda n: (
        '{"in_shape":[null,null,1],"layers":[{"type":"dense","activation":"","shape":[null,null,1],'
        + "".join(f'"k{i}":0,' for i in range(n // 13))
        + '"weights":[[[0]],[0]]}]}'
    ),
    "zeros": lambda n: (
        '{"in_shape":[null,null,1],"layers":[{"type":"dense","activation":"","shape":[null,null,4096],'
        f'"weights":[[[{_repeat("0", n)}]],[0]]}}]}}'
    ),
}
"""Hostile file builders: name -> (size in bytes -> JSON text of about that size)."""


def run(quick: bool = False) -> common.Json:
    """{shipped: {net: figures}, hostile: {kind: figures}, hostile_bytes}: see the module docstring."""
    size = (8 if quick else 51) * 1000 * 1000
    shipped = {name: measure(SHIPPED / f"{name}.json") for name in NETS if (SHIPPED / f"{name}.json").is_file()}
    hostile: dict[str, common.Json] = {}
    with tempfile.TemporaryDirectory(prefix="idaw-bench-load-") as tmp:
        for kind, build in HOSTILE.items():
            path = Path(tmp) / f"{kind}.json"
            start = time.perf_counter()
            path.write_text(build(size), encoding="utf-8")
            hostile[kind] = {**measure(path), "write_s": round(time.perf_counter() - start, 2)}
            path.unlink()
    return {"shipped": shipped, "hostile_bytes": size, "hostile": hostile}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
