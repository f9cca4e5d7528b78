"""``execution_lag``: hand-checked prices at close + lag, the field's validation and
identity, data coarser than the lag, and the leaderboards' Sharpe by lag
(docs/semantics.md#execution-lag)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from alphadev.comparison import (
    comparison_table,
    lag_fragile,
    leaderboard,
    read_comparison_table,
    sharpe_at_lags,
)
from alphadev.errors import DataError
from alphadev.report import build_report
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha

DAY = dt.date(2024, 5, 6)
T0 = pd.Timestamp(DAY, tz="UTC")


def _price(minutes: float) -> float:
    """UP's price, minutes after T0: a straight line, so each row's return is known."""
    return 1000.0 + minutes


def _files(tmp_path, step="5min", hours=30):
    """Two symbols at one row per ``step`` from T0 - 6 h: UP rises by 1 a minute, FLAT
    stays at 100; the alpha ranks UP above FLAT throughout."""
    rows, alpha = [], []
    stamp = T0 - pd.Timedelta(hours=6)
    while stamp < T0 + pd.Timedelta(hours=hours):
        minutes = (stamp - T0).total_seconds() / 60
        rows += [(stamp, "UP", _price(minutes)), (stamp, "FLAT", 100.0)]
        alpha += [(stamp, "UP", 1.0), (stamp, "FLAT", -1.0)]
        stamp += pd.Timedelta(step)
    pd.DataFrame(rows, columns=["timestamp", "symbol", "close"]).to_csv(
        tmp_path / "prices.csv", index=False)
    pd.DataFrame(alpha, columns=["timestamp", "symbol", "value"]).to_csv(
        tmp_path / "alpha.csv", index=False)


def _config(tmp_path, **fields) -> BacktestConfig:
    base = dict(
        name="lag", alpha_class=EchoAlpha, alpha_kwargs={}, start_date=DAY, end_date=DAY,
        symbols=["UP", "FLAT"], price_loader=CSVDataLoader(str(tmp_path / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(tmp_path / "alpha.csv"), "value")],
        quantile=(0.5, 0.5), trading_fee_rate=0.0, max_fill_bars=0,
    )
    base.update(fields)
    return BacktestConfig(**base)


@pytest.mark.parametrize(("lag", "row_minute"), [
    (None, 55),      # no lag: the bar's last row, label + 55 min
    ("5min", 60),    # exactly on a row: the row at close + 5 min is the next bar's, so
                     # the last one before it is the row at the close itself (label + 60)
    ("7min", 65),    # between rows: the last row before close + 7 min, label + 65
    ("55min", 110),  # the last lag that is not a whole bar
])
def test_the_book_trades_at_the_last_row_before_close_plus_lag(tmp_path, lag, row_minute):
    _files(tmp_path)
    fields = {} if lag is None else {"execution_lag": lag}
    result = run_backtest(_config(tmp_path, **fields))
    gross = result.sequences["gross"].to_numpy()
    # Long UP with weight 0.5 from bar 0 on; FLAT earns nothing. Bar t's book is
    # valued at the row label(t) + row_minute, so bar t's gross is 0.5 times UP's return
    # between the rows of bars t-1 and t.
    assert gross[0] == 0.0
    for t in (1, 2, 12, 23):
        start, stop = (t - 1) * 60 + row_minute, t * 60 + row_minute
        assert gross[t] == pytest.approx(0.5 * (_price(stop) / _price(start) - 1), rel=1e-12)
    # IC keeps measuring the signal against the closes, whatever the lag.
    reference = run_backtest(_config(tmp_path))
    np.testing.assert_array_equal(result.sequences["ic"].to_numpy(),
                                  reference.sequences["ic"].to_numpy())


def test_the_last_bar_reads_the_rows_after_the_period(tmp_path):
    """The book decided at the period's last close trades after it: bar 23's price is
    the row at 00:05 of the next day, which lies outside [start_date, end_date]."""
    _files(tmp_path)
    result = run_backtest(_config(tmp_path, execution_lag="10min"))
    gross = result.sequences["gross"].to_numpy()
    assert len(gross) == 24
    assert gross[23] == pytest.approx(0.5 * (_price(24 * 60 + 5) / _price(23 * 60 + 5) - 1))


def test_lag_combines_with_execution_delay(tmp_path):
    """delay 1 + lag 5 min: the alpha of bar t-1, traded at close(t) + 5 min. UP's
    alpha flips at 12:00, so the book follows it at bar 13 and the flip's bar costs."""
    _files(tmp_path)
    frame = pd.read_csv(tmp_path / "alpha.csv")
    late = pd.to_datetime(frame["timestamp"], utc=True) >= T0 + pd.Timedelta(hours=12)
    frame.loc[late, "value"] *= -1
    frame.to_csv(tmp_path / "alpha.csv", index=False)
    result = run_backtest(_config(tmp_path, execution_lag="5min", execution_delay=1))
    weights = result.positions.pivot(index="timestamp", columns="symbol", values="weight")
    up = weights["UP"]
    assert up.loc[T0 + pd.Timedelta(hours=12)] == 0.5  # still the alpha of bar 11
    assert up.loc[T0 + pd.Timedelta(hours=13)] == -0.5  # the alpha of bar 12
    gross = result.sequences["gross"].to_numpy()
    # bar 14 holds the short of bar 13: valued at the rows of minutes 13*60+60, 14*60+60
    assert gross[14] == pytest.approx(-0.5 * (_price(15 * 60) / _price(14 * 60) - 1))


