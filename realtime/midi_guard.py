"""A guardian process that ends the notes of a MIDI sender that died without closing (SIGKILL, a crash).

A killed process can send nothing, so `idaw live --midi` starts this small process next to it
(`python -m realtime.midi_guard`, see start_guard()). The guardian has a JACK MIDI output port of its own
(`<client>:all_notes_off`, through python-rtmidi) and keeps it connected to every JACK MIDI input the sender's port
is connected to (the --midi-connect destination at once, others as it sees them: it looks every 0.25 s; it never
disconnects, so a crash also reaches an input the sender was connected to earlier). The sender tells it, through a
pipe on the guardian's stdin, each note it is about to start (`on CH PITCH`, written before the note-on is sent) and
each note it ended (`off CH PITCH`, after the note-off is sent), `clear` after its own all-notes-off and `end` when it
closed cleanly. When the pipe reaches end-of-file without `end` (the kernel closes it whatever killed the sender),
the guardian waits until JACK has removed the dead sender's port (while a dead client is still in the graph, its
cycles do not complete and what others send is lost: seen with jackd2; at most CLEANUP_SECONDS), sends a note-off
for every note it believes sounding and All Notes Off (CC 123) on every channel it was told of, waits for JACK to
pass them on and exits. A note it believes sounding that never went out only costs a
superfluous note-off. It ignores SIGINT and SIGTERM (Ctrl-C reaches the whole process group: the sender stops
cleanly and tells it `end`).

Nothing here runs on the audio thread: the sender writes to the pipe from its own thread (one non-blocking write of a
few bytes per note; a full pipe or a dead guardian only sets GuardLink.error, reported as the sender summary's
"guard"). The libjack helpers (quiet_libjack, JackControl: ctypes on the libjack python-rtmidi bundles) are also used
by realtime/midi_out.py; this module imports neither numpy nor the engine, so the guardian starts quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from idaw.base.errors import DeviceError

GUARD_PORT = "all_notes_off"
"""Name of the guardian's JACK MIDI output port."""
MIRROR_SECONDS = 0.25
"""How often the guardian looks at the sender's connections."""
READY_SECONDS = 15.0
"""How long start_guard() waits for the guardian to come up."""
FLUSH_SECONDS = 0.15
"""Time given to JACK to pass the guardian's messages on before its port closes."""
CLEANUP_SECONDS = 2.0
"""Longest wait for JACK to remove a dead sender's port before the guardian sends anyway."""
ALL_NOTES_OFF = 123
JACK_NO_START_SERVER = 0x01

_quiet_callback: Any = None


def libjack(rtmidi_module: Any | None = None) -> ctypes.CDLL:
    """The libjack that python-rtmidi uses (it bundles its own), else the system's. OSError when there is none."""
    module = rtmidi_module
    if module is None:
        import rtmidi

        module = rtmidi
    folder = Path(module.__file__).resolve().parent.parent
    candidates = sorted(folder.glob("python_rtmidi*/libjack*.so*"))
    return ctypes.CDLL(str(candidates[0])) if candidates else ctypes.CDLL("libjack.so.0")


def quiet_libjack(rtmidi_module: Any | None = None) -> None:
    """Route libjack's error and info messages to a C no-op (strlen), so a missing server gives our one-line error
    instead of libjack's chatter. A C function, not a Python callback: libjack may call it from its own threads, also
    while the interpreter shuts down."""
    global _quiet_callback
    if _quiet_callback is not None:
        return
    try:
        lib = libjack(rtmidi_module)
        noop = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p)
        for name in ("jack_set_error_function", "jack_set_info_function"):
            setter = getattr(lib, name)
            setter.argtypes = [ctypes.c_void_p]
            setter.restype = None
            setter(noop)
        _quiet_callback = noop
    except (OSError, AttributeError, ImportError):
        _quiet_callback = False  # nothing to quieten: the messages stay


