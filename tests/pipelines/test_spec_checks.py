"""A Luigi sweep checks its loaders once, and says how to make an import-path spec work."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_market
from tests.pipelines.test_sweep import complete_dirs, luigi

TYPO_SPEC = '''
import datetime as dt
from alphadev import Backtester, BacktestConfig, CSVDataLoader
from tests.alphas import EchoAlpha

def sweep():
    base = BacktestConfig(
        name="k", alpha_class=EchoAlpha, alpha_kwargs={{}},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 6),
        symbols=["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"],
        price_loader=CSVDataLoader("{data}/prices.csv", "close"),
        alpha_loaders=[CSVDataLoader("{data}/values.csv", "valeu")],
        beta_csv_path="{data}/beta.csv",
    )
    bt = Backtester()
    bt.add_multiple_configs(base, {{"scale": [1.0, 2.0, 3.0, 4.0]}})
    return bt
'''


def test_column_typo_ends_the_sweep_with_one_message(tmp_path: Path) -> None:
    data = write_market(tmp_path / "data", days=6)
    spec = tmp_path / "typo.py"
    spec.write_text(TYPO_SPEC.format(data=data))
    save_dir = tmp_path / "out"
    root = Path(__file__).resolve().parents[2]
    done = luigi(["Sweep", "--spec", str(spec), "--save-dir", str(save_dir),
                  "--local-scheduler"], tmp_path, {"PYTHONPATH": str(root)})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.count("has no column 'valeu'") == 1
    assert "alphadev: spec" in done.stderr and "4 config(s): 'k__scale=1.0'" in done.stderr
    assert "set column_name (or source_column) to one of ['value']" in done.stderr
    assert not save_dir.exists() or complete_dirs(save_dir) == []


def test_spec_parameter_help_says_how_to_import_a_package(tmp_path: Path) -> None:
    shown = luigi(["Sweep", "--help"], tmp_path)
    assert "PYTHONPATH=." in " ".join(shown.stdout.split()), shown.stdout[-2000:]
