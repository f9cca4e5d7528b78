"""Scheduling units: a Luigi sweep hands its configs to the scheduler in batches (one
task process and one dispatch per unit), each config still a task with its own output.
Real luigi processes, real task processes, real kill -9."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pytest

from pipelines.tasks import UNITS_PER_PROCESS, unit_size
from tests.pipelines.test_watch import progress_lines, run_luigi, write_spec

PID_LOG = "        open({log!r}, 'a').write(f'{{self.scale}} {{os.getpid()}}\\n')\n"
KILLER = ("        if self.scale == {scale} and not os.environ.get('NO_KILL'):\n"
          "            os.kill(os.getpid(), signal.SIGKILL)\n")


def logged_spec(folder: Path, n: int, fail: tuple = (), kill_scale: float | None = None) -> Path:
    """The watch tests' spec, whose alpha logs ``scale pid`` on every compute() and, with
    ``kill_scale``, kills its own task process on that config."""
    spec = write_spec(folder, n, fail)
    body = PID_LOG.format(log=str(folder / "pids.log"))
    if kill_scale is not None:
        body += KILLER.format(scale=kill_scale)
    text = spec.read_text().replace("import datetime as dt\n",
                                    "import datetime as dt\nimport os\nimport signal\n")
    spec.write_text(text.replace("    def compute(self, data):\n",
                                 "    def compute(self, data):\n" + body))
    return spec


def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The save_dir, and a working folder with no luigi.cfg."""
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "out", tmp_path / "elsewhere"


def computed(folder: Path) -> list[tuple[int, int]]:
    """(config index, task process id) of every compute() call, in order; a planted
    failure (scale -1) is logged as index -1."""
    path = folder / "pids.log"
    if not path.exists():
        return []
    pairs = [line.split() for line in path.read_text().splitlines()]
    return [(-1 if float(scale) < 0 else round((float(scale) - 1) * 100), int(pid))
            for scale, pid in pairs]


def test_unit_size_gives_every_worker_process_several_units() -> None:
    assert unit_size(12, 50) == 1  # a small sweep: one task (process) per config
    assert unit_size(64, 50) == 64 // UNITS_PER_PROCESS
    assert unit_size(30_000, 50) == 50
    assert unit_size(30_000, 1) == 1
    assert unit_size(0, 50) == 1


@pytest.mark.parametrize(("extra", "unit"), [
    ((), 4),  # 64 configs / (8 units per process x 2 processes)
    (("--batch-size", "3"), 3),
    (("--batch-size", "1"), 1),
    (("--wave-size", "16"), 4),  # waves keep the sweep's unit
])
def test_each_unit_runs_in_one_task_process(tmp_path: Path, extra: tuple, unit: int) -> None:
    n = 64
    spec = logged_spec(tmp_path / "spec", n)
    save_dir, cwd = folders(tmp_path)
    run = run_luigi(spec, save_dir, cwd, "--workers", "2", *extra)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{n} of {n} configs done" in run.stdout
    calls = computed(tmp_path / "spec")
    assert sorted(k for k, _ in calls) == list(range(n))  # each config computed once
    by_unit = defaultdict(list)
    for k, _ in calls:
        by_unit[k // unit].append(k)
    assert all(ks == sorted(ks) for ks in by_unit.values())  # in the spec's order
    by_pid = defaultdict(set)
    for k, pid in calls:
        by_pid[pid].add(k // unit)
    assert all(len(units) == 1 for units in by_pid.values())  # a process runs one unit
    assert len(by_pid) == -(-n // unit)  # and every unit has a process of its own
    assert len(pd.read_csv(save_dir / "comparison.csv")) == n
    last = progress_lines(run.stderr)[-1]
    assert (last["done"], last["failed"], last["left"]) == (str(n), "0", "0")

    again = run_luigi(spec, save_dir, cwd, "--workers", "2", *extra)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(computed(tmp_path / "spec")) == n  # a rerun runs nothing


def test_a_failed_config_fails_its_batch_in_luigi_only(tmp_path: Path) -> None:
    """32 configs, one process: units of 4.  cfg005 fails; its batch-mates are done, the
    summary names only cfg005 and a rerun computes only cfg005 again."""
    spec = logged_spec(tmp_path / "spec", 32, fail=(5,))
    save_dir, cwd = folders(tmp_path)
    run = run_luigi(spec, save_dir, cwd, "--workers", "1")
    assert run.returncode == 30, run.stderr[-3000:]
    assert "1 of the 4 configs of this Luigi batch failed" in run.stderr
    assert "31 of 32 configs done" in run.stdout
    assert "1 config(s) FAILED" in run.stdout and "cfg005" in run.stdout
    table = pd.read_csv(save_dir / "comparison.csv")
    assert sorted(table["name"]) == [f"cfg{k:03d}" for k in range(32) if k != 5]
    assert sorted(p.name for p in (save_dir / ".failed").iterdir()) == ["cfg005.json"]
    errors = (save_dir / "errors.log").read_text()
    assert "planted failure" in errors and "cfg004" not in errors
    last = progress_lines(run.stderr)[-1]
    assert (last["done"], last["failed"], last["left"]) == ("31", "1", "0")

    before = Counter(k for k, _ in computed(tmp_path / "spec"))
    again = run_luigi(spec, save_dir, cwd, "--workers", "1")
    assert again.returncode == 30
    assert Counter(k for k, _ in computed(tmp_path / "spec")) - before == Counter({-1: 1})


@pytest.mark.parametrize(("killed", "casualties"), [(5, ["cfg005"]),
                                                    (4, ["cfg004", "cfg005"])])
def test_a_batch_process_killed_mid_unit(tmp_path: Path, killed: int,
                                         casualties: list[str]) -> None:
    """32 configs, two processes: units of 2 (cfg004 and cfg005 are one).  kill -9 of the
    unit's process on cfg005 keeps cfg004 done; on cfg004, cfg005 dies with it.  The dead
    configs are counted and recorded as failed, the last config writes the summary, and
    a rerun computes exactly them."""
    spec = logged_spec(tmp_path / "spec", 32, kill_scale=1.0 + killed / 100)
    save_dir, cwd = folders(tmp_path)
    run = run_luigi(spec, save_dir, cwd, "--workers", "2")
    assert run.returncode == 30, run.stderr[-3000:]
    assert "died unexpectedly" in run.stderr
    n_done = 32 - len(casualties)
    assert f"{n_done} of 32 configs done" in run.stdout
    assert f"{len(casualties)} config(s) FAILED" in run.stdout
    assert sorted(p.stem for p in (save_dir / ".failed").iterdir()) == casualties
    errors = (save_dir / "errors.log").read_text()
    assert all(f"config '{name}' failed: Task" in errors for name in casualties)
    assert len(pd.read_csv(save_dir / "comparison.csv")) == n_done
    last = progress_lines(run.stderr)[-1]
    assert (last["done"], last["failed"], last["left"]) == (str(n_done), str(len(casualties)),
                                                            "0")
    before = Counter(k for k, _ in computed(tmp_path / "spec"))
    again = run_luigi(spec, save_dir, cwd, "--workers", "2", env_extra={"NO_KILL": "1"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert "32 of 32 configs done" in again.stdout
    recomputed = Counter(k for k, _ in computed(tmp_path / "spec")) - before
    assert recomputed == Counter({int(name[3:]): 1 for name in casualties})
