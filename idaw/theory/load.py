"""Reading a score or MIDI file into music21, every way it can fail turned into one line.

`load_score(path)` takes the format from the file's suffix (case-insensitive; see FORMATS) and never guesses it
from the content. The file is checked before it is opened (a folder, a FIFO or a device is refused without
touching it, so nothing blocks), read once into memory up to MAX_FILE_BYTES, and music21 parses those bytes: it
never sees the path, so it neither loads nor writes its pickle cache, nor takes a path for data or a URL.

- MusicXML is parsed from bytes by ElementTree (so the file's own encoding declaration counts); an `.mxl` archive
  (any file of the MusicXML suffixes that starts like a zip) is unpacked here, its score at most MAX_XML_BYTES.
- Humdrum is read as UTF-8, or as Latin-1 where it is not UTF-8 (music21's own choice for Humdrum).
- ABC must be UTF-8 (music21's rule too). An ABC file holding several tunes (several `X:` fields) is a tune book:
  the first tune is analysed and a warning says so.
- Whatever music21 raises while parsing becomes `PATH: not a valid FORMAT file (REASON)`; a file without pitched
  notes is refused too. music21 writes its warnings to stderr itself: `music21_quietly` collects those (and Python
  warnings, and anything printed) and shows at most one line (a ScoreWarning, which `idaw` prints as
  `idaw analyze: warning: ...`).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import stat
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any, NoReturn
from xml.etree import ElementTree

import music21

from idaw.base.errors import IdawError, one_line, path_error

FORMATS: dict[str, str] = {
    ".mid": "midi",
    ".midi": "midi",
    ".musicxml": "musicxml",
    ".xml": "musicxml",
    ".mxl": "musicxml",
    ".krn": "humdrum",
    ".abc": "abc",
}
"""File suffix (lower case) -> format name, as the analysis reports it."""

DESCRIPTIONS: dict[str, str] = {
    "midi": "Standard MIDI file",
    "musicxml": "MusicXML file (score-partwise, plain or .mxl)",
    "humdrum": "Humdrum **kern file",
    "abc": "ABC file",
}

MAX_FILE_BYTES = 32 * 1024 * 1024
"""Largest file read (32 MiB): far above real scores (a symphony in MusicXML is a few MiB, MIDI a few hundred
KiB), below what would keep music21 busy for minutes and its note objects take GiBs."""
MAX_XML_BYTES = 32 * 1024 * 1024
"""Largest score inside an .mxl archive, unpacked (a small archive can unpack to anything)."""
MAX_REASON_CHARS = 200
"""music21's messages can quote whole lines of the file: cut there."""

_ZIP_MAGIC = b"PK\x03\x04"
_ABC_TUNE = re.compile(r"^X:[ \t]*(\d+)", re.MULTILINE)
_MUSIC21_PREFIX = re.compile(r"^(music21[:.]\s*)?(\w+:\s*)?WARNING:\s*")
"""How music21 starts the lines it writes to stderr ('music21.abcFormat: WARNING: ...')."""
_ABC_TITLE = re.compile(r"^T:[ \t]*(.*)$", re.MULTILINE)


class ScoreWarning(UserWarning):
    """Something music21 reported while reading a file, or a choice made for the user (first tune of a book)."""


def score_format(path: str | os.PathLike[str]) -> str:
    """The format name of `path` from its suffix ('midi', 'musicxml', 'humdrum', 'abc'); IdawError for others."""
    name = os.fspath(path)
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in FORMATS:
        shown = f"'{suffix}'" if suffix else "(no suffix)"
        raise IdawError(f"{name}: unknown format {shown}; allowed: {', '.join(FORMATS)}")
    return FORMATS[suffix]


