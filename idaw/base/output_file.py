"""Output files that appear complete or not at all.

`replacing(path)` hands out a hidden part file next to the target (`.NAME.XXXXXXXX.part`, same folder, so the
rename cannot cross file systems) and renames it over the target when the block ends without an exception. Any
exception, Ctrl-C's KeyboardInterrupt included, removes the part file instead. A part file is registered before
it is created and forgotten only after the rename, so `discard_pending()` (called by the command line when a
Ctrl-C ends idaw, whether or not the writer could unwind) can always remove whatever is still unfinished.

`check_writable(path)` makes the same attempt up front, so a command fails on a bad output path before any work.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from idaw.base.errors import IdawError, path_error

_pending: set[str] = set()
"""Part files that exist or are about to, and have not been renamed into place yet."""


def check_writable(path: str | os.PathLike[str], what: str = "") -> Path:
    """`path` as a Path, after checking that a file can be written there: its folder exists, it is not itself a
    folder, and a part file can be created next to it (name length, permissions, read-only file systems).

    `what` names the file in messages (e.g. 'MIDI file'). Raises IdawError naming the path and the problem.
    """
    target = Path(path)
    part = _create_part(target, _label(target, what))
    _remove_part(part)
    return target


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], what: str = "") -> Iterator[Path]:
    """Yields the path of a new, empty part file to write; on a clean exit renames it to `path`.

    On any exception (KeyboardInterrupt included) the part file is removed and the exception goes on. Raises
    IdawError when the part file cannot be created or renamed ('cannot write PATH: REASON').
    """
    target = Path(path)
    label = _label(target, what)
    part = _create_part(target, label)
    try:
        yield Path(part)
        try:
            os.replace(part, target)
        except OSError as error:
            raise path_error("write", label, error) from None
    finally:
        _remove_part(part)  # after the rename there is nothing left to remove


def _label(target: Path, what: str) -> str:
    """How messages name the file: 'WHAT PATH' or just the path."""
    return f"{what} {os.fspath(target)}" if what else os.fspath(target)


def _create_part(target: Path, label: str) -> str:
    """Create the empty part file for `target` (never following or reusing an existing name); returns its path.
    Raises IdawError when it cannot be created or `target` is no place for a file (a folder, in a missing folder)."""
    try:
        if target.is_dir():
            raise IdawError(f"cannot write {label}: it is a folder")
        folder = target.parent
        if not folder.exists():
            raise IdawError(f"cannot write {label}: folder {folder} does not exist")
        if not folder.is_dir():
            raise IdawError(f"cannot write {label}: {folder} is not a folder")
    except OSError as error:  # e.g. a name too long to look up
        raise path_error("write", label, error) from None
    # At most 200 bytes of the name: the part's name must fit where the target's own (up to 255 bytes) fits.
    part = str(target.with_name(f".{os.fsdecode(os.fsencode(target.name)[:200])}.{secrets.token_hex(4)}.part"))
    _pending.add(part)  # before the file exists: an interrupt at any later moment finds it
    try:
        os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
    except OSError as error:
        _pending.discard(part)  # not created: nothing of ours to remove
        raise path_error("write", label, error) from None
    return part


def _remove_part(part: str) -> None:
    """Remove a part file if it is still there, and forget it."""
    with contextlib.suppress(OSError):
        os.unlink(part)
    _pending.discard(part)


def discard_pending() -> None:
    """Remove every part file not yet renamed into place (for an exit that cannot unwind the writers)."""
    for part in list(_pending):
        with contextlib.suppress(OSError):
            os.unlink(part)
    _pending.clear()
