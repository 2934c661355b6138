"""`idaw live --midi` for real, on a dummy-driver JACK server, received by a second JACK client.

The main test runs idaw for 60 s between a feeder (a constant into idaw's audio inputs) and a recorder (idaw's audio
outputs and a JACK MIDI input that idaw's MIDI port is connected to). idaw's audio output is non-zero exactly in the
cycles its stream ran, so engine block k is the recorder's k-th live cycle and engine sample s is JACK frame
live_frames[s // period] + s % period. idaw's --midi-log says which messages it sent and the engine sample each was
scheduled for. Checked: the recorder got exactly those messages in that order (but for the few the recorder itself
dropped or misplaced in cycles it overran: at most 0.5 %, each within 4 periods of such an overrun; a run that fails
while the recorder overran is repeated, up to ATTEMPTS runs; the rig is C++, tests/support/jack_midi_rig.cpp, so it
overruns only when the machine preempts it); every note-on has its note-off and nothing sounds after stop; each message
arrived within one period of its scheduled frame; the --midi-out file reads back the same with mido and pretty_midi and
holds the notes sent. Then SIGTERM (all notes off) and SIGKILL (the port disappears; the guardian process sends the
note-offs and All Notes Off: how soon is printed, not asserted), and one-line errors.
"""

from __future__ import annotations

import difflib
import json
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime import midi_settings
from tests.support.jack_midi_clients import MidiRig, note_pairs, repeat_while_the_rig_failed
from tests.support.jack_server import JackServer
from tests.support.live import Live, refused_live
from tests.support.midi_helpers import generator_nets, mido_notes, pretty_notes
from tests.support.sidecar_helpers import wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]

RATE, PERIOD = 48000, 256
RUN_SECONDS = 60.0
CLIENT = "idaw-midi-test"
FEEDER, RECORDER = "idaw-midi-feeder", "idaw-midi-recorder"
XRUN_GUARD_SECONDS = 0.5
ATTEMPTS = 5
"""Runs of the 60 s test before a failure that coincides with recorder overruns counts (see the test)."""
TROUBLE_PERIODS = 4
"""Messages within this many periods of a recorder overrun or xrun may be missing or out of place (align_received)."""
STEP_CAP_S = 60.0
"""How long a step may wait for what it checks before the test fails: a guard against a hang only."""
"""Events scheduled this soon after skipped cycles are not timed: the sender's clock map needs a moment to follow."""


def live_args(rig: MidiRig, *extra: str) -> list[str]:
    """idaw live options wiring its audio to the rig and its MIDI port to the rig's MIDI input."""
    return [
        "--input-device",
        FEEDER,
        "--output-device",
        RECORDER,
        "--client-name",
        CLIENT,
        "--midi",
        "--midi-models",
        str(generator_nets()),
        "--midi-connect",
        rig.midi_port,
        *extra,
    ]


def skipped_blocks(rig: MidiRig) -> list[int]:
    """Engine blocks before which JACK skipped cycles (consecutive live cycles more than a period apart)."""
    steps = np.diff(rig.live_frames[: rig.live_cycles])
    return [int(k) + 1 for k in np.flatnonzero(steps != rig.period)]


def first_difference(
    got: list[list[int]], sent: list[list[int]], received: list[tuple[int, bytes]], rig: MidiRig
) -> str:
    """Where the received messages first differ from the sent ones, and what JACK reported near there."""
    i = next((k for k, (a, b) in enumerate(zip(got, sent, strict=False)) if a != b), min(len(got), len(sent)))
    frame = received[min(i, len(received) - 1)][0] if received else 0
    near = [f - frame for f in rig.overrun_frames + rig.xrun_frames if abs(f - frame) <= 4 * PERIOD]
    return (
        f"{len(got)} received, {len(sent)} sent; first difference at message {i} (frame {frame}): received "
        f"{got[i : i + 3]}, sent {sent[i : i + 3]}; recorder overruns/xruns within 4 periods (frames from there): "
        f"{near}; recorder overruns {len(rig.overrun_frames)}, xruns {rig.xruns}"
    )


