"""Market impact, participation and capacity against tests/reference.py.

The kernel on random arrays (estimates with holes, volumes with missing bars); the
whole pipeline (CSV files -> run_backtest) on random scenarios with a volume file,
resampled from sub-bar rows, in batch and streaming mode, to 1e-9; streaming equals
batch on ~40 days with chunk_days 1, 2 and 7.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alphadev.capacity import CAPITAL_GRID, capacity_curve, net_at_capital
from alphadev.data import CSVDataLoader
from alphadev.engine.kernel import run_kernel
from alphadev.metrics import sharpe_ratio
from alphadev.runner import run_backtest
from tests.engine.test_kernel_reference import _close, panels
from tests.engine.test_pipeline_reference import (
    RollingMeanAlpha,
    _config,
    _long_scenario,
    _write_csv,
    assert_matches_reference,
    assert_next_bar_matches,
    joined_rows,
    rolling_mean_rows,
    scenarios,
)
from tests.reference import reference_backtest, reference_weights_and_accounting

ESTIMATE = st.sampled_from([math.nan, 1e5, 1e6]) | st.floats(1e3, 1e9)
SIGMA = st.sampled_from([math.nan, 0.0, 0.05]) | st.floats(0.001, 0.5)
VOLUME = st.sampled_from([math.nan, 0.0, 1e4]) | st.floats(1.0, 1e8)


@st.composite
def impact_arrays(draw, n_bars, n_sym):
    adv = draw(arrays(np.float64, (n_bars, n_sym), elements=ESTIMATE))
    sigma = draw(arrays(np.float64, (n_bars, n_sym), elements=SIGMA))
    volume = draw(arrays(np.float64, (n_bars, n_sym), elements=VOLUME))
    coefficient = draw(st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.01, 5.0))
    capital = draw(st.sampled_from([1e4, 1e6, 1e8]) | st.floats(1.0, 1e10))
    return adv, sigma, volume, coefficient, capital


def _scale(adv, sigma):
    return sigma / np.sqrt(adv)


@settings(max_examples=200, deadline=None)
@given(panels(), st.data())
def test_kernel_with_impact_matches_reference(panel, data):
    prices, alpha, universe, betas, open_q, close_q, gross, fee = panel
    n_bars, n_sym = prices.shape
    adv, sigma, volume, coefficient, capital = data.draw(impact_arrays(n_bars, n_sym))
    out = run_kernel(
        prices, alpha, universe, betas, np.full(n_sym, np.nan), np.zeros(n_sym),
        open_q, close_q, gross, fee, impact_coefficient=coefficient, capital=capital,
        impact_scale=_scale(adv, sigma), volume=volume,
    )
    ref = reference_weights_and_accounting(
        prices, alpha, universe, betas, open_q, close_q, gross, fee,
        impact_coefficient=coefficient, capital=capital, adv=adv, sigma=sigma, volume=volume,
    )
    for name in ("weights", "gross", "fees", "turnover", "long_return", "short_return"):
        _close(getattr(out, name), getattr(ref, name), name)
    np.testing.assert_allclose(out.impact, ref.impact, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.pnl, ref.pnl, rtol=1e-9, atol=1e-12)
    assert out.forced_closes == ref.forced_closes
    assert (None if out.ruined_at < 0 else out.ruined_at) == ref.ruined_at
    shares = ref.participation
    assert out.participation.trades == len(shares)
    assert out.participation.without_volume == ref.trades_without_volume
    assert out.participation.total == pytest.approx(sum(shares), rel=1e-9, abs=1e-12)
    assert out.participation.largest == pytest.approx(max(shares, default=0.0), rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(panels(), st.data())
def test_kernel_with_impact_chains_across_a_split(panel, data):
    prices, alpha, universe, betas, open_q, close_q, gross, fee = panel
    n_bars, n_sym = prices.shape
    adv, sigma, volume, coefficient, capital = data.draw(impact_arrays(n_bars, n_sym))
    scale = _scale(adv, sigma)
    split = data.draw(st.integers(0, n_bars))
    start = (np.full(n_sym, np.nan), np.zeros(n_sym))
    tail = (open_q, close_q, gross, fee)
    impact = dict(impact_coefficient=coefficient, capital=capital)
    full = run_kernel(prices, alpha, universe, betas, *start, *tail, **impact,
                      impact_scale=scale, volume=volume)
    first = run_kernel(prices[:split], alpha[:split], universe[:split], betas, *start, *tail,
                       **impact, impact_scale=scale[:split], volume=volume[:split])
    carried = (prices[split - 1], first.weights[-1]) if split > 0 else start
    second = run_kernel(prices[split:], alpha[split:], universe[split:], betas, *carried,
                        *tail, ruined=first.ruined_at >= 0, **impact,
                        impact_scale=scale[split:], volume=volume[split:],
                        prev_scale=first.impact_scale)
    for name in ("weights", "impact", "pnl", "long_return", "short_return"):
        joined = np.concatenate([getattr(first, name), getattr(second, name)])
        _close(joined, getattr(full, name), name)
    joined = first.participation.joined(second.participation)
    assert joined.trades == full.participation.trades
    assert joined.total == pytest.approx(full.participation.total, rel=1e-12)
    assert joined.largest == full.participation.largest


# ------------------------------------------------------------------------- pipeline


def _volume_rows(sc, rng) -> pd.DataFrame:
    """Volume rows at the price rows' times and between them (several per bar: they
    are summed), some empty cells, a symbol without any rows now and then."""
    rows = []
    prices = sc["price_df"]
    skip = str(rng.choice(sc["symbols"])) if rng.random() < 0.2 else None
    for ts, sym in zip(prices["timestamp"], prices["symbol"]):
        if sym == skip or rng.random() < 0.1:
            continue
        value = float(rng.lognormal(13, 1.5)) if rng.random() > 0.05 else math.nan
        rows.append((ts, sym, value))
        if rng.random() < 0.3:
            rows.append((ts + pd.Timedelta(seconds=1), sym, float(rng.lognormal(12, 1))))
    if rng.random() < 0.3 and rows:
        rows.append((rows[0][0] + pd.Timedelta(seconds=2), rows[0][1], 0.0))
    if not any(sym in sc["symbols"] for _, sym, _ in rows) and len(prices):
        # a file without a row of a configured symbol is a DataError, by design
        rows.append((prices["timestamp"].iloc[0], sc["symbols"][0], 1e6))
    frame = pd.DataFrame(rows, columns=["timestamp", "symbol", "volume"])
    return frame.drop_duplicates(["timestamp", "symbol"]).reset_index(drop=True)


@st.composite
def impact_scenarios(draw):
    sc = draw(scenarios(max_days=4))
    if sc["freq"] == "1D":
        sc["freq"] = "4h"  # a window of a few days holds at least two bars
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sc["volume_df"] = _volume_rows(sc, rng)
    sc["impact"] = draw(st.sampled_from([0.0, 0.5, 1.0, 20.0]))
    sc["capital"] = draw(st.sampled_from([1e4, 1e6, 1e8]))
    sc["window_days"] = draw(st.sampled_from([1, 2]))
    return sc


def _impact_config(sc, folder, **overrides):
    _write_csv(sc["volume_df"], folder / "volume.csv", sc["style"])
    return _config(
        sc, folder, volume_loader=CSVDataLoader(str(folder / "volume.csv"), "volume"),
        impact_coefficient=sc["impact"], capital=sc["capital"],
        impact_window=f"{sc['window_days']}D", **overrides,
    )


def _impact_reference(sc, alpha_rows, later=0):
    window = int(pd.Timedelta(days=sc["window_days"]) / pd.Timedelta(sc["freq"]))
    return reference_backtest(
        sc["price_df"], alpha_rows, sc["universe_df"], sc["beta_df"], sc["symbols"],
        sc["start"], sc["end"], sc["freq"], sc["mfb"], sc["quantile"][0], sc["quantile"][1],
        sc["gross"], sc["fee"], execution_delay=later, volume_df=sc["volume_df"],
        impact_coefficient=sc["impact"], capital=sc["capital"], impact_window_bars=window,
    )


def assert_impact_matches(result, ref):
    assert_matches_reference(result, ref, atol=1e-9, rtol=1e-9)
    np.testing.assert_allclose(result.sequences["impact"].to_numpy(float), ref.run.impact,
                               rtol=1e-9, atol=1e-12)
    metrics = result.metrics
    assert metrics["total_impact"] == pytest.approx(ref.run.impact.sum(), rel=1e-9, abs=1e-12)
    assert metrics["cost_breakdown"]["impact"] == metrics["total_impact"]
    shares = ref.run.participation
    participation = metrics["participation"]
    assert participation["trades"] == len(shares)
    assert participation["trades_without_volume"] == ref.run.trades_without_volume
    if shares:
        assert participation["mean"] == pytest.approx(np.mean(shares), rel=1e-9)
        assert participation["max"] == pytest.approx(max(shares), rel=1e-9)
    else:
        assert participation["mean"] is None and participation["max"] is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=impact_scenarios(), mode=st.sampled_from(["batch", 1, 2]))
def test_pipeline_with_impact_matches_reference(sc, mode, tmp_path_factory):
    folder = tmp_path_factory.mktemp("impact")
    streaming = {} if mode == "batch" else {"mode": "streaming", "chunk_days": mode}
    result = run_backtest(_impact_config(sc, folder, **streaming))
    alpha_rows = sc["alpha_df"].rename(columns={"value": "alpha"})
    assert_impact_matches(result, _impact_reference(sc, alpha_rows))
    assert_next_bar_matches(result, _impact_reference(sc, alpha_rows, later=1))


# ------------------------------------------------------------------------- streaming


def _long_impact_scenario():
    """The 40-day scenario with 5-minute volume rows (resampled to hourly bars): a
    listing mid-run, a delisting, a dead stretch, and a symbol whose volume stops."""
    sc = _long_scenario()
    rng = np.random.default_rng(11)
    rows = []
    for ts, sym in zip(sc["price_df"]["timestamp"], sc["price_df"]["symbol"]):
        if sym == "ETHUSDT" and ts > pd.Timestamp("2024-01-25", tz="UTC"):
            continue  # its volume stops: held positions close on the last estimates
        base = ts.floor("1h")
        for k in range(int(rng.integers(1, 12))):
            rows.append((base + pd.Timedelta(minutes=5 * k), sym, float(rng.lognormal(12, 1))))
    sc["volume_df"] = pd.DataFrame(rows, columns=["timestamp", "symbol", "volume"]) \
        .drop_duplicates(["timestamp", "symbol"]).reset_index(drop=True)
    # A planted edge (each alpha row is the symbol's next price move), so the book has a
    # positive Sharpe and a capacity to find.
    prices = sc["price_df"].sort_values(["symbol", "timestamp"])
    ahead = prices.groupby("symbol")["close"].shift(-1) / prices["close"] - 1
    sc["alpha_df"] = pd.DataFrame({"timestamp": prices["timestamp"], "symbol": prices["symbol"],
                                   "value": ahead.fillna(0.0).to_numpy()})
    sc["fee"] = 1e-4
    sc["impact"] = 1.0
    sc["capital"] = 1e5
    sc["window_days"] = 3
    return sc


@pytest.fixture(scope="module")
def long_impact_run(tmp_path_factory):
    sc = _long_impact_scenario()
    folder = tmp_path_factory.mktemp("long_impact")
    config = _impact_config(sc, folder, alpha_class=RollingMeanAlpha, alpha_kwargs={"hours": 6})
    return sc, folder, run_backtest(config)


def test_long_batch_with_impact_matches_reference(long_impact_run):
    sc, _, batch = long_impact_run
    alpha_rows = rolling_mean_rows(joined_rows(sc), 6)
    ref = _impact_reference(sc, alpha_rows)
    assert (ref.run.impact > 0).sum() > 100
    assert_impact_matches(batch, ref)
    assert_next_bar_matches(batch, _impact_reference(sc, alpha_rows, later=1))


def _assert_close_tree(a, b, path="metrics"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_close_tree(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_close_tree(x, y, f"{path}[{k}]")
    elif a is None or b is None or isinstance(a, str):
        assert a == b, path
    else:
        assert a == pytest.approx(b, abs=1e-9, rel=1e-9, nan_ok=True), path


@pytest.mark.parametrize("chunk_days", [1, 2, 7])
def test_streaming_with_impact_equals_batch(long_impact_run, chunk_days):
    sc, folder, batch = long_impact_run
    streamed = run_backtest(_impact_config(
        sc, folder, alpha_class=RollingMeanAlpha, alpha_kwargs={"hours": 6},
        mode="streaming", chunk_days=chunk_days,
    ))
    assert list(streamed.sequences.index) == list(batch.sequences.index)
    for col in streamed.sequences.columns:
        np.testing.assert_allclose(
            streamed.sequences[col].to_numpy(float), batch.sequences[col].to_numpy(float),
            rtol=0, atol=1e-9, err_msg=col,
        )
    _assert_close_tree(streamed.metrics, batch.metrics)
    assert batch.metrics["capacity"] is not None


def test_capacity_does_not_depend_on_the_capital_run(long_impact_run):
    """The weights do not depend on capital: every capital gives the same curve."""
    sc, folder, batch = long_impact_run
    other = run_backtest(_impact_config(
        {**sc, "capital": 3e8}, folder, alpha_class=RollingMeanAlpha,
        alpha_kwargs={"hours": 6},
    ))
    assert other.metrics["total"]["sharpe"] < batch.metrics["total"]["sharpe"]
    _assert_close_tree(other.metrics["capacity_curve"], batch.metrics["capacity_curve"])
    # ... and the curve at a capital is the run at that capital
    curve = batch.metrics["capacity_curve"]
    at = run_backtest(_impact_config(
        {**sc, "capital": CAPITAL_GRID[12]}, folder, alpha_class=RollingMeanAlpha,
        alpha_kwargs={"hours": 6},
    ))
    assert at.metrics["total"]["sharpe"] == pytest.approx(curve["sharpe"][12], rel=1e-9)


# ------------------------------------------------------------------------- capacity


def test_capacity_closed_form():
    """Impact of k per sqrt(quote) on every bar: Sharpe(C) = (m - sqrt(C) k) / s, so it
    halves at C = (m / 2k)^2 and reaches 0 at (m / k)^2."""
    rng = np.random.default_rng(3)
    base = rng.normal(4e-4, 2e-3, 5000)
    k = 1e-7
    unit = np.full(base.size, k)
    curve = capacity_curve(base, unit, 8760.0)
    m = base.mean()
    assert curve["capacity"] == pytest.approx((m / (2 * k)) ** 2, rel=1e-9)
    assert curve["zero_sharpe_capital"] == pytest.approx((m / k) ** 2, rel=1e-9)
    s0 = sharpe_ratio(base, 8760.0)
    assert curve["zero_impact_sharpe"] == s0
    at = sharpe_ratio(net_at_capital(base, unit, curve["capacity"]), 8760.0)
    assert at == pytest.approx(s0 / 2, rel=1e-9)
    assert curve["ruin_capital"] == pytest.approx(np.min(1 + base) ** 2 / k**2, rel=1e-12)
    for capital, sharpe in zip(curve["capital"], curve["sharpe"]):
        expected = (m - math.sqrt(capital) * k) / base.std(ddof=1) * math.sqrt(8760.0)
        assert sharpe == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 400))
def test_capacity_is_the_largest_capital_keeping_half_the_sharpe(seed, n):
    """Against a brute-force scan of a fine log grid with the ruin rule applied."""
    rng = np.random.default_rng(seed)
    base = rng.normal(rng.uniform(-1e-3, 2e-3), 5e-3, n)
    unit = np.abs(rng.normal(1e-6, 1e-6, n)) * (rng.random(n) < 0.7)
    curve = capacity_curve(base, unit, 8760.0)
    s0 = sharpe_ratio(base, 8760.0)
    if s0 is None or s0 <= 0 or not unit.any():
        assert curve["capacity"] is None
        return
    grid = np.logspace(-2, 16, 3000)
    keeps = [c for c in grid
             if (s := sharpe_ratio(net_at_capital(base, unit, c), 8760.0)) is not None
             and s >= s0 / 2 and not np.any(1 + base - math.sqrt(c) * unit <= 0)]
    step = grid[1] / grid[0]
    scanned = max(keeps, default=grid[0])
    assert scanned / step <= curve["capacity"] <= scanned * step * (1 + 1e-12)
