"""One config in one process: run it, save it, and describe a failure.

Everything that runs configs (``Backtester.run_all``, its pool's workers, the Luigi
tasks) goes through here, so a config fails the same way everywhere: the run never
raises, and a failure becomes an ``Outcome`` carrying its report (config name,
parameters, exception and traceback).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NamedTuple

from tqdm.auto import tqdm

from alphadev import _threads
from alphadev.config import BacktestConfig
from alphadev.layout import SweepDir
from alphadev.results import BacktestResult

log = logging.getLogger(__name__)

STAGES_PER_WINDOW = 4  # load data, compute alpha, align, simulate

Progress = Callable[[str], None]


class Outcome(NamedTuple):
    """A config's result, or the report of its failure (exactly one is set)."""

    result: BacktestResult | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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


def describe_failure(config: BacktestConfig, exc: BaseException) -> str:
    """The error report for one config: name, parameters, exception and traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (
        f"config {config.name!r} failed\n"
        f"  alpha: {config.alpha_class.__name__}({config.alpha_kwargs})\n"
        f"  settings: quantile={config.quantile} gross_exposure={config.gross_exposure} "
        f"frequency={config.frequency} fee={config.trading_fee_rate} mode={config.mode} "
        f"period={config.start_date}..{config.end_date}\n"
        f"  error: {type(exc).__name__}: {exc}\n{tb}"
    )


def stage_count(config: BacktestConfig) -> int:
    """How many progress stages a run of ``config`` reports (for bars and percentages)."""
    from alphadev.runner import windows

    return STAGES_PER_WINDOW * len(list(windows(config))) + 2


def warn_slow(name: str, seconds: float) -> None:
    """The one warning for a config that runs longer than the slow-job threshold."""
    log.warning("config %r has been running for more than %.0f s", name, seconds)


def execute(config: BacktestConfig, save_dir: Any, progress: Progress | None = None) -> Outcome:
    """Run (and save) one config; never raises."""
    outcome, spill_dir = _compute(config, save_dir, progress)
    return _save(config, outcome, save_dir, spill_dir)


def start(
    config: BacktestConfig, save_dir: Any, progress: Progress | None = None
) -> tuple[bool, Callable[[], Outcome]]:
    """Run one config now and save it on a thread: (whether the run succeeded, a call
    that joins the save and gives ``execute``'s outcome).

    Encoding the Parquet files releases the GIL, so a sequential sweep saves one result
    while it simulates the next.
    """
    outcome, spill_dir = _compute(config, save_dir, progress)
    return outcome.ok, _threads.start(_save, config, outcome, save_dir, spill_dir)


def run_with_bar(
    config: BacktestConfig,
    position: int | None,
    save_dir: Any,
    run: Callable[..., Any] = execute,
) -> Any:
    """``run`` (``execute`` or ``start``) of one config with its own progress bar at
    ``position`` (None: no bar)."""
    if position is None:
        return run(config, save_dir)
    bar = ProgressBar(
        total=stage_count(config), position=position, desc=config.name[:40], leave=False,
        dynamic_ncols=True,
    )

    def progress(stage: str) -> None:
        bar.set_postfix_str(stage, refresh=False)
        bar.update(1)

    try:
        return run(config, save_dir, progress)
    finally:
        bar.close()


def start_watched(
    config: BacktestConfig, position: int | None, save_dir: Any, slow_after: float
) -> tuple[bool, Callable[[], Outcome]]:
    """``start`` a config, warning once if running it takes longer than ``slow_after``."""
    timer = threading.Timer(slow_after, warn_slow, args=(config.name, slow_after))
    timer.daemon = True
    timer.start()
    try:
        return run_with_bar(config, position, save_dir, start)
    finally:
        timer.cancel()


def _compute(
    config: BacktestConfig, save_dir: Any, progress: Progress | None
) -> tuple[Outcome, Path | None]:
    from alphadev.runner import run_backtest

    root = SweepDir.of(save_dir) if save_dir is not None else None
    cache_dir = root.panel_cache if root is not None else None
    spill_dir = None
    if root is not None and config.mode == "streaming":
        spill_dir = root.spill(config.name)
    try:
        outcome = Outcome(run_backtest(config, progress, cache_dir, spill_dir))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
        outcome = Outcome(None, describe_failure(config, exc))
    if outcome.ok and save_dir is not None and progress:
        progress("save")
    return outcome, spill_dir


def _save(
    config: BacktestConfig, outcome: Outcome, save_dir: Any, spill_dir: Path | None
) -> Outcome:
    """Save a successful result (its sequences are then re-read from disk on demand)."""
    try:
        if outcome.result is not None and save_dir is not None:
            outcome.result.save(save_dir)
            # Its latest attempt succeeded: an older failure must not hide the result.
            SweepDir.of(save_dir).failure(config.name).unlink(missing_ok=True)
            outcome.result.drop_sequences()
        return outcome
    except Exception as exc:  # noqa: BLE001 - a failed save fails this config only
        return Outcome(None, describe_failure(config, exc))
    finally:
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)