def load_score(path: str | os.PathLike[str]) -> tuple[music21.stream.Score, str]:
    """The score in `path` and its format name ('midi' | 'musicxml' | 'humdrum' | 'abc').

    Raises IdawError (one line naming the file, the problem and what is allowed) for an unknown suffix, a path
    that is missing or no regular file, a file over MAX_FILE_BYTES or empty, content music21 cannot parse, and a
    score without pitched notes.
    """
    name = os.fspath(path)
    fmt = score_format(name)
    data = read_bounded(name)
    if not data.strip():
        raise IdawError(f"{name}: the file is empty; allowed: a {DESCRIPTIONS[fmt]}")
    with music21_quietly(name):
        try:
            score = _parse(name, fmt, data)
        except IdawError:
            raise
        except Exception as error:  # music21 raises anything from IndexError to its own exceptions on bad input
            reason = one_line(f"{type(error).__name__}: {error}")
            if len(reason) > MAX_REASON_CHARS:
                reason = reason[: MAX_REASON_CHARS - 3] + "..."
            raise IdawError(f"{name}: not a valid {DESCRIPTIONS[fmt]} ({reason})") from None
    if not any(getattr(element, "pitches", ()) for element in score.recurse().notes):
        raise IdawError(f"{name}: no notes (nothing with a pitch to analyse; drum tracks and rests do not count)")
    return score, fmt


def read_bounded(path: str, limit: int = MAX_FILE_BYTES, allowed: str = "a score or MIDI file") -> bytes:
    """The bytes of the regular file `path`, at most `limit`; IdawError for anything else (`allowed` names what
    the caller reads, for the error line).

    The path is checked with stat before it is opened (a FIFO or device is never opened), opened without blocking,
    and checked again on the open file (it may have been swapped in between).
    """
    try:
        info = os.stat(path)
        _check_regular(path, info, limit, allowed)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            _check_regular(path, os.fstat(fd), limit, allowed)
            chunks: list[bytes] = []
            size = 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as error:
        raise path_error("read", path, error) from None
    if size > limit:  # grew after the stat
        _too_large(path, size, limit)
    return b"".join(chunks)


def read_json_bounded(path: str, limit: int, allowed: str) -> Any:
    """The JSON value in the regular file `path` (read_bounded: at most `limit` bytes); IdawError, one line, for a
    file that cannot be read or is not UTF-8 JSON. NaN and Infinity come back as NaN, for the caller's finiteness
    check to refuse by name."""
    data = read_bounded(path, limit, allowed)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=lambda text: math.nan)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IdawError(f"{path}: not valid JSON ({error.__class__.__name__})") from None


def _check_regular(path: str, info: os.stat_result, limit: int, allowed: str) -> None:
    """Raise IdawError unless `info` is a regular file of at most `limit` bytes."""
    if stat.S_ISDIR(info.st_mode):
        raise IdawError(f"cannot read {path}: it is a folder; allowed: {allowed}")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "a device"
        raise IdawError(f"cannot read {path}: it is {kind}, not a regular file; allowed: {allowed}")
    if info.st_size > limit:
        _too_large(path, info.st_size, limit)


def _too_large(path: str, size: int, limit: int) -> NoReturn:
    raise IdawError(f"cannot read {path}: {size / 2**20:.1f} MiB is too large; allowed: up to {limit // 2**20} MiB")


@contextlib.contextmanager
def music21_quietly(name: str) -> Iterator[None]:
    """Run the block with what music21 (or anything else) writes to stderr or stdout itself, and Python warnings,
    collected instead of shown. When the block ends normally, at most one ScoreWarning `NAME: FIRST MESSAGE (N
    messages, the first shown)` reports them, besides the block's own ScoreWarnings, which pass as they are; when
    it raises, they are dropped (the error is the one line to show).
    """
    captured = io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stderr(captured),
        contextlib.redirect_stdout(captured),
    ):
        warnings.simplefilter("always")
        yield
    said = [_MUSIC21_PREFIX.sub("", one_line(text)) for text in captured.getvalue().splitlines() if text.strip()]
    said += [f"{w.category.__name__}: {one_line(str(w.message))}" for w in caught if w.category is not ScoreWarning]
    for warning in caught:
        if warning.category is ScoreWarning:  # our own notes to the user
            warnings.warn(warning.message, ScoreWarning, stacklevel=1)
    if said:
        first = said[0] if len(said[0]) <= MAX_REASON_CHARS else said[0][: MAX_REASON_CHARS - 3] + "..."
        more = f" ({len(said)} messages, the first shown)" if len(said) > 1 else ""
        warnings.warn(f"{name}: {first}{more}", ScoreWarning, stacklevel=1)


