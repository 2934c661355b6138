"""User-facing errors: one clear line, a non-zero exit, never a traceback.

Operating-system errors (a path too long, a folder where a file should be, a full disk) become the same kind of
line: `path_error` where the code knows what it was doing ("cannot write out.wav: file name too long"),
`os_error_line` for one that reached the command line's last line of defence (idaw/cli.py). A setting outside its
range is refused by `check_in_range`, whose line names the setting, the value and what is allowed.
"""

from __future__ import annotations

import math
import os


class IdawError(Exception):
    """An error caused by the user's input or environment; its message is shown as one line."""

    exit_code = 2


class DeviceError(IdawError):
    """An audio device could not be found or opened with the requested settings."""

    exit_code = 3


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of spaces folded, so an error always prints as one line."""
    return " ".join(text.split()) or "unknown error"


def check_in_range(what: str, value: float, allowed: tuple[float, float], unit: str = "") -> float:
    """`value`, unchanged, when it is a finite number within `allowed` (low, high; both ends included).

    Otherwise (NaN and infinities included) raises IdawError, one line naming the setting, the value and the range,
    e.g. "target loudness 0 LUFS is out of range; allowed: -40..-5 LUFS" ("duration nan is out of range; allowed:
    10..600 s" for a value that is not finite; without `unit`, "mix 2 is out of range; allowed: 0..1").
    """
    low, high = allowed
    if math.isfinite(value) and low <= value <= high:
        return value
    given = f"{value:g} {unit}" if unit and math.isfinite(value) else f"{value:g}"
    limits = f"{low:g}..{high:g} {unit}" if unit else f"{low:g}..{high:g}"
    raise IdawError(f"{what} {given} is out of range; allowed: {limits}")


def os_reason(error: OSError) -> str:
    """What went wrong in the operating system's words, lower case, e.g. 'file name too long'."""
    reason = error.strerror or (os.strerror(error.errno) if error.errno else "") or str(error)
    reason = one_line(reason)
    return reason[:1].lower() + reason[1:]


def path_error(action: str, path: str | os.PathLike[str], error: OSError) -> IdawError:
    """The error to raise when `action` ('read', 'write', ...) on `path` failed: 'cannot ACTION PATH: REASON'."""
    return IdawError(f"cannot {action} {os.fspath(path)}: {os_reason(error)}")


def os_error_line(error: OSError) -> str:
    """One line for an OSError nobody handled closer to its cause: the path(s) it names and the reason."""
    paths = [os.fsdecode(p) for p in (error.filename, error.filename2) if p is not None and not isinstance(p, int)]
    where = " -> ".join(paths)
    return f"{where}: {os_reason(error)}" if where else os_reason(error)
