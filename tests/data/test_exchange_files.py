"""Exchange files as they come: header-less klines (``column_names``), a column served
under another name (``source_column``) and epoch milliseconds or microseconds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, Backtester, CSVDataLoader, ParquetDataLoader
from alphadev.data import CompositeDataLoader
from alphadev.errors import DataError
from alphadev.preflight import check_loaders
from tests.alphas import EchoAlpha
from tests.conftest import SYMBOLS, write_market

KLINES = ["open_time", "open", "high", "low", "close", "volume", "close_time",
          "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
DAY = (dt.date(2024, 1, 2), dt.date(2024, 1, 9))


def _as_klines(market: Path, folder: Path, unit: int = 10**6) -> Path:
    """The market's prices and values as one header-less kline file per symbol, times in
    epoch ``unit`` (10**6: milliseconds, 10**3: microseconds) of the bar's open and close."""
    folder.mkdir(parents=True, exist_ok=True)
    prices = pd.read_csv(market / "prices.csv")
    values = pd.read_csv(market / "values.csv")
    for symbol in SYMBOLS:
        close = prices[prices["symbol"] == symbol]
        value = values[values["symbol"] == symbol]["value"].to_numpy()
        opens = pd.DatetimeIndex(pd.to_datetime(close["timestamp"], utc=True)).as_unit("ns")
        opens = opens.asi8 // unit
        hour = 3_600 * 10**9 // unit
        pd.DataFrame({
            "open_time": opens, "open": close["close"], "high": close["close"],
            "low": close["close"], "close": close["close"], "volume": value,
            "close_time": opens + hour - 1, "quote_volume": 1.0, "count": 1,
            "taker_buy_volume": 0.5, "taker_buy_quote_volume": 0.5, "ignore": 0,
        }).to_csv(folder / f"{symbol}-1h.csv", header=False, index=False)
    return folder


def _config(name: str, prices, values) -> BacktestConfig:
    return BacktestConfig(name=name, alpha_class=EchoAlpha, alpha_kwargs={},
                          start_date=DAY[0], end_date=DAY[1], symbols=list(SYMBOLS),
                          price_loader=prices, alpha_loaders=[values])


@pytest.mark.parametrize("unit", [10**6, 10**3], ids=["milliseconds", "microseconds"])
def test_a_backtest_on_header_less_klines_equals_one_on_plain_files(tmp_path, unit):
    market = write_market(tmp_path / "plain")
    klines = _as_klines(market, tmp_path / "klines", unit)
    pattern = str(klines / "{symbol}-1h.csv")
    kline_close = CSVDataLoader(pattern, "close", timestamp_col="close_time",
                                column_names=KLINES)
    kline_value = CSVDataLoader(pattern, "value", timestamp_col="close_time",
                                source_column="volume", column_names=KLINES)
    plain = _config("plain", CSVDataLoader(str(market / "prices.csv"), "close"),
                    CSVDataLoader(str(market / "values.csv"), "value"))
    exchange = _config("exchange", kline_close, kline_value)
    check_loaders([exchange])
    bt = Backtester()
    bt.add_config(plain)
    bt.add_config(exchange)
    mine, theirs = bt.run_all(verbose=False)
    pd.testing.assert_frame_equal(mine.sequences, theirs.sequences)
    assert mine.metrics == theirs.metrics
    frame = kline_value.load_date_range(*DAY, ["AAAUSDT"])
    assert list(frame.columns) == ["value"]  # served under column_name


