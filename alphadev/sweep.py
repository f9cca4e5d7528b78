"""A sweep's records: failure markers, the summary, a Luigi sweep's progress counters.

A config is *done* when ``{save_dir}/{name}`` is a whole results folder (see
``alphadev.layout.check_folder``) with the config's current fingerprint; nothing else
counts as done (``SweepDir.state``).  A config whose latest attempt failed (in
``run_sweep``, whoever called it) is recorded in the errors log and in a marker
``{save_dir}/.failed/{name}.json``.  The
marker does not make the config complete: every new invocation retries it.  It only
tells the summary that the config's latest attempt is over: a new attempt removes it
when it is scheduled or starts.

``comparison.csv`` has one row per done config, with the fingerprint of the result it
was built from; it is current when its (name, fingerprint) rows are exactly those of
the done configs.

Progress of a Luigi sweep lives in ``{save_dir}/.progress.json``: the scheduling
process resets it (configs total and done so far) when it hands the configs to Luigi,
and the process that finished a config (a forked Luigi worker, another machine) counts
it there under a lock, so the progress line is right whichever process prints it.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from alphadev.comparison import (
    comparison_table,
    leaderboard,
    read_identities,
    write_comparison,
)
from alphadev.config import BacktestConfig
from alphadev.layout import ResultState, SweepDir
from alphadev.progress import LineDue, progress_line
from alphadev.results import load_result
from alphadev.store import (
    append_error_log,
    name_lock,
    notice_banner,
    read_json,
    recover,
    write_json,
)

log = logging.getLogger(__name__)

SUMMARY_LOCK = "~summary"  # '~' is in no config name
PROGRESS_LOCK = "~progress"


def record_failure(save_dir: str | os.PathLike, config: BacktestConfig, report: str,
                   errors_log: Path | None) -> bool:
    """Append ``report`` to ``errors_log`` (None: the caller logs it) and mark the
    config's latest attempt as failed; whether the log holds the report."""
    root = SweepDir.of(save_dir)
    root.failures.mkdir(parents=True, exist_ok=True)
    attempt = uuid.uuid4().hex
    logged = errors_log is not None and append_error_log(
        errors_log, report, header=f" attempt {attempt}")
    write_json(root.failure(config.name),
               {"name": config.name, "attempt": attempt, "time": time.time(), "report": report})
    return logged


def clear_failures(save_dir: str | os.PathLike, names: Iterable[str]) -> None:
    """Forget the failed attempts of ``names`` (they are about to be retried)."""
    root = SweepDir.of(save_dir)
    for name in names:
        root.failure(name).unlink(missing_ok=True)


def _any_failure(save_dir: str | os.PathLike) -> bool:
    """Whether some config's latest attempt failed (a failure marker exists)."""
    return SweepDir.of(save_dir).has_failures()


def _attempt(save_dir: str | os.PathLike, name: str) -> str:
    try:
        return read_json(SweepDir.of(save_dir).failure(name)).get("attempt", "")
    except (OSError, ValueError):
        return ""


@dataclass
class SweepSummary:
    table: pd.DataFrame
    failed: list[str]
    missing: list[str]


def summarize(configs: Sequence[BacktestConfig], save_dir: str | os.PathLike) -> SweepSummary:
    """Write ``comparison.csv`` (one row per done config) and list the others."""
    root = SweepDir.of(save_dir)
    done, failed, missing = [], [], []
    for config in configs:
        state = root.state(config)
        if state is ResultState.DONE:
            done.append(load_result(root.result(config.name).path, config=config))
        elif state is ResultState.FAILED:
            failed.append(config.name)
        else:
            missing.append(config.name)
    table = comparison_table(done, sort_by="sharpe" if done else None, n_trials=len(configs))
    write_comparison(table, root.comparison)
    return SweepSummary(table, failed, missing)


def comparison_is_current(configs: Sequence[BacktestConfig], save_dir: str | os.PathLike,
                          require_all_done: bool = True) -> bool:
    """Whether ``comparison.csv``'s (name, fingerprint) rows are exactly the done
    configs' (and, with ``require_all_done``, every config is done)."""
    root = SweepDir.of(save_dir)
    table = read_identities(root.comparison)
    if table is None:
        return False
    current = set()
    for config in configs:
        saved = root.saved(config)
        if saved.state is ResultState.DONE:
            current.add((config.name, saved.fingerprint))
        elif require_all_done:
            return False
    return table == current


def summarize_when_settled(
    configs: Sequence[BacktestConfig], save_dir: str | os.PathLike
) -> SweepSummary | None:
    """The summary of a sweep whose every config is done or failed, at least one failed.

    Called whenever a config of a Luigi sweep finishes: Luigi does not run ``Sweep``
    once a config failed, so the config that finishes last writes ``comparison.csv``.
    None while a config is still to run (found cheaply: configs run roughly in order,
    so the scan starts at the end), when none failed (``Sweep`` itself summarises), or
    when this very state was summarised already (two configs finishing together).
    """
    if not _any_failure(save_dir):  # the common case, in O(1): Sweep itself summarises
        return None
    root = SweepDir.of(save_dir)
    for config in reversed(configs):
        if not root.failure(config.name).exists() and (
            root.saved(config).state is not ResultState.DONE
        ):
            return None
    with name_lock(root.root, SUMMARY_LOCK):
        states = {c.name: root.state(c) for c in configs}
        settled = (ResultState.DONE, ResultState.FAILED)
        if any(s not in settled for s in states.values()):
            return None
        failed = sorted(name for name, s in states.items() if s is ResultState.FAILED)
        if not failed:
            return None
        stamp = {"failed": {name: _attempt(save_dir, name) for name in failed}}
        try:
            previous = read_json(root.summary_stamp)
        except (OSError, ValueError):
            previous = None
        if previous == stamp and comparison_is_current(configs, save_dir, False):
            return None
        summary = summarize(configs, save_dir)
        write_json(root.summary_stamp, stamp)
    return summary


