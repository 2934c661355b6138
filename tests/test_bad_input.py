"""Everything a user can get wrong ends in one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import idaw_core
from idaw.base.errors import DeviceError, IdawError
from realtime import audio_io, offline, params
from realtime.devices import Kind, resolve_device
from tests.support.audio import WriteAudio, noise
from tests.support.idaw_command import RunIdaw


def good_wav(tmp: Path) -> Path:
    """A valid stereo float WAV, 0.1 s at 48 kHz."""
    path = tmp / "in.wav"
    sf.write(path, noise(48000, 0.1, 2), 48000, subtype="FLOAT")
    return path


def random_bytes(tmp: Path) -> Path:
    """Random bytes wearing a .wav name."""
    path = tmp / "corrupt.wav"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def empty(tmp: Path) -> Path:
    """A zero-byte .wav file."""
    path = tmp / "empty.wav"
    path.write_bytes(b"")
    return path


def header_only(tmp: Path) -> Path:
    """A valid WAV header with no frames."""
    path = tmp / "silence.wav"
    sf.write(path, np.zeros((0, 2), np.float32), 48000)
    return path


def truncated(tmp: Path) -> Path:
    """The first 20 bytes of a WAV: RIFF header, no data chunk."""
    path = tmp / "truncated.wav"
    path.write_bytes(good_wav(tmp).read_bytes()[:20])
    return path


def nine_channels(tmp: Path) -> Path:
    """A WAV with one channel more than the engine takes."""
    path = tmp / "nine.wav"
    sf.write(path, np.zeros((100, 9), np.float32), 48000)
    return path


def text_file(tmp: Path) -> Path:
    """Plain text with an audio-ish name."""
    path = tmp / "notes.flac"
    path.write_text("not audio\n")
    return path


Case = tuple[Callable[[Path], Path], list[str], str]

CASES: dict[str, Case] = {
    "missing file": (lambda tmp: tmp / "nope.wav", [], "input file not found"),
    "corrupt file": (random_bytes, [], "not a readable audio file"),
    "empty file": (empty, [], "input file is empty"),
    "no frames": (header_only, [], "contains no audio"),
    "truncated file": (truncated, [], "not a readable audio file"),
    "text as flac": (text_file, [], "not a readable audio file"),
    "too many channels": (nine_channels, [], "has 9 channels; idaw processes at most 8"),
    "input is a folder": (lambda tmp: tmp, [], "is a directory"),
    "wrong output extension": (good_wav, ["-o", "{tmp}/out.mp3"], "unsupported extension '.mp3'; allowed: .wav, .flac"),
    "no output extension": (good_wav, ["-o", "{tmp}/out"], "allowed: .wav, .flac"),
    "missing output folder": (good_wav, ["-o", "{tmp}/no/such/out.wav"], "does not exist"),
    "float FLAC": (good_wav, ["-o", "{tmp}/out.flac", "--subtype", "FLOAT"], "not available for FLAC"),
    "eq gain out of range": (good_wav, ["--eq", "low_gain=30"], "low_gain = 30 is out of range; allowed: -12..12 dB"),
    "eq freq out of range": (
        good_wav,
        ["--eq", "high_freq=30000"],
        "high_freq = 30000 is out of range; allowed: 580..20000 Hz",
    ),
    "drive out of range": (good_wav, ["--drive", "50"], "drive = 50 is out of range; allowed: 0..36 dB"),
    "mix out of range": (good_wav, ["--mix", "-0.5"], "mix = -0.5 is out of range; allowed: 0..1"),
    "eq nan": (good_wav, ["--eq", "low_gain=nan"], "low_gain = nan is out of range"),
    "unknown parameter": (good_wav, ["--eq", "lowgain=3"], "unknown parameter 'lowgain'; known parameters: input_gain"),
    "eq without value": (good_wav, ["--eq", "low_gain"], "cannot read 'low_gain': use name=value"),
    "eq value not a number": (good_wav, ["--eq", "low_gain=loud"], "low_gain: 'loud' is not a number"),
    "eq short SAFE row": (good_wav, ["--eq", "1,2,3"], "cannot read '1'"),
    "block size zero": (good_wav, ["--block-size", "0"], "block size 0 is out of range; allowed: 1..65536"),
    "engine rate too low": (good_wav, ["--rate", "1000"], "engine rate 1000 Hz is out of range; allowed: 8000..384000"),
    "eq beyond float32": (good_wav, ["--eq", "low_gain=1e39"], "low_gain = 1e+39 is out of range; allowed: -12..12 dB"),
    "drive beyond float32": (good_wav, ["--drive", "1e39"], "drive = 1e+39 is out of range; allowed: 0..36 dB"),
    "option without its value": (good_wav, ["--drive"], "argument --drive: expected one argument"),
    "input name too long": (lambda tmp: tmp / ("a" * 300 + ".wav"), [], "cannot read {tmp}/aaaa"),
    "output name too long": (good_wav, ["-o", "{tmp}/" + "b" * 300 + ".wav"], ".wav: file name too long"),
    "output is a folder": (good_wav, ["-o", "{tmp}/folder.wav"], "cannot write {tmp}/folder.wav: it is a folder"),
    "output folder is a file": (good_wav, ["-o", "{tmp}/in.wav/out.wav"], "{tmp}/in.wav is not a folder"),
    "MIDI file in a missing folder": (
        good_wav,
        ["--midi-out", "{tmp}/no/song.mid"],
        "cannot write MIDI file {tmp}/no/song.mid: folder {tmp}/no does not exist",
    ),
    "MIDI file is a folder": (
        good_wav,
        ["--midi-out", "{tmp}/folder.wav"],
        "MIDI file {tmp}/folder.wav: it is a folder",
    ),
    "MIDI file name too long": (good_wav, ["--midi-out", "{tmp}/" + "m" * 300 + ".mid"], ".mid: file name too long"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_process_rejects_bad_input_in_one_line(case: Case, run_idaw: RunIdaw, tmp_path: Path) -> None:
    make_input, extra, expected = case
    source = make_input(tmp_path)
    (tmp_path / "folder.wav").mkdir()
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    args = ["process", str(source), *(extra if "-o" in extra else ["-o", str(tmp_path / "out.wav"), *extra])]
    before = sorted(tmp_path.iterdir())

    result = run_idaw(*args)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("idaw process: error: "), lines[0]
    assert expected.format(tmp=tmp_path) in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(tmp_path.iterdir()) == before, "a failed run must not leave an output or part file behind"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["demo", "--no-sidecar", "--out", "{tmp}/in.wav"],
            "cannot use {tmp}/in.wav as the output folder: it is a file",
        ),
        (
            ["demo", "--no-sidecar", "--out", "{tmp}/in.wav/demo"],
            "cannot create folder {tmp}/in.wav/demo: not a directory",
        ),
        (["demo", "--no-sidecar", "--out", "{tmp}/" + "d" * 300], "file name too long"),
        (
            ["live", "--no-sidecar", "--report", "{tmp}/no/report.json"],
            "cannot write report {tmp}/no/report.json: folder",
        ),
        (["live", "--no-sidecar", "--report", "{tmp}/" + "r" * 300 + ".json"], ".json: file name too long"),
        (["live", "--no-sidecar", "--midi", "--midi-out", "{tmp}/no/x.mid"], "cannot write MIDI file {tmp}/no/x.mid"),
        (["live", "--no-sidecar", "--midi", "--midi-log", "{tmp}"], "cannot write MIDI log {tmp}: it is a folder"),
    ],
    ids=[
        "demo out is a file",
        "demo out under a file",
        "demo out too long",
        "live report in a missing folder",
        "live report name too long",
        "live MIDI file in a missing folder",
        "live MIDI log is a folder",
    ],
)
def test_other_commands_reject_bad_paths_in_one_line_before_any_work(
    args: list[str], expected: str, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    good_wav(tmp_path)
    before = sorted(tmp_path.iterdir())

    result = run_idaw(*[arg.format(tmp=tmp_path) for arg in args])

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"idaw {args[0]}: error: "), lines[0]
    assert expected.format(tmp=tmp_path) in lines[0], lines[0]
    assert sorted(tmp_path.iterdir()) == before, "nothing may be written when the path is refused"


def test_an_os_error_nobody_caught_is_one_line_naming_the_path(run_idaw: RunIdaw, tmp_path: Path) -> None:
    """The last line of defence (idaw/cli.py) for an OSError from code that did not expect one: here the
    sidecar's --ready-file, in a folder that does not exist."""
    result = run_idaw(
        "sidecar", "--bind", "tcp://127.0.0.1:*", "--handler", "fallback", "--ready-file", f"{tmp_path}/no/ready"
    )

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert lines[-1].startswith("idaw sidecar: error: "), lines
    assert f"{tmp_path}/no/ready" in lines[-1] and "no such file or directory" in lines[-1], lines[-1]