def test_data_coarser_than_the_lag_is_an_error_naming_both(tmp_path):
    _files(tmp_path, step="1h")
    with pytest.raises(DataError) as caught:
        run_backtest(_config(tmp_path, execution_lag="5min"))
    message = str(caught.value)
    assert "execution_lag=5min" in message and "0 days 01:00:00" in message
    assert "prices.csv" in message and "'lag'" in message
    # a lag of the data's own spacing is not coarser: 15-minute rows, a 15-minute lag
    _files(tmp_path, step="15min")
    assert len(run_backtest(_config(tmp_path, execution_lag="15min")).sequences) == 24


@pytest.mark.parametrize("bad", ["1h", "2h", "-5min", 5, 1.5, True, "soon", [1]])
def test_bad_lags_are_rejected_naming_the_field(tmp_path, bad):
    _files(tmp_path)
    with pytest.raises((ValueError, TypeError)) as caught:
        _config(tmp_path, execution_lag=bad)
    message = str(caught.value)
    assert "execution_lag" in message and "shorter than one '1h' bar" in message


def test_a_lag_at_its_default_stays_out_of_the_identity(tmp_path):
    _files(tmp_path)
    plain = _config(tmp_path)
    for zero in (0, "0s", pd.Timedelta(0), dt.timedelta(0), np.int64(0)):
        same = _config(tmp_path, execution_lag=zero)
        assert "execution_lag" not in same.to_dict()
        assert same.fingerprint() == plain.fingerprint()
    lagged = _config(tmp_path, execution_lag=dt.timedelta(minutes=5))
    assert lagged.to_dict()["execution_lag"] == "P0DT0H5M0S"
    assert lagged.fingerprint() not in (plain.fingerprint(),
                                        _config(tmp_path, execution_lag="10min").fingerprint())
    assert _config(tmp_path, execution_lag="5min").fingerprint() == lagged.fingerprint()
    assert "lag=5min" in repr(lagged)


def test_streaming_with_a_lag_equals_batch(tmp_path):
    _files(tmp_path, hours=24 * 3)
    end = DAY + dt.timedelta(days=2)
    batch = run_backtest(_config(tmp_path, execution_lag="20min", end_date=end))
    streamed = run_backtest(_config(tmp_path, execution_lag="20min", end_date=end,
                                    mode="streaming", chunk_days=1))
    for column in batch.sequences.columns:
        np.testing.assert_allclose(streamed.sequences[column].to_numpy(float),
                                   batch.sequences[column].to_numpy(float), rtol=0,
                                   atol=1e-12, err_msg=column)


