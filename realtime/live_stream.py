"""PortAudio for `idaw live`: start-up with a JACK client name, device choice and checks, and a duplex stream
whose callback is the C++ core's native function (python-sounddevice passes it to PortAudio untouched).

Every user-facing failure is raised as DeviceError with one line of text.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
import time
from typing import Any

import idaw_core
from idaw.base.errors import DeviceError
from realtime import devices

DEFAULT_CLIENT_NAME = "idaw"
JACK_API = "JACK Audio Connection Kit"
STANDARD_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
FIRST_BLOCK_TIMEOUT = 2.0
"""How long to wait for the first callback before reporting the block size as unknown."""

_name_buffer: ctypes.Array[ctypes.c_char] | None = None
"""PaJack_SetClientName keeps only the pointer: the bytes must live as long as PortAudio may read them."""


def one_line(error: BaseException) -> str:
    """An exception's message as a single line."""
    return " ".join(str(error).split()) or type(error).__name__


def _portaudio_ctypes(libname: str | None) -> Any:
    """The PortAudio library through ctypes (the same loaded copy sounddevice uses), or None."""
    if libname is None:
        return None
    try:
        return ctypes.CDLL(libname)
    except OSError:
        return None


def _set_jack_client_name(libname: str | None, name: str) -> None:
    """Tell PortAudio's JACK host API which client name to ask for at its next initialisation."""
    global _name_buffer
    lib = _portaudio_ctypes(libname)
    setter = getattr(lib, "PaJack_SetClientName", None) if lib is not None else None
    if setter is None:  # PortAudio without JACK support: nothing to name
        return
    setter.argtypes = [ctypes.c_char_p]
    setter.restype = ctypes.c_int
    _name_buffer = ctypes.create_string_buffer(name.encode())
    if setter(_name_buffer) != 0:
        raise DeviceError(f"JACK client name '{name}' is too long")


def jack_client_name(sd: Any) -> str | None:
    """The name JACK actually gave PortAudio's client (JACK may append -01 when the name is taken), or None
    when PortAudio has no JACK host API."""
    lib = _portaudio_ctypes(sd._libname)
    getter = getattr(lib, "PaJack_GetClientName", None) if lib is not None else None
    if getter is None:
        return None
    getter.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    getter.restype = ctypes.c_int
    name = ctypes.c_char_p()
    if getter(ctypes.byref(name)) != 0 or name.value is None:
        return None
    return name.value.decode(errors="replace")


def load_portaudio(client_name: str) -> Any:
    """The sounddevice module with PortAudio (re)initialised now, its JACK client called `client_name`.

    Initialising now also refreshes the device list (PortAudio snapshots it then). libjack is told never to
    start a server of its own (JACK_NO_START_SERVER, unless the caller set it). Raises DeviceError when
    PortAudio cannot be loaded or initialised.
    """
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    already = "sounddevice" in sys.modules
    if not already:  # name the client before `import sounddevice` runs Pa_Initialize
        _set_jack_client_name(ctypes.util.find_library("portaudio"), client_name)
    try:
        with devices.signals_deferred():  # Pa_Initialize opens the JACK client
            sd = devices._sounddevice()
            if already:
                while sd._initialized > 0:
                    sd._terminate()
                _set_jack_client_name(sd._libname, client_name)
                sd._initialize()
    except DeviceError:
        raise
    except Exception as error:  # sounddevice.PortAudioError from Pa_Initialize
        raise DeviceError(f"cannot initialise PortAudio: {one_line(error)}") from None
    return sd


def start_stream(sd: Any, stream: Any) -> None:
    """Start `stream` (JACK: activate the client and connect its ports), signals deferred; DeviceError if refused
    (the stream stays open: whoever opened it closes it, e.g. with close_within)."""
    try:
        with devices.signals_deferred():
            stream.start()
    except sd.PortAudioError as error:
        raise DeviceError(f"cannot start the stream: {one_line(error)}") from None


