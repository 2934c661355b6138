"""A describe handler with a switchable bug, for the hostile-client tests.

`idaw sidecar --handler tests.support.sidecar_faulty_handler:make` loads it.

It is the fallback table, except that describing the word 'break' makes its `name` raise until 'mend' is described:
every reply that carries the handler's name (welcome, status_reply) then fails while it is being built, as a bug in
the sidecar's reply code would. The sidecar must count that ('internal'), drop the reply and go on.
"""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.handlers import AnalysisWindow, DescribeResult, FallbackTableHandler


class FaultyNameHandler:
    """The fallback table's handler (a DescribeHandler) whose name raises RuntimeError between a describe of 'break'
    and one of 'mend'. It holds a FallbackTableHandler rather than being one: its name is a read-only property, which
    cannot stand in for the fallback's plain `name` attribute."""

    def __init__(self) -> None:
        self.fallback = FallbackTableHandler()
        self.broken = False

    @property
    def name(self) -> str:
        """'faulty', or RuntimeError while broken."""
        if self.broken:
            raise RuntimeError("the handler's name is broken (test fault)")
        return "faulty"

    def describe(self, words: Sequence[str], intensity: float, window: AnalysisWindow | None) -> DescribeResult:
        """The fallback's answer; 'break' and 'mend' switch the fault on and off."""
        if "break" in words:
            self.broken = True
        if "mend" in words:
            self.broken = False
        return self.fallback.describe(words, intensity, window)

    def feedback(self, words: Sequence[str], snapshot: int, rating: float) -> None:
        """Passed on to the fallback (which records it)."""
        self.fallback.feedback(words, snapshot, rating)


def make() -> FaultyNameHandler:
    """The factory `--handler tests.support.sidecar_faulty_handler:make` calls."""
    return FaultyNameHandler()
