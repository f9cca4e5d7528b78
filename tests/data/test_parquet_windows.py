"""Parquet files are read window by window in streaming mode, with the same numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from alphadev import BacktestConfig, ParquetDataLoader
from alphadev.data import files
from alphadev.runner import run_backtest
from alphadev.synthetic import write_synthetic_market
from tests.alphas import RollingMeanAlpha


def _config(paths: dict, **overrides) -> BacktestConfig:
    fields = dict(
        name="pq", alpha_class=RollingMeanAlpha, alpha_kwargs={"window": 4},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 12),
        symbols=[f"S{k:03d}USDT" for k in range(6)],
        price_loader=ParquetDataLoader(str(paths["prices"]), "close"),
        alpha_loaders=[ParquetDataLoader(str(paths["values"]), "value")],
        beta_csv_path=str(paths["beta"]),
    )
    fields.update(overrides)
    return BacktestConfig(**fields)


def test_streaming_parquet_reads_windows_and_matches_batch(tmp_path: Path) -> None:
    paths = write_synthetic_market(tmp_path, n_symbols=6, days=14, seed=5, fmt="parquet")
    files.clear_cache()
    batch = run_backtest(_config(paths))
    before = files.PARSE_COUNT.get(str(Path(paths["prices"]).resolve()), 0)
    streamed = run_backtest(_config(paths, mode="streaming", chunk_days=3))
    reads = files.PARSE_COUNT[str(Path(paths["prices"]).resolve())] - before
    assert reads == 4  # one windowed read per chunk of the 11 days
    assert len(files._WINDOW_CACHE) <= files.WINDOW_SLOTS
    np.testing.assert_allclose(
        streamed.sequences.to_numpy(), batch.sequences.to_numpy(), rtol=0, atol=1e-12
    )
    assert streamed.trades.shape == batch.trades.shape
