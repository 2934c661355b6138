"""The `idaw` command: process files, run live, list devices, render the demo."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from realtime.errors import IdawError

# Each command lives in its own module with add_arguments(parser) and run(args) -> exit code.
_COMMANDS: dict[str, tuple[str, str]] = {
    "process": ("realtime.offline", "render an audio file through the DSP chain"),
    "live": ("realtime.live", "process a live input device in real time (native callback)"),
    "devices": ("realtime.devices", "list audio devices"),
    "demo": (
        "realtime.demo",
        "make the built-in demo clip warm through the semantic-EQ sidecar: before/after WAVs and a spectrum PNG",
    ),
    "train": ("realtime.training", "train the shipped models from data (nets | semantic-eq)"),
    "sidecar": ("sidecar.cli", "run the ML sidecar process standalone (for the plugin)"),
}


class _Unavailable:
    """Stands in for a command module that failed to import; running the command reports why, in one line."""

    def __init__(self, error: Exception) -> None:
        self.reason = " ".join(f"{type(error).__name__}: {error}".split())

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:
        raise IdawError(f"this command is unavailable ({self.reason})")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="idaw", description="idaw real-time audio engine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, summary) in _COMMANDS.items():
        try:
            module: Any = importlib.import_module(module_name)
        except (ImportError, OSError) as error:  # a broken command (e.g. no PortAudio) must not stop the rest
            module = _Unavailable(error)
        command = sub.add_parser(name, help=summary, description=summary)
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args))
    except IdawError as error:
        print(f"idaw {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the last line of defence: one line, not a traceback
        if os.environ.get("IDAW_DEBUG"):
            raise
        print(
            f"idaw {args.command}: internal error: {type(error).__name__}: {error} (set IDAW_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
