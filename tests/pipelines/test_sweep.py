"""The Luigi layer end to end: real luigi processes, real luigid, real kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from alphadev.layout import check_folder
from tests.conftest import write_market
from tests.test_results import CORRUPTIONS

REPO = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")
LUIGID = str(Path(sys.executable).parent / "luigid")
# Workers of a central scheduler read central.cfg, as the README says (exit codes).
CENTRAL_ENV = {"LUIGI_CONFIG_PATH": str(REPO / "central.cfg")}

SPEC_TEMPLATE = '''
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

from alphadev import Alpha, BacktestConfig, Backtester, CSVDataLoader

HERE = Path(__file__).resolve().parent
DATA = Path({data!r})
CALLS = {calls!r}
RELEASE = {release!r}
SAVE = Path({save!r})


class LoggedAlpha(Alpha):
    """Echo of the value column that logs each compute() call.

    With ``hold_after=n`` it waits for the release file once n configs are complete,
    so a test can kill the sweep while configs are in flight.
    """

    lookback = 60

    def __init__(self, scale=1.0, hold_after=None, fail=False):
        self.scale, self.hold_after, self.fail = scale, hold_after, fail

    def _holding(self):
        if self.hold_after is None or Path(RELEASE).exists():
            return False
        done = [p for p in SAVE.glob("*/sequences")] if SAVE.exists() else []
        return len(done) >= self.hold_after

    def reset(self):
        pass

    def compute(self, data):
        with open(CALLS, "a") as fh:
            fh.write(f"{{self.scale}} {{os.getpid()}}\\n")
        if self.fail or (HERE / f"broken{{self.scale}}").exists():
            raise ValueError("planted failure for scale=%s" % self.scale)
        while self._holding():
            time.sleep(0.02)
        return (data[["value"]] * self.scale).rename(columns={{"value": "alpha"}})


def {function}():
    settings = json.loads((HERE / "settings.json").read_text())
    base = BacktestConfig(
        name="cfg", alpha_class=LoggedAlpha, alpha_kwargs={{}},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 6),
        symbols=["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"],
        price_loader=CSVDataLoader(str(DATA / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(DATA / "values.csv"), "value")],
        beta_csv_path=str(DATA / "beta.csv"),
    )
    bt = Backtester()
    for k, scale in enumerate(settings["scales"]):
        bt.add_config(base.replace(
            name=f"cfg{{k}}",
            alpha_kwargs={{"scale": scale, "hold_after": settings.get("hold_after"),
                          "fail": k in settings.get("fail", [])}},
            trading_fee_rate=settings.get("fees", {{}}).get(str(k), 4.5e-4),
        ))
    return bt
'''


def write_spec(folder: Path, settings: dict, function: str = "sweep") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = write_market(folder / "data")
    spec = folder / "myspec.py"
    spec.write_text(
        SPEC_TEMPLATE.format(
            data=str(data), calls=str(folder / "calls.log"),
            release=str(folder / "release"), function=function, save=str(folder / "out"),
        )
    )
    (folder / "settings.json").write_text(json.dumps(settings))
    return spec


def calls(folder: Path) -> Counter:
    path = folder / "calls.log"
    if not path.exists():
        return Counter()
    return Counter(line.split()[0] for line in path.read_text().splitlines())


def luigi(args: list[str], cwd: Path, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [LUIGI, "--module", "pipelines", *args], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=600, **kw,
    )


def sweep_args(spec: Path, save_dir: Path, *extra: str) -> list[str]:
    return ["Sweep", "--spec", str(spec), "--save-dir", str(save_dir), *extra]


def complete_dirs(save_dir: Path) -> list[Path]:
    return sorted(p for p in save_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def assert_whole(folder: Path) -> None:
    json.loads((folder / "config.json").read_text())
    json.loads((folder / "metrics.json").read_text())
    for name in ("returns", "positions", "trades"):
        pd.read_parquet(folder / "sequences" / f"{name}.parquet")


def test_bundled_sweep_from_fresh_copy(tmp_path: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    copy = tmp_path / "repo"
    for name in files:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_bytes((REPO / name).read_bytes())
    if not (copy / "luigi.cfg").exists():
        pytest.fail("luigi.cfg is not committed")
    first = subprocess.run([LUIGI, "--module", "pipelines", "Sweep"], cwd=copy,
                           capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    save_dir = copy / "runs" / "example"
    folders = complete_dirs(save_dir)
    assert len(folders) == 24
    table = pd.read_csv(save_dir / "comparison.csv")
    assert sorted(table["name"]) == [f.name for f in folders]
    mtimes = {f.name: (f / "config.json").stat().st_mtime_ns for f in folders}

    second = subprocess.run([LUIGI, "--module", "pipelines", "Sweep"], cwd=copy,
                            capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Did not run any tasks" in second.stderr
    assert mtimes == {f.name: (f / "config.json").stat().st_mtime_ns for f in folders}

    report = subprocess.run([LUIGI, "--module", "pipelines", "Report"], cwd=copy,
                            capture_output=True, text=True, timeout=900)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (save_dir / "report.html").read_text()
    assert all(f.name in html for f in folders)
    best = pd.read_csv(save_dir / "comparison.csv").sort_values("sharpe").iloc[-1]["name"]
    assert (save_dir / best / "sequences" / "ic_decay.parquet").is_file()
    assert mtimes == {f.name: (f / "config.json").stat().st_mtime_ns for f in folders}

    # The bundled example as an adaptive search (luigi.cfg's [Search]), shortened.
    search = subprocess.run([LUIGI, "--module", "pipelines", "Search", "--n-trials", "4"],
                            cwd=copy, capture_output=True, text=True, timeout=900)
    assert search.returncode == 0, search.stderr[-3000:]
    assert "The data are synthetic" in search.stdout
    assert "alphadev search: 4 trials" in search.stdout
    trials = pd.read_csv(copy / "runs" / "search" / "search" / "trials.csv")
    assert len(trials) == 4 and (trials["state"] == "complete").all()


def kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 300) -> None:
    """``kill -9`` the process group of ``proc`` as soon as ``ready()`` holds."""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                break
            assert proc.poll() is None, f"{what} ended before it was killed"
            time.sleep(0.05)
        else:
            pytest.fail(f"{what} did not reach the kill point")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)


def test_a_luigi_sweep_cleans_up_after_dead_writers_when_it_starts(tmp_path: Path) -> None:
    """Config tasks do not list the save_dir (30,000 results made each config slower);
    the sweep does it once when it starts: a dead writer's temporary folder goes, a
    result left in the trash is put back and not computed again."""
    spec = write_spec(tmp_path, {"scales": [1, 2, 3]})
    save_dir = tmp_path / "out"
    first = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = calls(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    (save_dir / f".tmp-cfg1~{host}~{dead.pid}~abc").mkdir()
    os.rename(save_dir / "cfg0", save_dir / f".trash-cfg0~{host}~{dead.pid}~def")
    rerun = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert calls(tmp_path) == before  # cfg0 restored, not recomputed
    assert_whole(save_dir / "cfg0")
    assert not [p for p in save_dir.iterdir() if p.name.startswith((".tmp-", ".trash-"))]


def test_kill_9_then_resume(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2, 3, 4, 5, 6, 7, 8], "hold_after": 3})
    save_dir = tmp_path / "out"
    proc = subprocess.Popen(
        [LUIGI, "--module", "pipelines", *sweep_args(spec, save_dir, "--workers", "2",
                                                    "--local-scheduler")],
        cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ready() -> bool:  # at least 3 configs complete and two more computing (held)
        done = complete_dirs(save_dir) if save_dir.exists() else []
        return len(done) >= 3 and sum(calls(tmp_path).values()) >= len(done) + 2

    kill_when(proc, ready, "the sweep")

    finished = [d.name for d in complete_dirs(save_dir)]
    assert 3 <= len(finished) < 8
    for folder in complete_dirs(save_dir):
        assert_whole(folder)
    before = calls(tmp_path)
    scale_of = {f"cfg{k}": str(k + 1) for k in range(8)}

    (tmp_path / "release").touch()
    rerun = luigi(sweep_args(spec, save_dir, "--workers", "2", "--local-scheduler"), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert len(complete_dirs(save_dir)) == 8
    after = calls(tmp_path)
    for name, scale in scale_of.items():
        if name in finished:  # finished before the kill: never recomputed
            assert after[scale] == before[scale] == 1
        else:  # in flight or not started: computed once more
            assert after[scale] == before[scale] + 1
    assert not [p for p in save_dir.iterdir() if p.name.startswith((".tmp-", ".trash-"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_luigid(folder: Path, config: str = "") -> tuple[subprocess.Popen, int]:
    """A real luigid on 127.0.0.1 with its own state, logs and (optional) config."""
    port = _free_port()
    (folder / "logs").mkdir()
    (folder / "luigid.cfg").write_text(config)
    luigid = subprocess.Popen(
        [LUIGID, "--address", "127.0.0.1", "--port", str(port),
         "--state-path", str(folder / "state.pickle"), "--logdir", str(folder / "logs")],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "LUIGI_CONFIG_PATH": str(folder / "luigid.cfg")},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return luigid, port
        except OSError:
            if time.monotonic() > deadline or luigid.poll() is not None:
                luigid.kill()
                pytest.fail("luigid did not start")
            time.sleep(0.1)


@pytest.mark.parametrize("n", [12, 64])
def test_two_workers_share_a_central_scheduler(tmp_path: Path, n: int) -> None:
    """Two machines (processes) with two workers each; at 64 configs Luigi batches them
    in units of 4 (64 pending // (8 x 2 workers)), each unit in one task process."""
    spec = write_spec(tmp_path, {"scales": list(range(1, n + 1))})
    save_dir = tmp_path / "out"
    luigid, port = _start_luigid(tmp_path)
    try:
        # --no-lock: both commands are identical and on one host; luigi's lock would end
        # the second one at once (two machines each have their own lock).
        args = sweep_args(spec, save_dir, "--workers", "2", "--scheduler-host", "127.0.0.1",
                          "--scheduler-port", str(port), "--no-lock")
        env = {**os.environ, **CENTRAL_ENV}
        procs = [
            subprocess.Popen([LUIGI, "--module", "pipelines", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=600) for p in procs]
        for p, (_, err) in zip(procs, outputs):
            assert p.returncode == 0, err[-3000:]
    finally:
        luigid.terminate()
        luigid.wait(30)
    assert len(complete_dirs(save_dir)) == n
    assert calls(tmp_path) == Counter({str(k): 1 for k in range(1, n + 1)})
    assert (save_dir / "comparison.csv").exists()
    unit = 1 if n == 12 else 4
    pids = [line.split() for line in (tmp_path / "calls.log").read_text().splitlines()]
    units_of: dict[str, set[int]] = {}
    for scale, pid in pids:
        units_of.setdefault(pid, set()).add((int(scale) - 1) // unit)
    assert all(len(units) == 1 for units in units_of.values())
    assert len(units_of) == n // unit


@pytest.mark.slow  # luigid notices a dead worker only in its 60 s prune
def test_dead_machine_configs_come_back(tmp_path: Path) -> None:
    """Machine A dies with configs in flight; machine B, already waiting, finishes them.

    luigid runs with short [scheduler] delays (the README's advice, scaled down), and
    B keeps alive, as central.cfg sets.
    """
    spec = write_spec(tmp_path, {"scales": list(range(1, 9)), "hold_after": 2})
    save_dir = tmp_path / "out"
    luigid, port = _start_luigid(
        tmp_path, "[scheduler]\nworker_disconnect_delay = 3\nretry_delay = 1\n"
    )
    env = {**os.environ, **CENTRAL_ENV}
    args = sweep_args(spec, save_dir, "--workers", "2", "--scheduler-host", "127.0.0.1",
                      "--scheduler-port", str(port), "--worker-ping-interval", "1")
    machine_a = subprocess.Popen(
        [LUIGI, "--module", "pipelines", *args], cwd=tmp_path, env=env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = complete_dirs(save_dir) if save_dir.exists() else []
            if len(done) >= 2 and sum(calls(tmp_path).values()) >= len(done) + 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("machine A did not reach the kill point")
        os.killpg(machine_a.pid, signal.SIGKILL)
        machine_a.wait(30)
        (tmp_path / "release").touch()
        machine_b = subprocess.run(
            [LUIGI, "--module", "pipelines", *args, "--worker-keep-alive"], cwd=tmp_path,
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert machine_b.returncode == 0, machine_b.stderr[-3000:]
    finally:
        luigid.terminate()
        luigid.wait(30)
    assert len(complete_dirs(save_dir)) == 8
    assert (save_dir / "comparison.csv").exists()
    assert set(calls(tmp_path)) == {str(k) for k in range(1, 9)}


def test_changed_setting_recomputes_only_affected(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2, 3]})
    save_dir = tmp_path / "out"
    assert luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path).returncode == 0
    assert calls(tmp_path) == Counter({"1": 1, "2": 1, "3": 1})
    mtimes = {d.name: (d / "config.json").stat().st_mtime_ns for d in complete_dirs(save_dir)}
    (tmp_path / "settings.json").write_text(json.dumps({"scales": [1, 2, 3], "fees": {"1": 0.0}}))
    rerun = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = {d.name: (d / "config.json").stat().st_mtime_ns for d in complete_dirs(save_dir)}
    assert [n for n in mtimes if after[n] != mtimes[n]] == ["cfg1"]
    # The fee is no alpha input: cfg1's alpha comes from the panel cache.
    assert calls(tmp_path) == Counter({"1": 1, "2": 1, "3": 1})
    assert "cfg1: saved results have another fingerprint" in rerun.stderr
    saved = json.loads((save_dir / "cfg1" / "config.json").read_text())
    assert saved["trading_fee_rate"] == 0.0


def test_failing_config_others_complete_nonzero_exit(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2, 3], "fail": [1]})
    save_dir = tmp_path / "out"
    result = luigi(sweep_args(spec, save_dir, "--workers", "2", "--local-scheduler"), tmp_path)
    assert result.returncode != 0
    assert sorted(d.name for d in complete_dirs(save_dir)) == ["cfg0", "cfg2"]
    log = (save_dir / "errors.log").read_text()
    assert "config 'cfg1' failed" in log and "Traceback" in log
    assert "planted failure for scale=2" in log
    table = pd.read_csv(save_dir / "comparison.csv")
    assert sorted(table["name"]) == ["cfg0", "cfg2"]
    # A rerun retries only the failed config (and still fails).
    again = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path)
    assert again.returncode != 0
    assert calls(tmp_path) == Counter({"1": 1, "2": 2, "3": 1})


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_num_processes_path_matches_workers_path(tmp_path: Path, start_method: str) -> None:
    spec = write_spec(tmp_path, {"scales": [1, -1, 2, 3]})
    a, b = tmp_path / "workers", tmp_path / "pool"
    env = {"ALPHADEV_START_METHOD": start_method}
    assert luigi(sweep_args(spec, a, "--workers", "2", "--local-scheduler"),
                 tmp_path, env).returncode == 0
    pooled = luigi(sweep_args(spec, b, "--num-processes", "2", "--local-scheduler"), tmp_path,
                   env)
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    for folder in complete_dirs(a):
        for name in ("returns", "positions", "trades"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(folder / "sequences" / f"{name}.parquet"),
                pd.read_parquet(b / folder.name / "sequences" / f"{name}.parquet"),
            )
    before = calls(tmp_path)
    again = luigi(sweep_args(spec, b, "--num-processes", "2", "--local-scheduler"), tmp_path,
                  env)
    assert again.returncode == 0
    assert calls(tmp_path) == before


