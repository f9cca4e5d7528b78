"""docs/semantics.md#ruin: a bar that takes equity to zero or below ends the book.

A short leg through a pump (the price of the shorted symbol quadruples in one bar) loses
1.5 times equity at gross exposure 1.  The run must stop at exactly zero equity, close
the book, stay flat, record and warn about the ruin bar, in batch and in streaming, and
match the slow reference.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from alphadev.report import build_report
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha
from tests.engine.test_pipeline_reference import assert_next_bar_matches
from tests.reference import reference_backtest

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"]
PUMP = pd.Timestamp("2024-01-04 10:00", tz="UTC")


def _write_pump(folder: Path, factor: float = 4.0) -> Path:
    """Hourly prices with AAA always shorted (lowest alpha) and pumped by ``factor`` once."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    stamps = pd.date_range("2024-01-01", periods=24 * 6, freq="1h", tz="UTC")
    prices, values = [], []
    for k, symbol in enumerate(SYMBOLS):
        close = 50.0 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, len(stamps))))
        value = rng.normal(0, 1, len(stamps))
        if symbol == "AAAUSDT":
            close = np.where(stamps >= PUMP, close * factor, close)
            value = np.full(len(stamps), -10.0)
        iso = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
        prices.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "close": close}))
        values.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "value": value}))
    pd.concat(prices).to_csv(folder / "prices.csv", index=False)
    pd.concat(values).to_csv(folder / "values.csv", index=False)
    return folder


def _config(folder: Path, name: str = "pump", **overrides) -> BacktestConfig:
    fields = dict(
        name=name,
        alpha_class=EchoAlpha,
        alpha_kwargs={},
        start_date=dt.date(2024, 1, 2),
        end_date=dt.date(2024, 1, 5),
        symbols=list(SYMBOLS),
        price_loader=CSVDataLoader(str(folder / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(folder / "values.csv"), "value")],
        beta_csv_path=None,
        trading_fee_rate=4.5e-4,
    )
    fields.update(overrides)
    return BacktestConfig(**fields)


@pytest.fixture
def pump(tmp_path: Path) -> Path:
    return _write_pump(tmp_path / "data")


def test_ruin_stops_the_book_at_zero_equity(pump):
    result = run_backtest(_config(pump))
    seq = result.sequences
    assert result.metadata["ruined_at"] == PUMP.isoformat()
    assert any("ruined" in w and "gross_exposure" in w for w in result.metadata["warnings"])
    # Before: the book as always.  At the pump: the short leg lost more than equity.
    assert seq.loc[PUMP, "gross"] < -1.0
    assert seq.loc[PUMP, "pnl"] == -1.0
    after = seq.loc[seq.index > PUMP]
    assert len(after) > 0
    assert (seq.loc[seq.index >= PUMP, "equity"] == 0.0).all()
    for column in ("pnl", "gross", "fees", "turnover", "long_return", "short_return"):
        assert (after[column] == 0.0).all(), column
    assert (seq.loc[seq.index < PUMP, "equity"] > 0).all()
    positions = result.positions
    assert not (pd.DatetimeIndex(positions["timestamp"]) >= PUMP).any()
    trades = result.trades
    at_ruin = trades[pd.DatetimeIndex(trades["timestamp"]) == PUMP]
    assert len(at_ruin) > 0 and (at_ruin["weight"] == 0.0).all()
    assert not (pd.DatetimeIndex(trades["timestamp"]) > PUMP).any()

    total = result.metrics["total"]
    assert total["max_drawdown"] == -1.0
    assert total["cumulative_return"] == -1.0
    assert total["annualized_return"] == -1.0
    json.dumps(result.metrics, allow_nan=False)  # every number finite or null


def test_no_ruin_without_a_losing_bar_below_minus_one(pump, tmp_path):
    calm = _write_pump(tmp_path / "calm", factor=1.5)  # -0.25 at the pump: survives
    result = run_backtest(_config(calm))
    assert result.metadata["ruined_at"] is None
    assert not any("ruined" in w for w in result.metadata["warnings"])
    assert result.sequences["equity"].min() > 0


@pytest.mark.parametrize("chunk_days", [1, 2, 3])
def test_streaming_equals_batch_through_ruin(pump, chunk_days):
    batch = run_backtest(_config(pump))
    stream = run_backtest(_config(pump, mode="streaming", chunk_days=chunk_days))
    pd.testing.assert_frame_equal(stream.sequences, batch.sequences)
    pd.testing.assert_frame_equal(stream.positions, batch.positions)
    pd.testing.assert_frame_equal(stream.trades, batch.trades)
    assert stream.metadata["ruined_at"] == batch.metadata["ruined_at"] == PUMP.isoformat()
    assert stream.metrics == batch.metrics


@pytest.mark.parametrize("gross", [1.0, 100.0])
def test_ruin_matches_the_reference(pump, gross):
    config = _config(pump, gross_exposure=gross)
    result = run_backtest(config)
    prices = pd.read_csv(pump / "prices.csv")
    alpha = pd.read_csv(pump / "values.csv").rename(columns={"value": "alpha"})
    ref = reference_backtest(
        prices, alpha, None, None, SYMBOLS, config.start_date, config.end_date, "1h",
        config.max_fill_bars, *config.quantile, gross, config.trading_fee_rate,
    )
    assert ref.run.ruined_at is not None
    assert result.sequences.index[ref.run.ruined_at].isoformat() == \
        result.metadata["ruined_at"]
    for column in ("pnl", "gross", "fees", "turnover", "equity"):
        np.testing.assert_allclose(
            result.sequences[column].to_numpy(), ref.sequences[column].to_numpy(),
            rtol=1e-12, atol=1e-12, err_msg=column,
        )
    assert len(result.positions) == len(ref.positions)
    assert len(result.trades) == len(ref.trades)
    later = reference_backtest(
        prices, alpha, None, None, SYMBOLS, config.start_date, config.end_date, "1h",
        config.max_fill_bars, *config.quantile, gross, config.trading_fee_rate,
        execution_delay=1,
    )
    assert_next_bar_matches(result, later)


def test_a_ruined_config_saves_reloads_and_reports(pump, tmp_path):
    save_dir = tmp_path / "sweep"
    bt = Backtester()
    bt.add_config(_config(pump))
    bt.add_config(_config(pump, name="calm_book", gross_exposure=0.1))
    bt.run_all(verbose=False, save_dir=save_dir)
    loaded = Backtester.load(save_dir)
    by_name = {r.name: r for r in loaded.results}
    assert by_name["pump"].metadata["ruined_at"] == PUMP.isoformat()
    assert by_name["calm_book"].metadata["ruined_at"] is None
    assert by_name["pump"].metrics["total"]["max_drawdown"] == -1.0
    saved = json.loads((save_dir / "pump" / "metrics.json").read_text())
    assert math.isfinite(saved["total"]["sharpe"])
    page = build_report(save_dir).read_text()
    assert "ruined at" in page
