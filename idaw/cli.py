"""The `idaw` command: process files, run live, list devices, render the demo, train, run the sidecar.

It sits above both sides: each command is a module of realtime or sidecar (or idaw.training) named in _COMMANDS
and imported by name, only the one chosen, after Ctrl-C is taken over (see below).

What a user sees when something goes wrong is decided here, once for every command:

- an IdawError: `idaw COMMAND: error: MESSAGE` and its exit code (2; 3 for audio devices);
- an OSError that nothing closer to its cause turned into an IdawError: the same kind of line, naming the path
  and the problem (`... error: out.wav: file name too long`), exit 2;
- a warning (numpy's, torch's, ...): one line `idaw COMMAND: warning: ...`, never the source line it came from;
- Ctrl-C (SIGINT), from the first line of main() to the process's end: one line `idaw: interrupted`, exit 130,
  and no part file of an unfinished output left behind (idaw/base/output_file.py). Until the command itself runs
  there is nothing to clean up, so Ctrl-C during the (seconds of) imports ends idaw at once. While the command
  runs, the first Ctrl-C raises KeyboardInterrupt, which unwinds it (its sidecar, streams and part files close
  on the way), and idaw then ends without the interpreter's shutdown (whose finalizers could print after the
  one line); a further Ctrl-C meanwhile, or one the interpreter could not deliver as an exception, ends idaw
  at once. Commands that stop on Ctrl-C as their normal end (`idaw live`, `idaw sidecar`) handle it themselves
  while they run and exit 0;
- anything else: `idaw COMMAND: internal error: ...`, exit 1 (IDAW_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

# _signal is the C module behind `signal`, loaded by the interpreter before any Python code runs: `import signal`
# would first import enum, and until main() installs its handler a Ctrl-C prints the interpreter's traceback.
import _signal  # type: ignore[import-not-found]
import os
import sys

TYPE_CHECKING = False  # typing itself costs an import (re, functools, ...) before main() has Ctrl-C
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import FrameType
    from typing import Any, NoReturn

# Only modules the interpreter has already loaded above: everything else is imported after main() took Ctrl-C over.

INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C (128 + SIGINT, what a shell reports for a program that SIGINT ended)."""
INTERRUPTED_LINE = "idaw: interrupted"

# Each command lives in its own module with add_arguments(parser) and run(args) -> exit code.
_COMMANDS: dict[str, tuple[str, str]] = {
    "process": ("realtime.offline", "render an audio file through the DSP chain"),
    "live": ("realtime.live", "process a live input device in real time (native callback)"),
    "master": (
        "realtime.master",
        "master a mix: integrated loudness to a target (BS.1770) with its true peak under a ceiling",
    ),
    "devices": ("realtime.devices", "list audio devices"),
    "demo": (
        "realtime.demo",
        "make the built-in demo clip warm through the semantic-EQ sidecar: before/after WAVs and a spectrum PNG",
    ),
    "train": ("idaw.training", "train the shipped models from data (nets | semantic-eq)"),
    "sidecar": ("sidecar.cli", "run the ML sidecar process standalone (for the plugin)"),
    "sketch": (
        "idaw.sketch.command",
        "sketch a song from words: structure, four MIDI stems, render, mix and master (song.wav, song.mid, stems/)",
    ),
    "analyze": (
        "idaw.listen.command",
        "analyse a score, MIDI file or recording: key, chords, cadences, voice leading, rhythm, melody, form; "
        "a recording's tempo and beats",
    ),
}


class _InterruptGuard:
    """Owns SIGINT for the rest of the process once main() installs it (see the module docstring)."""

    def __init__(self) -> None:
        self.unwind = False
        """True while the command runs: the first Ctrl-C raises KeyboardInterrupt to unwind it."""
        self.raised = False
        """A KeyboardInterrupt is on its way up; a further Ctrl-C ends the process at once."""
        self._announced = False

    def install(self) -> None:
        _signal.signal(_signal.SIGINT, self._on_sigint)
        previous = sys.unraisablehook

        def unraisable(info: Any) -> None:
            # A KeyboardInterrupt raised inside a finaliser or callback cannot unwind anything: end here.
            if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
                self.exit_now()
            previous(info)

        sys.unraisablehook = unraisable

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.unwind and not self.raised:
            self.raised = True
            raise KeyboardInterrupt
        self.exit_now()

    def announce(self) -> None:
        """Print the one interrupted line (once)."""
        if not self._announced:
            self._announced = True
            # No imports here (contextlib included): this runs inside a signal handler, maybe amid an import.
            try:  # noqa: SIM105
                sys.stdout.flush()  # what the command printed before stays readable
            except Exception:
                pass  # a broken or busy stdout must not stop the exit
            try:  # noqa: SIM105
                os.write(2, (INTERRUPTED_LINE + "\n").encode())
            except OSError:
                pass

    def exit_now(self) -> NoReturn:
        """Remove unfinished outputs' part files, announce, and end the process with exit code 130."""
        _discard_part_files()
        self.announce()
        os._exit(INTERRUPTED_EXIT)


