"""Luigi tasks for alphadev sweeps: thin wrappers that call the library.

    luigi --module pipelines Sweep --spec sweeps/momentum.py --save-dir runs/momentum --workers 2

``BacktestTask`` runs one config; it is complete when ``{save_dir}/{name}/sequences``
holds results with the config's current fingerprint.  ``Sweep`` requires the configs
that are not done yet (or runs them in its own pool with ``--num-processes``), writes
``{save_dir}/comparison.csv``, prints a leaderboard and fails when a config failed.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid

import luigi

from alphadev import sweep
from alphadev.backtester import Backtester, stage_count
from alphadev.engine.runner import warm_up
from alphadev.spec import SpecError, find_config, load_spec

logger = logging.getLogger("luigi-interface")

# One id per invocation, inherited by the task processes Luigi forks: a config that
# failed in this invocation is settled for it and retried by the next one.
RUN_ID = os.environ.setdefault("ALPHADEV_RUN_ID", uuid.uuid4().hex)

# Luigi exits 0 even when tasks fail.  These defaults apply wherever the sweep runs
# (not only beside this repository's luigi.cfg); a user's own [retcode] settings win.
RETCODE_DEFAULTS = {
    "task_failed": "30",
    "scheduling_error": "35",
    "missing_data": "20",
    "unhandled_exception": "40",
}


def _set_retcode_defaults() -> None:
    config = luigi.configuration.get_config()
    if not config.has_section("retcode"):
        config.add_section("retcode")
    for key, value in RETCODE_DEFAULTS.items():
        if not config.has_option("retcode", key):
            config.set("retcode", key, value)


_set_retcode_defaults()


def _configs(spec: str):
    """The spec's configs; a bad spec ends the process with its one clear message."""
    try:
        return load_spec(spec)
    except SpecError as exc:
        raise SystemExit(f"alphadev: {exc}") from None


def _settled(config, save_dir: str) -> bool:
    return sweep.config_state(config, save_dir, RUN_ID) in (sweep.DONE, sweep.FAILED)


def _local_scheduler() -> bool:
    try:
        return bool(luigi.interface.core().local_scheduler)
    except Exception:  # noqa: BLE001 - outside a luigi command line: assume local
        return True


class BacktestTask(luigi.Task):
    """One config of a spec."""

    priority = 10  # run configs before opening the next wave

    spec = luigi.Parameter(description="sweep spec: file.py[:name] or package.module:name")
    name = luigi.Parameter(description="config name")
    save_dir = luigi.Parameter(description="folder holding one results folder per config")

    def config(self):
        try:
            return find_config(self.spec, self.name)
        except SpecError as exc:
            raise SystemExit(f"alphadev: {exc}") from None

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.path.join(self.save_dir, self.name, "sequences"))

    def complete(self) -> bool:
        state = sweep.config_state(self.config(), self.save_dir, RUN_ID)
        if state == sweep.STALE:
            logger.info(
                "config %s: saved results have another fingerprint (config, data or alpha "
                "code changed); recomputing", self.name,
            )
        return state in (sweep.DONE, sweep.FAILED)

    def run(self) -> None:
        config = self.config()
        total = stage_count(config)
        done = 0

        def progress(stage: str) -> None:
            nonlocal done
            done += 1
            self.set_status_message(f"{self.name}: {stage}")
            self.set_progress_percentage(min(99, int(100 * done / total)))

        sweep.prepare(self.save_dir)
        report = sweep.run_config(config, self.save_dir, RUN_ID, progress)
        if report is None:
            self.set_progress_percentage(100)
            self.set_status_message(f"{self.name}: done")
            logger.info("alphadev: config %s done", self.name)
        else:
            self.set_status_message(f"{self.name}: FAILED (see errors.log)")
            logger.error("alphadev: %s", report)