def report(spec: str, save_dir: str | os.PathLike, n_configs: int, summary: SweepSummary,
           top: int = 10, notice: str | None = None, synthetic: bool = False) -> str:
    """The text printed at the end of a sweep: the notice, counts, leaderboard, failed
    configs."""
    lines = notice_banner(notice, synthetic).splitlines() + [
        f"alphadev sweep {spec}: {len(summary.table)} of {n_configs} configs done, "
        f"results in {save_dir}",
        leaderboard(summary.table, top),
    ]
    if summary.failed:
        lines.append(f"{len(summary.failed)} config(s) FAILED (tracebacks in "
                     f"{SweepDir.of(save_dir).errors_log}): {_names(summary.failed)}")
        lines.append(
            f"Validate and Report wait for every config: they run once "
            f"{_names(summary.failed)} {'is' if len(summary.failed) == 1 else 'are'} done; "
            f"to validate the {len(summary.table)} completed configs now, run "
            f"python -m alphadev validate {save_dir}"
        )
    if summary.missing:
        lines.append(f"{len(summary.missing)} config(s) not run: {_names(summary.missing)}")
    return "\n".join(lines)


def _names(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... and {len(names) - limit} more"


class Tick(NamedTuple):
    """A config counted in the sweep's progress: the progress line, and whether it is
    due to be printed (every 1/20 of the configs or five minutes, and at the end)."""

    line: str
    due: bool


def start_progress(save_dir: str | os.PathLike, total: int, done: int) -> None:
    """Reset the progress counters: ``done`` of ``total`` configs are done already.

    Another live invocation's unfinished progress of the same sweep is kept (both count
    into it): resetting it under that invocation would let the counts pass the total.
    """
    now = time.time()
    prepare(save_dir)
    with name_lock(Path(save_dir), PROGRESS_LOCK):
        if _progress_of_another_invocation(save_dir, total):
            return
        write_json(SweepDir.of(save_dir).progress, {
            "total": total, "done": done, "failed": 0, "start_done": done,
            "started": now, "last_time": now, "last_finished": done, "pid": os.getpid(),
        })


def _progress_of_another_invocation(save_dir: str | os.PathLike, total: int) -> bool:
    """Whether the recorded progress is of ``total`` configs, unfinished, and started by
    another process that is still alive (on this machine)."""
    try:
        state = read_json(SweepDir.of(save_dir).progress)
        pid = state["pid"]
        if (pid == os.getpid() or state["total"] != total
                or state["done"] + state["failed"] >= total):
            return False
        os.kill(pid, 0)
    except PermissionError:  # alive, another user's
        return True
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return False
    return True


def progress_settled_here(save_dir: str | os.PathLike) -> bool:
    """Whether this process started the recorded progress and every config of it has
    finished: a new invocation in the same process (another ``luigi.build``) starts
    afresh."""
    try:
        state = read_json(SweepDir.of(save_dir).progress)
        return bool(state["pid"] == os.getpid()
                    and state["done"] + state["failed"] >= state["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return True


def count_finished(save_dir: str | os.PathLike, ok: bool, label: str) -> Tick | None:
    """Count one finished config (``ok``: done, else failed), from any process; None
    when no progress was started (a config run on its own)."""
    path = SweepDir.of(save_dir).progress
    with name_lock(Path(save_dir), PROGRESS_LOCK):
        try:
            state = read_json(path)
            if state["done"] + state["failed"] < state["total"]:  # a config run twice
                state["done" if ok else "failed"] += 1
            total, done, failed = state["total"], state["done"], state["failed"]
            now = time.time()
            finished = done + failed
            line = progress_line(label, done, failed, total, finished - state["start_done"],
                                 now - state["started"])
            due = LineDue(total)(finished, state["last_finished"], state["last_time"], now)
        except (OSError, ValueError, KeyError, TypeError, ArithmeticError):
            return None  # no progress, or a damaged record: the config still succeeds
        if due:
            state["last_finished"], state["last_time"] = finished, now
        write_json(path, state)
    return Tick(line, due)


def prepare(save_dir: str | os.PathLike) -> None:
    """Create the folder and clean up after writers that were killed."""
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    recover(save_dir)


def read_comparison(path: str | os.PathLike) -> pd.DataFrame:
    """A finished sweep's ``comparison.csv`` (``SweepDir.comparison``), best Sharpe
    first."""
    table = pd.read_csv(path)
    if "sharpe" not in table.columns:  # no completed config: identity columns only
        return table
    return table.sort_values("sharpe", ascending=False, na_position="last", kind="stable")