def _parse(name: str, fmt: str, data: bytes) -> music21.stream.Score:
    """Parse `data` as format `fmt`; the score (the first of several, for an ABC tune book)."""
    parsed: music21.stream.Stream[Any]
    if fmt == "midi":
        parsed = music21.converter.parseData(data, format="midi")
    elif fmt == "musicxml":
        parsed = _parse_musicxml(name, data)
    elif fmt == "humdrum":
        parsed = music21.converter.parseData(_humdrum_text(data), format="humdrum")
    else:
        parsed = _parse_abc(name, data)
    if isinstance(parsed, music21.stream.Opus):
        scores = list(parsed.scores)
        if not scores:
            raise IdawError(f"{name}: no score in the file; allowed: a {DESCRIPTIONS[fmt]} with one")
        parsed = scores[0]
    if isinstance(parsed, music21.stream.Score):
        return parsed
    score = music21.stream.Score()  # a single part or a bare stream: the score of one part
    score.insert(0, parsed)
    return score


def _parse_musicxml(name: str, data: bytes) -> music21.stream.Score:
    """A MusicXML score from the bytes of a plain file or of an .mxl archive."""
    xml = _unpack_mxl(name, data) if data.startswith(_ZIP_MAGIC) else data
    root = ElementTree.fromstring(xml)
    if root.tag != "score-partwise":
        raise IdawError(
            f"{name}: the document is <{one_line(root.tag)[:40]}>, not a MusicXML score; allowed: <score-partwise>"
        )
    importer = music21.musicxml.xmlToM21.MusicXMLImporter()  # type: ignore[no-untyped-call]
    # What music21's own file reader does once it has the root (the score fills importer.stream).
    importer.xmlRootToScore(root, importer.stream)  # type: ignore[no-untyped-call]
    return importer.stream


def _unpack_mxl(name: str, data: bytes) -> bytes:
    """The score inside a compressed MusicXML archive: the root file META-INF/container.xml names, else its first
    .xml or .musicxml file outside META-INF."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {info.filename: info for info in archive.infolist()}
        chosen = None
        if "META-INF/container.xml" in members:
            container = ElementTree.fromstring(_read_member(name, archive, members["META-INF/container.xml"]))
            rootfile = next((e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile")), None)
            chosen = members.get(rootfile or "")
        if chosen is None:
            chosen = next(
                (
                    info
                    for path, info in members.items()
                    if not path.startswith("META-INF/") and path.lower().endswith((".xml", ".musicxml"))
                ),
                None,
            )
        if chosen is None:
            raise IdawError(f"{name}: the archive holds no MusicXML score; allowed: an .mxl with a .musicxml inside")
        return _read_member(name, archive, chosen)


def _read_member(name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One archive member's bytes, refused when it unpacks to more than MAX_XML_BYTES (zipfile stops reading at the
    size the archive declares, so the check bounds what is read)."""
    if info.file_size > MAX_XML_BYTES:
        raise IdawError(
            f"{name}: {info.filename} unpacks to {info.file_size / 2**20:.1f} MiB; "
            f"allowed: up to {MAX_XML_BYTES // 2**20} MiB"
        )
    return archive.read(info)


def _humdrum_text(data: bytes) -> str:
    """Humdrum text: UTF-8 where it is, else Latin-1 (which music21 assumes for every Humdrum file)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _parse_abc(name: str, data: bytes) -> music21.stream.Stream[Any]:
    """The first tune of an ABC file (a warning says when there are more)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise IdawError(
            f"{name}: not UTF-8 text (byte 0x{data[error.start]:02x} at position {error.start}); "
            "allowed: ABC files in UTF-8"
        ) from None
    tunes = list(_ABC_TUNE.finditer(text))
    if len(tunes) <= 1:
        parsed: music21.stream.Stream[Any] = music21.converter.parseData(text, format="abc")
        return parsed
    first = int(tunes[0].group(1))
    title = _ABC_TITLE.search(text, tunes[0].end(), tunes[1].start())
    called = f" ({one_line(title.group(1))[:60]})" if title else ""
    warnings.warn(
        f"{name} holds {len(tunes)} tunes; analysing the first, X:{first}{called}", ScoreWarning, stacklevel=2
    )
    parsed = music21.converter.parseData(text, format="abc", number=first)
    return parsed
