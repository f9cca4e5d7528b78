"""Sweep bookkeeping shared by the Luigi tasks: state of a config, failures, summary.

A config is *done* when ``{save_dir}/{name}`` holds results with its current
fingerprint.  A config that failed is recorded in ``{save_dir}/errors.log`` and in a
marker ``{save_dir}/.failed/{name}.json`` tagged with the run id of the invocation
that tried it: within that invocation it counts as settled (so the sweep can finish
and report), and the next invocation retries it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alphadev.backtester import execute
from alphadev.comparison import comparison_table, write_comparison
from alphadev.config import BacktestConfig
from alphadev.results import load_result, recover, saved_state

FAILED_DIR = ".failed"
ERRORS_LOG = "errors.log"
COMPARISON = "comparison.csv"

DONE, FAILED, STALE, MISSING = "done", "failed", "stale", "missing"


def config_state(config: BacktestConfig, save_dir: str | os.PathLike, run_id: str) -> str:
    """done, failed (in this run), stale (saved with another fingerprint) or missing."""
    state = saved_state(config, save_dir)
    if state == DONE:
        return DONE
    marker = _read_marker(save_dir, config.name)
    if marker is not None and marker.get("run_id") == run_id:
        return FAILED
    return state


def run_config(
    config: BacktestConfig,
    save_dir: str | os.PathLike,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> str | None:
    """Run and save one config; on failure record it and return the report."""
    status, payload = execute(config, save_dir, progress)
    if status == "ok":
        _clear_marker(save_dir, config.name)
        return None
    record_failure(save_dir, config, payload, run_id)
    return payload


def record_failure(save_dir: str | os.PathLike, config: BacktestConfig, report: str,
                   run_id: str) -> None:
    root = Path(save_dir)
    (root / FAILED_DIR).mkdir(parents=True, exist_ok=True)
    with open(root / ERRORS_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} run {run_id}\n{report}\n")
    marker = root / FAILED_DIR / f"{config.name}.json"
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "name": config.name, "report": report}))
    os.replace(tmp, marker)


def _read_marker(save_dir: str | os.PathLike, name: str) -> dict | None:
    try:
        return json.loads((Path(save_dir) / FAILED_DIR / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def _clear_marker(save_dir: str | os.PathLike, name: str) -> None:
    (Path(save_dir) / FAILED_DIR / f"{name}.json").unlink(missing_ok=True)


@dataclass
class SweepSummary:
    table: pd.DataFrame
    failed: list[str]
    missing: list[str]


def summarize(
    configs: Sequence[BacktestConfig], save_dir: str | os.PathLike, run_id: str
) -> SweepSummary:
    """Write ``comparison.csv`` (one row per done config) and list the others."""
    done, failed, missing = [], [], []
    for config in configs:
        state = config_state(config, save_dir, run_id)
        if state == DONE:
            done.append(load_result(Path(save_dir) / config.name, config=config))
        elif state == FAILED:
            failed.append(config.name)
        else:
            missing.append(config.name)
    table = (
        comparison_table(done, sort_by="sharpe", n_trials=len(configs)) if done else pd.DataFrame()
    )
    write_comparison(table, Path(save_dir) / COMPARISON)
    return SweepSummary(table, failed, missing)


def leaderboard(table: pd.DataFrame, top: int = 10) -> str:
    """A few lines: the best configs by Sharpe with IC and turnover."""
    if table.empty:
        return "no completed configs"
    cols = ["name", "sharpe", "dsr", "annualized_return", "max_drawdown", "ic_mean",
            "avg_turnover"]
    best = table.sort_values("sharpe", ascending=False, na_position="last").head(top)
    return best[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")


def prepare(save_dir: str | os.PathLike) -> None:
    """Create the folder and clean up after writers that were killed."""
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    recover(save_dir)


def read_comparison(save_dir: str | os.PathLike) -> pd.DataFrame:
    """``comparison.csv`` of a finished sweep, best Sharpe first."""
    table = pd.read_csv(Path(save_dir) / COMPARISON)
    return table.sort_values("sharpe", ascending=False, na_position="last", kind="stable")