class JackControl:
    """A JACK client without ports, never activated, through ctypes: reads and makes connections. OSError (one
    line) when no server answers."""

    def __init__(self, name: str) -> None:
        lib = libjack()
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_connect.restype = ctypes.c_int
        lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.jack_free.restype = None
        lib.jack_free.argtypes = [ctypes.c_void_p]
        lib.jack_get_buffer_size.restype = ctypes.c_uint32
        lib.jack_get_buffer_size.argtypes = [ctypes.c_void_p]
        lib.jack_get_sample_rate.restype = ctypes.c_uint32
        lib.jack_get_sample_rate.argtypes = [ctypes.c_void_p]
        lib.jack_client_close.restype = ctypes.c_int
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        self._lib = lib
        status = ctypes.c_int(0)
        self._client = lib.jack_client_open(name.encode(), JACK_NO_START_SERVER, ctypes.byref(status))
        if not self._client:
            raise OSError(f"cannot open JACK client '{name}' (status 0x{status.value:x})")

    def exists(self, port: str) -> bool:
        """Whether a port of that full name is on the server."""
        return bool(self._lib.jack_port_by_name(self._client, port.encode()))

    def connections(self, port: str) -> list[str] | None:
        """Full names of the ports `port` is connected to; None when it is not on the server."""
        handle = self._lib.jack_port_by_name(self._client, port.encode())
        if not handle:
            return None
        names = self._lib.jack_port_get_all_connections(self._client, handle)
        if not names:
            return []
        out: list[str] = []
        i = 0
        while names[i]:
            out.append(names[i].decode(errors="replace"))
            i += 1
        self._lib.jack_free(ctypes.cast(names, ctypes.c_void_p))
        return out

    def period_seconds(self) -> float:
        """The server's period in seconds (0.0 if it does not say)."""
        rate = int(self._lib.jack_get_sample_rate(self._client))
        return int(self._lib.jack_get_buffer_size(self._client)) / rate if rate > 0 else 0.0

    def connect(self, source: str, destination: str) -> bool:
        """Connects two ports; True when connected (also when they already were)."""
        result = int(self._lib.jack_connect(self._client, source.encode(), destination.encode()))
        return result in (0, 17)  # 17: EEXIST

    def close(self) -> None:
        """Closes the client (safe twice)."""
        if self._client:
            self._lib.jack_client_close(self._client)
            self._client = None


# ---- the sender's side ----------------------------------------------------------------------------------------------


class GuardLink:
    """The sender's end of the pipe to a running guardian. Every method is non-blocking and never raises: a guardian
    that went away only sets `error`. Not thread-safe: the sender calls it under its own lock."""

    def __init__(self, process: subprocess.Popen[bytes], port: str) -> None:
        self.process = process
        self.port = port
        """Full JACK name of the guardian's port."""
        self.error: str | None = None
        self._fd = process.stdin.fileno() if process.stdin is not None else -1
        if self._fd >= 0:
            os.set_blocking(self._fd, False)
        self._closed = False

    def _write(self, line: str) -> None:
        if self._closed or self.error is not None:
            return
        try:
            if os.write(self._fd, line.encode()) != len(line):
                self.error = "the pipe to the MIDI guard is full"
        except BlockingIOError:
            self.error = "the pipe to the MIDI guard is full"
        except OSError as error:
            self.error = f"the MIDI guard is gone ({error.strerror or error})"

    def note_on(self, channel: int, pitch: int) -> None:
        """Before a note-on is sent."""
        self._write(f"on {channel} {pitch}\n")

    def note_off(self, channel: int, pitch: int) -> None:
        """After a note-off is sent."""
        self._write(f"off {channel} {pitch}\n")

    def clear(self) -> None:
        """After the sender's own all-notes-off: nothing sounds."""
        self._write("clear\n")

    def close(self, clean: bool = True, timeout: float = 2.0) -> None:
        """Lets the guardian go and waits for it to exit (kills it after `timeout`). `clean`: the sender ended its
        notes itself (the guardian is told `end`); otherwise the pipe just closes and the guardian ends them."""
        if self._closed:
            return
        if clean:
            self._write("end\n")
        self._closed = True
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def start_guard(client: str, watch: str, destinations: list[str]) -> GuardLink:
    """Starts the guardian as JACK client `client`, watching the sender's port `watch` (full name) and connected to
    `destinations` at once; returns when its port is up and connected. DeviceError (one line) when it fails."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "realtime.midi_guard", "--client", client, "--watch", watch]
    for destination in destinations:
        command += ["--connect", destination]
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, close_fds=True
        )
    except OSError as error:
        raise DeviceError(f"cannot start the MIDI guard: {error.strerror or error}") from None
    assert process.stdout is not None and process.stderr is not None
    ready, _, _ = select.select([process.stdout], [], [], READY_SECONDS)
    line = process.stdout.readline().decode(errors="replace").strip() if ready else ""
    process.stdout.close()
    if not line.startswith("ready "):
        if process.poll() is None:
            process.kill()
        process.wait()
        said = process.stderr.read().decode(errors="replace").strip().splitlines()
        process.stderr.close()
        why = line or (said[-1] if said else f"no answer within {READY_SECONDS:g} s")
        raise DeviceError(f"cannot start the MIDI guard: {why}")
    process.stderr.close()  # from here on the guardian writes nothing
    return GuardLink(process, line.split(" ", 1)[1])


# ---- the guardian ---------------------------------------------------------------------------------------------------


class Guardian:
    """The guardian's state: the notes it believes sounding and the channels it was told of."""

    def __init__(self) -> None:
        self.sounding: set[tuple[int, int]] = set()
        self.channels: set[int] = set()
        self.ended = False

    def take(self, line: str) -> None:
        """Applies one line from the sender (unknown lines are ignored)."""
        words = line.split()
        if not words:
            return
        if words[0] in ("on", "off") and len(words) == 3 and words[1].isdigit() and words[2].isdigit():
            key = (int(words[1]) & 0x0F, int(words[2]) & 0x7F)
            if words[0] == "on":
                self.sounding.add(key)
                self.channels.add(key[0])
            else:
                self.sounding.discard(key)
        elif words[0] == "clear":
            self.sounding.clear()
        elif words[0] == "end":
            self.ended = True

    def messages(self) -> list[list[int]]:
        """Note-offs for what sounds, then All Notes Off on every channel told of."""
        out = [[0x80 | ch, pitch, 0] for ch, pitch in sorted(self.sounding)]
        return out + [[0xB0 | ch, ALL_NOTES_OFF, 0] for ch in sorted(self.channels)]