def _discard_part_files() -> None:
    """Remove the part files of outputs still being written (if anything wrote one)."""
    discard = getattr(sys.modules.get("idaw.base.output_file"), "discard_pending", None)  # None: nothing written
    if discard is not None:
        discard()


class _Unavailable:
    """Stands in for a command module that failed to import; running the command reports why, in one line."""

    def __init__(self, error: Exception) -> None:
        self.reason = " ".join(f"{type(error).__name__}: {error}".split())

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        import argparse

        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:
        from idaw.base.errors import IdawError

        raise IdawError(f"this command is unavailable ({self.reason})")


class _NotChosen:
    """Stands in for the commands this run does not use, so their (slow) modules are never imported."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        import argparse

        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:  # pragma: no cover - parse_args only picks the chosen one
        raise AssertionError("a command that was not chosen cannot run")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered; with `only` (a command's name, or '' for none), just
    that command's module is imported (the others are listed with their summaries but take no arguments)."""
    import argparse
    import importlib

    class Parser(argparse.ArgumentParser):
        """argparse with a usage error in one line, like every other error (the full usage is in --help)."""

        def error(self, message: str) -> NoReturn:
            self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")

    parser = Parser(prog="idaw", description="idaw real-time audio engine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, summary) in _COMMANDS.items():
        module: Any = _NotChosen()
        if only is None or name == only:
            try:
                module = importlib.import_module(module_name)
            except (ImportError, OSError) as error:  # a broken command (e.g. no PortAudio) must not stop the rest
                module = _Unavailable(error)
        command = sub.add_parser(name, help=summary, description=summary)
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def _chosen_command(argv: Sequence[str]) -> str:
    """The command `argv` names (its first word that is not an option), or '' when it names none of ours (then
    `idaw --help` lists the commands, or argparse says what is wrong, without importing any of them)."""
    first = next((word for word in argv if not word.startswith("-")), "")
    return first if first in _COMMANDS else ""


def _show_warnings_in_one_line(prefix: str) -> None:
    """Show every warning as one line `PREFIX: warning: MESSAGE (Category, file:line)`, not with its source."""
    import warnings

    from idaw.base.errors import one_line

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        where = f"{os.path.basename(filename)}:{lineno}"
        try:  # noqa: SIM105 - contextlib is not imported at start-up
            print(f"{prefix}: warning: {one_line(str(message))} ({category.__name__}, {where})", file=sys.stderr)
        except (OSError, ValueError):
            pass

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code (see the module docstring).

    It takes SIGINT over for the rest of the process: call it as the program, not as a library function.
    """
    guard = _InterruptGuard()
    guard.install()  # first: from here on Ctrl-C ends idaw with one line, whatever is being imported
    words = list(sys.argv[1:] if argv is None else argv)
    prefix = "idaw"
    try:
        from idaw.base.errors import IdawError, os_error_line

        _show_warnings_in_one_line(prefix)  # also for warnings while the command's modules load
        args = build_parser(only=_chosen_command(words)).parse_args(words)
        prefix = f"idaw {args.command}"
        _show_warnings_in_one_line(prefix)
        guard.unwind = True  # the command may hold files, streams and children now: unwind them on Ctrl-C
        try:
            code = int(args._module.run(args))
            sys.stdout.flush()  # a closed stdout shows here, where it can be reported, not at exit
        finally:
            guard.unwind = False  # done or unwinding: any Ctrl-C from now on ends idaw at once
        return code
    except KeyboardInterrupt:
        # The command has unwound (its sidecar, streams and part files closed on the way). End here rather than
        # through the interpreter's shutdown: finalizers and extension modules that run there may still print
        # about objects the interrupted command left half-used (a temporary folder's finalizer racing its
        # child, nanobind's leak report for a resampler a thread still held), and the interrupted line must
        # stay the only one.
        guard.exit_now()
    except IdawError as error:
        print(f"{prefix}: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError as error:
        if _stdout_is_gone():  # e.g. `idaw devices | head -1`: nobody reads on; say nothing, as `ls` would
            return 128 + int(_signal.SIGPIPE)
        print(f"{prefix}: error: {os_error_line(error)}", file=sys.stderr)
        return IdawError.exit_code
    except OSError as error:
        print(f"{prefix}: error: {os_error_line(error)}", file=sys.stderr)
        return IdawError.exit_code
    except Exception as error:  # the last line of defence: one line, not a traceback
        if os.environ.get("IDAW_DEBUG"):
            raise
        print(
            f"{prefix}: internal error: {type(error).__name__}: {' '.join(str(error).split())} "
            "(set IDAW_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1
    finally:
        _discard_part_files()


def _stdout_is_gone() -> bool:
    """Whether stdout is a pipe nobody reads any more (poll reports an error on its write end); if so, stdout is
    pointed at /dev/null so that the interpreter's own flush at exit does not complain again."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
        if gone:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no usable stdout at all: nothing to protect
        return False
    return gone


if __name__ == "__main__":
    sys.exit(main())
