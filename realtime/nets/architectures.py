"""The five iDAW networks (docs: idaw-ml-models.md), in PyTorch, with the meaning of every input and output.

Every net is a chain of Linear / LSTM / activation layers; ``rtneural_layers()`` lists them in order (the exporters
in ``export/`` walk it) and ``forward`` runs exactly that list. Inputs are ``[batch, time, features]`` (or
``[batch, features]`` for a single step); LSTMs are 1-layer, ``batch_first``; state can be passed and returned.
``forward(..., logits=True)`` skips the final activation (for BCE-with-logits / cross-entropy training).

Shared vocabularies (full tables with decoding formulas and training-target notes: realtime/nets/README.md):

* **Emotion embedding** (64, each in [-1, 1]): 0 valence, 1 arousal, 2 dominance, 3 intensity, 4-11 Plutchik
  intensities mapped as 2p-1 (:data:`PLUTCHIK`), 12-63 free latent dims (0 when unknown, e.g. text/biometric input).
* **Chord classes** (64): ``quality * 12 + root`` with root pitch class 0=C..11=B and quality
  :data:`CHORD_QUALITIES` (maj, min, dom7, dim, aug) → 0-59; 60 = N (no chord/rest), 61 = X (other: sus, power,
  cluster), 62-63 reserved (never targets; ignore at run time).
* **Time steps**: EmotionRecognizer one call per mel frame (:data:`MEL`), MelodyTransformer one per sixteenth note,
  HarmonyPredictor and GroovePredictor one per bar (4/4), DynamicsEngine one per beat.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from idaw.theory.pitch_names import PITCH_NAMES
from realtime.nets.dimensions import EXPRESSION_PARAMS

__all__ = [
    "CHORD_QUALITIES",
    "DYNAMICS_CONTEXT",
    "EMOTION",
    "EXPRESSION_PARAMS",
    "GROOVE",
    "HARMONY_CONTEXT",
    "MEL",
    "NETS",
    "NO_CHORD",
    "OTHER_CHORD",
    "PLUTCHIK",
    "DynamicsEngine",
    "EmotionRecognizer",
    "GroovePredictor",
    "HarmonyPredictor",
    "MelSpec",
    "MelodyTransformer",
    "RTNet",
    "State",
    "chord_class",
    "chord_name",
    "param_count",
]

State = list[tuple[Tensor, Tensor]]  # one (h, c) per LSTM, each [1, batch, hidden]


@dataclass(frozen=True)
class MelSpec:
    """EmotionRecognizer input features: one 128-bin log-mel frame per call (librosa-compatible parameters).

    Audio: mono (mean of channels), float in [-1, 1], resampled to ``sample_rate``. Frame t covers samples
    ``[t*hop, t*hop + n_fft)`` (causal, ``center=False``), periodic Hann window of ``n_fft``, power spectrum
    ``|STFT|^2`` (unnormalised FFT), Slaney-style mel filterbank with Slaney area normalisation (``htk=False,
    norm="slaney"``, fmin..fmax). Feature: ``x = (clip(10*log10(max(S, 1e-10)), db_min, db_max) - db_center) /
    db_scale``, i.e. -100 dB → -1, +50 dB → +1. Equivalent: ``librosa.feature.melspectrogram(y=y, sr=22050,
    n_fft=2048, hop_length=512, center=False, power=2.0, n_mels=128, fmin=0, fmax=11025)`` then the formula.
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop: int = 512  # 23.2 ms, 43.07 frames per second
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 11025.0
    db_min: float = -100.0
    db_max: float = 50.0
    db_center: float = -25.0
    db_scale: float = 75.0


MEL = MelSpec()

PLUTCHIK = ("joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation")

#: Emotion embedding layout (index or slice into the 64 dims).
EMOTION: dict[str, int | slice] = {
    "valence": 0,
    "arousal": 1,
    "dominance": 2,
    "intensity": 3,
    "plutchik": slice(4, 12),
    "latent": slice(12, 64),
}

CHORD_QUALITIES = ("maj", "min", "dom7", "dim", "aug")
NO_CHORD, OTHER_CHORD = 60, 61


def chord_class(root: int, quality: str) -> int:
    """Chord class index for a root pitch class (0=C) and a quality in CHORD_QUALITIES."""
    return CHORD_QUALITIES.index(quality) * 12 + root % 12


def chord_name(index: int) -> str:
    """Readable name of a chord class: 'C:maj', 'A:min', 'N', 'X', 'reserved'."""
    if 0 <= index < 60:
        return f"{PITCH_NAMES[index % 12]}:{CHORD_QUALITIES[index // 12]}"
    return {NO_CHORD: "N", OTHER_CHORD: "X"}.get(index, "reserved")


