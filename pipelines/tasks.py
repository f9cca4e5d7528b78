"""Luigi tasks for alphadev sweeps: thin wrappers that call the library.

    luigi --module pipelines Sweep --spec sweeps/momentum.py --save-dir runs/momentum --workers 2

``BacktestTask`` runs one config; it is complete when ``{save_dir}/{name}`` is a whole
results folder with the config's current fingerprint.  A config that fails is FAILED in
Luigi (its traceback goes to ``{save_dir}/errors.log``), and the next invocation
retries it.  ``Sweep`` requires the configs that are not done yet (or runs them in its
own pool with ``--num-processes``), writes ``{save_dir}/comparison.csv`` and prints a
leaderboard.  Luigi does not run ``Sweep`` once a config failed, so the config that
finishes last (every other one done or failed) writes the table and prints the
leaderboard and the failed configs instead.  A rerun with every config done prints
the leaderboard again (from ``comparison.csv``); a spec's ``Backtester(notice=...)``
is printed above it and saved as ``{save_dir}/notice.txt``.

Watching a sweep: the process that finishes a config logs one line for it, and every
1/20 of the configs (or five minutes) a progress line such as ``sweep runs/x: 120/200
done, 2 failed, 78 left, 3.1 configs/s, ETA 0:00:25``, counted in
``{save_dir}/.progress.json`` so it is right with ``--workers N``.  Luigi's own
per-task lines (scheduled, running, done, "Informed scheduler ...") are demoted to
DEBUG, and where no luigi.cfg sets ``[core] log_level`` or ``logging_conf_file``
the level defaults to INFO instead of Luigi's DEBUG: about one line per config.
``--log-level DEBUG`` shows everything again.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import luigi
import luigi.cmdline_parser
from luigi.util import inherits

from alphadev import sweep
from alphadev.engine.simulate import warm_up
from alphadev.errors import SpecError
from alphadev.job import stage_count
from alphadev.layout import ResultState, SweepDir, log_stale
from alphadev.orchestrator import run_config, run_sweep, worker_count
from alphadev.progress import SweepDisplay
from alphadev.spec import config_position, find_config, load_spec, spec_is_synthetic, spec_notice
from alphadev.store import run_lock, write_notice

logger = logging.getLogger("luigi-interface")

def _configs(spec: str):
    """The spec's configs; a bad spec ends the process with its one clear message."""
    try:
        return load_spec(spec)
    except SpecError as exc:
        raise SystemExit(f"alphadev: {exc}") from None


def _find_config(spec: str, name: str):
    try:
        return find_config(spec, name)
    except SpecError as exc:
        raise SystemExit(f"alphadev: {exc}") from None


def _done(config, save_dir: str) -> bool:
    return SweepDir.of(save_dir).state(config) is ResultState.DONE


class ConfigFailed(RuntimeError):
    """A config's backtest failed; the message is its report (with the traceback)."""


def _bad_parameter(message: str) -> BaseException:
    """A clear error for a bad task parameter: one ``alphadev:`` line on the command
    line (like a bad spec), a ValueError from Python."""
    if luigi.cmdline_parser.CmdlineParser.get_instance() is not None:
        return SystemExit(f"alphadev: {message}")
    return ValueError(message)


def _local_scheduler() -> bool:
    try:
        return bool(luigi.interface.core().local_scheduler)
    except Exception:  # noqa: BLE001 - outside a luigi command line: assume local
        return True


class ResultTarget(luigi.Target):
    """A config's results folder; it exists only when it is whole and was computed with
    the config's current fingerprint, so Luigi's own completeness check is the sweep's.

    ``path`` is ``{save_dir}/{name}/sequences``, the folder a downstream task reads.
    """

    def __init__(self, config, save_dir: str) -> None:
        self.config = config
        self.save_dir = save_dir
        self.path = os.fspath(SweepDir.of(save_dir).result(config.name).sequences)

    def exists(self) -> bool:
        state = SweepDir.of(self.save_dir).state(self.config)
        if state is ResultState.STALE:
            log_stale(self.config.name, logger)
        return state is ResultState.DONE


