"""The Luigi ``Report`` task and the CLI report share ``report.html``: the task is
complete only when the file holds IC decay and factor sequences of every detailed
config.  Runs record them (docs/semantics.md#signal-series), so the task never runs the
alpha again for them; for results saved without them (older alphadev) it writes them,
and a CLI report written first from such results does not stop it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alphadev.report import report_contents
from tests.conftest import write_market

REPO = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")

SPEC = '''
import datetime as dt
import os
from alphadev import Alpha, BacktestConfig, Backtester, CSVDataLoader

class Echo(Alpha):
    lookback = 60

    def __init__(self, scale=1.0):
        self.scale = scale

    def reset(self):
        pass

    def compute(self, data):
        if os.path.exists({marker!r}):
            raise RuntimeError("the alpha ran again")
        return (data[["value"]] * self.scale).rename(columns={{"value": "alpha"}})

def sweep():
    base = BacktestConfig(
        name="echo", alpha_class=Echo, alpha_kwargs={{}},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 4),
        symbols=["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"],
        price_loader=CSVDataLoader({prices!r}, "close"),
        alpha_loaders=[CSVDataLoader({values!r}, "value")], beta_csv_path=None,
    )
    bt = Backtester()
    bt.add_multiple_configs(base, {{"scale": [1.0, -1.0]}})
    return bt
'''


def luigi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LUIGI, "--module", "pipelines", *args, "--local-scheduler"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_cli_report_does_not_complete_the_report_task(tmp_path):
    data = write_market(tmp_path / "data", days=5)
    spec = tmp_path / "spec.py"
    spec.write_text(SPEC.format(prices=str(data / "prices.csv"), values=str(data / "values.csv"),
                                marker=str(tmp_path / "no-more-runs")))
    save_dir = tmp_path / "out"
    args = ("--spec", str(spec), "--save-dir", str(save_dir))
    done = luigi("Sweep", *args)
    assert done.returncode == 0, done.stderr[-3000:]

    for folder in save_dir.glob("echo*"):  # as an alphadev that did not record them saved it
        for name in ("ic_decay.parquet", "quantile_returns.parquet", "factor_sequences.parquet"):
            (folder / "sequences" / name).unlink()
    cli = subprocess.run([sys.executable, "-m", "alphadev", "report", str(save_dir), "--top", "2"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert report_contents(save_dir / "report.html") == {
        "top": 2, "detailed": 2, "ic-decay": 0, "factor": 0}

    task = luigi("Report", *args, "--top", "2")
    assert task.returncode == 0, task.stderr[-3000:]
    assert "Report(" in task.stderr and "ran successfully" in task.stderr
    assert report_contents(save_dir / "report.html") == {
        "top": 2, "detailed": 2, "ic-decay": 2, "factor": 2}
    for folder in save_dir.glob("echo*"):
        assert (folder / "sequences" / "ic_decay.parquet").is_file()
        assert (folder / "sequences" / "factor_sequences.parquet").is_file()

    again = luigi("Report", *args, "--top", "2")
    assert again.returncode == 0 and "Did not run any tasks" in again.stderr


def test_report_task_uses_the_recorded_series_without_running_the_alpha(tmp_path):
    data = write_market(tmp_path / "data", days=5)
    spec = tmp_path / "spec.py"
    marker = tmp_path / "no-more-runs"
    spec.write_text(SPEC.format(prices=str(data / "prices.csv"), values=str(data / "values.csv"),
                                marker=str(marker)))
    save_dir = tmp_path / "out"
    args = ("--spec", str(spec), "--save-dir", str(save_dir))
    assert luigi("Sweep", *args).returncode == 0
    marker.write_text("the alpha must not run again")
    task = luigi("Report", *args, "--top", "2")
    assert task.returncode == 0, task.stderr[-3000:]
    assert "ran successfully" in task.stderr
    assert report_contents(save_dir / "report.html") == {
        "top": 2, "detailed": 2, "ic-decay": 2, "factor": 2}


def test_report_task_rebuilds_after_a_config_changed(tmp_path):
    data = write_market(tmp_path / "data", days=5)
    spec = tmp_path / "spec.py"
    spec.write_text(SPEC.format(prices=str(data / "prices.csv"), values=str(data / "values.csv"),
                                marker=str(tmp_path / "no-more-runs")))
    save_dir = tmp_path / "out"
    args = ("--spec", str(spec), "--save-dir", str(save_dir), "--top", "2")
    first = luigi("Report", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "echo__scale=-1.0" in (save_dir / "report.html").read_text()

    spec.write_text(spec.read_text().replace("[1.0, -1.0]", "[1.0, -2.0]"))
    again = luigi("Report", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "ran successfully" in again.stderr
    html = (save_dir / "report.html").read_text()
    assert "echo__scale=-2.0" in html
    assert report_contents(save_dir / "report.html") == {
        "top": 2, "detailed": 2, "ic-decay": 2, "factor": 2}