def test_unknown_device_is_one_line(run_idaw: RunIdaw) -> None:
    result = run_idaw("devices", "no-such-device-xyz")

    assert result.returncode == DeviceError.exit_code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("idaw devices: error: unknown device 'no-such-device-xyz'; available: ")


def test_device_listing_succeeds_with_or_without_devices(run_idaw: RunIdaw) -> None:
    result = run_idaw("devices")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no audio devices found" or "default input" in result.stdout


FAKE_DEVICES = [
    {
        "name": "HDA Intel PCH: ALC892 Analog (hw:0,0)",
        "hostapi": 0,
        "max_input_channels": 2,
        "max_output_channels": 2,
        "default_samplerate": 44100.0,
    },
    {
        "name": "Scarlett 2i2 USB: Audio (hw:1,0)",
        "hostapi": 0,
        "max_input_channels": 2,
        "max_output_channels": 0,
        "default_samplerate": 48000.0,
    },
    {"name": "system", "hostapi": 1, "max_input_channels": 0, "max_output_channels": 8, "default_samplerate": 48000.0},
]


@pytest.mark.parametrize(
    ("spec", "kind", "expected"),
    [
        (None, "input", 1),
        (None, "output", 2),
        (0, "output", 0),
        ("2", "output", 2),
        ("scarlett", "input", 1),
        ("SYSTEM", "output", 2),
        ("alc892", "input", 0),
    ],
)
def test_resolve_device_by_index_name_or_default(spec: str | int | None, kind: Kind, expected: int) -> None:
    assert resolve_device(spec, kind, FAKE_DEVICES, default=1 if kind == "input" else 2) == expected


