"""Backtester: many configs, run one after another or in a pool of processes.

Results come back aligned with ``configs``: a BacktestResult, or None for a config that
failed (its error goes to the terminal and ``err_path``).  With ``save_dir`` each
config is written by the process that ran it, and configs already saved whole with the
same fingerprint are loaded instead of recomputed, which makes ``run_all`` resumable;
a damaged folder is logged and recomputed.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from alphadev import _threads
from alphadev.comparison import comparison_table, write_comparison
from alphadev.config import BacktestConfig
from alphadev.errors import BacktestError
from alphadev.grid import expand_grid
from alphadev.results import BacktestResult, ResultState, check_saved, load_result
from alphadev.store import TMP_PREFIX, append_error_log, owner_tag, recover

log = logging.getLogger(__name__)

STAGES_PER_WINDOW = 4  # load data, compute alpha, align, simulate


class _Bar(tqdm):
    """tqdm without its monitor thread, which would make forking workers unsafe."""

    monitor_interval = 0


class Backtester:
    """Holds configs, runs them, and compares their results.

    ``slow_job_seconds``: a config running longer than this logs one warning.
    """

    def __init__(self, slow_job_seconds: float = 3600.0) -> None:
        if not isinstance(slow_job_seconds, (int, float)) or slow_job_seconds <= 0:
            raise ValueError(f"slow_job_seconds={slow_job_seconds!r} must be a number > 0")
        self.slow_job_seconds = float(slow_job_seconds)
        self._configs: list[BacktestConfig] = []
        self.results: list[BacktestResult | None] = []

    # ------------------------------------------------------------------ configs
    @property
    def configs(self) -> list[BacktestConfig]:
        return list(self._configs)

    def add_config(self, config: BacktestConfig) -> None:
        if not isinstance(config, BacktestConfig):
            raise TypeError(f"add_config expects a BacktestConfig, got {type(config).__name__}")
        if any(c.name.casefold() == config.name.casefold() for c in self._configs):
            raise ValueError(
                f"a config named {config.name!r} was already added; config names must be unique"
            )
        self._configs.append(config)

    def add_multiple_configs(
        self,
        base_config: BacktestConfig,
        param_grid: Mapping[str, Sequence[Any]] | None,
        setting_grid: Mapping[str, Sequence[Any]] | None = None,
    ) -> list[BacktestConfig]:
        """Add the cartesian product of alpha parameters and settings; returns the new configs."""
        configs = expand_grid(base_config, param_grid, setting_grid)
        existing = {c.name.casefold() for c in self._configs}
        clash = [c.name for c in configs if c.name.casefold() in existing]
        if clash:
            raise ValueError(f"configs named {clash[:3]} were already added; names must be unique")
        self._configs.extend(configs)
        return configs

    def clear(self) -> None:
        self._configs.clear()
        self.results = []

    # ------------------------------------------------------------------ running
    def run_all(
        self,
        verbose: bool = True,
        stop_on_error: bool = False,
        num_processes: int | None = None,
        save_dir: str | os.PathLike | None = None,
        err_path: str | os.PathLike | None = None,
    ) -> list[BacktestResult | None]:
        """Run every config; see the module docstring for what comes back."""
        workers = _worker_count(num_processes)
        configs = self.configs
        results: list[BacktestResult | None] = [None] * len(configs)
        if save_dir is not None:
            recover(save_dir)
        todo = []
        for index, config in enumerate(configs):
            done = _load_if_done(config, save_dir)
            if done is not None:
                results[index] = done
            else:
                todo.append(index)

        main = _Bar(
            total=len(configs), position=0, desc="configs", disable=not verbose,
            dynamic_ncols=True,
        )
        main.update(len(configs) - len(todo))
        tracker = _Tracker(main, results, configs, err_path, verbose, stop_on_error)
        for index in range(len(configs)):
            if results[index] is not None:
                tracker.best(results[index])
        try:
            if workers > 1 and len(todo) > 1:
                from alphadev.pool import run_in_pool

                check_picklable([configs[i] for i in todo])
                run_in_pool(
                    configs, todo, min(workers, len(todo)), save_dir, verbose,
                    self.slow_job_seconds, tracker,
                )
            else:
                self._run_sequentially(configs, todo, save_dir, verbose, tracker)
        finally:
            main.close()
            self.results = results
        return results

    def _run_sequentially(
        self, configs: list[BacktestConfig], todo: list[int], save_dir: Any, verbose: bool,
        tracker: _Tracker,
    ) -> None:
        """One config after another; each result is saved while the next one runs.

        At most one save is in flight, and it is always waited for, so a stop (an error
        with ``stop_on_error``, Ctrl-C) never leaves a half-written result behind.
        """
        saving: tuple[int, Any] | None = None
        try:
            for index in todo:
                computed, finish = _run_watched(
                    configs[index], 1 if verbose else None, save_dir, self.slow_job_seconds
                )
                previous, saving = saving, (index, finish)
                if previous is not None:
                    tracker.record(previous[0], previous[1]())
                if not computed:  # a failure is reported (and may stop the run) at once
                    saving = None
                    tracker.record(index, finish())
        finally:
            outcome = saving[1]() if saving is not None else None
        if saving is not None:
            tracker.record(saving[0], outcome)

    # ------------------------------------------------------------------ comparing
    def get_comparison_table(
        self,
        metrics: Sequence[str] | None = None,
        sort_by: str | None = None,
        ascending: bool = False,
    ) -> pd.DataFrame:
        """One row per successful config: name, alpha, fingerprint, parameters, settings,
        metrics (the same table a sweep writes to ``comparison.csv``)."""
        return comparison_table(
            [r for r in self.results if r is not None], metrics, sort_by, ascending,
            n_trials=len(self.results),
        )

    def get_best_config(self, metric: str = "sharpe", maximize: bool = True) -> BacktestResult:
        table = self.get_comparison_table()
        if table.empty:
            raise ValueError("no successful results yet; call run_all() first")
        if metric not in table.columns:
            raise ValueError(f"unknown metric {metric!r}; choose from {list(table.columns)}")
        values = pd.to_numeric(table[metric], errors="coerce").dropna()
        if values.empty:
            raise ValueError(f"metric {metric!r} is undefined for every result")
        name = table.loc[values.idxmax() if maximize else values.idxmin(), "name"]
        return next(r for r in self.results if r is not None and r.name == name)

    def save_results(self, output_dir: str | os.PathLike) -> Path:
        """Save every result not already in ``output_dir`` plus ``comparison.csv``."""
        out = Path(output_dir)
        for result in self.results:
            if result is None:
                continue
            if result.path is None or result.path.parent.resolve() != out.resolve():
                result.save(out)
        write_comparison(self.get_comparison_table(), out / "comparison.csv")
        return out

    @staticmethod
    def load_result(path: str | os.PathLike) -> BacktestResult:
        return load_result(path)


# ---------------------------------------------------------------------- helpers
def _worker_count(num_processes: int | None) -> int:
    if num_processes is None:
        return 1
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or (
        num_processes < 1 and num_processes != -1
    ):
        raise ValueError(
            f"num_processes={num_processes!r} must be None or 1 (sequential), "
            "an integer N > 1 (a pool of N processes) or -1 (one per CPU)"
        )
    if num_processes == -1:
        return os.cpu_count() or 1
    return num_processes


def _load_if_done(config: BacktestConfig, save_dir: Any) -> BacktestResult | None:
    if save_dir is None:
        return None
    state = check_saved(config, save_dir).state  # logs a damaged folder
    if state is ResultState.STALE:
        log.info("config %r: saved results are stale (fingerprint changed); recomputing",
                 config.name)
    if state is not ResultState.DONE:
        return None
    return load_result(Path(save_dir) / config.name, config=config)


def check_picklable(configs: Sequence[BacktestConfig]) -> None:
    """Fail before a pool starts, naming the field that cannot be sent to a worker."""
    import dataclasses
    import pickle

    for config in configs:
        try:
            pickle.dumps(config)
            continue
        except Exception as exc:  # noqa: BLE001 - pickling raises many types
            first_error = exc
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            try:
                pickle.dumps(value)
            except Exception as exc:  # noqa: BLE001
                raise TypeError(
                    f"config {config.name!r}: field {field.name} = {value!r} cannot be "
                    f"pickled for a process pool ({type(exc).__name__}: {exc}). Define alpha "
                    "and loader classes at module level (not inside a function), use no "
                    "lambdas or open files in parameters, or run with num_processes=1."
                ) from exc
        raise TypeError(
            f"config {config.name!r} cannot be pickled for a process pool: {first_error}"
        ) from first_error


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
    from alphadev.engine.runner import windows

    return STAGES_PER_WINDOW * len(list(windows(config))) + 2


def execute(
    config: BacktestConfig, save_dir: Any, progress: Any = None
) -> tuple[str, Any]:
    """Run (and save) one config: ("ok", result) or ("error", report); never raises."""
    outcome, spill_dir = _compute(config, save_dir, progress)
    return _save(config, outcome, save_dir, spill_dir)


def start_backtest(config: BacktestConfig, save_dir: Any, progress: Any = None) -> tuple[bool, Any]:
    """Run one config now and save it on a thread: (whether the run succeeded, a call
    that joins the save and gives ``execute``'s outcome).

    Encoding the Parquet files releases the GIL, so a sequential sweep saves one result
    while it simulates the next.
    """
    outcome, spill_dir = _compute(config, save_dir, progress)
    return outcome[0] == "ok", _threads.start(_save, config, outcome, save_dir, spill_dir)


def _compute(config: BacktestConfig, save_dir: Any, progress: Any) -> tuple[tuple, Any]:
    from alphadev.cache import CACHE_SUBDIR
    from alphadev.engine.runner import run_backtest

    cache_dir = Path(save_dir) / CACHE_SUBDIR if save_dir is not None else None
    spill_dir = None
    if save_dir is not None and config.mode == "streaming":
        spill_dir = Path(save_dir) / f"{TMP_PREFIX}spill-{config.name}{owner_tag()}"
    try:
        outcome = "ok", run_backtest(config, progress, cache_dir, spill_dir)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
        outcome = "error", describe_failure(config, exc)
    if outcome[0] == "ok" and save_dir is not None and progress:
        progress("save")
    return outcome, spill_dir


def _save(
    config: BacktestConfig, outcome: tuple[str, Any], save_dir: Any, spill_dir: Any
) -> tuple[str, Any]:
    """Save a successful result (its sequences are then re-read from disk on demand)."""
    try:
        if outcome[0] == "ok" and save_dir is not None:
            outcome[1].save(save_dir)
            outcome[1].drop_sequences()
        return outcome
    except Exception as exc:  # noqa: BLE001
        return "error", describe_failure(config, exc)
    finally:
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)


def _run_single_backtest(
    config: BacktestConfig, progress_position: int | None, save_dir: Any, run: Any = execute
) -> Any:
    """``run`` (execute or start_backtest) of one config with its own progress bar at
    ``progress_position`` (None: no bar)."""
    if progress_position is None:
        return run(config, save_dir)
    bar = _Bar(
        total=stage_count(config), position=progress_position, desc=config.name[:40],
        leave=False, dynamic_ncols=True,
    )

    def progress(stage: str) -> None:
        bar.set_postfix_str(stage, refresh=False)
        bar.update(1)

    try:
        return run(config, save_dir, progress)
    finally:
        bar.close()


def _run_watched(
    config: BacktestConfig, position: int | None, save_dir: Any, slow_after: float
) -> Any:
    """``start_backtest`` a config, warning once if running it takes longer than ``slow_after``."""
    timer = threading.Timer(slow_after, warn_slow, args=(config.name, slow_after))
    timer.daemon = True
    timer.start()
    try:
        return _run_single_backtest(config, position, save_dir, start_backtest)
    finally:
        timer.cancel()


def warn_slow(name: str, seconds: float) -> None:
    log.warning("config %r has been running for more than %.0f s", name, seconds)


class _Tracker:
    """Records outcomes: result list, progress bar, best-IC postfix and error log."""

    def __init__(
        self,
        bar: tqdm,
        results: list[BacktestResult | None],
        configs: list[BacktestConfig],
        err_path: Any,
        verbose: bool,
        stop_on_error: bool,
    ) -> None:
        self.bar = bar
        self.results = results
        self.configs = configs
        self.err_path = err_path
        self.verbose = verbose
        self.stop_on_error = stop_on_error
        self.best_ic = -math.inf
        self.failures = 0

    def best(self, result: BacktestResult) -> None:
        ic = result.metrics.get("ic_mean")
        if ic is not None and ic > self.best_ic:
            self.best_ic = ic
            sharpe = result.metrics["total"].get("sharpe")
            self.bar.set_postfix(
                best_ic=f"{ic:.4f}", sharpe="n/a" if sharpe is None else f"{sharpe:.2f}",
                refresh=False,
            )

    def record(self, index: int, outcome: tuple[str, Any]) -> None:
        status, payload = outcome
        self.bar.update(1)
        if status == "ok":
            result = payload
            result.config = self.configs[index]
            self.results[index] = result
            self.best(result)
            return
        self.failures += 1
        if self.verbose:
            tqdm.write(payload, file=sys.stderr)
        logged = self.err_path is not None and append_error_log(self.err_path, payload)
        if not self.verbose:  # quiet runs still name every failure
            where = f"traceback in {self.err_path}" if logged else payload
            log.warning("config %r failed: %s", self.configs[index].name, where)
        if self.stop_on_error:
            raise BacktestError(payload)