#: HarmonyPredictor input (128), computed at the start of each bar. "pc" = pitch-class profile, duration weighted,
#: normalised to sum 1 (all 0 when silent). Scalars are clipped to [-1, 1] or [0, 1] as noted in the README.
HARMONY_CONTEXT: dict[str, int | slice] = {
    "emotion": slice(0, 64),  # the emotion embedding
    "melody_pc_bar": slice(64, 76),  # melody pitch classes of the bar being harmonised
    "melody_pc_prev_bar": slice(76, 88),  # ... of the previous bar
    "key_tonic": slice(88, 100),  # one-hot key tonic pitch class
    "key_mode": slice(100, 102),  # one-hot (major, minor)
    "prev_chord_root": slice(102, 114),  # one-hot root of the previous bar's chord (0 for N/X/start)
    "prev_chord_quality": slice(114, 119),  # one-hot CHORD_QUALITIES of the previous chord
    "prev_chord_none": 119,  # 1 if the previous chord was N or X or there is none
    "bar_in_phrase": slice(120, 124),  # one-hot bar position in a 4-bar phrase
    "tempo": 124,  # (bpm - 120) / 60, clipped to [-1, 1]
    "note_density": 125,  # melody onsets in the bar / 16, clipped to [0, 1]
    "melody_register": 126,  # (mean melody MIDI pitch - 60) / 24, clipped to [-1, 1]; 0 if silent
    "piece_start": 127,  # 1 on the first bar of the piece
}

#: DynamicsEngine input (32), computed at the start of each beat.
DYNAMICS_CONTEXT: dict[str, int | slice] = {
    "emotion": slice(0, 12),  # emotion embedding dims 0-11 (VAD, intensity, Plutchik)
    "beat_in_bar": slice(12, 16),  # one-hot beat 1-4
    "bar_in_phrase": slice(16, 20),  # one-hot bar 1-4 of the phrase
    "tempo": 20,  # (bpm - 120) / 60, clipped to [-1, 1]
    "note_density": 21,  # melody onsets in the current bar / 16
    "melody_register": 22,  # (mean melody MIDI pitch - 60) / 24
    "melody_range": 23,  # (max - min melody MIDI pitch in the bar) / 24, clipped to [0, 1]
    "chord_quality": slice(24, 29),  # one-hot CHORD_QUALITIES of the current chord
    "chord_none": 29,  # 1 if the current chord is N or X
    "chord_change": 30,  # 1 if the chord changes on this beat
    "phrase_progress": 31,  # position in the 4-bar phrase, 0 at its start .. 1 at its end
}


#: GroovePredictor outputs (32, tanh in [-1, 1]) for one 4/4 bar of sixteenths.
GROOVE: dict[str, slice] = {
    "onset": slice(0, 16),  # (y + 1) / 2 = probability of an onset (any part) on sixteenth k
    "timing": slice(16, 32),  # y / 2 = micro-timing offset of sixteenth k, in sixteenths (positive = late)
}


class RTNet(nn.Module):
    """Base of the five nets: a Linear / LSTM / activation chain given by ``rtneural_layers()``."""

    input_size = 0
    output_size = 0

    def rtneural_layers(self) -> list[nn.Module]:
        """The layers in order, activations as modules (what forward runs and the exporters write)."""
        raise NotImplementedError

    def initial_state(self, batch: int = 1) -> State:
        """Zero (h, c) for every LSTM, each ``[1, batch, hidden]``."""
        z = next(self.parameters())
        return [
            (z.new_zeros(1, batch, m.hidden_size), z.new_zeros(1, batch, m.hidden_size))
            for m in self.rtneural_layers()
            if isinstance(m, nn.LSTM)
        ]

    def forward_with_state(
        self, x: Tensor, state: State | None = None, *, logits: bool = False
    ) -> tuple[Tensor, State]:
        """Returns ``(y, new_state)``; x is ``[batch, time, input_size]`` or ``[batch, input_size]``.

        y has the same leading shape with ``output_size`` features. ``state`` None starts from zero.
        ``logits=True`` returns the values before the final activation.
        """
        single = x.dim() == 2
        h = x[:, None, :] if single else x
        layers = self.rtneural_layers()
        if logits and isinstance(layers[-1], nn.Tanh | nn.ReLU | nn.Sigmoid | nn.Softmax | nn.ELU):
            layers = layers[:-1]
        new_state: State = []
        for layer in layers:
            if isinstance(layer, nn.LSTM):
                h, (hn, cn) = layer(h, None if state is None else state[len(new_state)])
                new_state.append((hn, cn))
            else:
                h = layer(h)
        return (h[:, 0] if single else h), new_state

    def forward(self, x: Tensor, state: State | None = None, *, logits: bool = False) -> Tensor:
        """Returns y (see :meth:`forward_with_state`)."""
        return self.forward_with_state(x, state, logits=logits)[0]