@pytest.mark.parametrize(
    ("spec", "kind", "message"),
    [
        (
            "focusrite",
            "input",
            "unknown device 'focusrite'; available: 0: HDA Intel PCH: ALC892 Analog (hw:0,0), "
            "1: Scarlett 2i2 USB: Audio (hw:1,0)",
        ),
        ("7", "output", "unknown device 7; available: 0: HDA Intel PCH: ALC892 Analog (hw:0,0), 2: system"),
        ("scarlett", "output", "has no output channels"),
        (2, "input", "device 2 (system) has no input channels"),
        ("a", "input", "ambiguous"),
    ],
)
def test_resolve_device_errors_name_the_choices(spec: str | int, kind: Kind, message: str) -> None:
    with pytest.raises(DeviceError) as caught:
        resolve_device(spec, kind, FAKE_DEVICES, default=-1)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


FAKE_HOSTAPIS = [
    {"name": "ALSA", "devices": [0, 1], "default_input_device": 1, "default_output_device": 0},
    {"name": "JACK Audio Connection Kit", "devices": [2], "default_input_device": -1, "default_output_device": 2},
]


@pytest.mark.parametrize(
    ("spec", "kind", "expected"),
    [("jack", "output", 2), ("JACK", "output", 2), ("JACK Audio Connection Kit", "output", 2), ("alsa", "input", 1)],
)
def test_resolve_device_by_host_api_takes_its_default_device(spec: str, kind: Kind, expected: int) -> None:
    """`--device jack` (the README's example) picks the JACK host API's default device for the direction."""
    assert resolve_device(spec, kind, FAKE_DEVICES, default=-1, hostapis=FAKE_HOSTAPIS) == expected


def test_resolve_device_by_host_api_without_such_a_device_names_what_it_has() -> None:
    message = "host API JACK Audio Connection Kit has no input device (2: system)"
    with pytest.raises(DeviceError, match=re.escape(message)):
        resolve_device("jack", "input", FAKE_DEVICES, default=-1, hostapis=FAKE_HOSTAPIS)


def test_an_unknown_device_also_lists_the_host_apis() -> None:
    with pytest.raises(DeviceError) as caught:
        resolve_device("focusrite", "output", FAKE_DEVICES, default=-1, hostapis=FAKE_HOSTAPIS)
    assert str(caught.value).endswith("; host APIs: alsa (ALSA), jack (JACK Audio Connection Kit)")


def test_resolve_device_without_a_default_says_so() -> None:
    with pytest.raises(IdawError, match="no default output device; available: 0: HDA"):
        resolve_device(None, "output", FAKE_DEVICES, default=-1)


def test_nan_in_the_input_file_is_silenced_and_reported(
    write_audio: WriteAudio, run_idaw: RunIdaw, tmp_path: Path
) -> None:
    audio = noise(48000, 0.2, 2)
    audio[1000:1010, 0] = np.nan
    audio[2000, 1] = np.inf
    out = tmp_path / "out.wav"

    result = run_idaw("process", write_audio("in.wav", audio, 48000), "-o", out)

    assert result.returncode == 0, result.stderr
    assert "11 NaN/Inf input samples silenced" in result.stdout
    processed, _ = sf.read(out, dtype="float32", always_2d=True)
    assert np.isfinite(processed).all()


def test_render_array_rejects_a_bad_parameter_vector() -> None:
    vector = params.defaults()
    vector[params.INDEX["low_gain"]] = 30.0
    with pytest.raises(IdawError, match=re.escape("low_gain = 30 is out of range; allowed: -12..12 dB")):
        offline.render_array(np.zeros((100, 2), np.float32), 48000, vector)
    with pytest.raises(IdawError, match=f"expected {idaw_core.NUM_PARAMS} parameter values"):
        offline.render_array(np.zeros((100, 2), np.float32), 48000, vector[:5])


@pytest.mark.parametrize("size", [1, 12, 44, 100, 4096, 100_000])
def test_random_bytes_never_read_as_audio_and_stay_quiet(
    size: int, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(size)
    for attempt in range(10):
        path = tmp_path / f"junk{attempt}.wav"
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        with pytest.raises(IdawError, match="not a readable audio file"):
            audio_io.read_audio(path)
    captured = capfd.readouterr()
    assert captured.err == ""  # C libraries probing the junk (libmpg123) must not print to stderr
