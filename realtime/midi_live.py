"""`idaw live --midi`: the engine generates MIDI while the audio runs; it goes out on a JACK MIDI port and, with
--midi-out, into a standard MIDI file. A guardian process (realtime/midi_guard.py, JACK client `<midi client>-guard`)
ends the notes if this process dies without closing. realtime/live.py calls add_arguments(), start(), listen()
once the audio runs (and the sidecar link, if any, drains the analysis ring) and LiveMidi.close().

With `--follow` the sidecar follows the input (key, tempo, beat phase, mood) and a LiveFollow (realtime/follow.py)
on the sidecar link's thread owns the control pushes between start and close(), as LiveEmotion does below.

With `--emotion input` a LiveEmotion thread (realtime/emotion_input.py) follows the input audio and owns the
generator's control pushes between the first push (start) and close(), which stops it before the last push.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

import idaw_core
from idaw.base.errors import DeviceError, IdawError
from realtime import emotion_input, midi_settings
from realtime.follow import LiveFollow
from realtime.midi_file import MidiRecording
from realtime.midi_guard import GuardLink, start_guard
from realtime.midi_out import MidiSender, open_jack_port
from realtime.sidecar_link.analysis import WindowMaker
from realtime.sidecar_link.link import SidecarLink

DEFAULT_PORT = "midi_out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register --midi and the MIDI options of `idaw live`."""
    group = midi_settings.add_arguments(parser)
    group.add_argument(
        "--midi", action="store_true", help="generate MIDI from the nets and send it to a JACK MIDI output port"
    )
    group.add_argument(
        "--midi-port", default=DEFAULT_PORT, metavar="NAME", help=f"name of that port (default {DEFAULT_PORT})"
    )
    group.add_argument(
        "--midi-client",
        default=None,
        metavar="NAME",
        help="JACK client name of the MIDI port (default: the --client-name followed by -midi)",
    )
    group.add_argument(
        "--midi-connect",
        default=None,
        metavar="PORT",
        help="connect the MIDI port to this JACK MIDI input (full name or a unique part of it)",
    )
    group.add_argument(
        "--follow",
        action="store_true",
        help="take the key, tempo, beat phase and mood from what the sidecar hears in the input (needs --midi and "
        "the sidecar; the --key and --tempo given hold until a beat is heard)",
    )
    group.add_argument(
        "--midi-log",
        default=None,
        metavar="FILE",
        help="write every MIDI event with its sample time, target and actual send time (JSON)",
    )


class LiveMidi:
    """The MIDI side of one live run: sender thread, port, recording. close() ends every note and writes files."""

    def __init__(
        self,
        args: argparse.Namespace,
        engine: idaw_core.Engine,
        settings: midi_settings.MidiSettings,
        sender: MidiSender,
        port_name: str,
        destination: str | None,
        nets: list[str],
        tracker: emotion_input.EmotionTracker | None = None,
    ) -> None:
        self.args = args
        self.tracker = tracker
        """With --emotion input: the EmotionRecognizer, run by `emotion` once listen() started it."""
        self.emotion: emotion_input.LiveEmotion | None = None
        self.follow: LiveFollow | None = None
        """With --follow: what turns the sidecar's heard messages into controls, once follow() started it."""
        self.engine = engine
        self.settings = settings
        self.sender = sender
        self.port_name = port_name
        self.destination = destination
        self.nets = nets
        self._report: dict[str, Any] | None = None

    def close(self) -> dict[str, Any]:
        """Switches the generator off, stops sending (all notes off), writes --midi-out and --midi-log; returns the
        report's "midi" section. Safe to call twice."""
        if self._report is not None:
            return self._report
        heard = self.emotion.stop() if self.emotion is not None else None  # from here this thread pushes again
        followed = self.follow.stop() if self.follow is not None else None
        if heard is None and self.tracker is not None:
            heard = {**self.tracker.describe(), "audio_from": None}
        with contextlib.suppress(IdawError):  # a full control queue: the sender stops anyway
            midi_settings.push(self.engine, self.settings, enabled=False, sequence=2)
        sent = self.sender.close()
        report: dict[str, Any] = {
            "port": self.port_name,
            "connected_to": self.destination,
            **self.settings.describe(),
            "nets": self.nets,
            "sender": sent,
            "generator": dict(self.engine.midi_counters()),
            "lookahead_samples": self.engine.midi_lookahead_samples(self.settings.tempo_bpm),
            "emotion": heard,
            "follow": followed,
        }
        if self.sender.recording is not None and self.args.midi_out:
            report["file"] = self.args.midi_out
            report["file_notes"] = self.sender.recording.write(self.args.midi_out)
        if self.args.midi_log:
            log = {
                **self.sender.log(),
                "settings": self.settings.describe(),
                "lookahead_samples": report["lookahead_samples"],
                "port": self.port_name,
            }
            try:
                with open(self.args.midi_log, "w", encoding="utf-8") as f:
                    json.dump(log, f)
            except OSError as error:
                raise IdawError(f"cannot write MIDI log {self.args.midi_log}: {error.strerror or error}") from None
        self._report = report
        return report


