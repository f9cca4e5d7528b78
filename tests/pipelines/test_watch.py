"""Watching a long sweep: progress lines, log size, the notice, the all-done rerun.

Real ``luigi`` processes started from a folder without the repository's luigi.cfg, and
real ``run_all`` processes whose output goes to a file or to a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.progress import LineDue, progress_line
from alphadev.validation import ParameterError
from tests.conftest import write_market

REPO = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")
NOTICE = "Synthetic data: a planted signal, not a real edge."
PROGRESS = re.compile(
    r"^(?:INFO: )?\[\d\d:\d\d:\d\d\] (?P<label>.+?): (?P<done>\d+)/(?P<total>\d+) done, "
    r"(?P<failed>\d+) failed, (?P<left>\d+) left, (?:[\d.e+]+ configs/s|[\d.e+]+ s/config|"
    r"ETA unknown)(?:, ETA (?P<eta>\d+:\d\d:\d\d))?"
)

SPEC = '''
import datetime as dt
from pathlib import Path

from alphadev import Alpha, BacktestConfig, Backtester, CSVDataLoader

DATA = Path({data!r})


class Scaled(Alpha):
    """The value column tilted by price level (more with ``scale``, so each config has
    its own IC); ``scale < 0`` is a planted failure."""

    lookback = 60

    def __init__(self, scale=1.0):
        self.scale = scale

    def reset(self):
        pass

    def compute(self, data):
        if self.scale < 0:
            raise ValueError(f"planted failure for scale={{self.scale}}")
        tilt = (self.scale - 1) * 1e-4 * data["close"]
        return (data["value"] + tilt).rename("alpha").to_frame()


def sweep():
    base = BacktestConfig(
        name="cfg", alpha_class=Scaled, alpha_kwargs={{}},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 3),
        symbols=["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"],
        price_loader=CSVDataLoader(str(DATA / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(DATA / "values.csv"), "value")],
        beta_csv_path=str(DATA / "beta.csv"),
    )
    bt = Backtester({notice})
    for k in range({n}):
        scale = -1.0 if k in {fail!r} else 1.0 + k / 100
        bt.add_config(base.replace(name=f"cfg{{k:03d}}", alpha_kwargs={{"scale": scale}}))
    return bt
'''


def write_spec(folder: Path, n: int, fail: tuple = (), notice: str | None = NOTICE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = write_market(folder / "data", days=4)
    spec = folder / "spec.py"
    spec.write_text(SPEC.format(data=str(data), n=n, fail=list(fail),
                                notice="" if notice is None else f"notice={notice!r}"))
    return spec


def run_luigi(spec: Path, save_dir: Path, cwd: Path, *extra: str,
              env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """``luigi --module pipelines Sweep`` with no luigi.cfg in sight (Luigi's defaults)."""
    env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
    env.update(env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    assert not (cwd / "luigi.cfg").exists()
    return subprocess.run(
        [LUIGI, "--module", "pipelines", "Sweep", "--spec", str(spec), "--save-dir",
         str(save_dir), "--local-scheduler", *extra],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def progress_lines(text: str) -> list[re.Match]:
    return [m for m in map(PROGRESS.match, text.splitlines()) if m]


def test_luigi_sweep_of_200_configs_logs_progress_and_about_a_line_per_config(
    tmp_path: Path,
) -> None:
    n, failing = 200, (17, 150)
    spec = write_spec(tmp_path / "spec", n, failing)
    save_dir = tmp_path / "out"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    run = run_luigi(spec, save_dir, cwd, "--workers", "2")
    assert run.returncode == 30, run.stderr[-3000:]  # task_failed: two configs failed
    output = run.stdout + run.stderr

    assert "DEBUG" not in output
    assert "Informed scheduler" not in output
    assert "Checking if" not in output
    # One line per config we ran, a progress line every 1/20 of them, and the
    # failures' reports; Luigi's default (DEBUG) printed about 9 lines per config.
    done_lines = [ln for ln in output.splitlines() if re.search(r"config cfg\d+ done$", ln)]
    assert len(done_lines) == n - len(failing)
    # configs, progress lines, leaderboard and summary, each failure's two tracebacks
    budget = n + 20 + 40 + 50 * len(failing)
    assert len(output.splitlines()) <= budget, output[:3000]

    lines = progress_lines(run.stderr)
    assert len(lines) >= 15, run.stderr[-3000:]
    finished = [int(m["done"]) + int(m["failed"]) for m in lines]
    assert finished == sorted(finished)
    for m in lines:
        assert m["label"] == f"sweep {save_dir}"
        assert int(m["total"]) == n
        assert int(m["done"]) + int(m["failed"]) + int(m["left"]) == n
        assert m["eta"] is not None
    last = lines[-1]
    assert (int(last["done"]), int(last["failed"]), int(last["left"])) == (198, 2, 0)
    assert last["eta"] == "0:00:00"
    # The leaderboard of a sweep with failures carries the notice above it.
    assert f"NOTE: {NOTICE}" in run.stdout
    assert run.stdout.index(f"NOTE: {NOTICE}") < run.stdout.index("configs done")
    assert (save_dir / "notice.txt").read_text().strip() == NOTICE


def test_rerun_of_a_finished_sweep_prints_notice_and_leaderboard(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", 3)
    save_dir = tmp_path / "out"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    first = run_luigi(spec, save_dir, cwd)
    assert first.returncode == 0, first.stderr[-3000:]
    assert progress_lines(first.stderr)[-1]["done"] == "3"
    assert (save_dir / "notice.txt").read_text().strip() == NOTICE
    (save_dir / "notice.txt").unlink()

    again = run_luigi(spec, save_dir, cwd)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Did not run any tasks" in again.stderr
    best = pd.read_csv(save_dir / "comparison.csv").sort_values("sharpe").iloc[-1]["name"]
    board = again.stdout
    assert "3 of 3 configs done" in board and best in board
    assert board.index(f"NOTE: {NOTICE}") < board.index("3 of 3 configs done")
    assert (save_dir / "notice.txt").read_text().strip() == NOTICE


RUN_ALL = '''
import sys
sys.path.insert(0, {spec_dir!r})
from spec import sweep

bt = sweep()
bt.run_all(save_dir={save_dir!r}, err_path={err!r}, num_processes={procs})
'''


def run_all_script(tmp_path: Path, n: int, fail: tuple, procs: int) -> Path:
    spec = write_spec(tmp_path / "spec", n, fail)
    script = tmp_path / "go.py"
    script.write_text(RUN_ALL.format(spec_dir=str(spec.parent), save_dir=str(tmp_path / "out"),
                                     err=str(tmp_path / "errors.log"), procs=procs))
    return script


def test_run_all_into_a_file_writes_plain_progress_lines(tmp_path: Path) -> None:
    n = 60
    script = run_all_script(tmp_path, n, (5,), 2)
    log = tmp_path / "nohup.out"
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=300, env={
                                  **os.environ, "PYTHONPATH": str(REPO)})
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    assert "\r" not in text and "\x1b" not in text
    lines = progress_lines(text)
    assert len(lines) >= 10, text[-3000:]
    assert all(m["label"] == "configs" for m in lines)
    assert (lines[0]["done"], lines[-1]["done"], lines[-1]["failed"]) == ("0", str(n - 1), "1")
    assert "best IC" in lines[-1].string and "Sharpe of that config" in lines[-1].string
    summary = f"run_all: {n - 1} of {n} configs done, 1 failed"
    assert summary in text
    assert text.index(f"NOTE: {NOTICE}") < text.index(summary)
    assert (tmp_path / "out" / "notice.txt").read_text().strip() == NOTICE


def test_progress_bar_labels_the_sharpe_as_that_of_the_best_ic_config(tmp_path: Path) -> None:
    script = run_all_script(tmp_path, 6, (), 2)
    leader, follower = pty.openpty()  # stderr is a terminal: tqdm draws its bars
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    with subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=follower, env={**os.environ, "PYTHONPATH": str(REPO)}) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert proc.wait(120) == 0
    os.close(leader)
    bar = b"".join(chunks).decode(errors="replace")
    assert "\r" in bar  # a real bar, not plain lines
    assert not progress_lines(bar)
    metrics = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*/metrics.json")]
    assert len(metrics) == 6
    best = max(metrics, key=lambda m: m["ic_mean"])
    assert len({round(m["ic_mean"], 4) for m in metrics}) > 1
    label = (f"best IC {best['ic_mean']:.4f} (Sharpe of that config "
             f"{best['total']['sharpe']:.2f})")
    assert label in bar
    assert "sharpe=" not in bar
    assert label in out


TWO_BUILDS = '''
import sys
import luigi
import pipelines

spec, save_dir = sys.argv[1:]
for _ in range(2):
    luigi.build([pipelines.Sweep(spec=spec, save_dir=save_dir)], local_scheduler=True)
    print("--- invocation over", file=sys.stderr, flush=True)
'''


def test_progress_restarts_with_each_invocation_in_one_process(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", 4, fail=(1,))
    save_dir = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", TWO_BUILDS, str(spec), str(save_dir)], cwd=tmp_path,
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second, _ = proc.stderr.split("--- invocation over")
    for text in (first, second):  # the retried config fails again: counted once
        last = progress_lines(text)[-1]
        assert (last["done"], last["failed"], last["left"]) == ("3", "1", "0"), text[-2000:]
    assert len(progress_lines(second)) == 1  # only the retried config finished


def test_progress_line_counts_rate_and_eta() -> None:
    # 100 configs finished in 50 s: 2 configs/s, 78 left: 39 s to go.
    line = progress_line("sweep runs/x", 120, 2, 200, 100, 50.0)
    m = PROGRESS.match(line)
    assert m is not None, line
    assert line.endswith("sweep runs/x: 120/200 done, 2 failed, 78 left, 2 configs/s, "
                         "ETA 0:00:39")
    slow = progress_line("configs", 3, 0, 10, 3, 90.0)  # 30 s per config
    assert slow.endswith("3/10 done, 0 failed, 7 left, 30 s/config, ETA 0:03:30")
    assert progress_line("configs", 5, 0, 10, 0, 0.0).endswith("5 left, ETA unknown")


def test_line_due_every_twentieth_of_the_configs_and_at_the_end() -> None:
    due = LineDue(200, every_seconds=300.0)
    shown = [k for k in range(1, 201) if due(k, k - 1, 0.0, 1.0)]
    assert shown == list(range(10, 201, 10))
    assert due(3, 2, 0.0, 301.0)  # five minutes without a line
    assert not due(200, 200, 0.0, 1000.0)  # the end is shown once


def test_notice_must_be_text() -> None:
    with pytest.raises(ParameterError, match=r"notice=3 is invalid: it must be a string"):
        Backtester(notice=3)  # type: ignore[arg-type]
    assert Backtester(notice="  ").notice is None
    assert Backtester(notice=NOTICE).notice == NOTICE


def test_config_whose_task_process_is_killed_still_ends_with_the_summary(
    tmp_path: Path,
) -> None:
    """A task process killed (kill -9, out of memory) is a failed config like any other:
    counted, recorded in errors.log, and the last config writes comparison.csv and the
    leaderboard; the rerun retries it."""
    spec = write_spec(tmp_path / "spec", 4)
    killer = "        if self.scale == 1.02 and not os.environ.get('NO_KILL'):\n" \
             "            os.kill(os.getpid(), signal.SIGKILL)\n"
    text = spec.read_text().replace("import datetime as dt\n",
                                    "import datetime as dt\nimport os\nimport signal\n")
    spec.write_text(text.replace("    def compute(self, data):\n",
                                 "    def compute(self, data):\n" + killer))
    save_dir = tmp_path / "out"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    run = run_luigi(spec, save_dir, cwd, "--workers", "2")
    assert run.returncode == 30, run.stderr[-3000:]
    assert "died unexpectedly" in run.stderr
    assert "3 of 4 configs done" in run.stdout
    assert "1 config(s) FAILED" in run.stdout and "cfg002" in run.stdout
    assert len(pd.read_csv(save_dir / "comparison.csv")) == 3
    assert "config 'cfg002' failed: Task" in (save_dir / "errors.log").read_text()
    last = progress_lines(run.stderr)[-1]
    assert (last["done"], last["failed"], last["left"]) == ("3", "1", "0")

    again = run_luigi(spec, save_dir, cwd, "--workers", "2", env_extra={"NO_KILL": "1"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert "4 of 4 configs done" in again.stdout


def test_two_invocations_on_one_save_dir_never_count_past_the_total(tmp_path: Path) -> None:
    """A second ``luigi`` started while the first runs joins its progress instead of
    resetting it, skips configs the first finished meanwhile, and no line counts more
    configs than the sweep has (before: ``14/10 done``)."""
    n = 10
    spec = write_spec(tmp_path / "spec", n, (4,))
    spec.write_text(spec.read_text().replace(
        "    def compute(self, data):\n",
        "    def compute(self, data):\n        import time\n        time.sleep(0.4)\n"))
    save_dir = tmp_path / "out"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])

    def start(workers: str) -> subprocess.Popen:
        return subprocess.Popen(
            [LUIGI, "--module", "pipelines", "Sweep", "--spec", str(spec), "--save-dir",
             str(save_dir), "--local-scheduler", "--workers", workers],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = start("1")
    while not list(save_dir.glob("cfg00[01]")) and first.poll() is None:
        time.sleep(0.05)
    second = start("2")  # another command line: Luigi's own lock does not stop it
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == second.returncode == 30, outputs[1][-3000:]
    lines = [m for out in outputs for m in progress_lines(out)]
    assert lines
    for m in lines:
        assert int(m["total"]) == n
        assert int(m["done"]) + int(m["failed"]) + int(m["left"]) == n, m.group(0)
    # The end is reached (a config both ran at once may count twice, never past n).
    assert max(int(m["done"]) + int(m["failed"]) for m in lines) == n
    assert json.loads((save_dir / ".progress.json").read_text())["total"] == n


@pytest.mark.parametrize("record", [
    '{"total": 5, "done": 1, "failed": 0}',  # keys missing
    '{"total": 5, "done": 1, "failed": 0, "start_done": 0, "started": "x", '
    '"last_time": 0, "last_finished": 0}',  # a field of the wrong type
    "[1, 2",  # not JSON
])
def test_damaged_progress_record_does_not_fail_the_config(tmp_path: Path, record: str) -> None:
    """``.progress.json`` damaged mid-sweep: counting a config gives no line, never an
    exception (which would fail a config whose results were saved)."""
    from alphadev import sweep

    (tmp_path / ".progress.json").write_text(record)
    assert sweep.count_finished(tmp_path, True, "sweep x") is None
    sweep.start_progress(tmp_path, 5, 1)
    tick = sweep.count_finished(tmp_path, True, "sweep x")
    assert tick is not None and "2/5 done" in tick.line


def test_notice_dropped_from_the_sweep_leaves_no_stale_notice_txt(tmp_path: Path) -> None:
    """The spec's notice was removed (real data now): notice.txt goes with it, so the
    report and the leaderboard stop showing it."""
    from alphadev.report import build_report
    from alphadev.spec import load_spec

    spec = write_spec(tmp_path / "spec", 1)
    configs = load_spec(str(spec.rename(spec.with_name("dropped_notice_spec.py"))))
    save_dir = tmp_path / "out"
    for notice in (NOTICE, None):
        bt = Backtester(notice=notice)
        bt.add_config(configs[0])
        assert bt.run_all(verbose=False, save_dir=save_dir)[0] is not None
    assert not (save_dir / "notice.txt").exists()
    assert NOTICE not in build_report(save_dir).read_text()
