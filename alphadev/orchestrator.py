"""``run_sweep``: the one way configs are run, by ``Backtester.run_all`` and by the Luigi
tasks alike.

Given a sweep folder it cleans up after killed writers, loads the configs that are
done instead of recomputing them (a damaged folder is logged and recomputed, a stale
one recomputed), checks the data files once, runs the others (one after another, or
in a pool of processes that survives its workers dying) and records each failure in
the sweep's own format: the report appended to the errors log and a marker
``SweepDir.failure(name)`` that says the config's latest attempt failed
(docs/semantics.md#sweeps-and-luigi).  A run never raises for a config's failure
unless asked to stop on the first one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alphadev import job
from alphadev.config import BacktestConfig
from alphadev.errors import BacktestError
from alphadev.layout import ResultState, SweepDir, log_stale
from alphadev.preflight import check_loaders
from alphadev.progress import SweepDisplay
from alphadev.results import BacktestResult, load_result
from alphadev.store import append_error_log, recover
from alphadev.sweep import clear_failures, record_failure

log = logging.getLogger(__name__)


@dataclass
class SweepRun:
    """What a run gives back: ``results`` aligned with the configs (None for a config
    that failed), each failed config's report, and how many were loaded as done."""

    results: list[BacktestResult | None]
    failures: dict[str, str] = field(default_factory=dict)
    loaded: int = 0
    started: bool = False  # past the preflight: results hold this run's configs


def run_sweep(
    configs: Sequence[BacktestConfig],
    sweep_dir: SweepDir | None,
    workers: int = 1,
    display: Callable[[int, int], SweepDisplay] | None = None,
    errors_log: Path | None = None,
    stop_on_error: bool = False,
    slow_after: float = 3600.0,
    on_stage: job.Progress | None = None,
    preflight: bool = True,
    record: SweepRun | None = None,
    recover_first: bool = True,
) -> SweepRun:
    """Run every config not done in ``sweep_dir`` (None: nothing is saved or skipped).

    Parameters
    ----------
    configs
        The configs, names unique.
    sweep_dir
        Where results, failure markers and the panel cache live.
    workers
        1: in this process, each result saved while the next one runs; more: a pool.
    display
        Called with (total, done already) to make the progress display, if any.
    errors_log
        Where each failure's report is appended (None: nowhere; quiet runs then log
        the report itself).
    stop_on_error
        Raise ``BacktestError`` with the first failure's report, after its save.
    slow_after
        Seconds after which a running config logs one warning.
    on_stage
        Called with each stage of a sequential run (a Luigi task's status message).
    preflight
        Check every config's data files first (one error for all of them, raised);
        without, a config with a bad file fails on its own and is recorded.
    record
        Filled in place as configs finish, so a run stopped by an error or Ctrl-C
        keeps what it did.
    recover_first
        Clean up after killed writers first (``store.recover``: a listing of the whole
        ``sweep_dir``).  A Luigi config skips it: its sweep recovered when it started,
        and listing 30,000 results for every config made each config cost more the
        more were done.

    Returns
    -------
    SweepRun
        ``record`` when given.
    """
    configs = list(configs)
    run = record if record is not None else SweepRun([])
    results: list[BacktestResult | None] = [None] * len(configs)
    if sweep_dir is not None:
        sweep_dir.root.mkdir(parents=True, exist_ok=True)
        if recover_first:
            recover(sweep_dir)
    todo = []
    for index, config in enumerate(configs):
        done = _load_if_done(config, sweep_dir)
        if done is not None:
            results[index] = done
        else:
            todo.append(index)
    if preflight:
        check_loaders([configs[i] for i in todo])  # one error, not one per config
    run.results[:], run.loaded, run.started = results, len(configs) - len(todo), True
    if sweep_dir is not None:  # new attempts, and done configs whose marker is stale
        clear_failures(sweep_dir, [config.name for config in configs])
    shown = display(len(configs), len(configs) - len(todo)) if display is not None else None
    recorder = _Recorder(configs, run, sweep_dir, errors_log, shown, stop_on_error)
    for loaded in run.results:
        if loaded is not None and shown is not None:
            shown.best(loaded.metrics)
    try:
        if workers > 1 and len(todo) > 1:
            from alphadev.pool import run_in_pool

            check_picklable([configs[i] for i in todo])
            run_in_pool(configs, todo, min(workers, len(todo)), sweep_dir,
                        shown is not None and shown.bars, slow_after, recorder)
        else:
            _run_sequentially(configs, todo, sweep_dir, shown is not None and shown.bars,
                              slow_after, recorder, on_stage)
    finally:
        if shown is not None:
            shown.close()
    return run