def test_a_symbol_pattern_may_glob_monthly_files(tmp_path):
    market = write_market(tmp_path / "plain")
    klines = _as_klines(market, tmp_path / "klines")
    monthly = tmp_path / "monthly"
    monthly.mkdir()
    for symbol in SYMBOLS:  # split each symbol's file in two "months"
        frame = pd.read_csv(klines / f"{symbol}-1h.csv", header=None)
        half = len(frame) // 2
        frame.iloc[:half].to_csv(monthly / f"{symbol}-1h-01.csv", header=False, index=False)
        frame.iloc[half:].to_csv(monthly / f"{symbol}-1h-02.csv", header=False, index=False)
    whole = CSVDataLoader(str(klines / "{symbol}-1h.csv"), "close",
                          timestamp_col="close_time", column_names=KLINES)
    months = CSVDataLoader(str(monthly / "{symbol}-1h-*.csv"), "close",
                           timestamp_col="close_time", column_names=KLINES)
    assert len(months.files(SYMBOLS)) == 2 * len(SYMBOLS)
    pd.testing.assert_frame_equal(months.load_date_range(*DAY, SYMBOLS),
                                  whole.load_date_range(*DAY, SYMBOLS))
    greedy = CSVDataLoader(str(monthly / "{symbol}*.csv"), "close",
                           timestamp_col="close_time", column_names=KLINES)
    with pytest.raises(DataError, match="matches the pattern for both 'AAA' and 'AAAUSDT'"):
        greedy.files(["AAA", "AAAUSDT"])


def test_source_column_reads_another_name(tmp_path):
    market = write_market(tmp_path / "plain")
    renamed = pd.read_csv(market / "prices.csv").rename(columns={"close": "Close"})
    renamed.to_csv(tmp_path / "exchange.csv", index=False)
    loader = CSVDataLoader(str(tmp_path / "exchange.csv"), "close", source_column="Close")
    ours = CSVDataLoader(str(market / "prices.csv"), "close")
    pd.testing.assert_frame_equal(loader.load_date_range(*DAY, SYMBOLS),
                                  ours.load_date_range(*DAY, SYMBOLS))
    assert loader.get_columns() == ["close"]
    with pytest.raises(ValueError, match="column 'close' is provided by both"):
        CompositeDataLoader([loader, ours])


def test_defaults_keep_every_saved_fingerprint(tmp_path):
    loader = CSVDataLoader("prices.csv", "close")
    assert loader.to_dict()["params"] == {"file_pattern": "prices.csv", "column_name": "close",
                                          "timestamp_col": "timestamp", "symbol_col": "symbol"}
    named = CSVDataLoader("k.csv", "close", column_names=KLINES, source_column="close")
    assert named.to_dict()["params"]["column_names"] == KLINES
    assert named != CSVDataLoader("k.csv", "close")


def test_bad_names_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="column_names must be None or the distinct names"):
        CSVDataLoader("k.csv", "close", column_names=["close", "close"])
    with pytest.raises(TypeError, match="column_names must be None"):
        CSVDataLoader("k.csv", "close", column_names="close")
    with pytest.raises(TypeError, match="a Parquet file names its columns"):
        ParquetDataLoader("k.parquet", "close", column_names=KLINES)
    with pytest.raises(TypeError, match="source_column must be None"):
        CSVDataLoader("k.csv", "close", source_column="")

    market = write_market(tmp_path / "plain")
    klines = _as_klines(market, tmp_path / "klines")
    headed = tmp_path / "headed"
    headed.mkdir()
    frame = pd.read_csv(klines / "AAAUSDT-1h.csv", header=None, names=KLINES)
    frame.to_csv(headed / "AAAUSDT-1h.csv", index=False)  # Binance's newer files have one
    loader = CSVDataLoader(str(headed / "{symbol}-1h.csv"), "close", timestamp_col="close_time",
                           column_names=KLINES)
    with pytest.raises(DataError, match="has a header row .* leave column_names out"):
        loader.load_date_range(*DAY, ["AAAUSDT"])
    missing = CSVDataLoader(str(klines / "{symbol}-1h.csv"), "close", timestamp_col="closeTime",
                            column_names=KLINES)
    with pytest.raises(DataError, match="has no column 'closeTime'"):
        check_loaders([_config("typo", missing, missing)])
    values = np.isfinite(CSVDataLoader(str(klines / "{symbol}-1h.csv"), "close",
                                       timestamp_col="close_time", column_names=KLINES)
                         .load_date_range(*DAY, ["AAAUSDT"])["close"])
    assert values.all() and len(values) == 8 * 24
