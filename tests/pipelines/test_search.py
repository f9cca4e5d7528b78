"""``luigi --module pipelines Search`` end to end: real luigi processes, real kill -9,
two processes on one study, a real luigid with two workers."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest

from alphadev.layout import SweepDir
from tests.conftest import write_market
from tests.pipelines.test_sweep import CENTRAL_ENV, LUIGI, _start_luigid, kill_when, luigi

SEARCH_SPEC = '''
import datetime as dt
import os
import time
from pathlib import Path

from alphadev import Alpha, BacktestConfig, CSVDataLoader
from alphadev.search import IntRange, SearchSpec

DATA = Path({data!r})
CALLS = {calls!r}
RELEASE = Path({release!r})
SAVE = Path({save!r})
HOLD_AFTER = {hold_after!r}


class Logged(Alpha):
    """The value column times ``scale`` (one of its signs fails), logging each compute();
    with HOLD_AFTER it waits once that many results are saved, until RELEASE exists."""

    lookback = 60

    def __init__(self, scale=1):
        self.scale = scale

    def reset(self):
        pass

    def compute(self, data):
        with open(CALLS, "a") as fh:
            fh.write(f"{{self.scale}} {{os.getpid()}} {{os.getppid()}}\\n")
        while (HOLD_AFTER is not None and not RELEASE.exists()
               and len(list(SAVE.glob("*/sequences"))) >= HOLD_AFTER):
            time.sleep(0.02)
        if self.scale == 13:
            raise ValueError("planted failure for scale=13")
        return (data[["value"]] * (self.scale % 7 - 3)).rename(columns={{"value": "alpha"}})


base = BacktestConfig(
    name="s", alpha_class=Logged, alpha_kwargs={{}},
    start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 9),
    symbols=["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"],
    price_loader=CSVDataLoader(str(DATA / "prices.csv"), "close"),
    alpha_loaders=[CSVDataLoader(str(DATA / "values.csv"), "value")],
    beta_csv_path=str(DATA / "beta.csv"),
)
search = SearchSpec(base, {{"scale": {space}}}, sampler="random", seed=5)
'''


def write_search(folder: Path, hold_after: int | None = None,
                 space: str = "IntRange(1, 40)") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = write_market(folder / "data")
    spec = folder / "search_spec.py"
    spec.write_text(SEARCH_SPEC.format(
        data=str(data), calls=str(folder / "calls.log"), release=str(folder / "release"),
        save=str(folder / "out"), hold_after=hold_after, space=space))
    return spec


def computed(folder: Path) -> Counter:
    path = folder / "calls.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(line.split()[0] for line in lines)


def search_args(spec: Path, save_dir: Path, n_trials: int, *extra: str) -> list[str]:
    return ["Search", "--spec", str(spec), "--save-dir", str(save_dir), "--n-trials",
            str(n_trials), *extra]


def study_trials(save_dir: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(SweepDir.of(save_dir).search.journal)))
    return optuna.load_study(study_name="alphadev-search", storage=storage).get_trials()


def counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if not t.user_attrs.get("abandoned")]


def assert_search_done(folder: Path, save_dir: Path, n_trials: int) -> pd.DataFrame:
    """N trials counted, none still running, each config's folder and row present."""
    trials = study_trials(save_dir)
    assert not [t for t in trials if t.state is optuna.trial.TrialState.RUNNING]
    assert len(counted(trials)) == n_trials
    table = pd.read_csv(SweepDir.of(save_dir).search.trials)
    assert list(table["trial"]) == sorted(t.number for t in counted(trials))
    done = table[table["state"] == "complete"]["config"].unique()
    comparison = pd.read_csv(save_dir / "comparison.csv")
    assert sorted(comparison["name"]) == sorted(done)
    summary = json.loads(SweepDir.of(save_dir).search.summary.read_text())
    assert summary["n_trials"] == n_trials
    return table