def _load_if_done(config: BacktestConfig, sweep_dir: SweepDir | None) -> BacktestResult | None:
    if sweep_dir is None:
        return None
    state = sweep_dir.saved(config).state  # logs a damaged folder
    if state is ResultState.STALE:
        log_stale(config.name)
    if state is not ResultState.DONE:
        return None
    return load_result(sweep_dir.result(config.name).path, config=config)


def _run_sequentially(
    configs: list[BacktestConfig], todo: list[int], sweep_dir: SweepDir | None, bars: bool,
    slow_after: float, recorder: _Recorder, on_stage: job.Progress | None,
) -> None:
    """One config after another; each result is saved while the next one runs.

    At most one save is in flight, and it is always waited for, so a stop (an error
    with ``stop_on_error``, Ctrl-C) never leaves a half-written result behind.
    """
    saving: tuple[int, job.Finish] | None = None
    try:
        for index in todo:
            computed, finish = job.start_watched(
                configs[index], 1 if bars else None, sweep_dir, slow_after, on_stage
            )
            previous, saving = saving, (index, finish)
            if previous is not None:
                recorder.record(previous[0], previous[1]())
            if not computed:  # a failure is reported (and may stop the run) at once
                saving = None
                recorder.record(index, finish())
    finally:
        outcome = saving[1]() if saving is not None else None
    if saving is not None and outcome is not None:
        recorder.record(saving[0], outcome)


class _Recorder:
    """Takes each outcome: the result list, the failure records, the display."""

    def __init__(
        self,
        configs: list[BacktestConfig],
        run: SweepRun,
        sweep_dir: SweepDir | None,
        errors_log: Path | None,
        display: SweepDisplay | None,
        stop_on_error: bool,
    ) -> None:
        self.configs, self.run = configs, run
        self.sweep_dir, self.errors_log = sweep_dir, errors_log
        self.display = display
        self.stop_on_error = stop_on_error

    def record(self, index: int, outcome: job.Outcome) -> None:
        config = self.configs[index]
        if outcome.result is not None:
            outcome.result.config = config
            self.run.results[index] = outcome.result
            if self.display is not None:
                self.display.finished(outcome.result.metrics, None)
            return
        report = outcome.error or f"config {config.name!r} failed"
        self.run.failures[config.name] = report
        if self.display is not None:
            self.display.finished(None, report)
        logged = self._write(config, report)
        if self.display is not None and not self.display.verbose:  # quiet: name each failure
            where = f"traceback in {self.errors_log}" if logged else report
            log.warning("config %r failed: %s", config.name, where)
        if self.stop_on_error:
            raise BacktestError(report)

    def _write(self, config: BacktestConfig, report: str) -> bool:
        """Record the failure (log and marker); whether the log holds the report.  A
        record that cannot be written never aborts the run."""
        if self.sweep_dir is None:
            return self.errors_log is not None and append_error_log(self.errors_log, report)
        try:
            return record_failure(self.sweep_dir, config, report, self.errors_log)
        except OSError as exc:
            log.warning("cannot record the failure of config %r in %s (%s)", config.name,
                        self.sweep_dir, exc)
            return False


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
        for item in dataclasses.fields(config):
            value = getattr(config, item.name)
            try:
                pickle.dumps(value)
            except Exception as exc:
                raise TypeError(
                    f"config {config.name!r}: field {item.name} = {value!r} cannot be "
                    f"pickled for a process pool ({type(exc).__name__}: {exc}). Define alpha "
                    "and loader classes at module level (not inside a function), use no "
                    "lambdas or open files in parameters, or run with num_processes=1."
                ) from exc
        raise TypeError(
            f"config {config.name!r} cannot be pickled for a process pool: {first_error}"
        ) from first_error


def worker_count(num_processes: int | None) -> int:
    """``num_processes`` as a number of processes (None or 1: this one; -1: one per CPU)."""
    from alphadev.validation import ParameterError, check_scalar

    if num_processes is None:
        return 1
    hint = "None or 1: sequential; N > 1: a pool of N processes; -1: one per CPU"
    count = check_scalar("num_processes", num_processes, integer=True, low=-1, hint=hint)
    if count == 0:
        raise ParameterError(f"num_processes=0 is not allowed ({hint})")
    return os.cpu_count() or 1 if count == -1 else count


def run_config(
    config: BacktestConfig, save_dir: SweepDir | str | os.PathLike[str],
    on_stage: job.Progress | None = None,
) -> SweepRun:
    """One config of a sweep (a Luigi task): done already, run now, or failed and
    recorded; a bad data file fails this config only."""
    sweep_dir = SweepDir.of(save_dir)
    return run_sweep([config], sweep_dir, errors_log=sweep_dir.errors_log, on_stage=on_stage,
                     preflight=False, recover_first=False)
