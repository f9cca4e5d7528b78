"""The panels a quantstats or alphalens user looks for: tail metrics, the benchmark
(recorded by the run), the IC table, the quantile spread and turnover, PnL and IC by
hour and weekday, drawdowns shaded on the equity curve."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.metrics import (
    beta,
    conditional_value_at_risk,
    information_ratio,
    rolling_beta,
    tail_ratio,
    value_at_risk,
)
from alphadev.report import build_report, load_sweep
from alphadev.report.html import build_tear_sheet
from alphadev.signal_series import benchmark_symbol
from tests.conftest import make_config, write_market

pytest.importorskip("matplotlib")

COINS = ["ADAUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
NEW_PANELS = ("equity against the benchmark and rolling beta", "equity with drawdowns shaded",
              "top minus bottom quantile spread", "quantile turnover",
              "PnL and IC by hour and weekday")


def test_tail_metrics_by_hand():
    pnl = np.array([-0.04, -0.02, -0.01, 0.0, 0.01, 0.01, 0.02, 0.03, 0.05, 0.08, np.nan])
    finite = pnl[np.isfinite(pnl)]
    # 5% quantile of 10 points, linear: between the 1st and 2nd order statistic.
    assert value_at_risk(pnl) == pytest.approx(-0.04 + 0.45 * 0.02)
    assert conditional_value_at_risk(pnl) == pytest.approx(-0.04)
    q05, q95 = -0.04 + 0.45 * 0.02, 0.05 + 0.55 * 0.03
    assert tail_ratio(pnl) == pytest.approx(abs(q95) / abs(q05))
    assert value_at_risk([]) is None and tail_ratio([0.0, 0.0]) is None
    bench = finite[::-1] * 0.5 + 0.001
    cov = np.mean((finite - finite.mean()) * (bench - bench.mean())) * 10 / 9
    assert beta(finite, bench) == pytest.approx(cov / np.var(bench, ddof=1))
    assert beta(finite, np.ones_like(finite)) is None
    active = finite - bench
    assert information_ratio(finite, bench, 8760) == pytest.approx(
        active.mean() / active.std(ddof=1) * math.sqrt(8760))
    rolled = rolling_beta(finite, bench, 4)
    assert np.isnan(rolled[:3]).all()
    assert rolled[5] == pytest.approx(beta(finite[2:6], bench[2:6]))


def test_benchmark_symbol_is_the_btc_perpetual():
    assert benchmark_symbol(COINS) == "BTCUSDT"
    assert benchmark_symbol(["ETHUSDT", "SOLUSDT"]) is None


@pytest.fixture(scope="module")
def coins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coins")
    market = write_market(folder / "data", symbols=COINS)
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="c", symbols=COINS, beta_csv_path=None),
                            {"scale": [1.0, 0.5]})
    bt.add_config(make_config(market, name="s", symbols=COINS, beta_csv_path=None,
                              mode="streaming", chunk_days=2))
    bt.run_all(verbose=False, save_dir=folder / "runs")
    return market, folder / "runs"


def test_the_run_records_the_benchmark(coins):
    market, runs = coins
    prices = pd.read_csv(market / "prices.csv", parse_dates=["timestamp"])
    close = prices.pivot(index="timestamp", columns="symbol", values="close")
    returns = close.pct_change()
    recorded = pd.read_parquet(runs / "c__scale=1.0" / "sequences" / "benchmark.parquet")
    assert list(recorded.columns) == ["equal_weight", "BTCUSDT"]
    bars = recorded.index
    expected = returns["BTCUSDT"].reindex(bars)
    np.testing.assert_allclose(recorded["BTCUSDT"].iloc[1:], expected.iloc[1:], rtol=1e-12)
    assert np.isnan(recorded["BTCUSDT"].iloc[0])  # no bar before the run's first
    np.testing.assert_allclose(recorded["equal_weight"].iloc[2:],
                               returns.reindex(bars).mean(axis=1).iloc[2:], rtol=1e-12)
    streamed = pd.read_parquet(runs / "s" / "sequences" / "benchmark.parquet")
    pd.testing.assert_frame_equal(streamed, recorded)


def test_the_report_has_the_new_panels(coins):
    _, runs = coins
    html = build_report(runs, top=2).read_text(encoding="utf-8")
    for alt in NEW_PANELS:
        assert f"<img alt='{alt}'" in html, alt
    for row in ("VaR 5% (per bar)", "CVaR 5% (per bar)", "tail ratio", "best day (UTC)",
                "worst day (UTC)", "skew (per bar)", "beta to the benchmark",
                "information ratio (annualised)", "BTCUSDT held long"):
        assert row in html, row
    ic = html.split("<h3>Rank IC per bar</h3>")[1].split("</table>")[0]
    assert "t-stat" in ic and "p-value" in ic and "kurtosis" in ic


def test_results_saved_without_a_benchmark_still_render(coins, tmp_path):
    _, runs = coins
    folder = runs / "c__scale=0.5"
    saved = folder / "sequences" / "benchmark.parquet"
    kept = saved.read_bytes()
    saved.unlink()
    try:
        html = build_tear_sheet(folder, out=tmp_path / "sheet.html").read_text(encoding="utf-8")
    finally:
        saved.write_bytes(kept)
    assert "equity against the benchmark" not in html and "beta to the benchmark" not in html
    assert "<img alt='equity with drawdowns shaded'" in html


def test_a_benchmark_without_prices_falls_back_to_the_universe(coins):
    from alphadev.report.tearsheet import benchmark_of, load_view

    _, runs = coins
    view = load_view(load_sweep(runs)[0], "#1")
    assert benchmark_of(view)[1] == "BTCUSDT held long"
    view.benchmark["BTCUSDT"] = np.nan
    series, label = benchmark_of(view)
    assert label == "equal-weighted universe held long" and series.notna().any()
    view.benchmark = None
    assert benchmark_of(view) is None


def test_hour_and_weekday_bars_are_the_group_means():
    from alphadev.report.plots import by_hour_and_weekday

    stamps = pd.date_range("2024-01-01", periods=24 * 14, freq="1h", tz="UTC")
    rng = np.random.default_rng(2)
    pnl = pd.Series(rng.normal(0, 1e-3, len(stamps)), index=stamps)
    ic = pd.Series(rng.normal(0.05, 0.1, len(stamps)), index=stamps)
    fig = by_hour_and_weekday({"#1": pnl}, {"#1": ic})
    hours = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(hours, pnl.groupby(stamps.hour).mean().to_numpy() * 1e4)
    days = [p.get_height() for p in fig.axes[3].patches]
    np.testing.assert_allclose(days, ic.groupby(stamps.day_of_week).mean().to_numpy())


def test_drawdown_spans_are_the_worst_periods(coins):
    from alphadev.metrics import drawdown_periods
    from alphadev.report.plots import equity_with_drawdowns

    _, runs = coins
    returns = pd.read_parquet(runs / "c__scale=1.0" / "sequences" / "returns.parquet")
    periods = drawdown_periods(returns["pnl"].to_numpy(), 5)
    spans = [(returns.index[max(p.peak, 0)], returns.index[p.recovery if p.recovery is not None
                                                           else -1]) for p in periods]
    fig = equity_with_drawdowns(returns["equity"], spans)
    assert len(fig.axes[0].patches) == len(periods) > 0
