"""The MIDI generator's cost on the audio thread: time of each generated step (µs), as the core measures it.

A step runs the MelodyTransformer (every sixteenth), the DynamicsEngine (every beat) and the HarmonyPredictor and
GroovePredictor (every bar) on the audio thread, then decides the notes. The engine renders silence in 256-frame
blocks at 48 kHz with the generator on at 150 BPM, with the shipped nets (realtime/nets/weights) or, where those
are missing, seeded random ones of the same shapes. Two regimes:
  back_to_back  blocks processed as fast as possible (the nets' weights stay in cache between steps);
  cold_cache    a 64 MB memory sweep before every block (the weights come from DRAM, as after other programs ran
                between two steps ~100 ms apart; the worst case of a live run).
Reported per regime, with the theory layer on (the default) and off (--no-theory), measured side by side: every step
and bar starts only (all four nets), from the core's own histograms, the share of a 256-frame block (5.33 ms) the
median and p99 steps take, and the ratios on/off of the step medians and p99s. Where the system allows it the
rendering thread runs at SCHED_FIFO (as an audio thread does), so a busy machine's scheduler does not add its time
slices to the steps.
Run alone with `python -m benchmarks.bench_midi [--quick] [--out F]`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

import idaw_core
from benchmarks import common
from realtime import midi_settings

RATE, BLOCK, TEMPO = 48000, 256, 150.0
BLOCK_US = 1e6 * BLOCK / RATE


def _nets(folder: Path) -> tuple[Path, str]:
    """(folder with the four nets, where they came from): the shipped ones, else random ones written there."""
    if all((midi_settings.DEFAULT_MODELS / f"{n}.json").is_file() for n in midi_settings.NETS):
        return midi_settings.DEFAULT_MODELS, "shipped (realtime/nets/weights)"
    import torch

    from export.rtneural import save_rtneural
    from realtime.nets.architectures import NETS

    for name in midi_settings.NETS:
        torch.manual_seed(0)
        save_rtneural(NETS[name][0]().eval(), folder / f"{name}.json")
    return folder, "random (torch.manual_seed(0))"


@contextlib.contextmanager
def _realtime(priority: int = 10) -> Iterator[bool]:
    """This thread at SCHED_FIFO `priority` inside the block (yields whether that was allowed)."""
    try:
        previous = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, previous[0], previous[1])


def _regime(folder: Path, seconds: float, sweep: bool, theory: bool) -> common.Json:
    engine = idaw_core.Engine()
    engine.prepare(float(RATE), BLOCK, 2)
    midi_settings.install_nets(engine, folder)
    settings = midi_settings.MidiSettings(
        tempo_bpm=TEMPO, emotion=tuple(midi_settings.emotion_from_valence_arousal(0.4, 0.5)), theory=theory
    )
    midi_settings.push(engine, settings, enabled=True)
    block = np.zeros((BLOCK, 2), np.float32)
    scratch = np.ones(64 << 20, np.uint8) if sweep else None
    with common.gc_paused(), _realtime() as realtime:
        for _ in range(int(seconds * RATE / BLOCK)):
            if scratch is not None:
                scratch += 1  # touches 64 MB: evicts the weights from every cache level
            engine.process(block)
            engine.drain_midi()
    counters = engine.midi_counters()
    out: common.Json = {"steps": counters["steps"], "notes": counters["note_ons"], "sched_fifo": realtime}
    for key in ("step_timing", "bar_step_timing"):
        t = counters[key]
        out[key] = {
            "count": t["count"],
            "p50_us": round(t["p50_us"], 1),
            "p99_us": round(t["p99_us"], 1),
            "max_us": round(t["max_us"], 1),
            "p50_pct_of_block": round(100 * t["p50_us"] / BLOCK_US, 2),
            "p99_pct_of_block": round(100 * t["p99_us"] / BLOCK_US, 2),
        }
    return out


def _on_off(folder: Path, seconds: float, sweep: bool) -> common.Json:
    """The regime with the theory layer on and off, alternating in halves so that both see the same machine."""
    halves = [(theory, _regime(folder, seconds / 2, sweep, theory)) for _ in range(2) for theory in (True, False)]
    out: common.Json = {}
    for name, theory in (("theory_on", True), ("theory_off", False)):
        runs = [r for t, r in halves if t == theory]
        out[name] = max(runs, key=lambda r: r["step_timing"]["p99_us"])  # the worse half: p99 is a tail
    for stat in ("p50_us", "p99_us"):
        on, off = out["theory_on"]["step_timing"][stat], out["theory_off"]["step_timing"][stat]
        out[f"step_{stat[:3]}_ratio_on_off"] = round(on / off, 3) if off else None
    return out


def run(quick: bool = False) -> common.Json:
    """{nets, block_us, back_to_back, cold_cache}: see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="idaw-bench-midi-") as tmp:
        folder, origin = _nets(Path(tmp))
        seconds = 20.0 if quick else 120.0
        return {
            "nets": origin,
            "tempo_bpm": TEMPO,
            "block_frames": BLOCK,
            "block_us": round(BLOCK_US, 1),
            "back_to_back": _on_off(folder, seconds, sweep=False),
            "cold_cache": _on_off(folder, seconds / 4, sweep=True),
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
