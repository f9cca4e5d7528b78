"""Results (and cached panels) saved before execution costs existed stay valid.

``tests/data/legacy_sweep/results`` was written by the code of that time
(``tests/data/legacy_sweep/make.py``); adding fields to BacktestConfig must not make
an overnight sweep recompute, and rerunning it must give the same numbers bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from alphadev import Backtester
from alphadev import cache as panel_cache
from alphadev.cache import panel_key
from alphadev.data.loaders import day_bounds
from alphadev.layout import ResultState, SweepDir
from alphadev.runner import run_backtest
from tests.data.legacy_sweep import make as legacy

SAVED = Path(legacy.__file__).parent


@pytest.fixture
def legacy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the saved sweep with the data files' recorded mtimes, as the cwd."""
    folder = tmp_path / "legacy"
    shutil.copytree(SAVED, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for name in ("prices.csv", "values.csv"):
        os.utime(folder / name, ns=(legacy.MTIME_NS, legacy.MTIME_NS))
    monkeypatch.chdir(folder)
    return folder


def test_saved_results_are_done_and_reload_unchanged(legacy_dir: Path) -> None:
    configs = legacy.configs()
    for config in configs:
        assert SweepDir.of("results").saved(config).state is ResultState.DONE, config.name
    bt = Backtester()
    for config in configs:
        bt.add_config(config)
    loaded = bt.run_all(save_dir="results", num_processes=1, verbose=False)
    for config, result in zip(configs, loaded):
        assert result is not None
        saved = json.loads((legacy_dir / "results" / config.name / "metrics.json").read_text())
        assert result.metrics == saved  # loaded, not recomputed
        assert (result.slippage == 0.0).all() and (result.funding == 0.0).all()


def test_rerun_gives_the_saved_numbers_bit_for_bit(legacy_dir: Path) -> None:
    for config in legacy.configs():
        fresh = run_backtest(config)
        saved = pd.read_parquet(legacy_dir / "results" / config.name / "sequences/returns.parquet")
        pd.testing.assert_frame_equal(fresh.sequences[saved.columns], saved, check_exact=True)
        assert (fresh.sequences["slippage"] == 0.0).all()
        assert (fresh.sequences["funding"] == 0.0).all()
        saved_metrics = json.loads(
            (legacy_dir / "results" / config.name / "metrics.json").read_text()
        )
        new_keys = {
            "total_slippage", "total_funding", "cost_breakdown",
            "sharpe_next_bar", "total_return_next_bar", "total_impact",
        }
        assert (fresh.sequences["impact"] == 0.0).all()
        assert {k: v for k, v in fresh.metrics.items() if k not in new_keys} == saved_metrics


def test_panel_cached_by_the_old_code_is_rebuilt_with_the_same_numbers(legacy_dir: Path) -> None:
    """``results/.cache/panels`` holds the panel the old code cached for q20_batch.

    It lacks the extra alpha row the next-bar book reads (docs/semantics.md#next-bar),
    so it is not read: the panel is built again, once, and the numbers are unchanged.
    """
    config = legacy.configs()[0]
    folder = legacy_dir / "results" / ".cache" / "panels"
    assert list(folder.glob("*.npz"))
    before = dict(panel_cache.STATS)
    result = run_backtest(config, cache_dir=folder)
    assert panel_cache.STATS["disk_hits"] == before["disk_hits"]
    assert panel_cache.STATS["computed"] == before["computed"] + 1
    saved = pd.read_parquet(legacy_dir / "results" / config.name / "sequences/returns.parquet")
    pd.testing.assert_frame_equal(result.sequences[saved.columns], saved, check_exact=True)


def test_new_fields_change_fingerprint_and_panel_key(legacy_dir: Path) -> None:
    config = legacy.configs()[0]
    start, end = day_bounds(config.start_date, config.end_date)
    key = panel_key(config, start, end)
    funding = legacy.CSVDataLoader("values.csv", "value")
    for change in (
        {"execution_delay": 1}, {"slippage_rate": 1e-4},
        {"slippage_rate": {s: 0.0 for s in legacy.SYMBOLS}}, {"funding_loader": funding},
        {"beta_loader": funding},
    ):
        changed = config.replace(**change)
        assert changed.fingerprint() != config.fingerprint(), change
        assert SweepDir.of("results").saved(changed).state is ResultState.STALE, change
        panel_changes = "slippage_rate" not in change
        assert (panel_key(changed, start, end) != key) == panel_changes, change