def align_received(
    got: list[list[int]],
    sent: list[list[int]],
    sent_frames: list[int | None],
    received: list[tuple[int, bytes]],
    rig: MidiRig,
) -> tuple[list[tuple[int, int]], list[int]]:
    """Matches the received messages to the sent ones: ([(received index, sent index)], [sent indices not matched]).

    Messages may differ only where the recorder itself failed: every sent message of a difference scheduled, and
    every received one received, within TROUBLE_PERIODS periods of a recorder overrun or xrun (the recorder's
    callback ran past its cycle, so JACK handed that cycle's MIDI on without it, or it read the next cycle's). Any
    other difference (a message lost, added, changed or moved elsewhere) fails the test."""
    matcher = difflib.SequenceMatcher(a=[tuple(m) for m in sent], b=[tuple(m) for m in got], autojunk=False)
    troubles = rig.overrun_frames + rig.xrun_frames

    def near(frame: int | None) -> bool:
        return frame is not None and any(abs(frame - f) <= TROUBLE_PERIODS * PERIOD for f in troubles)

    pairs: list[tuple[int, int]] = []
    unmatched: list[int] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend((j1 + k, i1 + k) for k in range(i2 - i1))
            continue
        for i in range(i1, i2):
            assert near(sent_frames[i]), f"sent message {i} ({sent[i]}) differs away from any recorder overrun; " + (
                first_difference(got, sent, received, rig)
            )
        for j in range(j1, j2):
            assert near(received[j][0]), f"received message {j} ({got[j]}) differs away from any recorder overrun; " + (
                first_difference(got, sent, received, rig)
            )
        unmatched.extend(range(i1, i2))
    return pairs, unmatched


def test_sixty_seconds_of_midi_arrive_complete_balanced_and_on_time(jack_server: JackServer, tmp_path: Path) -> None:
    """One 60 s run judged (sixty_seconds); a run whose checks fail while the recorder overran its cycles, skipped
    cycles, or JACK reported xruns (the server then skips cycles of late clients: the recorder misses blocks idaw
    ran, seen in CI with no overrun of the recorder's own), is run again, up to ATTEMPTS runs. A fault of idaw fails
    every run; a run with a healthy recorder is judged at once."""
    repeat_while_the_rig_failed(partial(sixty_seconds, jack_server), tmp_path, ATTEMPTS)


