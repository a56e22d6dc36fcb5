"""Progress lines for long host loops (evaluation phases): phase, items done, elapsed, ETA.

On a terminal the line is redrawn in place; in a log file a line is printed at most every
`every` seconds, plus the final one, so `make train > log` stays readable.
"""

from __future__ import annotations

import contextlib
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


class Timings:
    """Wall seconds per phase of a run (compile, training, each evaluation phase, ...), in
    the order the phases first ran: summary.json's `timings`, and a table at the end."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def table(self, total: float | None = None) -> str:
        rows = list(self.seconds.items()) + ([("total (wall)", total)] if total else [])
        width = max(len(name) for name, _ in rows) + 2
        return "\n".join(f"  {name:<{width}}{s:8.1f} s" for name, s in rows)


def maybe(timings: Timings | None, name: str):
    """timings.phase(name), or nothing when no Timings is given."""
    return timings.phase(name) if timings is not None else contextlib.nullcontext()
