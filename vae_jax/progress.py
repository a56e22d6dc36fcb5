"""Progress lines for long host loops (evaluation phases): phase, items done, elapsed, ETA.

On a terminal the line is redrawn in place; in a log file a line is printed at most every
`every` seconds, plus the final one, so `make train > log` stays readable.
"""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """`Progress("log p(x)", total=10, unit="batches")`; call `update(done)` after each."""

    def __init__(self, phase: str, total: int, unit: str = "batches", every: float = 5.0):
        self.phase, self.total, self.unit, self.every = phase, total, unit, every
        self.start = self.last = time.time()
        self.tty = sys.stdout.isatty()

    def update(self, done: int) -> None:
        now = time.time()
        final = done >= self.total
        if not final and now - self.last < (0.5 if self.tty else self.every):
            return
        self.last = now
        elapsed = now - self.start
        text = f"  {self.phase}: {done}/{self.total} {self.unit}, {format_seconds(elapsed)}"
        if not final and done:
            text += f", ETA {format_seconds(elapsed / done * (self.total - done))}"
        if self.tty:
            end = "\n" if final else ""
            print("\r" + text.ljust(78), end=end, flush=True)
        else:
            print(text, flush=True)
