"""Backtester: many configs, run one after another or in a pool of processes.

Results come back aligned with ``configs``: a BacktestResult, or None for a config that
failed (its error goes to the terminal and ``err_path``).  With ``save_dir`` each
config is written by the process that ran it, and configs already saved whole with the
same fingerprint are loaded instead of recomputed, which makes ``run_all`` resumable;
a damaged folder is logged and recomputed (loading a sweep skips it, and says so).

Progress goes to stderr: tqdm bars in a terminal or notebook; plain lines (done,
failed, left, rate, ETA) every 1/20 of the configs or five minutes when stderr is a file or a
pipe (nohup, cron), so a log holds no cursor codes.  A ``notice`` (say, "synthetic
data") is written to ``{save_dir}/notice.txt`` and printed above the closing summary.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphadev._display import html_table
from alphadev.comparison import (
    SETTING_COLUMNS,
    comparison_table,
    leaderboard,
    read_comparison_table,
    result_row,
    write_comparison,
)
from alphadev.config import BacktestConfig
from alphadev.grid import expand_grid
from alphadev.layout import SweepDir, warn_damaged
from alphadev.orchestrator import SweepRun, run_sweep, worker_count
from alphadev.progress import SweepDisplay
from alphadev.results import BacktestResult, load_result
from alphadev.search import (
    DEFAULT_HOLDOUT,
    SearchSpec,
    SearchStudy,
    SearchSummary,
    check_n_trials,
    results_of,
    run_search,
    search_board,
    summary_lines,
    with_search_columns,
)
from alphadev.store import (
    notice_banner,
    read_json,
    read_notice,
    read_synthetic,
    write_notice,
)
from alphadev.synthetic import data_are_synthetic
from alphadev.validation import ParameterError, check_scalar

log = logging.getLogger(__name__)



class Backtester:
    """Holds configs, runs them, and compares their results.

    ``slow_job_seconds``: a config running longer than this logs one warning.
    ``notice``: a free-text note about the sweep (e.g. "Synthetic data: ..."), printed
    above its summary and leaderboard and saved as ``{save_dir}/notice.txt``.
    ``synthetic``: the data are synthetic, so the summary and the report say the results
    mean nothing about a real market. Prices written by ``alphadev.synthetic`` are
    recognised without it; a notice alone never makes data synthetic.
    """

    def __init__(self, slow_job_seconds: float = 3600.0, notice: str | None = None,
                 synthetic: bool = False) -> None:
        self.slow_job_seconds = check_scalar(
            "slow_job_seconds", slow_job_seconds, low=0.0, low_open=True
        )
        if notice is not None and not isinstance(notice, str):
            raise ParameterError(
                f"notice={notice!r} is invalid: it must be a string (a note about the "
                "sweep, such as 'Synthetic data: ...') or None"
            )
        self.notice = notice.strip() or None if notice is not None else None
        if not isinstance(synthetic, (bool, np.bool_)):
            raise ParameterError(
                f"synthetic={synthetic!r} is invalid: it must be True (the data are "
                "synthetic) or False"
            )
        self.synthetic = bool(synthetic)
        self._configs: list[BacktestConfig] = []
        self.results: list[BacktestResult | None] = []
        self.failures: dict[str, str] = {}  # config name -> error report of its last run
        self._n_trials: int | None = None  # a loaded sweep's size (failed configs count)
        self.source: Path | None = None  # the folder a loaded sweep was read from

    @classmethod
    def load(cls, save_dir: str | os.PathLike) -> Backtester:
        """A finished sweep read from disk, as after ``run_all`` (``load_sweep``)."""
        return load_sweep(save_dir)

    # ------------------------------------------------------------------ configs
    @property
    def configs(self) -> list[BacktestConfig]:
        return list(self._configs)

    def is_synthetic(self) -> bool:
        """``synthetic=True``, or prices written by ``alphadev.synthetic``."""
        return self.synthetic or data_are_synthetic(self._configs)

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
        self.failures = {}
        self._n_trials = None
        self.source = None

    # ------------------------------------------------------------------ running
    def run_all(
        self,
        verbose: bool = True,
        stop_on_error: bool = False,
        num_processes: int | None = None,
        save_dir: str | os.PathLike | None = None,
        err_path: str | os.PathLike | None = None,
    ) -> list[BacktestResult | None]:
        """Run every config (``alphadev.orchestrator.run_sweep``).

        Parameters
        ----------
        verbose
            Progress on stderr (bars, or plain lines when stderr is not a terminal),
            each failure's report, and a closing summary with a leaderboard on stdout.
        stop_on_error
            Raise ``BacktestError`` at the first failure instead of going on.
        num_processes
            None or 1: one config after another; N > 1: a pool of N processes; -1: one
            per CPU.
        save_dir
            Save each result in ``{save_dir}/{name}/`` and load the configs done there
            already instead of recomputing them; also writes ``comparison.csv``.
        err_path
            A file each failure's report is appended to.

        Returns
        -------
        list of BacktestResult or None
            Aligned with ``configs``; None for a config that failed (its report is in
            ``failures``).
        """
        workers = worker_count(num_processes)
        configs = self.configs
        self.failures, self._n_trials, self.source = {}, None, None
        sweep_dir = SweepDir.of(save_dir) if save_dir is not None else None
        if sweep_dir is not None:
            write_notice(sweep_dir, self.notice, self.is_synthetic())
        display: SweepDisplay | None = None

        def show(total: int, done: int) -> SweepDisplay:
            nonlocal display
            display = SweepDisplay(total, done, verbose)
            return display

        run = SweepRun([])
        try:
            run_sweep(
                configs, sweep_dir, workers, show,
                Path(err_path) if err_path is not None else None, stop_on_error,
                self.slow_job_seconds, record=run,
            )
        finally:  # also when stopped (stop_on_error, Ctrl-C): what was done is kept
            if run.started:  # a preflight error leaves the previous run's results
                self.results, self.failures = run.results, run.failures
        if sweep_dir is not None and any(r is not None for r in run.results):
            # As the Luigi sweep does: validate and report read the sweep from it.
            write_comparison(self.get_comparison_table(), sweep_dir.comparison)
        if verbose:
            self._print_summary(display, err_path)
        return run.results

    def search(
        self,
        base: BacktestConfig,
        space: Mapping[str, Any],
        n_trials: int,
        metric: str = "sharpe",
        sampler: str = "tpe",
        seed: int | None = None,
        *,
        direction: str = "maximize",
        holdout: float = DEFAULT_HOLDOUT,
        save_dir: str | os.PathLike | None = None,
        storage: str | None = None,
        verbose: bool = True,
    ) -> SearchSummary:
        """Adaptive search (Optuna, ``pip install 'alphadev[search]'``): ``n_trials``
        trials in total, each a config like any other (docs/semantics.md#adaptive-search).

        ``space`` maps alpha parameters and settings to ``IntRange``, ``FloatRange`` or
        ``Choice`` (``alphadev.search``).  The sampler sees ``metric`` on the first
        ``1 - holdout`` of the period only.  With ``save_dir`` the study is a journal
        file there: rerunning continues to ``n_trials`` in total, and configs done
        already are read back.  Afterwards ``results`` holds every distinct trial
        config's result, and ``get_comparison_table`` deflates the DSR over all of them.
        """
        spec = SearchSpec(base, space, metric=metric, direction=direction, sampler=sampler,
                          seed=seed, holdout=holdout)
        n_trials = check_n_trials(n_trials)
        study = SearchStudy(spec, save_dir, storage)
        if save_dir is not None:
            write_notice(save_dir, self.notice, self.is_synthetic() or data_are_synthetic([base]))
        summary = run_search(study, n_trials, verbose)
        self._configs = list(summary.configs)
        results = results_of(study, summary)
        self.results = list(results)
        done = {r.name for r in results}
        self.failures = {c.name: "failed (see errors.log)" for c in summary.configs
                         if c.name not in done}
        self._n_trials, self.source = len(summary.configs), None
        if verbose:
            lines = summary_lines(summary.record(), save_dir or "memory")
            table = with_search_columns(self.get_comparison_table(), summary)
            board = "\n".join([
                search_board(table, spec.metric, spec.direction),
                "the whole period (the held-out part included), as a grid's leaderboard:",
                leaderboard(table)]) if self.results else ""
            banner = notice_banner(self.notice, self.is_synthetic())
            sys.stdout.write(f"{banner}{chr(10).join(lines)}\n{board}\n")
            sys.stdout.flush()
        return summary

    def _print_summary(self, display: SweepDisplay | None, err_path: Any) -> None:
        """The closing lines on stdout: the notice (if any), then what was done."""
        done = sum(r is not None for r in self.results)
        text = f"run_all: {done} of {len(self.results)} configs done"
        if self.failures:
            where = f"; tracebacks in {err_path}" if err_path is not None else ""
            text += f", {len(self.failures)} failed{where}"
        if display is not None and display.postfix:
            text += f"; {display.postfix}"
        if done:
            text += "\n" + leaderboard(self.get_comparison_table())
        sys.stdout.write(f"{notice_banner(self.notice, self.is_synthetic())}{text}\n")
        sys.stdout.flush()

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
            n_trials=self._n_trials or len(self.results),
        )

    def returns(self, column: str = "pnl", parameters: bool = True) -> pd.DataFrame:
        """One column per successful config of a per-bar sequence (``pnl``, ``gross``,
        ``fees``, ``turnover``, ``long_return``, ``short_return``, ``ic``, ``equity``),
        index ``timestamp``: the union of the configs' bar grids, NaN where a config has
        no bar (another frequency or period).

        Columns are a MultiIndex of what tells the configs apart, with the names of
        ``comparison.csv``: ``config`` (the name), ``alpha_class``, ``alpha.<kwarg>``
        (None where a class lacks it) and the settings (``open_quantile``,
        ``trading_fee_rate``, ``execution_delay``, ...), so
        ``pnl.T.groupby(level="execution_delay")`` works.  ``parameters=False``: one
        level, ``config``.
        """
        done = [r for r in self.results if r is not None]
        frames = {}
        for result in done:
            sequences = result.sequences
            if column not in sequences.columns:
                raise ValueError(
                    f"column={column!r} is not a sequence of result {result.name!r}; "
                    f"choose from {list(sequences.columns)}"
                )
            frames[result.name] = sequences[column]
        if not frames:
            return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))
        table = pd.concat(frames, axis=1, join="outer", sort=True)
        table.index.name = "timestamp"
        table.columns.name = "config"
        if parameters:
            table.columns = _parameter_columns([result_row(r) for r in done])
        return table

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
        write_comparison(self.get_comparison_table(), SweepDir(out).comparison)
        return out

    @staticmethod
    def load_result(path: str | os.PathLike) -> BacktestResult:
        return load_result(path)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        done = sum(r is not None for r in self.results)
        parts = [f"{len(self._configs)} configs"] if self._configs or self.source is None else []
        if self.results:
            parts.append(f"{done} results")
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        if self.source is not None:
            parts.append(f"loaded from {str(self.source)!r}")
        best = self._best_line()
        if best:
            parts.append(best)
        return f"Backtester({', '.join(parts)})"

    def _best_line(self) -> str:
        """The best Sharpe among the results, from their metrics (no sequences read)."""
        scored = [(sharpe, r.name) for r in self.results
                  if r is not None and (sharpe := r.metrics["total"].get("sharpe")) is not None]
        if not scored:
            return ""
        sharpe, name = max(scored, key=lambda pair: pair[0])  # the first best, as get_best_config
        return f"best sharpe {sharpe:.3f} ({name})"

    def _repr_html_(self) -> str:
        """A small table for notebooks: counts, the best result and the failures."""
        rows = [("configs", str(len(self._configs))),
                ("results", str(sum(r is not None for r in self.results)))]
        if self.source is not None:
            rows.append(("loaded from", str(self.source)))
        best = self._best_line()
        if best:
            rows.append(("best", best))
        rows += [(f"failed: {name}", report.strip().splitlines()[0] if report.strip() else "")
                 for name, report in list(self.failures.items())[:10]]
        return html_table("Backtester", rows)


# ---------------------------------------------------------------------- helpers
def load_sweep(save_dir: str | os.PathLike) -> Backtester:
    """A finished sweep read from ``save_dir``, without running or rebuilding its configs.

    Nothing is imported: ``result.config`` is None and ``config_dict`` names the alpha
    class as text, so a sweep someone else ran opens without their code.

    Parameters
    ----------
    save_dir
        The folder a Luigi sweep or ``run_all(save_dir=...)`` wrote.

    Returns
    -------
    Backtester
        ``results``: the whole results folders, in ``comparison.csv``'s order, then by
        name (damaged ones are logged and left out); ``failures``: the configs whose
        latest attempt failed (their markers; such a config's older folder is left
        out, as the sweep's table does); ``get_comparison_table`` deflates the DSR over
        the sweep's ``n_trials`` as ``comparison.csv`` recorded it.  ``configs`` is
        empty.
    """
    root = SweepDir.of(save_dir)
    if not root.root.is_dir():
        raise FileNotFoundError(
            f"results directory {str(root)!r} does not exist (working directory "
            f"{os.getcwd()!r}); pass the save_dir a sweep or run_all(save_dir=...) wrote"
        )
    failures = _failure_reports(root)
    found: dict[str, BacktestResult] = {}
    for folder in root.result_folders():
        if folder.name in failures:
            continue
        check = folder.check()
        if check.problem is not None:
            warn_damaged(folder.path, check.problem, "skipped")
            continue
        found[folder.name] = load_result(folder.path)
    table = read_comparison_table(root.comparison)
    order = [] if table is None else [n for n in table["name"] if n in found]
    order += sorted(set(found) - set(order))
    bt = Backtester()
    bt.results = [found[name] for name in order]
    bt.failures = failures
    recorded = 0 if table is None or table.empty else int(table["n_trials"].iloc[0])
    bt._n_trials = max(recorded, len(found) + len(failures))
    bt.source = root.root
    bt.notice = read_notice(root)
    bt.synthetic = read_synthetic(root)
    return bt


def _failure_reports(root: SweepDir) -> dict[str, str]:
    """name -> report of every failure marker of a sweep (unreadable markers say so)."""
    reports: dict[str, str] = {}
    for name in root.failed_names():
        marker = root.failure(name)
        try:
            record = read_json(marker)
            reports[str(record.get("name", name))] = str(record.get("report", ""))
        except (OSError, ValueError) as exc:
            reports[name] = f"failure marker {str(marker)!r} cannot be read ({exc})"
    return reports


def _parameter_columns(rows: Sequence[dict[str, Any]]) -> pd.MultiIndex:
    """(config, alpha_class, alpha.*, settings) of each row, named as in comparison.csv."""
    kwargs = list(dict.fromkeys(k for row in rows for k in row if k.startswith("alpha.")))
    names = ["config", "alpha_class", *kwargs, *SETTING_COLUMNS]
    values = [(row["name"], row["alpha_class"], *(row.get(k) for k in kwargs),
               *(row[k] for k in SETTING_COLUMNS)) for row in rows]
    return pd.MultiIndex.from_tuples(values, names=names)
