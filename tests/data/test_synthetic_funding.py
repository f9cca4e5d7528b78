"""Synthetic funding events: 8-hourly, small, with a persistent bias per symbol, and
readable as a funding_loader."""

from __future__ import annotations

import pandas as pd

from alphadev import CSVDataLoader, ParquetDataLoader
from alphadev.runner import run_backtest
from alphadev.synthetic import write_synthetic_market
from tests.conftest import make_config


def test_funding_file_is_eight_hourly_with_a_bias_per_symbol(tmp_path) -> None:
    paths = write_synthetic_market(tmp_path, n_symbols=6, days=20, seed=4)
    frame = pd.read_csv(paths["funding"])
    assert list(frame.columns) == ["timestamp", "symbol", "rate"]
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    assert set(stamps.dt.hour) == {0, 8, 16} and (stamps.dt.minute == 0).all()
    assert len(frame) == 20 * 3 * 6 and frame["rate"].abs().max() < 2e-3
    by_symbol = frame.groupby("symbol")["rate"]
    # the per-symbol means differ by more than their own noise: a persistent bias
    assert by_symbol.mean().std() > 3 * by_symbol.std().mean() / (20 * 3) ** 0.5
    assert 2e-5 < frame["rate"].mean() < 3e-4


def test_funding_file_feeds_a_backtest(tmp_path) -> None:
    for fmt, loader in (("csv", CSVDataLoader), ("parquet", ParquetDataLoader)):
        paths = write_synthetic_market(tmp_path / fmt, n_symbols=5, days=12, seed=3, fmt=fmt)
        symbols = [f"S{k:03d}USDT" for k in range(5)]
        config = make_config(
            tmp_path, symbols=symbols, beta_csv_path=str(paths["beta"]),
            price_loader=loader(str(paths["prices"]), "close"),
            alpha_loaders=[loader(str(paths["values"]), "value")],
            funding_loader=loader(str(paths["funding"]), "rate"),
        )
        result = run_backtest(config)
        paid = result.funding[result.funding != 0]
        assert len(paid) > 0 and set(paid.index.hour) <= {0, 8, 16}, fmt