class EmotionRecognizer(RTNet):
    """Audio → emotion. 128 → Dense 512 tanh → Dense 256 tanh → LSTM 128 → Dense 64 tanh. 403,264 parameters.

    Input (128): one log-mel frame as defined by :data:`MEL` (bin k = mel band k, low to high), one call per hop
    (23.2 ms at 22.05 kHz); the LSTM state carries across frames.
    Output (64): the emotion embedding (see module docstring / :data:`EMOTION`) for the audio heard so far.
    Supervised dims: valence, arousal (e.g. DEAM, 2 Hz continuous annotations in [-1, 1]); others where labelled,
    masked otherwise.
    """

    input_size, output_size = 128, 64

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(128, 512), nn.Linear(512, 256)
        self.lstm = nn.LSTM(256, 128, batch_first=True)
        self.fc3 = nn.Linear(128, 64)

    def rtneural_layers(self) -> list[nn.Module]:
        return [self.fc1, nn.Tanh(), self.fc2, nn.Tanh(), self.lstm, self.fc3, nn.Tanh()]


class MelodyTransformer(RTNet):
    """Emotion → notes. 64 → Dense 256 relu → LSTM 256 → Dense 256 relu → Dense 128 sigmoid. 641,664 parameters.

    Input (64): the emotion embedding, one call per sixteenth-note step (the LSTM state is the melodic memory).
    Output (128): output k = probability that MIDI pitch k (0-127, 60 = middle C) sounds during this sixteenth
    step (piano-roll column: onset or held). Train with BCE on logits=True against the 16th-quantised piano roll.
    """

    input_size, output_size = 64, 128

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 256)
        self.lstm = nn.LSTM(256, 256, batch_first=True)
        self.fc2, self.fc3 = nn.Linear(256, 256), nn.Linear(256, 128)

    def rtneural_layers(self) -> list[nn.Module]:
        return [self.fc1, nn.ReLU(), self.lstm, self.fc2, nn.ReLU(), self.fc3, nn.Sigmoid()]


class HarmonyPredictor(RTNet):
    """Context → chord. 128 → Dense 256 tanh → Dense 128 tanh → Dense 64 softmax. 74,176 parameters.

    Input (128): :data:`HARMONY_CONTEXT` (emotion, melody pitch classes, key, previous chord, phrase position...),
    one call per bar. Output (64): probability of each chord class (module docstring) for this bar; sums to 1.
    Train with cross-entropy on logits=True.
    """

    input_size, output_size = 128, 64

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(128, 256), nn.Linear(256, 128), nn.Linear(128, 64)

    def rtneural_layers(self) -> list[nn.Module]:
        return [self.fc1, nn.Tanh(), self.fc2, nn.Tanh(), self.fc3, nn.Softmax(dim=-1)]


class DynamicsEngine(RTNet):
    """Context → expression. 32 → Dense 128 relu → Dense 64 relu → Dense 16 sigmoid. 13,520 parameters.

    Input (32): :data:`DYNAMICS_CONTEXT`, one call per beat. Output (16): :data:`EXPRESSION_PARAMS`, each in [0, 1]
    (velocity, accents, crescendo, articulation, timing, rubato, pedal, ...; decoding in the README).
    """

    input_size, output_size = 32, 16

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(32, 128), nn.Linear(128, 64), nn.Linear(64, 16)

    def rtneural_layers(self) -> list[nn.Module]:
        return [self.fc1, nn.ReLU(), self.fc2, nn.ReLU(), self.fc3, nn.Sigmoid()]


class GroovePredictor(RTNet):
    """Emotion → groove. 64 → Dense 128 tanh → Dense 64 tanh → Dense 32 tanh. 18,656 parameters.

    Input (64): the emotion embedding, one call per bar. Output (32): :data:`GROOVE` for a 4/4 bar of sixteenths:
    0-15 onset strength ((y+1)/2 = onset probability of sixteenth k), 16-31 micro-timing (y/2 sixteenths, + = late).
    """

    input_size, output_size = 64, 32

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 128), nn.Linear(128, 64), nn.Linear(64, 32)

    def rtneural_layers(self) -> list[nn.Module]:
        return [self.fc1, nn.Tanh(), self.fc2, nn.Tanh(), self.fc3, nn.Tanh()]


#: The five nets by name, in pipeline order, with their parameter counts (PyTorch: LSTMs have two bias vectors).
NETS: dict[str, tuple[type[RTNet], int]] = {
    "EmotionRecognizer": (EmotionRecognizer, 403_264),
    "MelodyTransformer": (MelodyTransformer, 641_664),
    "HarmonyPredictor": (HarmonyPredictor, 74_176),
    "DynamicsEngine": (DynamicsEngine, 13_520),
    "GroovePredictor": (GroovePredictor, 18_656),
}


def param_count(model: nn.Module) -> int:
    """Number of parameters (all tensors in ``parameters()``)."""
    return sum(p.numel() for p in model.parameters())
