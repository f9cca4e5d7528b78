"""How a sweep's progress is shown: tqdm bars in a terminal or notebook, plain lines
(done, failed, left, rate, ETA) when the output is a file or a pipe (nohup, cron), so
a log holds no cursor codes.

Display only: what is counted, and where, is the caller's (``alphadev.orchestrator``
for a run in one process, ``alphadev.sweep`` for a Luigi sweep's shared counters).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from typing import IO, TYPE_CHECKING

from tqdm.auto import tqdm

if TYPE_CHECKING:  # annotations only: the display stays a leaf
    from alphadev.metrics import Metrics


class ProgressBar(tqdm):
    """tqdm without its monitor thread, which would make forking workers unsafe."""

    monitor_interval = 0


PROGRESS_EVERY_SECONDS = 300.0  # a plain progress line at least this often ...
PROGRESS_STEPS = 20  # ... and every 1/20 of the configs


def plain_output(stream: IO[str]) -> bool:
    """Whether progress on ``stream`` must be plain lines: it is not a terminal (a file,
    a pipe: nohup, cron) and not a notebook, so tqdm's cursor codes would be garbage."""
    if any(cls.__name__ == "tqdm_notebook" for cls in ProgressBar.__mro__):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return not (isatty is not None and isatty())
    except ValueError:  # a closed stream
        return True


def progress_line(label: str, done: int, failed: int, total: int, finished_here: int,
                  elapsed: float) -> str:
    """One self-contained progress line (readable in a terminal and in a log file):
    ``[12:30:05] sweep runs/x: 120/200 done, 2 failed, 78 left, 3.1 configs/s,
    ETA 0:00:25``.  The rate counts the ``finished_here`` configs this run finished
    (done or failed) in ``elapsed`` seconds; configs done before it do not count."""
    left = max(0, total - done - failed)
    text = f"{label}: {done}/{total} done, {failed} failed, {left} left"
    if finished_here > 0 and elapsed > 0:
        rate = finished_here / elapsed
        speed = f"{rate:.3g} configs/s" if rate >= 1 else f"{1 / rate:.3g} s/config"
        eta = dt.timedelta(seconds=round(left / rate))
        text += f", {speed}, ETA {eta}"
    else:
        text += ", ETA unknown"
    return f"[{dt.datetime.now():%H:%M:%S}] {text}"


class LineDue:
    """When the next plain progress line is due: every ``1/PROGRESS_STEPS`` of the
    configs, every ``PROGRESS_EVERY_SECONDS``, and at the end."""

    def __init__(self, total: int, every_seconds: float = PROGRESS_EVERY_SECONDS) -> None:
        self.total = total
        self.step = max(1, -(-total // PROGRESS_STEPS))
        self.every_seconds = every_seconds

    def __call__(self, finished: int, last_finished: int, last_time: float,
                 now: float) -> bool:
        if finished >= self.total:
            return finished != last_finished
        if finished // self.step > last_finished // self.step:
            return True
        return finished > last_finished and now - last_time >= self.every_seconds


class PlainProgress:
    """Periodic plain progress lines for ``run_all`` when its output is not a terminal."""

    def __init__(self, label: str, total: int, done: int, stream: IO[str]) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.done, self.failed = done, 0
        self.start_done = done
        self.started = self.last_time = time.monotonic()
        self.last_finished = done
        self.due = LineDue(total)
        self.note = ""

    def update(self, ok: bool) -> None:
        """One more config finished (``ok``: done, else failed); print a line if due."""
        if ok:
            self.done += 1
        else:
            self.failed += 1
        now = time.monotonic()
        finished = self.done + self.failed
        if self.due(finished, self.last_finished, self.last_time, now):
            self.last_finished, self.last_time = finished, now
            self.write(now)

    def write(self, now: float) -> None:
        line = progress_line(self.label, self.done, self.failed, self.total,
                             self.done + self.failed - self.start_done, now - self.started)
        self.stream.write(f"{line}{self.note}\n")
        self.stream.flush()


class SweepDisplay:
    """What ``run_all`` shows on stderr: one bar for the configs (or plain lines), each
    failure's report, and the best IC so far.

    The postfix names the best IC so far and the Sharpe *of that config*, which need
    not be the best Sharpe; its label says so.
    """

    def __init__(self, total: int, done: int, verbose: bool, stream: IO[str] | None = None
                 ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        plain = verbose and plain_output(self.stream)
        self.verbose = verbose
        self.bars = verbose and not plain
        self.bar = ProgressBar(total=total, position=0, desc="configs", disable=not self.bars,
                               dynamic_ncols=True)
        self.bar.update(done)
        self.lines = PlainProgress("configs", total, done, self.stream) if plain else None
        if self.lines is not None:
            self.lines.write(self.lines.started)
        self.postfix = ""
        self.best_ic = -math.inf

    def best(self, metrics: Metrics) -> None:
        """A config done (run now or loaded): the postfix names the best IC so far."""
        ic = metrics.get("ic_mean")
        if ic is not None and ic > self.best_ic:
            self.best_ic = ic
            sharpe = metrics["total"].get("sharpe")
            shown = "n/a" if sharpe is None else f"{sharpe:.2f}"
            self.postfix = f"best IC {ic:.4f} (Sharpe of that config {shown})"
            self.bar.set_postfix_str(self.postfix, refresh=False)
            if self.lines is not None:
                self.lines.note = f"; {self.postfix}"

    def finished(self, metrics: Metrics | None, report: str | None) -> None:
        """One config finished: done (its ``metrics``) or failed (its ``report``)."""
        self.bar.update(1)
        if metrics is not None:
            self.best(metrics)
        if self.lines is not None:
            self.lines.update(metrics is not None)
        if metrics is None and self.verbose:
            tqdm.write(report or "", file=self.stream)

    def close(self) -> None:
        self.bar.close()