def run_guard(client: str, watch: str, destinations: list[str]) -> int:
    """The guardian's main loop (see the module docstring); returns the exit status."""
    import rtmidi

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    quiet_libjack(rtmidi)
    try:
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
        out.open_virtual_port(GUARD_PORT)
        control = JackControl(f"{client}-ctl")
    except (rtmidi.RtMidiError, OSError) as error:
        print(f"cannot open the guard's JACK port: {' '.join(str(error).split())}", file=sys.stderr, flush=True)
        return 1
    port = f"{client}:{GUARD_PORT}"
    if not control.exists(port):
        print(f"the guard's port {port} is not on the server (is the client name taken?)", file=sys.stderr, flush=True)
        return 1
    connected: set[str] = set()
    for destination in destinations:
        if control.connect(port, destination):
            connected.add(destination)
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (1, 2):  # the sender stops reading both: nothing more may go there
        os.dup2(devnull, stream)
    os.close(devnull)

    guardian = Guardian()
    fd = sys.stdin.fileno()
    pending = b""
    next_mirror = time.monotonic()
    while True:
        if time.monotonic() >= next_mirror:
            for destination in control.connections(watch) or []:
                if destination not in connected and control.connect(port, destination):
                    connected.add(destination)
            next_mirror = time.monotonic() + MIRROR_SECONDS
        readable, _, _ = select.select([fd], [], [], MIRROR_SECONDS)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            guardian.take(line.decode(errors="replace"))
        if guardian.ended:
            break
    if not guardian.ended:  # the sender died without closing: end its notes
        # While the dead client is still in JACK's graph its cycles do not complete, and what the guardian sent then
        # never arrived (seen with jackd2): wait until the server has removed the sender's port, and two periods.
        deadline = time.monotonic() + CLEANUP_SECONDS
        while control.exists(watch) and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(2 * control.period_seconds())
        for message in guardian.messages():
            with contextlib.suppress(Exception):
                out.send_message(message)
        time.sleep(FLUSH_SECONDS)
    with contextlib.suppress(Exception):
        out.close_port()
    control.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line of the guardian (started by start_guard(), not by hand); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m realtime.midi_guard", description=__doc__.splitlines()[0])
    parser.add_argument("--client", required=True, help="JACK client name of the guardian")
    parser.add_argument("--watch", required=True, help="full name of the sender's JACK MIDI port")
    parser.add_argument("--connect", action="append", default=[], help="a JACK MIDI input to connect to at once")
    args = parser.parse_args(argv)
    return run_guard(args.client, args.watch, args.connect)


if __name__ == "__main__":
    sys.exit(main())