class Sweep(luigi.Task):
    """Every config of a spec, then ``comparison.csv`` and a leaderboard."""

    spec = luigi.Parameter(description="sweep spec: file.py[:name] or package.module:name")
    save_dir = luigi.Parameter(description="folder holding one results folder per config")
    num_processes = luigi.OptionalIntParameter(
        default=None,
        description="run the configs in this task's own process pool instead of Luigi workers",
    )
    top = luigi.IntParameter(default=10, description="rows in the printed leaderboard")
    wave_size = luigi.IntParameter(
        default=500,
        description="with the local scheduler, configs are handed to Luigi in waves of "
        "this many, which keeps its per-task cost flat for sweeps of thousands",
    )

    def requires(self):
        if self.num_processes is not None:
            return []
        configs = _configs(self.spec)
        pending = [c for c in configs if not _settled(c, self.save_dir)]
        if pending:
            warm_up()  # compiled once here, inherited by every task process Luigi forks
        if _local_scheduler() and len(pending) > self.wave_size:
            n_waves = -(-len(configs) // self.wave_size)
            waves = [SweepWave(self.spec, self.save_dir, k, self.wave_size)
                     for k in range(n_waves)]
            return [w for w in waves if not w.complete()]
        # Only unfinished configs: a finished sweep of thousands schedules nothing.
        # With a central scheduler every machine must know every config, so no waves.
        return [BacktestTask(self.spec, c.name, self.save_dir) for c in pending]

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.path.join(self.save_dir, sweep.COMPARISON))

    def complete(self) -> bool:
        configs = _configs(self.spec)
        if not self.output().exists():
            return False
        return all(sweep.config_state(c, self.save_dir, RUN_ID) == sweep.DONE for c in configs)

    def run(self) -> None:
        configs = _configs(self.spec)
        sweep.prepare(self.save_dir)
        if self.num_processes is not None:
            self.set_status_message(f"running {len(configs)} configs in a pool")
            bt = Backtester()
            for config in configs:
                bt.add_config(config)
            results = bt.run_all(
                num_processes=self.num_processes, save_dir=self.save_dir,
                err_path=os.path.join(self.save_dir, sweep.ERRORS_LOG),
            )
            for config, result in zip(configs, results):
                if result is None:
                    sweep.record_failure(self.save_dir, config, "see errors.log", RUN_ID)
        summary = sweep.summarize(configs, self.save_dir, RUN_ID)
        self.set_progress_percentage(100)
        sys.stdout.write(
            f"\nalphadev sweep {self.spec}: {len(summary.table)} of {len(configs)} configs "
            f"done, results in {self.save_dir}\n{sweep.leaderboard(summary.table, self.top)}\n"
        )
        sys.stdout.flush()
        if summary.failed or summary.missing:
            names = summary.failed + summary.missing
            raise RuntimeError(
                f"{len(names)} config(s) did not complete: {names[:10]}; tracebacks are in "
                f"{os.path.join(self.save_dir, sweep.ERRORS_LOG)}. Rerun the same command "
                "to retry them; completed configs are skipped."
            )


class SweepWave(luigi.Task):
    """Configs ``[index * size, (index + 1) * size)`` of a spec, yielded when this runs.

    Luigi's local scheduler scans every pending task on each dispatch (luigi #1492), so
    10,000 pending configs make each dispatch slow.  Dynamic dependencies keep only the
    running waves' configs pending; configs outrank waves, so a new wave opens only
    when no config is left to run.
    """

    spec = luigi.Parameter()
    save_dir = luigi.Parameter()
    index = luigi.IntParameter()
    size = luigi.IntParameter()
    priority = 0

    def _configs(self):
        return _configs(self.spec)[self.index * self.size:(self.index + 1) * self.size]

    def complete(self) -> bool:
        return all(_settled(c, self.save_dir) for c in self._configs())

    def run(self):
        pending = [c for c in self._configs() if not _settled(c, self.save_dir)]
        yield [BacktestTask(self.spec, c.name, self.save_dir) for c in pending]


class Report(luigi.Task):
    """The sweep, then ``{save_dir}/report.html`` (with IC decay for the top configs)."""

    spec = luigi.Parameter(description="sweep spec: file.py[:name] or package.module:name")
    save_dir = luigi.Parameter(description="folder holding one results folder per config")
    top = luigi.IntParameter(default=5, description="configs plotted in detail")

    def requires(self) -> Sweep:
        return Sweep(spec=self.spec, save_dir=self.save_dir)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.path.join(self.save_dir, "report.html"))

    def run(self) -> None:
        from alphadev.analysis import write_ic_decay
        from alphadev.report import build_report

        by_name = {c.name: c for c in _configs(self.spec)}
        table = sweep.read_comparison(self.save_dir)
        for name in table["name"].head(self.top):
            self.set_status_message(f"IC decay of {name}")
            write_ic_decay(os.path.join(self.save_dir, name), by_name[name])
        self.set_status_message("rendering the report")
        build_report(self.save_dir, top=self.top, out=self.output().path)