def test_waves_with_the_local_scheduler(tmp_path: Path) -> None:
    """--wave-size 3 over 8 configs: three waves of dynamic dependencies, each config once."""
    spec = write_spec(tmp_path, {"scales": list(range(1, 9))})
    save_dir = tmp_path / "out"
    result = luigi(sweep_args(spec, save_dir, "--workers", "2", "--local-scheduler",
                              "--wave-size", "3"), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SweepWave" in result.stderr
    assert len(complete_dirs(save_dir)) == 8
    assert calls(tmp_path) == Counter({str(k): 1 for k in range(1, 9)})
    assert len(pd.read_csv(save_dir / "comparison.csv")) == 8


def test_spec_as_import_path_and_missing_file(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "pkgroot", {"scales": [1, 2]}, function="grid")
    (tmp_path / "pkgroot" / "mysweeps.py").write_text(spec.read_text())
    env = {"PYTHONPATH": str(tmp_path / "pkgroot")}
    result = luigi(["Sweep", "--spec", "mysweeps:grid", "--save-dir", str(tmp_path / "out"),
                    "--local-scheduler"], tmp_path, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(complete_dirs(tmp_path / "out")) == 2

    missing = luigi(["Sweep", "--spec", "nope/sweep.py", "--save-dir", str(tmp_path / "o2"),
                     "--local-scheduler"], tmp_path)
    assert missing.returncode != 0
    lines = [line for line in missing.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("alphadev: spec file 'nope/sweep.py' does not exist")
    assert "Traceback" not in missing.stderr

    broken = tmp_path / "broken.py"
    broken.write_text("import math\n\ndef sweep():\n    return 1 / 0\n")
    bad = luigi(["Sweep", "--spec", str(broken), "--save-dir", str(tmp_path / "o3"),
                 "--local-scheduler"], tmp_path)
    assert bad.returncode != 0
    assert "ZeroDivisionError" in bad.stderr and "broken.py" in bad.stderr


# ---------------------------------------------------------------------- integrity
def _table(save_dir: Path) -> pd.DataFrame:
    table = pd.read_csv(save_dir / "comparison.csv")
    return table.sort_values("name").reset_index(drop=True)


@pytest.fixture(scope="module")
def clean_sweep(tmp_path_factory) -> tuple[Path, Path]:
    """One finished 3-config sweep (spec, save_dir); tests rerun it on copies of save_dir."""
    folder = tmp_path_factory.mktemp("clean")
    spec = write_spec(folder, {"scales": [1, 2, 3]})
    result = luigi(sweep_args(spec, folder / "out", "--local-scheduler"), folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return spec, folder / "out"


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_damaged_folder_is_recomputed_by_the_sweep(
    clean_sweep: tuple[Path, Path], tmp_path: Path, corruption: str
) -> None:
    spec, clean = clean_sweep
    save_dir = tmp_path / "out"
    shutil.copytree(clean, save_dir)
    original = json.loads((save_dir / "cfg1" / "config.json").read_text())
    original.pop("manifest", None)  # metadata.json (runtime) differs between two runs
    CORRUPTIONS[corruption](save_dir / "cfg1")
    untouched = {n: (save_dir / n / "config.json").stat().st_mtime_ns for n in ("cfg0", "cfg2")}

    rerun = luigi(sweep_args(spec, save_dir, "--local-scheduler"), spec.parent)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"results folder {save_dir / 'cfg1'} is damaged" in rerun.stderr
    assert_whole(save_dir / "cfg1")
    assert check_folder(save_dir / "cfg1").problem is None
    restored = json.loads((save_dir / "cfg1" / "config.json").read_text())
    restored.pop("manifest")
    assert restored == original
    assert untouched == {n: (save_dir / n / "config.json").stat().st_mtime_ns
                         for n in ("cfg0", "cfg2")}
    pd.testing.assert_frame_equal(_table(save_dir), _table(clean))
    again = luigi(sweep_args(spec, save_dir, "--local-scheduler"), spec.parent)
    assert again.returncode == 0 and "Did not run any tasks" in again.stderr


def test_older_comparison_is_rebuilt(clean_sweep: tuple[Path, Path], tmp_path: Path) -> None:
    """Killed between the last config and the summary: comparison.csv is an older one."""
    spec, clean = clean_sweep
    save_dir = tmp_path / "out"
    shutil.copytree(clean, save_dir)
    older = _table(save_dir)
    # cfg1's row comes from an earlier result (another fingerprint, other numbers) and
    # cfg2 had not finished when that table was written.
    older.loc[older["name"] == "cfg1", ["fingerprint", "sharpe"]] = ["0" * 32, 99.0]
    older[older["name"] != "cfg2"].to_csv(save_dir / "comparison.csv", index=False)
    rerun = luigi(sweep_args(spec, save_dir, "--local-scheduler"), spec.parent)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    pd.testing.assert_frame_equal(_table(save_dir), _table(clean))


def test_configs_recomputed_outside_the_sweep_rebuild_the_table(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2, 3]})
    save_dir = tmp_path / "out"
    assert luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path).returncode == 0
    before = _table(save_dir)
    # A script recomputes cfg1 with another fee, straight through run_all(save_dir=...).
    (tmp_path / "settings.json").write_text(json.dumps({"scales": [1, 2, 3], "fees": {"1": 0.0}}))
    script = (
        "from alphadev import Backtester\nfrom alphadev.spec import load_spec\n"
        f"bt = Backtester()\nfor c in load_spec({str(spec)!r}):\n    bt.add_config(c)\n"
        f"results = bt.run_all(verbose=False, save_dir={str(save_dir)!r})\n"
        "assert all(r is not None for r in results)\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, timeout=300)
    rerun = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _table(save_dir)
    saved = json.loads((save_dir / "cfg1" / "config.json").read_text())
    assert after.set_index("name").loc["cfg1", "fingerprint"] == saved["fingerprint"]
    assert after.set_index("name").loc["cfg1", "total_fees"] == 0.0
    assert before.set_index("name").loc["cfg1", "fingerprint"] != saved["fingerprint"]
    pd.testing.assert_frame_equal(after[after["name"] != "cfg1"].reset_index(drop=True),
                                  before[before["name"] != "cfg1"].reset_index(drop=True),
                                  check_exact=False)


def test_num_processes_failure_is_logged_once(tmp_path: Path) -> None:
    """The pool logs the traceback; the failure marker adds no second entry."""
    spec = write_spec(tmp_path, {"scales": [1, 2, 3], "fail": [1]})
    save_dir = tmp_path / "out"
    result = luigi(sweep_args(spec, save_dir, "--num-processes", "2", "--local-scheduler"),
                   tmp_path)
    assert result.returncode != 0
    log = (save_dir / "errors.log").read_text()
    entries = [line for line in log.splitlines() if line.startswith("=== ")]
    assert len(entries) == 1 and "config 'cfg1' failed" in log and "Traceback" in log
    assert "see the traceback above" not in log
    marker = json.loads((save_dir / ".failed" / "cfg1.json").read_text())
    assert marker["name"] == "cfg1"
    assert sorted(pd.read_csv(save_dir / "comparison.csv")["name"]) == ["cfg0", "cfg2"]


@pytest.mark.parametrize("wave_size", [None, "2"])
def test_failed_config_is_failed_in_luigi_and_summarised(tmp_path: Path, wave_size) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2, 3, 4], "fail": [1]})
    save_dir = tmp_path / "out"
    waves = ["--wave-size", wave_size] if wave_size else []
    result = luigi(sweep_args(spec, save_dir, "--workers", "2", "--local-scheduler", *waves),
                   tmp_path)
    assert result.returncode == 30, result.stderr[-3000:]
    # Luigi's own summary names the config as failed (not the Sweep).
    failed_part = result.stderr.split("failed:")[1].split("*")[0]
    assert "BacktestTask" in failed_part and "cfg1" in failed_part
    assert "Sweep" not in failed_part
    assert "1 config(s) FAILED" in result.stdout and "cfg1" in result.stdout
    assert result.stdout.count("alphadev sweep") == 1  # the summary is printed once
    table = _table(save_dir)
    assert list(table["name"]) == ["cfg0", "cfg2", "cfg3"]
    assert table["fingerprint"].str.len().eq(32).all()
    # A new invocation retries the failed config (and only it).
    before = calls(tmp_path)
    again = luigi(sweep_args(spec, save_dir, "--local-scheduler", *waves), tmp_path)
    assert again.returncode == 30
    assert calls(tmp_path) - before == Counter({"2": 1})


