"""The `idaw` command run as a user runs it, and the rule its errors follow (one line, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from tests.support.repo import REPO

RunIdaw = Callable[..., "subprocess.CompletedProcess[str]"]
"""(*args, stderr=None) -> CompletedProcess of `python -m idaw.cli ARGS` (the `run_idaw` fixture)."""


def run_idaw(*args: str | os.PathLike[str], stderr: int | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m idaw.cli ARGS` in the repository, IDAW_DEBUG unset, unbuffered; its output captured as text.

    Pass `stderr` (a file descriptor) to send stderr elsewhere, e.g. a pty. Fails after 300 s.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("IDAW_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "idaw.cli", *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr is None else stderr,
        text=True,
        timeout=300,
        check=False,
    )


def one_error_line(text: str) -> str:
    """The single line of stderr `text`, after checking there is exactly one and no traceback."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text
    assert len(lines) == 1, f"expected one line on stderr, got: {text!r}"
    return lines[0]
