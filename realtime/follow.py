"""`idaw live --midi --follow`: the MIDI generator takes its key, tempo, beat phase and mood from what the sidecar
hears in the input (idaw/listen/follow.py runs there, one follower per engine that asks).

The sidecar link asks the sidecar to follow (SidecarLink.set_follow) and hands every `heard` message to
LiveFollow.on_heard on the link thread, which turns it into the generator's control:

- tempo: the heard tempo (the follower already smooths it);
- beat phase: the heard beat, placed on the engine's sample clock (Engine.analysis_origin() + its index in the
  analysis stream scaled to the engine's rate + the analysis samples the engine dropped), is the control's
  beat_anchor: the generator moves its next beat onto that beat train (midi_generator.h);
- key: the heard key (major or minor scale), which the generator takes up at its next bar line;
- mood: the adapter's valence and arousal through the core's emotion map, when the sidecar heard an emotion.

Until the sidecar hears a beat the generator keeps the command line's tempo and key. While it runs, the link thread
is the only one that pushes MIDI control (the core's queue has one producer): LiveMidi starts it after the first
push and stops it (stop()) before the last.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import idaw_core
from idaw.base.errors import IdawError
from realtime import midi_settings

MAJOR, MINOR = midi_settings.SCALES.index("major"), midi_settings.SCALES.index("minor")
FIRST_SEQUENCE = 100
"""Sequence numbers of the follower's pushes start here (1 and 2 are LiveMidi's start and stop)."""


class LiveFollow:
    """Turns heard messages into generator controls (see the module comment); on_heard runs on the link thread."""

    def __init__(self, engine: idaw_core.Engine, settings: midi_settings.MidiSettings, window_rate: int) -> None:
        self.engine = engine
        self.settings = settings
        self.window_rate = window_rate
        """Rate of the analysis stream the sidecar's indices count (the link's WindowMaker rate)."""
        self._lock = threading.Lock()
        self._stopped = False
        self._sequence = FIRST_SEQUENCE
        self.heard = 0
        self.pushes = 0
        self.push_refused = 0
        self.key_changes: list[tuple[int, str]] = []
        """(engine sample time when heard, key) of each change of the key pushed."""
        self.last: dict[str, Any] | None = None
        """The newest heard message's fields."""

    def engine_time(self, index: int) -> int:
        """The engine sample time of analysis-stream index `index` (see the module comment)."""
        ratio = self.engine.sample_rate / self.window_rate
        dropped = int(self.engine.counters()["analysis_dropped"])
        return int(self.engine.analysis_origin() + round(index * ratio) + dropped)

    def on_heard(self, fields: dict[str, Any]) -> None:
        """A heard message's fields: push the generator's control that follows them (nothing after stop())."""
        with self._lock:
            if self._stopped:
                return
            self.heard += 1
            self.last = fields
            tempo = float(fields["tempo_bpm"])
            if tempo <= 0.0:
                return  # no beat heard (yet): keep the command line's tempo and key
            settings = replace(self.settings, tempo_bpm=min(max(tempo, 20.0), 300.0))
            if fields["key_tonic"] < 12:
                scale = MINOR if fields["key_minor"] else MAJOR
                settings = replace(settings, key_tonic=int(fields["key_tonic"]), scale=scale)
            if fields["emotion"]:
                emotion = midi_settings.emotion_from_valence_arousal(fields["valence"], fields["arousal"])
                settings = replace(settings, emotion=tuple(float(x) for x in emotion))
            if (settings.key_tonic, settings.scale) != (self.settings.key_tonic, self.settings.scale):
                self.key_changes.append((self.engine_time(int(fields["upto"])), settings.key_name))
            self._sequence += 1
            try:
                midi_settings.push(
                    self.engine, settings, True, self._sequence, beat_anchor=max(1, self.engine_time(fields["beat"]))
                )
                self.pushes += 1
                self.settings = settings
            except IdawError:  # queue full: the next heard message brings a newer state
                self.push_refused += 1

    def stop(self) -> dict[str, Any]:
        """Stop pushing (afterwards the caller may push again); returns the report's "follow" section."""
        with self._lock:
            self._stopped = True
            last = self.last or {}
            heard_now = {"heard_tempo_bpm": last.get("tempo_bpm"), "heard_emotion": last.get("emotion") or None}
            return {
                "heard": self.heard,
                "pushes": self.pushes,
                "push_refused": self.push_refused,
                "key_changes": [{"sample_time": t, "key": k} for t, k in self.key_changes],
                "tempo_bpm": round(self.settings.tempo_bpm, 3),
                "key": self.settings.key_name,
                **heard_now,
                "phase_locks": int(self.engine.midi_counters()["phase_locks"]),
                "key_changes_applied": int(self.engine.midi_counters()["key_changes"]),
            }
