"""The retry rule the live MIDI tests share (tests/support/jack_midi_clients.repeat_while_the_rig_failed): a failed
run is repeated only while the recorder itself had troubles, and a failure with a healthy recorder stops at once.
Checked with stand-ins for the rig's health figures, so that the rule is held without a loaded machine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.support.jack_midi_clients import MidiRig, repeat_while_the_rig_failed, rig_troubles


def rig(overruns: int = 0, xruns: int = 0, skipped: int = 0) -> MidiRig:
    """A stand-in holding only what rig_troubles reads."""
    health = SimpleNamespace(overrun_frames=[1] * overruns, xruns=xruns, frame_steps_off=skipped)
    return cast(MidiRig, health)


def test_troubles_name_each_kind_and_a_healthy_rig_has_none() -> None:
    assert rig_troubles(rig()) == ""
    assert rig_troubles(rig(2, 1, 3)) == "2 recorder overruns, 1 xruns, 3 skipped recorder cycles"


def test_a_run_failing_while_the_recorder_had_troubles_is_repeated_until_one_passes(tmp_path: Path) -> None:
    calls: list[Path] = []

    def run(folder: Path, rigs: list[MidiRig]) -> str:
        calls.append(folder)
        rigs.append(rig(xruns=1) if len(calls) < 3 else rig())
        assert len(calls) == 3, "a message went missing"
        return "passed"

    assert repeat_while_the_rig_failed(run, tmp_path, attempts=5) == "passed"
    assert [p.name for p in calls] == ["run0", "run1", "run2"] and all(p.is_dir() for p in calls)


def test_a_failure_with_a_healthy_recorder_is_not_repeated(tmp_path: Path) -> None:
    calls = 0

    def run(folder: Path, rigs: list[MidiRig]) -> None:
        nonlocal calls
        calls += 1
        rigs.append(rig())
        raise AssertionError("note-on while 9/42 sounds")

    with pytest.raises(AssertionError, match="9/42"):
        repeat_while_the_rig_failed(run, tmp_path, attempts=5)
    assert calls == 1


def test_when_every_run_fails_with_troubles_the_failure_lists_them(tmp_path: Path) -> None:
    def run(folder: Path, rigs: list[Any]) -> None:
        rigs.append(rig(overruns=2))
        raise AssertionError("lost\nsecond line")

    with pytest.raises(AssertionError, match="every run failed") as failure:
        repeat_while_the_rig_failed(run, tmp_path, attempts=3)
    text = str(failure.value)
    assert text.count("(2 recorder overruns): lost") == 3 and "second line" not in text