def _edge_inside_the_bar(tmp_path) -> list[BacktestConfig]:
    """Configs at lags 0s, 5min and 10min of an alpha whose edge is the first 5 minutes
    after each close."""
    _files(tmp_path)
    # UP moves only between each bar's last row (label + 55 min) and the next row, and
    # the alpha knows that move: a lag of 5 minutes no longer trades on it.
    rng = np.random.default_rng(3)
    prices = pd.read_csv(tmp_path / "prices.csv")
    stamps = pd.to_datetime(prices["timestamp"], utc=True)
    hour = ((stamps - T0) // pd.Timedelta(hours=1)).to_numpy()
    moves = rng.normal(0, 1.0, hour.max() - hour.min() + 2)
    up = (prices["symbol"] == "UP").to_numpy()
    level = 200 + np.cumsum(moves)
    prices.loc[up, "close"] = level[hour[up] - hour.min()]
    prices.to_csv(tmp_path / "prices.csv", index=False)
    alpha = pd.read_csv(tmp_path / "alpha.csv")
    alpha["value"] = 0.0
    alpha.loc[up, "value"] = moves[hour[up] - hour.min() + 1]
    alpha.to_csv(tmp_path / "alpha.csv", index=False)
    return [_config(tmp_path, name=f"lag{k}", execution_lag=lag, max_fill_bars=3)
            for k, lag in enumerate(["0s", "5min", "10min"])]


def test_leaderboard_shows_the_sharpe_at_each_lag_and_one_bar_later(tmp_path):
    """A sweep over the lag: every row shows its siblings' Sharpe and the lag-0
    sibling's Sharpe one bar later; an edge that dies at the next lag is called out."""
    table = comparison_table([run_backtest(c) for c in _edge_inside_the_bar(tmp_path)])
    assert list(table["execution_lag"]) == ["0s", "5min", "10min"]
    at_lags = sharpe_at_lags(table)
    assert list(at_lags.columns) == ["0s", "5min", "10min", "1 bar"]
    by_name = table.set_index("name")
    for k, lag in enumerate(["0s", "5min", "10min"]):
        assert (at_lags[lag] == by_name.loc[f"lag{k}", "sharpe"]).all()
    assert (at_lags["1 bar"] == by_name.loc["lag0", "sharpe_next_bar"]).all()
    sharpe0, sharpe5 = by_name.loc["lag0", "sharpe"], by_name.loc["lag1", "sharpe"]
    assert sharpe0 > 0 and sharpe5 < 0.5 * sharpe0  # the planted edge dies at 5 minutes
    assert lag_fragile(at_lags).all()
    text = leaderboard(table)
    assert "sharpe_by_lag" in text and f"0s {sharpe0:.2f} | 5min {sharpe5:.2f}" in text
    assert "keep less than 50% of their Sharpe at execution_lag=0s when traded at " \
        "execution_lag=5min" in text
    # without a second lag there is no such column
    assert sharpe_at_lags(table.iloc[:1]) is None
    assert "sharpe_by_lag" not in leaderboard(table.iloc[:1])
    assert math.isfinite(sharpe0)


def test_report_of_a_lag_sweep_shows_the_sharpe_by_lag(tmp_path):
    configs = _edge_inside_the_bar(tmp_path)
    bt = Backtester()
    for config in configs:
        bt.add_config(config)
    out = tmp_path / "sweep"
    bt.run_all(save_dir=str(out), verbose=False)
    read_back = read_comparison_table(out / "comparison.csv")
    at_lags = sharpe_at_lags(read_back)
    assert at_lags is not None and lag_fragile(at_lags).all()
    page = build_report(out).read_text()
    assert "Sharpe by execution lag" in page
    best = at_lags.iloc[0]
    assert f"0s {best['0s']:.2f} | 5min {best['5min']:.2f}" in page
    verdict = page[page.index("class='verdict'"):]
    verdict = verdict[:verdict.index("</p>")]
    assert "its edge dies inside one bar" in verdict
    assert "3 of the top 3 configs keep less than 50% of their Sharpe at " \
        "execution_lag=5min" in verdict


def test_rows_the_table_cannot_tell_apart_have_no_siblings():
    """Two configs at lag 0 that differ only in a field the table does not show: which
    one the 5-minute row belongs to is unknown, so none of them gets a Sharpe by lag."""
    table = pd.DataFrame({
        "name": ["a", "b", "c", "d"], "alpha_class": ["X"] * 4, "alpha.k": [1, 1, 1, 2],
        "execution_lag": ["0s", "0s", "5min", "0s"], "sharpe": [2.0, 1.0, 0.5, 3.0],
        "sharpe_next_bar": [0.1, 0.2, 0.3, 0.4],
    })
    at_lags = sharpe_at_lags(table)
    assert at_lags.iloc[:3].isna().all().all()
    assert at_lags.iloc[3].tolist()[0] == 3.0 and math.isnan(at_lags.iloc[3]["5min"])
    assert at_lags.iloc[3]["1 bar"] == 0.4
