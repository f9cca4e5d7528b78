"""``Search``: an adaptive search whose every trial is a ``BacktestTask``.

    luigi --module pipelines Search --spec sweeps/search.py --save-dir runs/search \\
          --n-trials 100 --local-scheduler

The spec file defines ``search = SearchSpec(base, space, ...)`` (alphadev.search).
``Search.run`` settles finished trials and asks Optuna for new ones
(``SearchStudy.step``), then yields them as ``SearchTrial`` tasks (Luigi dynamic
dependencies): each writes ``{save_dir}/{name}`` like a grid config.  With ``--workers
N`` it keeps N trials in flight.  The study is a journal file in ``{save_dir}/search``
(or ``--storage URL``): a rerun continues to ``--n-trials`` in total, and several
``Search`` processes, on one machine or on machines sharing the folder (with or without
luigid), share it and never compute one config twice.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import luigi
from luigi.util import inherits

from alphadev.comparison import leaderboard, read_identities
from alphadev.errors import SpecError
from alphadev.layout import ResultState, SweepDir, check_folder
from alphadev.metrics import json_safe
from alphadev.search import (
    POLL_SECONDS,
    SearchSpec,
    SearchStudy,
    check_n_trials,
    finish,
    read_summary,
    search_board,
    summary_lines,
    this_process,
)
from alphadev.spec import load_search
from alphadev.store import notice_banner, write_notice
from alphadev.sweep import prepare, read_comparison
from alphadev.synthetic import data_are_synthetic
from alphadev.validation import ParameterError
from pipelines.tasks import (
    LEADERBOARD_ROWS,
    BacktestTask,
    ConfigFailed,
    SweepFolder,
    _bad_parameter,
)

logger = logging.getLogger("luigi-interface")

# Each process's Search is its own Luigi task (``process`` is public, so it is part of
# the task id): with luigid, one shared Search would be handed from process to process
# after each yield, and every process that yielded it but did not finish it would exit
# "missing dependencies".  The main process owns the trials its Search hands out (its
# workers, which run them, are its children).
_OWNER = this_process()
_PROCESS = f"{_OWNER.host}-{_OWNER.pid}"


def _search(spec: str) -> SearchSpec:
    try:
        return load_search(spec)
    except SpecError as exc:
        raise SystemExit(f"alphadev: {exc}") from None


def _workers() -> int:
    try:
        return max(1, int(luigi.interface.core().workers))
    except Exception:  # noqa: BLE001 - outside a luigi command line
        return 1


_STUDIES: dict[tuple, SearchStudy] = {}


def _study(spec: SearchSpec, save_dir: str, storage: str | None) -> SearchStudy:
    """The search's study, opened once per process: Luigi runs ``Search.run`` again
    after every trial, and opening replays the whole journal.  The storage reads what
    other processes wrote on every access, so a kept one is never stale."""
    key = (os.path.abspath(save_dir), storage, id(spec))
    if key not in _STUDIES:
        _STUDIES[key] = SearchStudy(spec, save_dir, storage, owner=_OWNER)
    return _STUDIES[key]


@inherits(SweepFolder)
class SearchTrial(BacktestTask):
    """One trial's config (the search's base with ``params``); a failed config fails
    only its trial, which the search counts and goes on."""

    params = luigi.DictParameter(description="the trial's sampled values")

    def config(self):
        config = _search(self.spec).config_for(dict(self.params))
        if config.name != self.name:
            raise SystemExit(f"alphadev: trial values {dict(self.params)} make config "
                             f"{config.name!r}, not {self.name!r}")
        return config

    def run(self) -> None:
        try:
            super().run()
        except ConfigFailed:  # recorded already (errors.log, failure marker)
            pass

    def _run(self, config) -> None:
        """Under the run lock: a config another process failed while this one waited is
        that trial's outcome (the search counts it failed), not one to compute again."""
        if SweepDir.of(self.save_dir).state(config) is ResultState.FAILED:
            self._uncounted.discard(config.name)
            logger.info("alphadev: trial config %s failed in another process; not run again",
                        self.name)
            return
        super()._run(config)

    def _summarize_if_last(self) -> None:
        """The search summarises itself, once it has its trials."""


@inherits(SweepFolder)
class Search(luigi.Task):
    """Optuna-driven trials until ``n_trials`` are finished, then ``comparison.csv``
    (every trial config), ``search/trials.csv``, ``search/summary.json`` and a summary."""

    spec: str  # inherited parameters, typed for mypy (inherits adds them at class creation)
    save_dir: str

    n_trials = luigi.IntParameter(description="trials in total (a rerun continues to it)")
    storage = luigi.OptionalParameter(
        default=None, description="an Optuna RDB URL (default: a journal file in save_dir)")
    in_flight = luigi.OptionalIntParameter(
        default=None, description="trials run at once (default: Luigi's --workers)")
    top = luigi.IntParameter(default=LEADERBOARD_ROWS, description="leaderboard rows")
    process = luigi.Parameter(default=_PROCESS,
                              description="the process running this search (set by itself)")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        try:
            check_n_trials(self.n_trials)
        except ParameterError as exc:
            raise _bad_parameter(f"Search --n-trials: {exc}") from None
        if self.in_flight is not None and self.in_flight < 1:
            raise _bad_parameter(f"Search --in-flight {self.in_flight} is invalid: it must "
                                 "be an integer >= 1")

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(SweepDir.of(self.save_dir).search.summary)

    def complete(self) -> bool:
        """``n_trials`` counted, by the same search definition, and ``comparison.csv``
        built from exactly the trials' current results."""
        record = read_summary(self.save_dir)
        if record is None or int(record.get("n_trials", 0)) < self.n_trials:
            return False
        definition = _search(self.spec).definition()
        if any(record.get(k) != v for k, v in json_safe(definition).items()):
            return False
        root = SweepDir.of(self.save_dir)
        results = {(c["name"], c["fingerprint"]) for c in record["configs"]
                   if check_folder(root.result(c["name"]).path).fingerprint == c["fingerprint"]}
        return read_identities(root.comparison) == results

    def run(self):
        spec = _search(self.spec)
        prepare(self.save_dir)
        study = _study(spec, self.save_dir, self.storage)
        in_flight = self.in_flight or _workers()
        while True:
            found = study.step(self.n_trials, in_flight)
            self.set_status_message(f"{found.finished}/{self.n_trials} trials finished")
            self.set_progress_percentage(int(100 * min(found.finished, self.n_trials)
                                             / self.n_trials))
            if found.finished >= self.n_trials:
                break
            if found.to_run:
                yield [self.clone(SearchTrial, name=t.config.name, params=t.params)
                       for t in found.to_run]
            else:  # every open trial is being computed by another process
                time.sleep(POLL_SECONDS)
        summary = finish(study)
        synthetic = data_are_synthetic([spec.base])
        write_notice(self.save_dir, None, synthetic)
        table = read_comparison(SweepDir.of(self.save_dir).comparison)
        lines = summary_lines(summary.record(), self.save_dir)
        text = notice_banner(None, synthetic) + "\n".join(
            [*lines, search_board(table, spec.metric, spec.direction, self.top),
             "the whole period (the held-out part included), as a grid's leaderboard:",
             leaderboard(table, self.top)])
        sys.stdout.write(f"\n{text}\n")
        sys.stdout.flush()
