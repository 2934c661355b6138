"""User-facing errors: one clear line, a non-zero exit, never a traceback."""

from __future__ import annotations


class IdawError(Exception):
    """An error caused by the user's input or environment; its message is shown as one line."""

    exit_code = 2


class DeviceError(IdawError):
    """An audio device could not be found or opened with the requested settings."""

    exit_code = 3
