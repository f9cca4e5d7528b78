"""The panel cache: one alpha computation per alpha-parameter set, invalidated by change."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev import cache as panel_cache
from alphadev.runner import run_backtest
from tests.alphas import CountingAlpha
from tests.conftest import make_config

SETTINGS = {"quantile": [(0.2, 0.2), (0.1, 0.3), (0.3, 0.3)], "trading_fee_rate": [0.0, 5e-4]}


@pytest.fixture(autouse=True)
def _empty_memory():
    panel_cache.clear_memory()
    yield
    panel_cache.clear_memory()


def _sweep(market: Path, log: Path, scales=(1.0,)) -> Backtester:
    bt = Backtester()
    base = make_config(market, alpha_class=CountingAlpha, alpha_kwargs={"log_path": str(log)})
    bt.add_multiple_configs(base, {"scale": list(scales)}, SETTINGS)
    return bt


def _calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.parametrize("save", [False, True])
def test_six_settings_compute_the_alpha_once(market: Path, tmp_path: Path, save: bool) -> None:
    log = tmp_path / "calls.log"
    bt = _sweep(market, log, scales=(1.0, 2.0))
    results = bt.run_all(verbose=False, save_dir=tmp_path / "out" if save else None)
    assert len(results) == 12 and all(r is not None for r in results)
    assert _calls(log) == 2  # one per alpha-parameter set, not one per config
    fees = {r.config.trading_fee_rate: r.metrics["total_fees"] for r in results[:2]}
    assert fees[0.0] == 0.0 and fees[5e-4] > 0.0


def test_pool_workers_share_the_disk_cache(market: Path, tmp_path: Path) -> None:
    """Two processes want the same panel at once: the lock lets one compute it."""
    log = tmp_path / "calls.log"
    pooled = _sweep(market, log).run_all(verbose=False, num_processes=2, save_dir=tmp_path / "o")
    assert _calls(log) == 1
    assert len(set(line.split()[0] for line in log.read_text().splitlines())) == 1
    panel_cache.clear_memory()
    plain = _sweep(market, tmp_path / "other.log").run_all(verbose=False)
    for x, y in zip(pooled, plain):
        pd.testing.assert_frame_equal(x.sequences, y.sequences)
    assert not [p for p in (tmp_path / "o" / ".cache" / "panels").iterdir()
                if p.name.startswith(".") and p.suffix == ".npz"]


def test_disk_cache_reused_and_invalidated(market: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    cache_dir = tmp_path / "cache"
    config = make_config(market, alpha_class=CountingAlpha, alpha_kwargs={"log_path": str(log)})
    first = run_backtest(config, cache_dir=cache_dir)
    assert _calls(log) == 1

    panel_cache.clear_memory()  # as in a fresh process
    cheaper = config.replace(trading_fee_rate=0.0)
    second = run_backtest(cheaper, cache_dir=cache_dir)
    assert _calls(log) == 1
    pd.testing.assert_series_equal(first.gross, second.gross)
    assert second.metrics["total_fees"] == 0.0

    panel_cache.clear_memory()
    run_backtest(config.replace(alpha_kwargs={"log_path": str(log), "scale": 3.0}),
                 cache_dir=cache_dir)
    assert _calls(log) == 2  # a changed alpha parameter

    values = market / "values.csv"
    frame = pd.read_csv(values)
    frame.loc[frame.index[-1], "value"] = 99.0
    frame.to_csv(values, index=False)
    stat = values.stat()
    os.utime(values, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    panel_cache.clear_memory()
    run_backtest(config, cache_dir=cache_dir)
    assert _calls(log) == 3  # a changed data file


def test_unreadable_cache_file_is_recomputed(market: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    cache_dir = tmp_path / "cache"
    config = make_config(market, alpha_class=CountingAlpha, alpha_kwargs={"log_path": str(log)})
    first = run_backtest(config, cache_dir=cache_dir)
    (entry,) = [p for p in cache_dir.iterdir() if p.suffix == ".npz"]
    entry.write_bytes(b"not a zip file")
    panel_cache.clear_memory()
    again = run_backtest(config, cache_dir=cache_dir)
    assert _calls(log) == 2
    np.testing.assert_array_equal(first.sequences.to_numpy(), again.sequences.to_numpy())


def test_streaming_bypasses_the_cache(market: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    config = make_config(market, alpha_class=CountingAlpha, alpha_kwargs={"log_path": str(log)},
                         mode="streaming", chunk_days=2)
    run_backtest(config, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    assert _calls(log) == 4  # 8 days in chunks of 2