def start(args: argparse.Namespace, engine: idaw_core.Engine) -> LiveMidi | None:
    """With --midi: installs the nets, opens the JACK MIDI port, starts the sender and switches the generator on (it
    starts with the next block); returns None without --midi. IdawError / DeviceError (one line) on bad options,
    missing nets or no JACK."""
    if not args.midi:
        for flag in ("midi_out", "midi_log", "midi_connect"):
            if getattr(args, flag):
                raise IdawError(f"--{flag.replace('_', '-')} needs --midi")
        if getattr(args, "emotion", "manual") != "manual":
            raise IdawError(f"--emotion {args.emotion} needs --midi")
        if args.follow:
            raise IdawError("--follow needs --midi")
        return None
    if args.follow and getattr(args, "emotion", "manual") != "manual":
        raise IdawError("--follow takes the mood from the input already: leave out --emotion input")
    if args.follow and getattr(args, "no_sidecar", False):
        raise IdawError("--follow needs the sidecar (it listens there): leave out --no-sidecar")
    settings = midi_settings.settings_from_args(args)
    nets = midi_settings.install_nets(engine, args.midi_models)
    tracker = None
    if settings.emotion_source == "input":
        tracker = emotion_input.EmotionTracker(emotion_input.model_path(args.midi_models))
    client = args.midi_client or f"{args.client_name}-midi"
    port, destination = open_jack_port(client, args.midi_port, args.midi_connect)
    name = f"{client}:{args.midi_port}"
    guard: GuardLink | None = None
    try:
        guard = start_guard(f"{client}-guard", name, [destination] if destination else [])
    except DeviceError as error:  # MIDI still works; only a crash of this process could leave notes on
        print(f"idaw live: warning: {error}; a crash may leave notes on", file=sys.stderr, flush=True)
    recording = (
        MidiRecording(engine.sample_rate, settings.tempo_bpm, track_names=settings.track_names)
        if args.midi_out
        else None
    )
    sender = MidiSender(
        engine, port, engine.sample_rate, recording=recording, keep_log=bool(args.midi_log), guard=guard
    ).start()
    midi_settings.push(engine, settings, enabled=True, sequence=1)
    print(
        f"idaw live: MIDI on JACK port {name}"
        + (f" -> {destination}" if destination else "")
        + f", {settings.key_name} at {settings.tempo_bpm:g} BPM, "
        + ("emotion from the input audio (EmotionRecognizer)" if tracker is not None else settings.emotion_text()),
        flush=True,
    )
    return LiveMidi(args, engine, settings, sender, name, destination, nets, tracker)


def listen(midi: LiveMidi | None, windows: WindowMaker | None) -> None:
    """With --emotion input: start following the input. `windows` is the sidecar link's WindowMaker (the analysis
    ring's one reader, which hands the tracker its resampled stream), or None without a sidecar (the tracker's
    thread drains the ring itself). A no-op without --midi or in manual mode."""
    if midi is None or midi.tracker is None or midi.emotion is not None:
        return
    midi.emotion = emotion_input.LiveEmotion(midi.engine, midi.tracker, midi.settings).start(windows)


def follow(midi: LiveMidi | None, link: SidecarLink | None) -> None:
    """With --follow: ask the sidecar to follow the input and let its heard messages steer the generator (a no-op
    without --follow)."""
    if midi is None or not midi.args.follow or link is None or midi.follow is not None:
        return
    midi.follow = LiveFollow(midi.engine, midi.settings, link.windows.rate)
    link.on_heard = midi.follow.on_heard
    link.set_follow(True)
    print("idaw live: following the input: key, tempo and beats from what the sidecar hears", flush=True)


def close(midi: LiveMidi | None) -> dict[str, Any] | None:
    """midi.close(), or None when MIDI is off."""
    return None if midi is None else midi.close()
