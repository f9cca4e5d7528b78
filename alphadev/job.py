"""One config in one process: run it, save it, and describe a failure.

Everything that runs configs (``Backtester.run_all``, its pool's workers, the Luigi
tasks) goes through here, so a config fails the same way everywhere: the run never
raises, and a failure becomes an ``Outcome`` carrying its report (config name,
parameters, exception and traceback).
"""

from __future__ import annotations

import logging
import shutil
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from alphadev import _threads
from alphadev.config import BacktestConfig
from alphadev.layout import SweepDir
from alphadev.progress import ProgressBar
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


Finish = Callable[[], Outcome]


def start_watched(
    config: BacktestConfig, position: int | None, save_dir: Any, slow_after: float,
    on_stage: Progress | None = None,
) -> tuple[bool, Finish]:
    """``start`` a config, warning once if running it takes longer than ``slow_after``;
    without a bar (``position`` None) its stages go to ``on_stage``."""
    timer = threading.Timer(slow_after, warn_slow, args=(config.name, slow_after))
    timer.daemon = True
    timer.start()
    try:
        if position is None:
            return start(config, save_dir, on_stage)
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