def choose_devices(sd: Any, device: str | None, input_device: str | None, output_device: str | None) -> tuple[int, int]:
    """(input index, output index) for the user's choice (see devices.resolve_device: an index, a host API such as
    'jack', or part of a device name); without one, the JACK host API's default devices when JACK runs, else the
    system defaults. Raises DeviceError naming the available devices."""
    found, apis, defaults = devices.query()
    if not found:
        raise DeviceError(
            "no audio devices found: no JACK server is running and PortAudio sees no sound card "
            "(start JACK, e.g. `jackd -d dummy` for a test, or connect a device)"
        )
    names = [str(api["name"]) for api in apis]
    jack_api = names.index(JACK_API) if JACK_API in names else None
    chosen: list[int] = []
    for kind, spec in (("input", input_device or device), ("output", output_device or device)):
        default = defaults[0 if kind == "input" else 1]
        if spec is None and jack_api is not None:
            default = int(apis[jack_api][f"default_{kind}_device"])
        try:
            chosen.append(devices.resolve_device(spec, kind, found, default, apis))  # type: ignore[arg-type]
        except DeviceError as error:
            wants_jack = spec is None or spec.strip().casefold() in ("jack", JACK_API.casefold())
            hint = " (no JACK server is running)" if jack_api is None and wants_jack else ""
            raise DeviceError(f"{error}{hint}") from None
    in_dev, out_dev = chosen
    if found[in_dev]["hostapi"] != found[out_dev]["hostapi"]:
        raise DeviceError(
            f"input device {in_dev} ({found[in_dev]['name']}, {names[found[in_dev]['hostapi']]}) and output device "
            f"{out_dev} ({found[out_dev]['name']}, {names[found[out_dev]['hostapi']]}) use different host APIs; "
            "one stream needs both on the same one"
        )
    return in_dev, out_dev


def host_api_name(sd: Any, index: int) -> str:
    """Name of the host API of device `index`."""
    return str(sd.query_hostapis(sd.query_devices(index)["hostapi"])["name"])


def check_settings(sd: Any, in_dev: int, out_dev: int, rate: int, channels: int) -> None:
    """Raise DeviceError when the devices lack `channels` or refuse `rate` (saying which rates they take)."""
    for kind, index in (("input", in_dev), ("output", out_dev)):
        info = sd.query_devices(index)
        have = int(info[f"max_{kind}_channels"])
        if channels > have:
            raise DeviceError(
                f"{kind} device {index} ({info['name']}) has {have} {kind} channel(s); "
                f"--channels {channels} needs {channels}"
            )
    if host_api_name(sd, in_dev) == JACK_API:
        server_rate = float(sd.query_devices(in_dev)["default_samplerate"])
        if abs(rate - server_rate) > 1:
            raise DeviceError(
                f"the JACK server runs at {server_rate:g} Hz and JACK streams run at the server's "
                f"rate; --rate {rate} is not possible (use --rate {server_rate:g})"
            )
        return
    if _rate_ok(sd, in_dev, out_dev, rate, channels):
        return
    supported = [r for r in STANDARD_RATES if _rate_ok(sd, in_dev, out_dev, r, channels)]
    which = ", ".join(f"{r}" for r in supported) if supported else "none of the standard rates"
    raise DeviceError(f"the devices refuse {rate} Hz with {channels} channel(s); they accept: {which}")


def _rate_ok(sd: Any, in_dev: int, out_dev: int, rate: int, channels: int) -> bool:
    try:
        sd.check_input_settings(device=in_dev, channels=channels, dtype="float32", samplerate=rate)
        sd.check_output_settings(device=out_dev, channels=channels, dtype="float32", samplerate=rate)
    except (sd.PortAudioError, ValueError):
        return False
    return True


