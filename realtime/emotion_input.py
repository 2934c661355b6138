"""`--emotion input`: the EmotionRecognizer listens to the engine's input and drives the MIDI generator's emotion.

The engine's analysis ring (mono mix of the input, engine rate) is resampled to 22,050 Hz (libsoxr HQ, the same
stream the sidecar gets), cut into causal log-mel frames exactly as training did (realtime/nets/audio_features.py,
StreamingLogMel = log_mel over the stream) and run through the exported EmotionRecognizer JSON by the core's own
network runtime (idaw_core.load_model; LSTM state carried from frame to frame). The generator gets the embedding
after the newest frame heard (zeros before the first, as in training, realtime/nets/chain.py).

Nothing here runs on the audio thread, and the engine never waits for it:

* EmotionTracker: samples -> frames -> embeddings; fed by one thread.
* LiveEmotion (`idaw live --midi --emotion input`): a thread "idaw-emotion" that owns the MIDI control pushes while
  it runs. With a sidecar its audio comes from the sidecar link's WindowMaker (the ring's one reader) as a listener;
  with --no-sidecar the thread drains the ring itself through its own WindowMaker.
* realtime/midi_offline.py drives an EmotionTracker in step with the offline render (deterministic).

A net that loads can still compute NaN or infinity (e.g. weights near float32's limit overflow): the first frame
whose embedding is not finite ends the net's part for the rest of the run. The emotion falls back to its stand-in,
zeros (what the generator has before the first frame, as in training), and the failure is reported once, in one line
(take_failure()), never as an error of the run. Finite values beyond -1..1 (a net without a final tanh) are clipped
to the generator's range.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import idaw_core
from idaw.base.errors import IdawError
from realtime import midi_settings
from realtime.nets.architectures import MEL
from realtime.nets.audio_features import StreamingLogMel
from realtime.sidecar_link.analysis import WindowMaker

F32 = npt.NDArray[np.float32]

NET = "EmotionRecognizer"
PUMP_INTERVAL_S = 0.02
"""How often the live thread takes new audio and pushes the newest embedding (the sidecar link's pump interval)."""
QUEUE_PIECES = 1000
"""Pieces of audio the live thread may fall behind (~20 s at the link's pace) before pieces are dropped."""


def model_path(directory: Path | None) -> Path:
    """<directory>/EmotionRecognizer.json (default folder: midi_settings.DEFAULT_MODELS); IdawError when missing."""
    folder = midi_settings.DEFAULT_MODELS if directory is None else directory
    path = folder / f"{NET}.json"
    if not path.is_file():
        raise IdawError(f"--emotion input needs {path} (train it with `idaw train nets`, or pass --midi-models DIR)")
    return path


class EmotionTracker:
    """EmotionRecognizer over a stream: feed() audio, latest() the newest 64-d embedding (zeros before any frame).

    feed() is for one thread at a time; latest() and describe() are safe from any thread.
    """

    def __init__(self, path: Path) -> None:
        """Loads the exported net at `path` with the core's runtime; IdawError when it is not a valid model or not
        log-mel 128 -> emotion 64."""
        try:
            self.model: idaw_core.Model = idaw_core.load_model(str(path))
        except ValueError as error:
            raise IdawError(f"cannot use {path} as the {NET}: {error}") from None
        dims = int(idaw_core.EMOTION_DIMS)
        if (self.model.input_size, self.model.output_size) != (MEL.n_mels, dims):
            raise IdawError(
                f"{path} maps {self.model.input_size} -> {self.model.output_size} values; the {NET} maps "
                f"log-mel {MEL.n_mels} -> emotion {dims}"
            )
        self.path = path
        self.mel = StreamingLogMel()
        self._resampler: Any = None
        self._rate = MEL.sample_rate
        self._lock = threading.Lock()
        self._latest = np.zeros(dims, np.float32)
        self._frames = 0
        self._version = 0  # counts changes of the embedding latest() returns
        self._sums = np.zeros(2, np.float64)  # valence, arousal summed over frames
        self.failure: str | None = None
        """Why the net no longer runs (it gave a non-finite output), or None while it works."""
        self._failure_taken = False

    def feed(self, samples: npt.ArrayLike, rate: int = MEL.sample_rate) -> F32:
        """Add mono samples at `rate` (resampled to 22,050 Hz with libsoxr HQ when it differs; one rate per
        tracker); returns the (frames, 64) embeddings of the frames they completed, in order."""
        chunk = np.asarray(samples, dtype=np.float32).reshape(-1)
        if rate != MEL.sample_rate:
            if self._resampler is None:
                import soxr

                self._rate = rate
                self._resampler = soxr.ResampleStream(rate, MEL.sample_rate, 1, dtype="float32", quality="HQ")
            elif rate != self._rate:
                raise ValueError(f"this tracker takes {self._rate} Hz audio, got {rate} Hz")
            chunk = np.asarray(self._resampler.resample_chunk(chunk), dtype=np.float32)
        frames = self.mel.feed(chunk)
        if not len(frames) or self.failure is not None:
            return np.zeros((0, self._latest.size), np.float32)
        out = np.asarray(self.model.forward_sequence(np.ascontiguousarray(frames)), dtype=np.float32)
        computed = len(out)
        finite = np.isfinite(out).all(axis=1)
        good = computed if finite.all() else int(np.argmin(finite))  # frames before the first non-finite one
        out = np.clip(out[:good], -1.0, 1.0)
        with self._lock:
            if good:
                self._latest = out[-1].copy()
                self._frames += good
                self._sums += out[:, :2].astype(np.float64).sum(axis=0)
                self._version += 1
            if good < computed:
                self.failure = (
                    f"the {NET} ({self.path}) gave a non-finite output at frame {self._frames + 1}; the emotion "
                    "falls back to its stand-in (zeros, as before the first frame) for the rest of the run"
                )
                self._latest = np.zeros_like(self._latest)
                self._version += 1
        return out

    def take_failure(self) -> str | None:
        """The failure message the first time it is asked for after the net failed, else None (report it once)."""
        with self._lock:
            if self.failure is None or self._failure_taken:
                return None
            self._failure_taken = True
            return self.failure

    def latest(self) -> F32:
        """A copy of the newest embedding (zeros before the first frame)."""
        with self._lock:
            return self._latest.copy()

    @property
    def frames(self) -> int:
        """Frames heard so far."""
        with self._lock:
            return self._frames

    @property
    def version(self) -> int:
        """Increases whenever latest() changes (a new frame, or the stand-in after a failure)."""
        with self._lock:
            return self._version

    def describe(self) -> dict[str, Any]:
        """Frames the net turned into embeddings, seconds of audio heard, mean (over those frames) and latest
        valence/arousal, and the failure (None while the net works), as plain JSON values."""
        with self._lock:
            frames, sums, latest, failure = self._frames, self._sums.copy(), self._latest.copy(), self.failure
        mean = sums / frames if frames else np.zeros(2)
        return {
            "source": "input",
            "model": str(self.path),
            "frames": frames,
            "seconds_heard": round(self.mel.samples / MEL.sample_rate, 3),
            "mean_valence": round(float(mean[0]), 5),
            "mean_arousal": round(float(mean[1]), 5),
            "valence": round(float(latest[0]), 5),
            "arousal": round(float(latest[1]), 5),
            "failure": failure,
        }


def settings_with(settings: midi_settings.MidiSettings, embedding: F32) -> midi_settings.MidiSettings:
    """`settings` with the emotion replaced by `embedding` (64 floats)."""
    return replace(settings, emotion=tuple(float(x) for x in embedding))


class LiveEmotion:
    """The live tracker thread: takes the input audio, runs the tracker, pushes the newest embedding to the generator.

    While it runs it is the only thread that pushes MIDI control (the core's control queue has one producer): start
    it after the first push and stop() it before the last.
    """

    def __init__(self, engine: idaw_core.Engine, tracker: EmotionTracker, settings: midi_settings.MidiSettings) -> None:
        self.engine = engine
        self.tracker = tracker
        self.settings = settings
        self._queue: queue.Queue[tuple[F32, int]] = queue.Queue(QUEUE_PIECES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._windows: WindowMaker | None = None
        self._own_ring = False
        self.pushes = 0
        self.push_refused = 0
        self.dropped_pieces = 0
        self.errors: list[str] = []

    def _listen(self, samples: F32, rate: int) -> None:
        """WindowMaker listener (runs on the draining thread): queue the piece, never block."""
        try:
            self._queue.put_nowait((samples, rate))
        except queue.Full:
            self.dropped_pieces += 1

    def start(self, windows: WindowMaker | None) -> LiveEmotion:
        """Listen to `windows` (the sidecar link's, already pumped by the link), or with None drain the engine's
        analysis ring on this object's own thread; returns self."""
        if windows is None:
            windows = WindowMaker(round(self.engine.sample_rate))
            self._own_ring = True
            self.engine.set_analysis_enabled(True)
        self._windows = windows
        windows.add_listener(self._listen)
        self._thread = threading.Thread(target=self._run, name="idaw-emotion", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        sequence = 10
        while not self._stop.wait(PUMP_INTERVAL_S):
            try:
                if self._own_ring and self._windows is not None:
                    self._windows.pump(self.engine)  # the listener queues what it resampled
                heard = 0
                while True:
                    try:
                        samples, rate = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    heard += len(self.tracker.feed(samples, rate))
                failure = self.tracker.take_failure()
                if failure is not None:
                    print(f"idaw live: warning: {failure}", file=sys.stderr, flush=True)
                    heard += 1  # push the stand-in
                if heard:
                    sequence += 1
                    try:
                        midi_settings.push(
                            self.engine, settings_with(self.settings, self.tracker.latest()), True, sequence
                        )
                        self.pushes += 1
                    except IdawError:  # queue full: the next frame brings a newer embedding anyway
                        self.push_refused += 1
            except Exception as error:  # the tracker must never take the run down; say what went wrong
                if len(self.errors) < 10:
                    self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(PUMP_INTERVAL_S)

    def stop(self, timeout: float = 2.0) -> dict[str, Any]:
        """Stop listening and the thread (afterwards the caller may push again); returns the report's "emotion"."""
        self._stop.set()
        audio_from = "analysis ring" if self._own_ring else "sidecar link"
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._windows is not None:
            self._windows.remove_listener(self._listen)
        if self._own_ring:
            self.engine.set_analysis_enabled(False)
            self._own_ring = False
        return {
            **self.tracker.describe(),
            "audio_from": audio_from,
            "pushes": self.pushes,
            "push_refused": self.push_refused,
            "dropped_pieces": self.dropped_pieces,
            "errors": self.errors,
        }
