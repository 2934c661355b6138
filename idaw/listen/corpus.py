"""`idaw analyze DIR --out results.jsonl`: every score, MIDI file and recording under a folder analysed in parallel
on Dask, one JSON line per file, resumable.

What is analysed: every file under DIR whose suffix is one `idaw analyze FILE` reads (idaw.theory.load.FORMATS and
idaw.listen.audio.AUDIO_FORMATS, any case), found recursively and taken in sorted order. Hidden files and folders
(names starting with '.') are left out, and so are symbolic links to folders (never followed: a link cannot make
the walk loop or leave the tree); symbolic links to files are read like the files.

The output is JSON lines, one object per file, "file" first: the analysis `idaw analyze FILE --format json` prints,
except that "file" is the path relative to DIR (with '/', so results from different machines or mount points
compare), with "seconds" (the analysis's own wall time on its worker) and, where the analysis warned (music21's
messages, the first tune of an ABC book), "warnings" (one line each). A file that cannot be analysed gets the line
{"file": NAME, "error": ONE LINE, "seconds": ...}: the line `idaw analyze FILE` would show (naming the file by
NAME), or "internal error: TYPE: MESSAGE" for anything else, a worker that died on it included. Strict JSON: a
value JSON cannot hold (NaN) makes that file's line an internal error. With --adapter-features, each recording's
line also holds "adapter_frames", the listening adapter's 2 s frame features (idaw.listen.frames.frames_json): what
`idaw train adapter` reads.

Resuming: files already in the output (analysed or failed) are skipped; `--retry-failed` analyses the failed ones
again. Each line is written with one write() and nothing buffered, as its result arrives, so a kill loses at most
the line being written. The next run drops a last line cut short that way (and later repeats of a file's line),
rewrites the file without it (atomically: a hidden part file renamed over it) and analyses that file again. Any
other line that is not a JSON object with a "file" means the output is not this command's (a file given by
mistake): one line, exit 2, and the file is left untouched. Lines of files no longer in the folder are kept.

Where it runs: a LocalCluster on this machine by default (--workers processes of one thread each, default one per
core; its scheduler and workers listen on the loopback address only, no dashboard), or the running cluster at
--scheduler tcp://HOST:PORT or tls://HOST:PORT (TLS certificates come from Dask's own configuration). A cluster's
workers need idaw installed and must see the files at the same absolute paths (a shared file system); give them
one thread each (`dask worker --nthreads 1`): music21 and the capture of its messages are not thread-safe. At most
IN_FLIGHT_PER_THREAD tasks per worker thread are submitted at a time, so memory stays bounded however many files
there are.

Exit codes: 0 when the run finished, whether or not some files failed (they are named in the summary and have
their error lines in the output: in a corpus of thousands, a few broken files are expected and must not stop a
pipeline); 2 for bad arguments (a missing folder, an output that cannot be written or is not this command's, a
malformed or unreachable scheduler address), in one line, before any analysis; 130 after Ctrl-C, which stops
submitting, closes the cluster and keeps every line already written (the output stays valid JSON lines; the next
run resumes). The worker processes of the local cluster start with Ctrl-C blocked: a terminal's Ctrl-C reaches
only idaw, which stops them.

The progress bar (tqdm, on stderr) is shown when stderr is a terminal, unless --no-progress. The summary is
printed on stdout at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import signal
import stat
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from idaw.base.errors import IdawError, one_line, os_reason, path_error
from idaw.listen.audio import AUDIO_FORMATS, is_audio_path
from idaw.theory.load import FORMATS

SUFFIXES: Final = (*FORMATS, *AUDIO_FORMATS)
"""File suffixes (lower case) analysed in a folder: the ones `idaw analyze FILE` reads."""
IN_FLIGHT_PER_THREAD: Final = 4
"""Tasks submitted ahead per worker thread: enough that no worker waits for the next file, few enough that results
never pile up in memory."""
NAMED_FAILURES: Final = 20
"""Failed files the summary names, at most (the rest are in the output's error lines)."""
CONNECT_TIMEOUT_S: Final = 20.0
"""How long to wait for the scheduler given with --scheduler before saying it cannot be reached."""
WORKERS_PER_CORE: Final = 4
"""--workers is at most this many per core: the analysis is CPU-bound, so more only costs memory (a worker with the
analysis loaded holds a few hundred MB)."""
SCHEDULER_FORMS: Final = "tcp://HOST:PORT or tls://HOST:PORT"
MAX_LINE_BYTES: Final = 64 << 20
"""Longest output line read back (64 MiB; the analysis of a 30-minute recording is a few hundred KB)."""
LINE_START: Final = b'{"file": '
"""How every output line starts (the file's name comes first), so a line cut by a kill is told from other text."""
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
"""A DNS host name (RFC 1123 labels)."""


def cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's limit, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this system
        return os.cpu_count() or 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw analyze DIR --out FILE.jsonl` (the folder mode)."""
    group = parser.add_argument_group("a folder (FILE is a folder: every score, MIDI file and recording under it)")
    group.add_argument(
        "--out",
        metavar="FILE.jsonl",
        default=None,
        help="write one JSON line per file here (required for a folder); files already in it are skipped",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help=f"run on the Dask cluster whose scheduler is at {SCHEDULER_FORMS} (default: a local cluster)",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=None,
        help=f"worker processes of the local cluster (default: one per core, {cores()} here)",
    )
    group.add_argument(
        "--retry-failed", action="store_true", help="analyse again the files the output records as failed"
    )
    group.add_argument("--no-progress", action="store_true", help="never show the progress bar (shown on a terminal)")
    parser.add_argument(
        "--adapter-features",
        action="store_true",
        help="a recording's JSON (and each line of a folder's output) also holds the listening adapter's 2 s frame "
        "features, `adapter_frames` (what `idaw train adapter` reads)",
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command line asks for the folder mode: FILE is a folder, or a folder option was given (which the
    single-file mode then refuses in one line)."""
    folder_options = (args.out, args.scheduler, args.workers)
    return os.path.isdir(args.file) or any(o is not None for o in folder_options) or bool(args.retry_failed)


def run(args: argparse.Namespace) -> int:
    """`idaw analyze DIR --out FILE.jsonl [...]`: analyse the folder, print the summary; returns the exit code."""
    if not os.path.exists(args.file):
        raise IdawError(f"cannot read {args.file}: no such file or folder")
    if not os.path.isdir(args.file):
        raise IdawError(
            f"--out, --scheduler, --workers and --retry-failed are for a folder, and {args.file} is not one; "
            "for one file: idaw analyze FILE --format json"
        )
    if args.out is None:
        raise IdawError(f"{args.file}: it is a folder; give --out FILE.jsonl to analyse every file in it")
    if args.report is not None:
        raise IdawError("--report draws one file's analysis; it cannot be given with a folder")
    scheduler = check_scheduler_address(args.scheduler) if args.scheduler is not None else None
    workers = check_workers(args.workers) if args.workers is not None else cores()
    summary = analyze_corpus(
        args.file,
        args.out,
        scheduler=scheduler,
        workers=workers,
        progress=not args.no_progress and sys.stderr.isatty(),
        retry_failed=args.retry_failed,
        adapter_features=args.adapter_features,
    )
    print(summary.text())
    return 0


def check_workers(workers: int) -> int:
    """`workers` if it is a worker count this machine can use (1 to WORKERS_PER_CORE per core); IdawError if not."""
    usable = cores()
    if not 1 <= workers <= WORKERS_PER_CORE * usable:
        raise IdawError(
            f"--workers {workers}: allowed 1 to {WORKERS_PER_CORE * usable} ({WORKERS_PER_CORE} per core, "
            f"{usable} cores here)"
        )
    return workers


def check_scheduler_address(address: str) -> str:
    """`address` if it is a whole `tcp://HOST:PORT` or `tls://HOST:PORT` (HOST a name, an IPv4 address or an IPv6
    address in brackets; PORT 1 to 65535, nothing after it); IdawError naming what is allowed if not."""
    refused = IdawError(f"--scheduler {address!r}: not a scheduler address; allowed: {SCHEDULER_FORMS}")
    scheme, sep, rest = address.partition("://")
    if not sep or scheme not in ("tcp", "tls"):
        raise refused
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise refused
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise refused from None
    elif not host.isascii() or not _HOST_NAME.match(host):  # an IPv4 address matches the host name rule too
        raise refused
    return address


def find_files(folder: str | os.PathLike[str]) -> list[str]:
    """The paths, relative to `folder` and with '/', of every file under it with a suffix in SUFFIXES, sorted.

    Hidden files and folders are left out; links to folders are not followed (links to files are listed). A
    sub-folder that cannot be read is reported in a warning and left out; IdawError if `folder` itself cannot.
    """
    top = os.fspath(folder)
    found: list[str] = []
    unreadable: list[str] = []

    def report(error: OSError) -> None:
        if error.filename == top:  # os.walk names each folder as top joined with the names below it
            raise path_error("read", top, error)
        unreadable.append(f"{os.path.relpath(error.filename, top)} ({os_reason(error)})")

    for here, folders, files in os.walk(top, onerror=report, followlinks=False):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(SUFFIXES):
                found.append(os.path.relpath(os.path.join(here, name), top).replace(os.sep, "/"))
    if unreadable:
        warnings.warn(
            f"cannot read {len(unreadable)} folder(s), their files are not analysed: {', '.join(unreadable[:5])}"
            + (" ..." if len(unreadable) > 5 else ""),
            stacklevel=2,
        )
    return sorted(found)


def analyze_one(path: str, name: str | None = None, adapter_features: bool = False) -> dict[str, Any]:
    """The analysis of the file at `path` (a score, MIDI file or recording) as one output line's object, labelled
    `name` (default: `path`), a recording's with its adapter frames when `adapter_features`; never raises (see the
    module docstring for the fields and the error line)."""
    label = path if name is None else name
    start = time.perf_counter()
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _analysis(path, adapter_features)
        result["file"] = label
    except IdawError as error:
        result = {"file": label, "error": one_line(str(error)).replace(path, label)}
    except Exception as error:  # a bug or a library's failure on this file must not end the run
        result = {"file": label, "error": f"internal error: {type(error).__name__}: {one_line(str(error))}"}
    result["seconds"] = round(time.perf_counter() - start, 4)
    said = [one_line(str(w.message)).replace(path, label) for w in caught]
    if said and "error" not in result:
        result["warnings"] = said
    return result


def _analysis(path: str, adapter_features: bool = False) -> dict[str, Any]:
    """The analysis dict `idaw analyze PATH --format json [--adapter-features]` prints (IdawError for a bad file)."""
    from idaw.theory.load import music21_quietly

    with music21_quietly(path):
        if is_audio_path(path):
            from idaw.listen.analysis import analyze_audio_path

            return analyze_audio_path(path, adapter_features)[2]
        from idaw.theory.analysis import analyze_path

        return analyze_path(path)[1]


@dataclass
class Done:
    """What an existing output already holds (see read_done)."""

    analysed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    dropped: int = 0
    """Lines dropped: a last line cut by a kill, and later lines for a file that already has one."""
    retried: int = 0
    """Failed files taken out of the output to be analysed again (--retry-failed)."""


def read_done(out_path: str, retry_failed: bool) -> Done:
    """The files the output at `out_path` records (none if it does not exist or is empty).

    Every line must be one this command writes (a JSON object with a string "file"), except the last, which may be
    one cut short by a kill (it starts as each line does, `{"file": `); IdawError otherwise: the file is not such an
    output (a file given by mistake, or edited), and it is left as it is. When lines must go (a cut line, repeats,
    failed ones with `retry_failed`) or the last has no line end, the file is rewritten without them, atomically,
    so that it stays valid JSON lines to append to.
    """
    done = Done()
    if not os.path.exists(out_path):
        return done
    rewrite = False
    for line, record in _output_lines(out_path):
        rewrite = rewrite or not line.endswith(b"\n")
        if record is None:  # the cut last line (_output_lines refuses any other)
            done.dropped += 1
            continue
        name, failed = record
        if name in done.analysed or name in done.failed:
            done.dropped += 1
        elif failed and retry_failed:
            done.retried += 1
        else:
            (done.failed if failed else done.analysed).add(name)
    if rewrite or done.dropped or done.retried:
        _rewrite(out_path, retry_failed)
    return done


def _output_lines(out_path: str) -> Iterator[tuple[bytes, tuple[str, bool] | None]]:
    """(line, (file, failed)) of each non-blank line of the output; the record is None only for a last line cut
    short by a kill. IdawError for a line this command does not write, or one over MAX_LINE_BYTES."""
    try:
        with open(out_path, "rb") as out:
            number = 0
            line = out.readline(MAX_LINE_BYTES + 1)
            while line:
                following = out.readline(MAX_LINE_BYTES + 1)
                number += 1
                if line.strip():
                    record = _record(line) if len(line) <= MAX_LINE_BYTES else None
                    if record is None and (following or not _cut_line(line)):
                        raise IdawError(
                            f"{out_path}: line {number} is not a line of this command's output (a JSON object with "
                            '"file"); allowed: an output of idaw analyze DIR, or a new file'
                        )
                    yield line, record
                line = following
    except OSError as error:
        raise path_error("read", out_path, error) from None


def _cut_line(line: bytes) -> bool:
    """Whether `line` (a last line that does not parse) can be the start of a line this command writes."""
    return line.startswith(LINE_START) or (not line.endswith(b"\n") and LINE_START.startswith(line))


def _record(line: bytes) -> tuple[str, bool] | None:
    """(file, failed) of an output line, or None if it is not a JSON object with a string "file"."""
    try:
        record = json.loads(line)
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(record, dict) or not isinstance(record.get("file"), str):
        return None
    return record["file"], "error" in record


def _rewrite(out_path: str, retry_failed: bool) -> None:
    """Rewrite the output with each file's first line only, without a cut last line (and without failed files'
    lines with `retry_failed`), each line ending in a line end."""
    from idaw.base.output_file import replacing

    seen: set[str] = set()
    with replacing(out_path) as part, open(part, "wb") as target:
        for line, record in _output_lines(out_path):
            if record is None or record[0] in seen or (record[1] and retry_failed):
                continue
            seen.add(record[0])
            target.write(line.rstrip(b"\r\n") + b"\n")


@dataclass
class CorpusSummary:
    """What one run did (analyze_corpus's answer)."""

    out_path: str
    found: int
    """Files in the folder."""
    skipped: int
    """Files already in the output (analysed or failed in an earlier run), not analysed again."""
    skipped_failed: int
    """Of those, files recorded as failed (--retry-failed analyses them again)."""
    analysed: int = 0
    failed: int = 0
    """Files that failed in this run."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(file, error line) of the first NAMED_FAILURES of them, in the order they finished."""
    dropped: int = 0
    """Lines of the output dropped (see Done.dropped)."""
    workers: int = 0
    """Worker threads of the cluster (counted when the run started)."""
    start_seconds: float = 0.0
    """Time to start or reach the cluster."""
    seconds: float = 0.0
    """Time from the first file submitted to the last result written."""

    @property
    def files_per_minute(self) -> float:
        """Files analysed or failed in this run per minute of `seconds` (0 when none)."""
        done = self.analysed + self.failed
        return 60.0 * done / self.seconds if done and self.seconds > 0 else 0.0

    def text(self) -> str:
        """The summary for the user: counts, throughput, failed files (up to NAMED_FAILURES), repairs."""
        done = self.analysed + self.failed
        lines = [
            f"{self.found} files in the folder: {self.analysed} analysed, {self.failed} failed, "
            f"{self.skipped} skipped (already in {self.out_path})"
        ]
        if done:
            lines.append(
                f"{done} files in {self.seconds:.1f} s on {self.workers} worker(s): "
                f"{self.files_per_minute:.1f} files/minute (cluster ready in {self.start_seconds:.1f} s)"
            )
        if self.failed:
            lines.append("failed:")
            lines += [f"  {_error_naming(name, error)}" for name, error in self.failures]
            if self.failed > len(self.failures):
                lines.append(f'  ... and {self.failed - len(self.failures)} more (their lines have an "error")')
        if self.skipped_failed:
            lines.append(
                f"{self.skipped_failed} file(s) failed in an earlier run and were skipped (--retry-failed: try again)"
            )
        if self.dropped:
            lines.append(
                f"dropped {self.dropped} line(s) of {self.out_path}: cut short when a run was stopped (that file was "
                "analysed again), or repeating a file's line"
            )
        return "\n".join(lines)


def _error_naming(name: str, error: str) -> str:
    """The error line as it names the file, or 'NAME: ERROR' when it does not."""
    return error if name in error else f"{name}: {error}"


def analyze_corpus(
    folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    scheduler: str | None = None,
    workers: int = 1,
    progress: bool = False,
    retry_failed: bool = False,
    adapter_features: bool = False,
) -> CorpusSummary:
    """Analyse every file under `folder` not yet in the JSON lines at `out_path`, appending a line per file as it
    finishes, on the Dask cluster at `scheduler` (checked with check_scheduler_address) or on a local one of
    `workers` processes (each recording's line with its adapter frames when `adapter_features`); returns what was
    done. IdawError (before any analysis) for a folder that cannot be read,
    an output that cannot be written, a cluster that cannot be started or reached."""
    top = os.path.abspath(folder)
    out = os.fspath(out_path)
    names = find_files(top)
    _check_output(out)
    done = read_done(out, retry_failed)
    todo = [name for name in names if name not in done.analysed and name not in done.failed]
    skipped_failed = sum(name in done.failed for name in names)
    summary = CorpusSummary(
        out_path=out,
        found=len(names),
        skipped=len(names) - len(todo),
        skipped_failed=skipped_failed,
        dropped=done.dropped,
    )
    if not todo:
        return summary
    started = time.perf_counter()
    with dask_client(scheduler, workers) as client:
        summary.workers = max(1, sum(client.nthreads().values()))
        summary.start_seconds = time.perf_counter() - started
        started = time.perf_counter()
        _run(client, top, out, todo, summary, progress, adapter_features)
    summary.seconds = time.perf_counter() - started
    return summary


def _check_output(out: str) -> None:
    """IdawError unless `out` can be appended to: a regular file, or a new one (created) in an existing folder.
    Opened without blocking, so a FIFO given by mistake is refused rather than waited on."""
    try:
        existing = os.stat(out).st_mode
    except FileNotFoundError:
        existing = stat.S_IFREG
    except OSError as error:
        raise path_error("write", out, error) from None
    if stat.S_ISDIR(existing):
        raise IdawError(f"cannot write {out}: it is a folder; allowed: a JSON lines file")
    if not stat.S_ISREG(existing):
        raise IdawError(f"cannot write {out}: not a regular file; allowed: a JSON lines file")
    try:
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    except IsADirectoryError:
        raise IdawError(f"cannot write {out}: it is a folder; allowed: a JSON lines file") from None
    except OSError as error:  # a FIFO without a reader is ENXIO here
        raise path_error("write", out, error) from None
    if not regular:
        raise IdawError(f"cannot write {out}: not a regular file; allowed: a JSON lines file")


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client of the cluster at `scheduler`, or of a new local cluster of `workers` single-thread processes
    on the loopback address (closed again when the block ends, Ctrl-C included)."""
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as error:
            raise IdawError(f"cannot reach the Dask scheduler at {scheduler}: {one_line(str(error))}") from None
        except TypeError as error:  # tls:// without certificates: Dask's own words say what is missing
            raise IdawError(
                f"cannot connect to the Dask scheduler at {scheduler}: {one_line(str(error))}; TLS needs "
                "distributed.comm.tls.ca-file and .client.cert/.key in Dask's configuration"
            ) from None
        with client:
            yield client
        return
    _start_resource_tracker()
    cluster = None
    try:
        with _ctrl_c_held():  # the cluster's thread and worker processes start with Ctrl-C blocked
            cluster = local_cluster(workers)  # assigned before a Ctrl-C held meanwhile arrives
        with Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
    finally:
        if cluster is not None:  # also after a Ctrl-C that arrived while it started
            cluster.close()


def local_cluster(workers: int) -> Any:
    """A started LocalCluster of `workers` single-thread worker processes, scheduler and workers on the loopback
    address, no dashboard."""
    import logging

    from distributed import LocalCluster

    try:
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # its HTTP routes: not on Dask's usual 8787
            silence_logs=logging.CRITICAL,  # failures are reported per file; Dask's log lines would be noise
        )
    except OSError as error:
        raise IdawError(f"cannot start a local Dask cluster: {one_line(str(error))}") from None


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, before _ctrl_c_held: starting it unblocks SIGINT in the
    starting thread (CPython's fix of bpo-33613), which would let the worker processes started after it receive
    Ctrl-C again. It gets our -W options: if a second Ctrl-C ends idaw at once, it frees the workers' semaphores
    without printing a two-line warning after idaw's one line."""
    from multiprocessing import resource_tracker

    quiet = "ignore:resource_tracker:UserWarning"
    sys.warnoptions.append(quiet)
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(quiet)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Block SIGINT in this thread for the block. Threads and processes started meanwhile inherit the blocked
    signal and keep it: a Ctrl-C at the terminal reaches the whole process group, and Dask's worker processes would
    each print a traceback for it; this way only this process gets it, and stops them itself. A Ctrl-C during the
    block stays pending and is delivered (as KeyboardInterrupt) when it ends."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _run(
    client: Any,
    top: str,
    out: str,
    todo: list[str],
    summary: CorpusSummary,
    progress: bool,
    adapter_features: bool = False,
) -> None:
    """Submit `todo` (names under `top`), at most IN_FLIGHT_PER_THREAD per worker thread ahead, and append each
    result to `out` as it arrives; counts go into `summary`."""
    from distributed import as_completed
    from tqdm import tqdm

    queue = iter(todo)
    in_flight: dict[Any, str] = {}
    finished = as_completed()  # type: ignore[no-untyped-call]

    def submit_next() -> None:
        name = next(queue, None)
        if name is not None:
            future = client.submit(analyze_one, os.path.join(top, name), name, adapter_features, pure=False)
            in_flight[future] = name
            finished.add(future)  # type: ignore[no-untyped-call]

    with (
        open(out, "ab", buffering=0) as sink,
        tqdm(total=len(todo), unit="file", disable=not progress, file=sys.stderr, leave=True) as bar,
    ):
        for _ in range(IN_FLIGHT_PER_THREAD * summary.workers):
            submit_next()
        for future in finished:
            name = in_flight.pop(future)
            result, line = _result_line(future, name)
            _write_all(sink, line, out)
            error = result.get("error")
            if isinstance(error, str):
                summary.failed += 1
                if len(summary.failures) < NAMED_FAILURES:
                    summary.failures.append((name, error))
            else:
                summary.analysed += 1
            bar.update(1)
            submit_next()


def _result_line(future: Any, name: str) -> tuple[dict[str, Any], bytes]:
    """The result object of a finished task and its output line (with its line end). Strict JSON: a value JSON
    cannot hold (NaN, infinity, an object) makes the file's line an internal error rather than an unreadable line."""
    try:
        result: dict[str, Any] = {"file": name, **future.result()}  # "file" first: see LINE_START
        line = json.dumps(result, allow_nan=False)
    except Exception as error:  # a worker that died on the file (KilledWorker), a result JSON cannot hold
        result = {"file": name, "error": f"internal error: {type(error).__name__}: {one_line(str(error))}"}
        line = json.dumps(result)
    return result, (line + "\n").encode()


def _write_all(sink: Any, data: bytes, out: str) -> None:
    """Write all of `data` to the unbuffered file `sink` (a raw write may take only part of it)."""
    view = memoryview(data)
    try:
        while view:
            written = sink.write(view)
            view = view[written:]
    except OSError as error:
        raise path_error("write", out, error) from None
