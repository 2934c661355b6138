"""A describe handler with a switchable bug, for the hostile-client tests.

`idaw sidecar --handler tests.sidecar_faulty_handler:make` loads it.

It is the fallback table, except that describing the word 'break' makes its `name` raise until 'mend' is described:
every reply that carries the handler's name (welcome, status_reply) then fails while it is being built, as a bug in
the sidecar's reply code would. The sidecar must count that ('internal'), drop the reply and go on.
"""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.handlers import AnalysisWindow, DescribeResult, FallbackTableHandler


class FaultyNameHandler(FallbackTableHandler):
    """FallbackTableHandler whose name raises RuntimeError between a describe of 'break' and one of 'mend'."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    @property  # type: ignore[override]
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
        return super().describe(words, intensity, window)


def make() -> FaultyNameHandler:
    """The factory `--handler tests.sidecar_faulty_handler:make` calls."""
    return FaultyNameHandler()
