"""Progress of a long job, readable in its log: one line every ``every_s`` seconds (and at the
end) with what is done, the rate and the time left, as torchvision's ``MetricLogger.log_every``
does per N batches. A job's log is a file, so lines; only on a terminal does the line rewrite
itself in place (a bar). Torch-free.
"""

from __future__ import annotations

import sys
import time
from typing import Callable


class Progress:
    """``update(n)`` after each piece of work; ``label`` and ``unit`` name it in the line:
    ``saliency fold0: 64/256 images (25%), 3.1 images/s, 62 s left``."""

    def __init__(self, total: int, label: str, unit: str = "images", log: Callable[[str], None] = print,
                 every_s: float = 30.0, clock: Callable[[], float] = time.perf_counter, stream=None):
        self.total, self.label, self.unit, self.log, self.every_s, self.clock = total, label, unit, log, every_s, clock
        self.tty = (stream or sys.stdout).isatty()
        self.done = 0
        self.began = self.last = clock()

    def line(self) -> str:
        elapsed = max(self.clock() - self.began, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        percent = 100 * self.done / self.total if self.total else 100.0
        return (f"{self.label}: {self.done}/{self.total} {self.unit} ({percent:.0f}%), {rate:.3g} {self.unit}/s, "
                + (f"{left:.0f} s left" if self.done < self.total else f"{elapsed:.0f} s"))

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        finished = self.done >= self.total
        if self.tty:
            print("\r" + self.line(), end="\n" if finished else "", flush=True)
        elif finished or now - self.last >= self.every_s:
            self.log(self.line())
            self.last = now