# Luigi orders a task's parameters by creation, and positional arguments follow that
# order: created here as spec, name, save_dir, so BacktestTask(spec, name, save_dir)
# and every other task's (spec, save_dir, ...) keep their order.
_SPEC = luigi.Parameter(description="sweep spec: file.py[:name] or package.module:name "
                        "(a package must be importable: PYTHONPATH=. or pip install -e .)")
# Luigi runs a scheduling unit's configs as one batch task, whose name joins theirs:
# a space never appears in a config name (alphadev.config.check_name).
BATCH_SEPARATOR = " "
_CONFIG_NAME = luigi.Parameter(description="config name", batch_method=BATCH_SEPARATOR.join)
_SAVE_DIR = luigi.Parameter(description="folder holding one results folder per config")


class SweepFolder(luigi.Task):
    """The parameters every task of a sweep shares, declared once (``@inherits``);
    never scheduled itself."""

    spec = _SPEC
    save_dir = _SAVE_DIR


LEADERBOARD_ROWS = 10


@inherits(SweepFolder)
class BacktestTask(luigi.Task):
    """One config of a spec.

    Configs of one scheduling ``unit`` (a sweep sets it) are run by Luigi as one batch:
    one task process and one dispatch for up to ``Sweep --batch-size`` configs, because
    Luigi's scheduler scans every task it knows on each dispatch.  Each config stays a
    task of its own, with its own output; the batch task's name joins theirs.
    """

    spec: str  # inherited parameters, typed for mypy (inherits adds them at class creation)
    save_dir: str

    priority = 10  # run configs before opening the next wave

    name = _CONFIG_NAME
    unit = luigi.IntParameter(
        default=0, significant=False, visibility=luigi.parameter.ParameterVisibility.HIDDEN,
        description="configs of one unit may run as one Luigi batch (not part of the task id)")

    def names(self) -> list[str]:
        """This task's configs: one, or a batch's."""
        return self.name.split(BATCH_SEPARATOR)

    def config(self):
        return _find_config(self.spec, self.name)

    def configs(self) -> list:
        """This task's configs; a batch's in the spec's order (Luigi joins them in its
        own)."""
        names = self.names()
        if len(names) == 1:
            return [self.config()]
        configs = [_find_config(self.spec, name) for name in names]
        return sorted(configs, key=lambda c: config_position(self.spec, c.name))

    def output(self) -> ResultTarget | list[ResultTarget]:
        targets = [ResultTarget(c, self.save_dir) for c in self.configs()]
        return targets[0] if len(targets) == 1 else targets

    def run(self) -> None:
        self._uncounted = set(self.names())  # luigi reuses task instances across invocations
        reports = []
        for config in self.configs():
            # Another process computing this config (no shared scheduler) holds its run
            # lock: wait for it, then find the config done instead of computing it twice.
            with run_lock(Path(self.save_dir), config.name):
                try:
                    self._run(config)
                except ConfigFailed as exc:
                    reports.append(str(exc))
        if reports and len(self.names()) > 1:
            raise ConfigFailed(
                f"{len(reports)} of the {len(self.names())} configs of this Luigi batch "
                "failed (Luigi marks a whole batch failed; the others are done and are not "
                "run again):\n\n" + "\n\n".join(reports))
        if reports:
            raise ConfigFailed(reports[0])

    def _run(self, config) -> None:
        if _done(config, self.save_dir):  # another invocation did it (and counted it)
            self._uncounted.discard(config.name)
            logger.info("alphadev: config %s was done meanwhile; not run again", config.name)
            return
        total = stage_count(config)
        done = 0

        def progress(stage: str) -> None:
            nonlocal done
            done += 1
            self.set_status_message(f"{config.name}: {stage}")
            self.set_progress_percentage(min(99, int(100 * done / total)))

        run = run_config(config, SweepDir.of(self.save_dir), progress)
        report = run.failures.get(config.name)
        if report is not None:
            self._count(config.name, False)
            raise ConfigFailed(report)
        self.set_progress_percentage(100)
        logger.info("alphadev: config %s done", config.name)
        self._count(config.name, True)

    def on_success(self):
        self._summarize_if_last()
        return super().on_success()

    def on_failure(self, exception: BaseException) -> str:
        explanation = super().on_failure(exception)
        # configs that failed before or after run_config
        for name in sorted(getattr(self, "_uncounted", set(self.names()))):
            self._count(name, False)
        self._summarize_if_last()
        return explanation

    def _count(self, name: str, ok: bool) -> None:
        """Count one config in the sweep's progress (once), show the overall line in
        luigid's status message and log it when due."""
        getattr(self, "_uncounted", set()).discard(name)
        tick = _count_finished(self.save_dir, ok)
        outcome = "done" if ok else "FAILED (see errors.log)"
        if callable(self.set_status_message):  # only while run() runs
            self.set_status_message(f"{name}: {outcome}"
                                    + (f"; {tick.line}" if tick is not None else ""))
        if tick is not None and tick.due:
            logger.info(tick.line)

    def _summarize_if_last(self) -> None:
        """Write the summary when this was the sweep's last config and one failed."""
        try:
            configs = _configs(self.spec)
            summary = sweep.summarize_when_settled(configs, self.save_dir)
        except Exception:
            logger.exception("alphadev: writing the sweep summary failed")
            return
        if summary is not None:
            _print_report(self.spec, self.save_dir, len(configs), summary, 10)


