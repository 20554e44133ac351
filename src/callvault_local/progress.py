"""Progress of a long `callvault` operation (replay, reconcile, ...): a live count on stderr when
stderr is a terminal (nothing otherwise, so pipes and logs stay clean), and a summary at the end.

    progress = Progress("replay cozmox")
    for body in bodies:
        progress.count(outcome)          # "stored", "duplicate", ...
    print(progress.finish())             # "replay cozmox: duplicate 117, stored 3"
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

REDRAW_SECONDS = 0.1  # a terminal redrawn more often than this only costs time


class Progress:
    """Counts outcomes; shows the running counts on a terminal; summarizes at the end."""

    def __init__(self, label: str, *, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.counts: Counter[str] = Counter()
        self._stream = stream if stream is not None else sys.stderr
        self._live = self._stream.isatty()
        self._drawn_at = 0.0
        self._width = 0

    def count(self, outcome: str, n: int = 1) -> None:
        """One more item (or `n`) with this outcome."""
        self.counts[outcome] += n
        if self._live and time.monotonic() - self._drawn_at >= REDRAW_SECONDS:
            self._draw()

    def summary(self) -> str:
        """`label: outcome N, ...` (outcomes in name order), or `label: nothing to do`."""
        counted = ", ".join(f"{name} {n}" for name, n in sorted(self.counts.items()))
        return f"{self.label}: {counted or 'nothing to do'}"

    def finish(self) -> str:
        """Clear the live line; the summary, for the caller to print where its output goes."""
        if self._live and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
        return self.summary()

    def _draw(self) -> None:
        done = sum(self.counts.values())
        line = f"{self.label}: {done}" + (f"/{self.total}" if self.total else "") + f"  ({self.summary().split(': ', 1)[1]})"
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)
        self._drawn_at = time.monotonic()