def test_nothing_completes_header_only_table(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2], "fail": [0, 1]})
    save_dir = tmp_path / "out"
    result = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path)
    assert result.returncode == 30
    table = pd.read_csv(save_dir / "comparison.csv")
    assert list(table.columns) == ["name", "alpha_class", "fingerprint"] and table.empty
    assert "2 config(s) FAILED" in result.stdout


RETRY_SCRIPT = '''
import json, sys
from pathlib import Path
import luigi
import pipelines

spec, save_dir, broken = sys.argv[1:]
first = luigi.build([pipelines.Sweep(spec=spec, save_dir=save_dir)], local_scheduler=True)
Path(broken).unlink()  # the cause is fixed
second = luigi.build([pipelines.Sweep(spec=spec, save_dir=save_dir)], local_scheduler=True)
print(json.dumps({"first": first, "second": second}))
'''


def test_failed_config_is_retried_in_the_same_process(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2, 3]})
    save_dir = tmp_path / "out"
    (tmp_path / "broken2").touch()  # cfg1 (scale 2) fails until this file is removed
    proc = subprocess.run(
        [sys.executable, "-c", RETRY_SCRIPT, str(spec), str(save_dir),
         str(tmp_path / "broken2")], cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome == {"first": False, "second": True}
    assert calls(tmp_path) == Counter({"1": 1, "2": 2, "3": 1})
    assert_whole(save_dir / "cfg1")
    assert sorted(_table(save_dir)["name"]) == ["cfg0", "cfg1", "cfg2"]
    assert not (save_dir / ".failed" / "cfg1.json").exists()


@pytest.mark.parametrize(("flag", "value", "allowed"), [
    ("--wave-size", "0", ">= 1"), ("--wave-size", "-3", ">= 1"), ("--top", "-1", ">= 0"),
    ("--batch-size", "0", ">= 1"),
    ("--num-processes", "0", "-1 (one process per CPU) or an integer >= 1"),
])
def test_bad_sweep_parameters(tmp_path: Path, flag: str, value: str, allowed: str) -> None:
    spec = write_spec(tmp_path, {"scales": [1]})
    result = luigi(sweep_args(spec, tmp_path / "out", "--local-scheduler", flag, value),
                   tmp_path)
    assert result.returncode == 1
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"alphadev: Sweep {flag} {value} is invalid: it must be")
    assert allowed in last
    assert not calls(tmp_path)


def test_second_identical_command_exits_already_running(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2], "hold_after": 0})
    args = [LUIGI, "--module", "pipelines",
            *sweep_args(spec, tmp_path / "out", "--local-scheduler")]
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not calls(tmp_path):  # the first command is inside a config (held)
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 10, second.stdout + second.stderr
        assert "already running" in second.stdout
    finally:
        (tmp_path / "release").touch()
        assert first.wait(120) == 0