@inherits(SweepFolder)
class Sweep(luigi.Task):
    """Every config of a spec, then ``comparison.csv`` and a leaderboard."""

    spec: str  # inherited parameters, typed for mypy (inherits adds them at class creation)
    save_dir: str

    num_processes = luigi.OptionalIntParameter(
        default=None,
        description="run the configs in this task's own process pool instead of Luigi workers",
    )
    top = luigi.IntParameter(default=LEADERBOARD_ROWS, description="rows in the printed "
                             "leaderboard")
    wave_size = luigi.IntParameter(
        default=500,
        description="with the local scheduler, configs are handed to Luigi in waves of "
        "this many, which keeps its per-task cost flat for sweeps of thousands",
    )
    batch_size = luigi.IntParameter(
        default=50,
        description="at most this many configs run as one Luigi batch (one task process, one "
        "dispatch); fewer in small sweeps, so every worker gets work; 1: one task per config",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        checks = (
            ("--wave-size", self.wave_size, self.wave_size >= 1, "an integer >= 1"),
            ("--top", self.top, self.top >= 0, "an integer >= 0"),
            ("--batch-size", self.batch_size, self.batch_size >= 1, "an integer >= 1"),
            ("--num-processes", self.num_processes,
             self.num_processes is None or self.num_processes == -1 or self.num_processes >= 1,
             "unset (Luigi workers), -1 (one process per CPU) or an integer >= 1"),
        )
        for flag, value, ok, allowed in checks:
            if not ok:
                raise _bad_parameter(f"Sweep {flag} {value} is invalid: it must be {allowed}")

    def requires(self):
        if self.num_processes is not None:
            return []
        configs = _configs(self.spec)
        pending = [k for k, c in enumerate(configs) if not _done(c, self.save_dir)]
        unit = unit_size(len(pending), self.batch_size)
        if _local_scheduler() and len(pending) > self.wave_size:
            n_waves = -(-len(configs) // self.wave_size)
            waves = [self.clone(SweepWave, index=k, size=self.wave_size, unit=unit)
                     for k in range(n_waves)]
            return [w for w in waves if not w.complete()]
        # Only unfinished configs: a finished sweep of thousands schedules nothing.
        # With a central scheduler every machine must know every config, so no waves.
        return [self.clone(BacktestTask, name=configs[k].name, unit=k // unit) for k in pending]

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(SweepDir.of(self.save_dir).comparison)

    def complete(self) -> bool:
        """Every config done and ``comparison.csv`` built from exactly these results."""
        return sweep.comparison_is_current(_configs(self.spec), self.save_dir)

    def run(self) -> None:
        configs = _configs(self.spec)
        sweep_dir = SweepDir.of(self.save_dir)
        sweep.prepare(sweep_dir)
        if self.num_processes is not None:
            self.set_status_message(f"running {len(configs)} configs in a pool")
            run_sweep(configs, sweep_dir, worker_count(self.num_processes),
                      functools.partial(SweepDisplay, verbose=True), sweep_dir.errors_log)
        summary = sweep.summarize(configs, self.save_dir)
        self.set_progress_percentage(100)
        _print_report(self.spec, self.save_dir, len(configs), summary, self.top)
        if summary.failed or summary.missing:
            names = summary.failed + summary.missing
            raise RuntimeError(
                f"{len(names)} config(s) did not complete: {names[:10]}; tracebacks are in "
                f"{SweepDir.of(self.save_dir).errors_log}. Rerun the same command "
                "to retry them; completed configs are skipped."
            )


@inherits(SweepFolder)
class SweepWave(luigi.Task):
    """Configs ``[index * size, (index + 1) * size)`` of a spec, yielded when this runs.

    Luigi's local scheduler scans every pending task on each dispatch (luigi #1492), so
    10,000 pending configs make each dispatch slow.  Dynamic dependencies keep only the
    running waves' configs pending; configs outrank waves, so a new wave opens only
    when no config is left to run.
    """

    spec: str  # inherited parameters, typed for mypy (inherits adds them at class creation)
    save_dir: str

    index = luigi.IntParameter()
    size = luigi.IntParameter()
    unit = luigi.IntParameter(default=1, description="configs per scheduling unit (batch)")
    priority = 0

    def _configs(self):
        return _configs(self.spec)[self.index * self.size:(self.index + 1) * self.size]

    def complete(self) -> bool:
        return all(_done(c, self.save_dir) for c in self._configs())

    def run(self):
        start = self.index * self.size
        pending = [(start + k, c) for k, c in enumerate(self._configs())
                   if not _done(c, self.save_dir)]
        yield [self.clone(BacktestTask, name=c.name, unit=k // self.unit) for k, c in pending]


def unit_size(n_pending: int, limit: int) -> int:
    """Configs per scheduling unit: up to ``limit``, but small enough that each worker
    process gets several units (a unit's configs run one after another)."""
    return max(1, min(limit, n_pending // (UNITS_PER_PROCESS * _worker_processes())))


UNITS_PER_PROCESS = 8


def _worker_processes() -> int:
    try:
        return max(1, int(luigi.interface.core().workers))
    except Exception:  # noqa: BLE001 - outside a luigi command line
        return 1


@Sweep.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)
@SweepWave.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)
def _configs_scheduled(task: luigi.Task, dependency: luigi.Task) -> None:
    """Configs handed to Luigi for a new attempt (in the scheduling process).

    Their earlier failures stop counting as their latest outcome, so the end-of-sweep
    summary waits for these attempts; and the kernels are loaded once here, before Luigi
    forks the task processes that inherit them.
    """
    if isinstance(task, Sweep):
        _start_progress(task)
    if isinstance(dependency, BacktestTask):
        names = [dependency.name]
    elif isinstance(dependency, SweepWave):  # a done config's marker is gone already
        names = [c.name for c in dependency._configs()]
    else:
        return
    sweep.clear_failures(dependency.save_dir, names)
    _load_kernels()


@Sweep.event_handler(luigi.Event.DEPENDENCY_PRESENT)
def _already_done(task: Sweep) -> None:
    """A rerun with every config done runs nothing; it still shows the leaderboard."""
    try:
        configs = _configs(task.spec)
        summary = sweep.SweepSummary(sweep.read_comparison(task.output().path), [], [])
    except Exception:
        logger.exception("alphadev: reading the finished sweep's comparison.csv failed")
        return
    _print_report(task.spec, task.save_dir, len(configs), summary, task.top)


@BacktestTask.event_handler(luigi.Event.PROCESS_FAILURE)
@BacktestTask.event_handler(luigi.Event.TIMEOUT)
def _config_process_died(task: BacktestTask, error: str) -> None:
    """The configs whose task process died (killed, out of memory) before finishing
    count as failed; the scheduling process sees this, the dead process could not count
    them.  Their failures are recorded too, so the config that finishes last still
    writes the summary.  A batch's configs that were done or had failed (and were
    counted) before it died are left as they are."""
    sweep_dir = SweepDir.of(task.save_dir)
    for config in task.configs():
        if _done(config, task.save_dir) or sweep_dir.failure(config.name).exists():
            continue
        try:
            sweep.record_failure(sweep_dir, config, f"config {config.name!r} failed: {error}",
                                 sweep_dir.errors_log)
        except OSError:
            logger.exception("alphadev: cannot record the failure of %s", config.name)
        tick = _count_finished(task.save_dir, False)
        if tick is not None and tick.due:
            logger.info(tick.line)
    task._summarize_if_last()


_PROGRESS_STARTED: set[str] = set()


def _start_progress(task: Sweep) -> None:
    """Reset the sweep's progress once per invocation, in the scheduling process, when
    its first configs are handed to Luigi (not in ``requires``, which has no side
    effects); the forked task processes inherit the record that it was done, and a
    later invocation in this process finds the recorded one settled."""
    save_dir = task.save_dir
    key = os.path.abspath(save_dir)
    if key in _PROGRESS_STARTED and not sweep.progress_settled_here(save_dir):
        return
    _PROGRESS_STARTED.add(key)
    configs = _configs(task.spec)
    done = sum(_done(c, save_dir) for c in configs)
    try:
        sweep.start_progress(save_dir, len(configs), done)
    except OSError:
        logger.exception("alphadev: cannot record the sweep's progress in %s", save_dir)


def _count_finished(save_dir: str, ok: bool) -> sweep.Tick | None:
    try:
        return sweep.count_finished(save_dir, ok, f"sweep {save_dir}")
    except OSError:
        logger.exception("alphadev: cannot count progress in %s", save_dir)
        return None


@functools.cache
def _load_kernels() -> None:
    warm_up()


def _print_report(spec: str, save_dir: str, n_configs: int, summary: sweep.SweepSummary,
                  top: int) -> None:
    """Save the spec's notice (or remove a dropped one), then print it with the summary."""
    notice, synthetic = spec_notice(spec), spec_is_synthetic(spec)
    write_notice(save_dir, notice, synthetic)
    text = sweep.report(spec, save_dir, n_configs, summary, top, notice, synthetic)
    sys.stdout.write(f"\n{text}\n")
    sys.stdout.flush()


class _ReportTarget(luigi.LocalTarget):
    """``report.html`` that exists for Luigi only when it holds what the task adds: IC
    decay and factor sequences for all of the ``top`` configs it details.  A report
    written by ``python -m alphadev report`` (same file, usually without them) does not
    make the task complete; the task then rewrites it."""

    def __init__(self, path: str, top: int) -> None:
        super().__init__(path)
        self.top = top

    def exists(self) -> bool:
        from alphadev.report import report_contents

        contents = report_contents(self.path)
        return contents is not None and contents.get("top") == self.top and (
            contents.get("ic-decay") == contents.get("detailed") == contents.get("factor")
        )


@inherits(SweepFolder)
class Report(luigi.Task):
    """The sweep, then ``{save_dir}/report.html`` with IC decay, quantile returns and
    factor sequences for the top configs (see ``_ReportTarget`` for completeness)."""

    spec: str  # inherited parameters, typed for mypy (inherits adds them at class creation)
    save_dir: str

    top = luigi.IntParameter(default=5, description="configs plotted in detail")

    def requires(self) -> Sweep:
        # This task's ``top`` is how many configs it details, not the sweep's leaderboard.
        return self.clone(Sweep, top=LEADERBOARD_ROWS)

    def output(self) -> luigi.LocalTarget:
        return _ReportTarget(os.fspath(SweepDir.of(self.save_dir).report), self.top)

    def complete(self) -> bool:
        """The report holds what this task adds, the sweep is complete, and the report
        is not older than ``comparison.csv`` (a config changed or added since: rebuild;
        Luigi never looks at ``Sweep`` while this task looks complete)."""
        if not self.output().exists() or not self.requires().complete():
            return False
        comparison = self.input().path
        return os.path.getmtime(self.output().path) >= os.path.getmtime(comparison)

    def run(self) -> None:
        from alphadev.report import build_report
        from alphadev.research import config_panel, write_factor_sequences, write_ic_decay

        by_name = {c.name: c for c in _configs(self.spec)}
        table = sweep.read_comparison(self.input().path)
        for name in table["name"].head(self.top):
            folder = SweepDir.of(self.save_dir).result(name)
            if folder.ic_decay.exists() and folder.factor_sequences.exists():
                continue  # recorded by the run (docs/semantics.md#signal-series)
            self.set_status_message(f"IC decay and factor sequences of {name}")
            panel = config_panel(by_name[name])  # the alpha runs once for both files
            write_ic_decay(folder.path, by_name[name], panel=panel)
            write_factor_sequences(folder.path, by_name[name], panel=panel)
        self.set_status_message("rendering the report")
        build_report(self.save_dir, top=self.top, out=self.output().path)