def open_native_stream(
    sd: Any, bridge: idaw_core.PortAudioBridge, in_dev: int, out_dev: int, rate: int, blocksize: int, channels: int
) -> Any:
    """A duplex float32 stream whose callback is the core's C function with `bridge` as user data (not
    started). Raises DeviceError when PortAudio refuses it."""

    class NativeStream(sd._StreamBase):  # type: ignore[misc,name-defined]
        """sounddevice stream with a C callback: no Python, no GIL in the audio thread."""

        def __init__(self, **kwargs: Any) -> None:
            callback = sd._ffi.cast("PaStreamCallback *", type(bridge).callback_address)
            userdata = sd._ffi.cast("void *", bridge.user_data_address)
            super().__init__(kind="duplex", callback=callback, userdata=userdata, wrap_callback=None, **kwargs)
            self._idaw_keepalive = (bridge, callback, userdata)  # the bridge must outlive the stream

    try:
        with devices.signals_deferred():  # JACK: registers the ports
            return NativeStream(
                device=(in_dev, out_dev),
                samplerate=rate,
                blocksize=blocksize,
                channels=channels,
                dtype="float32",
                latency="low",
            )
    except (sd.PortAudioError, ValueError) as error:
        raise DeviceError(f"cannot open the stream: {one_line(error)}") from None


def describe(sd: Any, stream: Any, in_dev: int, out_dev: int, channels: int) -> dict[str, Any]:
    """What was opened: host API, devices, sample rate, latency and, on JACK, the client and port names.

    PortAudio names a stream's JACK ports in_N/out_N, counting from 0 after initialisation, which
    load_portaudio() has just done.
    """
    api = host_api_name(sd, in_dev)
    client = jack_client_name(sd) if api == JACK_API else None
    ports = None
    if client is not None:
        ports = {
            "inputs": [f"{client}:in_{i}" for i in range(channels)],
            "outputs": [f"{client}:out_{i}" for i in range(channels)],
        }
    latency = stream.latency
    return {
        "host_api": api,
        "input_device": {"index": in_dev, "name": str(sd.query_devices(in_dev)["name"])},
        "output_device": {"index": out_dev, "name": str(sd.query_devices(out_dev)["name"])},
        "client_name": client,
        "ports": ports,
        "sample_rate": float(stream.samplerate),
        "stream_latency_s": list(latency) if isinstance(latency, tuple) else [latency, latency],
    }


def wait_first_block(bridge: idaw_core.PortAudioBridge, rate: int) -> int:
    """Frames in the first callback once it has run (0 if none came within FIRST_BLOCK_TIMEOUT)."""
    deadline = time.monotonic() + FIRST_BLOCK_TIMEOUT
    while time.monotonic() < deadline:
        counters = bridge.counters()
        if counters["callbacks"] > 0:
            return int(counters["last_callback_frames"])
        time.sleep(0.005)
    return 0


def ready_line(info: dict[str, Any], rate: int, block_frames: int) -> str:
    """The line printed once audio runs: devices (or JACK ports), rate and block size."""
    block = f"{block_frames}-frame blocks ({1e3 * block_frames / rate:.2f} ms)" if block_frames else "no callback yet"
    where = f"{info['input_device']['name']} -> {info['output_device']['name']} ({info['host_api']})"
    if info["ports"] is not None:
        where = (
            f"JACK client '{info['client_name']}' ({','.join(info['ports']['inputs'])} -> "
            f"{','.join(info['ports']['outputs'])}), {where}"
        )
    return f"idaw live: {where}, {rate} Hz, {block}; Ctrl-C to stop"


def close_within(stream: Any, timeout: float) -> bool:
    """Stop and close `stream` on a helper thread; False if that has not finished after `timeout` seconds
    (PortAudio hangs there when the JACK server died under an open stream)."""
    done = threading.Event()

    def work() -> None:
        try:
            try:
                stream.stop()
            finally:
                stream.close()
        except Exception:
            pass
        finally:
            done.set()

    with devices.signals_deferred():  # the closing thread inherits the mask: no signal lands in its libjack calls
        threading.Thread(target=work, name="idaw-stream-close", daemon=True).start()
    return done.wait(timeout)