def sixty_seconds(jack_server: JackServer, tmp_path: Path, rigs: list[MidiRig]) -> None:
    """One run of `idaw live --midi` for RUN_SECONDS and every check on it (see the module docstring); the rig is
    appended to `rigs` so that the caller can see its recorder's health."""
    report_path, log_path, mid = tmp_path / "report.json", tmp_path / "midi-log.json", tmp_path / "live.mid"
    rig = MidiRig(jack_server, RUN_SECONDS + 30, FEEDER, RECORDER)
    rigs.append(rig)
    live: Live | None = None
    mark = jack_server.log_size()
    try:
        rig.start()
        live = Live(
            jack_server,
            tmp_path,
            *live_args(
                rig,
                "--duration",
                str(RUN_SECONDS),
                "--report",
                str(report_path),
                "--midi-log",
                str(log_path),
                "--midi-out",
                str(mid),
                "--tempo",
                "150",
                "--key",
                "D:dorian",
                "--valence",
                "0.4",
                "--arousal",
                "0.5",
            ),
        )
        live.wait_for_output("Ctrl-C to stop", timeout=30)
        status = live.wait(timeout=RUN_SECONDS + 30)
        assert status == 0, f"idaw live failed ({status}): {live.stderr}"
        time.sleep(0.3)  # more cycles after the exit: nothing else may arrive
    finally:
        if live is not None:
            live.kill()
        rig.close()
    report = json.loads(report_path.read_text())
    log = json.loads(log_path.read_text())
    midi = report["midi"]
    assert midi["sender"]["error"] is None and midi["sender"]["watchdog"] is None
    assert midi["connected_to"] == rig.midi_port and midi["port"] == f"{CLIENT}-midi:midi_out"

    # Everything sent arrived, in order, and nothing else: but for messages the recorder itself dropped or misplaced
    # while it overran (align_received), at most 0.5 % of them.
    received = rig.received()
    sent = [row[1:4] for row in log["events"]] + [row[1:4] for row in log["stop"]]
    sent_frames = [rig.engine_frame(int(row[0])) for row in log["events"]] + [None] * len(log["stop"])
    got = [list(data) for _, data in received]
    pairs, lost = align_received(got, sent, sent_frames, received, rig)
    assert len(lost) <= max(2, int(0.005 * len(sent))), first_difference(got, sent, received, rig)
    scheduled = len(log["events"])
    assert scheduled > 300, f"only {scheduled} MIDI events in {RUN_SECONDS:g} s"

    # Every note-on has its note-off; nothing sounds after the stop; the stop ends with All Notes Off per channel.
    # (Over what idaw sent, which is what arrived less the recorder's losses above.)
    notes, hanging = note_pairs([(int(row[0]), bytes(row[1:4])) for row in log["events"] + log["stop"]])
    assert hanging == []
    assert len(notes) == midi["sender"]["note_ons"] == sum(1 for row in log["events"] if row[1] & 0xF0 == 0x90)
    stop = [row[1:4] for row in log["stop"]]
    channels = sorted({row[1] & 0x0F for row in log["events"]})
    assert stop[-len(channels) :] == [[0xB0 | ch, 123, 0] for ch in channels]
    assert all(status & 0xF0 != 0x90 for status, _, _ in stop)

    # Notes keep to D dorian (the drums on channel 10 aside); four tracks on four channels.
    tonic, scale = midi_settings.parse_key("D:dorian")
    pitched = [row for row in log["events"] if row[1] & 0xF0 == 0x90 and row[1] & 0x0F != 9]
    assert all(midi_settings.in_key(row[2], tonic, scale) for row in pitched)
    assert {row[1] & 0x0F for row in log["events"]} <= {0, 1, 2, 9}

    # Receive times: within one period of the scheduled frame. Around an xrun (JACK skipped cycles, or its dummy
    # driver woke late: the server stalled, not idaw) the sender's clock map needs a moment: such events are counted
    # apart, and must be few.
    assert report["callbacks"] == rig.live_cycles, "the recorder did not see every block idaw ran"
    first_frame = int(rig.live_frames[0])
    troubles = [k * PERIOD for k in skipped_blocks(rig)] + [f - first_frame for f in rig.xrun_frames if f > 0]
    guard = XRUN_GUARD_SECONDS * RATE
    errors, excluded, beyond = [], [], []
    for got_index, sent_index in pairs:
        if sent_index >= scheduled:
            continue  # the stop's messages: not scheduled
        frame, row = received[got_index][0], log["events"][sent_index]
        sample = int(row[0])
        target = rig.engine_frame(sample)
        assert target is not None, f"event at sample {sample} after the last recorded block"
        error = frame - target
        if any(t - 2 * PERIOD <= sample <= t + guard for t in troubles):
            excluded.append(error)
            continue
        errors.append(error)
        if abs(error) > PERIOD:
            beyond.append({"sample": sample, "error": error, "late_us": (row[5] - row[4]) / 1e3})
    err = np.asarray(errors)
    stats: dict[str, Any] = {
        "events": scheduled,
        "timed": int(err.size),
        "near_xruns": len(excluded),
        "near_xruns_beyond_one_period": int(np.sum(np.abs(np.asarray(excluded)) > PERIOD)),
        "skipped_cycle_runs": len(skipped_blocks(rig)),
        "recorder_xruns": rig.xruns,
        "lost_by_the_recorder": len(lost),
        "recorder_overruns_while_live": sum(
            1 for f in rig.overrun_frames if rig.live_frames[0] <= f <= rig.live_frames[rig.live_cycles - 1]
        ),
        "server_late_wakeups": jack_server.late_wakeups(mark),
        "beyond_one_period": beyond,
        "receive_error_frames": {
            "min": int(err.min()),
            "p1": float(np.percentile(err, 1)),
            "p50": float(np.median(err)),
            "p99": float(np.percentile(err, 99)),
            "max": int(err.max()),
        },
        "in_scheduled_cycle": float(np.mean((err <= 0) & (err > -PERIOD))),
        "sender": midi["sender"],
        "step_timing": midi["generator"]["step_timing"],
        "bar_step_timing": midi["generator"]["bar_step_timing"],
        "xruns": report["xruns"],
    }
    print(json.dumps(stats))
    assert err.size >= 0.9 * scheduled, stats
    # At most 0.2 % of the timed events (2 of ~1,200) may miss by more than a period: on this shared VM a stall the
    # recorder does not report as an xrun can still skew the sender's clock map for one event (seen once in CI).
    assert len(beyond) <= max(1, int(0.002 * err.size)), stats
    assert all(abs(b["error"]) <= 2 * PERIOD for b in beyond), stats

    # The file: the notes sent, read back alike by mido and pretty_midi.
    by_mido, by_pretty = mido_notes(mid), pretty_notes(mid)
    assert len(by_mido) == len(by_pretty) == len(notes)
    for a, b in zip(by_mido, by_pretty, strict=True):
        assert a[:3] == b[:3] and abs(a[3] - b[3]) < 1e-6 and abs(a[4] - b[4]) < 1e-6
    ons = sorted((row[0] / RATE, row[1] & 0x0F, row[2], row[3]) for row in log["events"] if row[1] & 0xF0 == 0x90)
    tick = 60.0 / 150.0 / 480
    for (start, channel, pitch, velocity), n in zip(
        ons, sorted(by_mido, key=lambda n: (n[3], n[0], n[1])), strict=True
    ):
        assert (channel, pitch, velocity) == n[:3] and abs(start - n[3]) <= tick