def test_search_runs_trials_as_configs_and_a_rerun_does_nothing(tmp_path: Path) -> None:
    spec = write_search(tmp_path)
    save = tmp_path / "out"
    run = luigi(search_args(spec, save, 12, "--local-scheduler"), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    table = assert_search_done(tmp_path, save, 12)
    assert "alphadev search: 12 trials" in run.stdout
    assert "held-out (the last 30% of the period, never shown to the sampler)" in run.stdout
    calls = computed(tmp_path)
    assert set(calls.values()) == {1}  # a repeated value is read back, never recomputed
    assert len(calls) == table["config"].nunique()
    for name in table["config"].unique():  # the trial's output is a results folder
        assert (save / name / "sequences").is_dir()
    if "13" in calls:  # the planted failure fails its trial only
        assert (table[table["param.scale"] == 13]["state"] == "fail").all()
    rerun = luigi(search_args(spec, save, 12, "--local-scheduler"), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "1 complete ones were encountered" in rerun.stderr
    assert computed(tmp_path) == calls
    more = luigi(search_args(spec, save, 15, "--local-scheduler"), tmp_path)
    assert more.returncode == 0, more.stderr[-3000:]
    assert_search_done(tmp_path, save, 15)
    assert set(computed(tmp_path).values()) == {1}


def test_kill_9_mid_search_then_rerun(tmp_path: Path) -> None:
    spec = write_search(tmp_path, hold_after=3)
    save = tmp_path / "out"
    proc = subprocess.Popen(
        [LUIGI, "--module", "pipelines", *search_args(spec, save, 10, "--workers", "2",
                                                     "--local-scheduler")],
        cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ready() -> bool:  # 3 saved and 2 more computing, held
        saved = list(save.glob("*/sequences")) if save.exists() else []
        return len(saved) >= 3 and sum(computed(tmp_path).values()) >= len(saved) + 2

    kill_when(proc, ready, "the search")
    before = computed(tmp_path)
    finished = {p.parent.name for p in save.glob("*/sequences")}
    running = [t for t in study_trials(save) if t.state is optuna.trial.TrialState.RUNNING]
    assert len(running) >= 2  # the killed trials are still open in the study

    (tmp_path / "release").touch()
    rerun = luigi(search_args(spec, save, 10, "--workers", "2", "--local-scheduler"),
                  tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    table = assert_search_done(tmp_path, save, 10)
    after = computed(tmp_path)
    scale_of = {name: str(scale) for name, scale in zip(table["config"], table["param.scale"])}
    killed = {t.user_attrs["config"] for t in running}
    for name, scale in scale_of.items():
        if name in finished:  # saved before the kill: read back, never recomputed
            assert after[scale] == before[scale] == 1
        elif name in killed:  # killed mid-run: run again, once
            assert after[scale] == before[scale] + 1 == 2
        else:
            assert after[scale] == 1
    for trial in running:  # each killed trial is counted once, with its own number
        assert (table["trial"] == trial.number).sum() == 1


def _two_processes(args: list[str], cwd: Path, env: dict | None = None,
                   held_until=None) -> list[int]:
    """Runs two identical luigi commands at once; both must exit 0.  Their pids.  With
    ``held_until``, the spec's computes wait (``hold_after=0``) until it holds, which it
    must within 120 s."""
    full = {**os.environ, **(env or {})}
    logs = [cwd / f"luigi-{i}.log" for i in range(2)]
    procs = [subprocess.Popen([LUIGI, "--module", "pipelines", *args], cwd=cwd, env=full,
                              stdout=subprocess.DEVNULL, stderr=log.open("w"))
             for log in logs]
    held = True
    if held_until is not None:
        deadline = time.monotonic() + 120
        while not (held := held_until()) and time.monotonic() < deadline:
            time.sleep(0.05)
        (cwd / "release").touch()
    for p, log in zip(procs, logs):
        p.wait(600)
        assert p.returncode == 0, log.read_text()[-3000:]
    assert held, "the held computes were released by the 120 s timeout, not by the condition"
    return [p.pid for p in procs]


@pytest.mark.parametrize("space, workers", [("IntRange(1, 40)", "1"), ("IntRange(10, 16)", "2")])
def test_two_processes_share_one_study(tmp_path: Path, space: str, workers: str) -> None:
    """Also with few values (most trials repeat a config, the planted failure 13 among
    them) and two workers each: every config computed once, the failed one too."""
    spec = write_search(tmp_path, space=space)
    save = tmp_path / "out"
    # --no-lock: two identical commands on one host (luigi's lock would stop the second)
    _two_processes(search_args(spec, save, 14, "--workers", workers, "--local-scheduler",
                               "--no-lock"), tmp_path)
    table = assert_search_done(tmp_path, save, 14)
    calls = computed(tmp_path)
    assert set(calls.values()) == {1}
    assert len(calls) == table["config"].nunique()
    if space == "IntRange(10, 16)":
        assert "13" in calls and (table[table["param.scale"] == 13]["state"] == "fail").all()


def test_two_workers_of_a_luigid_share_one_study(tmp_path: Path) -> None:
    """Every compute waits until both luigi processes have started one: the second
    asks for trials of its own rather than queueing behind the first's (their claims),
    however the two interleave."""
    spec = write_search(tmp_path, hold_after=0)
    save = tmp_path / "out"

    def parents() -> set[int]:  # a trial's worker process is a child of its luigi process
        path = tmp_path / "calls.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return {int(line.split()[2]) for line in lines if len(line.split()) == 3}

    luigid, port = _start_luigid(tmp_path)
    try:
        args = search_args(spec, save, 14, "--workers", "2", "--scheduler-host", "127.0.0.1",
                           "--scheduler-port", str(port), "--no-lock")
        luigis = _two_processes(args, tmp_path, CENTRAL_ENV, lambda: len(parents()) >= 2)
    finally:
        luigid.terminate()
        luigid.wait(30)
    table = assert_search_done(tmp_path, save, 14)
    calls = computed(tmp_path)
    assert set(calls.values()) == {1}
    assert len(calls) == table["config"].nunique()
    assert parents() == set(luigis)


@pytest.mark.parametrize("args, message", [
    (["--n-trials", "0"], "Search --n-trials: n_trials=0 must be an integer >= 1"),
    (["--n-trials", "3", "--in-flight", "0"], "Search --in-flight 0 is invalid"),
    (["--n-trials", "3", "--storage", "nosuchdb://x"], "storage='nosuchdb://x' cannot be "
                                                      "opened"),
])
def test_bad_search_parameters(tmp_path: Path, args: list[str], message: str) -> None:
    spec = write_search(tmp_path)
    run = luigi(["Search", "--spec", str(spec), "--save-dir", str(tmp_path / "out"), *args,
                 "--local-scheduler"], tmp_path)
    assert run.returncode != 0
    assert message in run.stderr + run.stdout


def test_a_grid_spec_is_no_search(tmp_path: Path) -> None:
    spec = tmp_path / "grid.py"
    spec.write_text("configs = []\n")
    run = luigi(search_args(spec, tmp_path / "out", 3, "--local-scheduler"), tmp_path)
    assert run.returncode != 0
    assert "defines no search: define search = SearchSpec(base, space, ...)" in (
        run.stderr + run.stdout)
