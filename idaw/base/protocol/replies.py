"""Requests as a requester sees them: the answer to describe, a refused or unanswered request, and the one rule
for retrying while the sidecar's synonym model is still loading.

Both requesters use it: realtime's engine link (realtime/sidecar_link/link.py, which sends requests on its own
DEALER, as the plugin does) and the sidecar's own client (sidecar/client.py, `idaw sidecar --describe`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

STILL_LOADING = "still loading"
"""Text in the detail of a 'handler_failed' error that means: the same request will be answered in a moment (the
synonym model is loading; the sidecar's handler puts it there, PROTOCOL.md "Describe, feedback, status")."""
LOADING_WAIT_S = 30.0
"""How long a describe keeps retrying while the sidecar's synonym model loads (a word outside the vocabulary just
after start-up)."""
LOADING_RETRY_S = 0.2
"""How long to wait before asking again."""


class RequestError(RuntimeError):
    """A request failed: `code` is 'timeout' (no answer), 'unreachable' (not sent: no sidecar connected) or the
    protocol reason the sidecar gave in its error reply (the message then holds its detail)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Described:
    """The answer to describe: the snapshot number sent to engines (0: no word known), values, words used."""

    snapshot: int
    values: dict[str, float]
    used: list[str]
    engines: int


class Describer(Protocol):
    """Anything that sends describe requests (the engine link, the sidecar's client)."""

    def describe(self, words: Sequence[str], intensity: float) -> Described:
        """The `described` answer; raises RequestError when the request failed."""
        ...


def still_loading(error: RequestError) -> bool:
    """Whether `error` is the sidecar saying its synonym model is still loading (retry the same request)."""
    return error.code == "handler_failed" and STILL_LOADING in str(error)


def describe_retrying(
    requester: Describer, words: Sequence[str], intensity: float, wait: float = LOADING_WAIT_S
) -> Described:
    """requester.describe(words, intensity), repeated every LOADING_RETRY_S for up to `wait` s while the sidecar
    answers that its synonym model is still loading. Raises RequestError like requester.describe."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return requester.describe(list(words), intensity)
        except RequestError as error:
            if not still_loading(error) or time.monotonic() > deadline:
                raise
        time.sleep(LOADING_RETRY_S)