def notes_ended(rig: MidiRig, guard_port: str) -> bool:
    """Nothing sounds, the guard has exited, and All Notes Off came last on channels 5 and 6 (status 0xB4, 0xB5)."""
    got = rig.received()
    return (
        not note_pairs(got)[1]
        and guard_port not in rig.port_names()
        and sorted(list(d) for _, d in got[-2:]) == [[0xB4, 123, 0], [0xB5, 123, 0]]
    )


def wait_for_note_ons(rig: MidiRig, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for _, d in rig.received() if d[0] & 0xF0 == 0x90 and d[2] > 0) >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} note-ons arrived within {timeout:g} s")


def test_sigterm_ends_the_notes_and_after_sigkill_the_guard_does(jack_server: JackServer, tmp_path: Path) -> None:
    guard_port = f"{CLIENT}-midi-guard:all_notes_off"
    for sig in (signal.SIGTERM, signal.SIGKILL):
        rig = MidiRig(jack_server, 60, FEEDER, RECORDER).start()
        live = Live(
            jack_server,
            tmp_path,
            *live_args(
                rig,
                "--tempo",
                "240",
                "--midi-channel",
                "5",
                "--chord-channel",
                "6",
                "--bass-channel",
                "6",
                "--drum-channel",
                "5",
            ),
        )
        try:
            live.wait_for_output("Ctrl-C to stop", timeout=30)
            assert guard_port in rig.port_names(), "the MIDI guard is not up"
            wait_for_note_ons(rig, 10, timeout=STEP_CAP_S)
            live.proc.send_signal(sig)
            killed_at = rig.control.frame_time
            status = live.wait(timeout=STEP_CAP_S)
            wait_until(partial(notes_ended, rig, guard_port), STEP_CAP_S)  # the checks below say what is missing
            received = rig.received()
            ports = rig.port_names()
        finally:
            live.kill()
            rig.close()
        notes, hanging = note_pairs(received)
        assert len(notes) + len(hanging) >= 10
        assert hanging == [], f"notes left on after {sig.name}: {hanging}"
        assert guard_port not in ports, "the MIDI guard did not exit"
        if sig == signal.SIGTERM:
            assert status == 0, live.stderr
            last = [list(d) for _, d in received[-2:]]
            assert sorted(last) == [[0xB4, 123, 0], [0xB5, 123, 0]]
            assert "stopped after" in live.stdout and live.stderr == ""
        else:
            assert status == -signal.SIGKILL
            # The killed process sends nothing more and its port is gone; its guardian ends the notes: note-offs
            # for what sounded, then All Notes Off on both channels used (how soon is printed, not asserted).
            assert f"{CLIENT}-midi:midi_out" not in ports
            after = [(f, list(d)) for f, d in received if f > killed_at + 2 * PERIOD]
            assert after, "nothing arrived after SIGKILL"
            assert all(d[0] & 0xF0 == 0x80 for _, d in after[:-2]), after
            assert sorted(d for _, d in after[-2:]) == [[0xB4, 123, 0], [0xB5, 123, 0]], after
            within_s = (after[-1][0] - killed_at) / RATE
            print(json.dumps({"sigkill_all_notes_off_after_s": round(within_s, 3), "guard_messages": len(after)}))


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--midi", "--midi-models", "/nonexistent"], "no MelodyTransformer.json"),
        (["--midi-out", "x.mid"], "--midi-out needs --midi"),
        (["--midi", "--midi-connect", "no-such-port"], "no JACK MIDI input matches --midi-connect 'no-such-port'"),
    ],
)
def test_midi_errors_give_one_line(jack_server: JackServer, tmp_path: Path, args: list[str], text: str) -> None:
    if "--midi-models" not in args and "--midi" in args:
        args = [*args, "--midi-models", str(generator_nets())]
    line = refused_live(jack_server, tmp_path, *args)
    assert text in line, line
