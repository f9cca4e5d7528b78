"""Execution delay, slippage, funding and time-varying betas against tests/reference.py.

The kernel on random arrays, and the whole pipeline (CSV files -> run_backtest) on the
random scenarios of test_pipeline_reference with every cost field drawn, in batch and
streaming mode, to 1e-12; then streaming equals batch to 1e-9 on ~40 days with every
field set (funding events on the chunk boundaries, a delay reaching into the previous
chunk).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alphadev.data import CSVDataLoader
from alphadev.engine.ic import rank_ic
from alphadev.engine.kernel import run_kernel
from alphadev.runner import run_backtest
from tests.engine.test_kernel_reference import ALPHA, BETA, _close, panels
from tests.engine.test_pipeline_reference import (
    RollingMeanAlpha,
    _assert_metrics_equal,
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

COST_COLUMNS = ["pnl", "slippage", "funding", "long_return", "short_return", "equity"]
RATE = st.sampled_from([0.0, 1e-4, -2e-4, 3e-3]) | st.floats(-0.01, 0.01)


@st.composite
def cost_arrays(draw, n_bars, n_sym):
    traded_alpha = draw(arrays(np.float64, (n_bars, n_sym), elements=ALPHA))
    betas = draw(arrays(np.float64, (n_bars, n_sym), elements=BETA))
    rates = draw(arrays(np.float64, (n_sym,), elements=st.sampled_from([0.0, 2e-4, 1e-3])
                        | st.floats(0.0, 0.01)))
    funding = draw(arrays(np.float64, (n_bars, n_sym), elements=RATE))
    return traded_alpha, betas, rates, funding


@settings(max_examples=200, deadline=None)
@given(panels(), st.data())
def test_kernel_with_costs_matches_reference(panel, data):
    prices, alpha, universe, _, open_q, close_q, gross, fee = panel
    n_bars, n_sym = prices.shape
    traded_alpha, betas, rates, funding = data.draw(cost_arrays(n_bars, n_sym))
    out = run_kernel(
        prices, traded_alpha, universe, betas, np.full(n_sym, np.nan), np.zeros(n_sym),
        open_q, close_q, gross, fee, slippage_rates=rates, funding=funding,
    )
    ic = rank_ic(alpha, out.returns, universe, np.full(n_sym, np.nan), np.zeros(n_sym, bool))
    ref = reference_weights_and_accounting(
        prices, alpha, universe, betas, open_q, close_q, gross, fee,
        traded_alpha=traded_alpha, slippage_rates=rates, funding=funding,
    )
    for name in ("weights", "gross", "fees", "slippage", "funding", "turnover",
                 "long_return", "short_return"):
        _close(getattr(out, name), getattr(ref, name), name)
    _close(ic, ref.ic, "ic")
    _close(out.pnl, ref.pnl, "pnl")
    assert out.forced_closes == ref.forced_closes
    assert (None if out.ruined_at < 0 else out.ruined_at) == ref.ruined_at


@settings(max_examples=100, deadline=None)
@given(panels(), st.data())
def test_kernel_with_costs_chains_across_a_split(panel, data):
    prices, _, universe, _, open_q, close_q, gross, fee = panel
    n_bars, n_sym = prices.shape
    alpha, betas, rates, funding = data.draw(cost_arrays(n_bars, n_sym))
    split = data.draw(st.integers(0, n_bars))
    start = (np.full(n_sym, np.nan), np.zeros(n_sym))
    tail = (open_q, close_q, gross, fee)
    full = run_kernel(prices, alpha, universe, betas, *start, *tail, slippage_rates=rates,
                      funding=funding)
    first = run_kernel(prices[:split], alpha[:split], universe[:split], betas[:split], *start,
                       *tail, slippage_rates=rates, funding=funding[:split])
    carried = (prices[split - 1], first.weights[-1]) if split > 0 else start
    second = run_kernel(prices[split:], alpha[split:], universe[split:], betas[split:],
                        *carried, *tail, slippage_rates=rates, funding=funding[split:],
                        ruined=first.ruined_at >= 0)
    for name in ("weights", "gross", "fees", "slippage", "funding", "pnl", "long_return",
                 "short_return"):
        joined = np.concatenate([getattr(first, name), getattr(second, name)])
        _close(joined, getattr(full, name), name)


# ------------------------------------------------------------------------- pipeline


@st.composite
def costed_scenarios(draw, max_days=2):
    """A random scenario plus execution delay, slippage, funding events and betas."""
    sc = draw(scenarios(max_days=max_days))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bar = pd.Timedelta(sc["freq"])
    t0 = pd.Timestamp(sc["start"], tz="UTC")
    t_end = pd.Timestamp(sc["end"], tz="UTC") + pd.Timedelta(days=1)
    symbols = sorted(sc["symbols"])
    sc["delay"] = draw(st.sampled_from([0, 1, 2, 3]))
    if draw(st.booleans()):
        sc["slippage"] = {s: float(rng.choice([0.0, 1e-4, 5e-4, 2e-3])) for s in symbols}
    else:
        sc["slippage"] = draw(st.sampled_from([0.0, 2e-4, 1e-3]))
    names = symbols + ["AAAUSDT"]  # an unrequested symbol too
    funding_rows = []
    stamp = t0 - pd.Timedelta(hours=16)
    while stamp < t_end + pd.Timedelta(hours=8):  # 8-hourly events, before and after
        for sym in names:
            if rng.random() < 0.8:
                funding_rows.append((stamp, sym, float(rng.normal(1e-4, 3e-4))))
        stamp += pd.Timedelta(hours=8)
    for _ in range(int(rng.integers(0, 6))):  # on a label, one ns before the next, inside
        label = t0 + int(rng.integers(-2, int((t_end - t0) / bar))) * bar
        offset = [pd.Timedelta(0), bar - pd.Timedelta(1, "ns"),
                  pd.Timedelta(seconds=int(rng.integers(1, int(bar.total_seconds()))))]
        ts = label + offset[int(rng.integers(0, 3))]
        funding_rows.append((ts, str(rng.choice(names)), float(rng.normal(0, 1e-3))))
    funding = pd.DataFrame(funding_rows, columns=["timestamp", "symbol", "rate"])
    sc["funding_df"] = funding.drop_duplicates(["timestamp", "symbol"]).reset_index(drop=True)
    sc["beta_ts_df"] = None
    if draw(st.booleans()):
        sc["beta_df"] = None  # beta_loader and beta_csv_path exclude each other
        beta_rows = []
        for sym in names:
            stamps = t0 + pd.to_timedelta(
                np.sort(rng.integers(-3 * 86_400, int((t_end - t0).total_seconds()), 5)), "s"
            )
            for ts in dict.fromkeys(stamps):
                value = float(rng.choice([-0.5, 0.0, 0.8, 1.5, math.nan]))
                beta_rows.append((ts, sym, value))
        sc["beta_ts_df"] = pd.DataFrame(beta_rows, columns=["timestamp", "symbol", "beta"])
    return sc


def _costed_config(sc, folder, **overrides):
    _write_csv(sc["funding_df"], folder / "funding.csv", sc["style"])
    extra = dict(
        execution_delay=sc["delay"],
        slippage_rate=sc["slippage"],
        funding_loader=CSVDataLoader(str(folder / "funding.csv"), "rate"),
    )
    if sc["beta_ts_df"] is not None:
        _write_csv(sc["beta_ts_df"], folder / "betas.csv", sc["style"])
        extra["beta_loader"] = CSVDataLoader(str(folder / "betas.csv"), "beta")
    return _config(sc, folder, **extra, **overrides)


def _costed_reference(sc, alpha_rows, later=0):
    """The reference run; ``later=1``: the same config one bar later (its next-bar twin)."""
    return reference_backtest(
        sc["price_df"], alpha_rows, sc["universe_df"], sc["beta_df"], sc["symbols"],
        sc["start"], sc["end"], sc["freq"], sc["mfb"], sc["quantile"][0], sc["quantile"][1],
        sc["gross"], sc["fee"], execution_delay=sc["delay"] + later, slippage_rate=sc["slippage"],
        funding_df=sc["funding_df"], beta_df=sc["beta_ts_df"],
    )


def _assert_costs_match(result, ref):
    assert_matches_reference(result, ref)
    for col in COST_COLUMNS:
        np.testing.assert_allclose(
            result.sequences[col].to_numpy(float), ref.sequences[col].to_numpy(), rtol=1e-12,
            atol=1e-12, err_msg=col,
        )
    breakdown = result.metrics["cost_breakdown"]
    for name, column in (("gross", "gross"), ("fees", "fees"), ("slippage", "slippage"),
                         ("funding", "funding")):
        assert breakdown[name] == pytest.approx(ref.sequences[column].sum(), abs=1e-12)
    assert result.metrics["total_slippage"] == pytest.approx(ref.run.slippage.sum(), abs=1e-12)
    assert result.metrics["total_funding"] == pytest.approx(ref.run.funding.sum(), abs=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=costed_scenarios(), mode=st.sampled_from(["batch", 1, 2]))
def test_pipeline_with_costs_matches_reference(sc, mode, tmp_path_factory):
    folder = tmp_path_factory.mktemp("costs")
    streaming = {} if mode == "batch" else {"mode": "streaming", "chunk_days": mode}
    result = run_backtest(_costed_config(sc, folder, **streaming))
    alpha_rows = sc["alpha_df"].rename(columns={"value": "alpha"})
    _assert_costs_match(result, _costed_reference(sc, alpha_rows))
    assert_next_bar_matches(result, _costed_reference(sc, alpha_rows, later=1))


# ------------------------------------------------------------------------- streaming


def _long_costed_scenario():
    sc = _long_scenario()
    rng = np.random.default_rng(7)
    symbols = sorted(sc["symbols"])
    stamps = pd.date_range("2024-01-01", "2024-02-13", freq="8h", tz="UTC")  # 00:00 = chunk edge
    rows = [(ts, s, float(rng.normal(1e-4, 2e-4))) for ts in stamps for s in symbols]
    rows += [(pd.Timestamp("2024-01-10", tz="UTC") - pd.Timedelta(1, "ns"), "BTCUSDT", 5e-4)]
    sc["funding_df"] = pd.DataFrame(rows, columns=["timestamp", "symbol", "rate"])
    beta_stamps = pd.date_range("2023-12-30 13:30", "2024-02-12", freq="37h", tz="UTC")
    sc["beta_ts_df"] = pd.DataFrame(
        [(ts, s, float(rng.uniform(0.3, 2.0))) for ts in beta_stamps for s in symbols],
        columns=["timestamp", "symbol", "beta"],
    )
    sc["beta_df"] = None
    sc["delay"] = 2
    sc["slippage"] = {s: 1e-4 * (k + 1) for k, s in enumerate(symbols)}
    return sc


@pytest.fixture(scope="module")
def long_costed_run(tmp_path_factory):
    sc = _long_costed_scenario()
    folder = tmp_path_factory.mktemp("long_costs")
    config = _costed_config(sc, folder, alpha_class=RollingMeanAlpha, alpha_kwargs={"hours": 6})
    return sc, folder, run_backtest(config)


def test_long_batch_with_costs_matches_reference(long_costed_run):
    sc, _, batch = long_costed_run
    alpha_rows = rolling_mean_rows(joined_rows(sc), 6)
    ref = _costed_reference(sc, alpha_rows)
    assert (ref.sequences["funding"] != 0).sum() > 100 and ref.sequences["slippage"].sum() > 0
    _assert_costs_match(batch, ref)
    assert_next_bar_matches(batch, _costed_reference(sc, alpha_rows, later=1))


@pytest.mark.parametrize("chunk_days", [1, 2, 7])
def test_streaming_with_costs_equals_batch(long_costed_run, chunk_days):
    sc, folder, batch = long_costed_run
    streamed = run_backtest(_costed_config(
        sc, folder, alpha_class=RollingMeanAlpha, alpha_kwargs={"hours": 6},
        mode="streaming", chunk_days=chunk_days,
    ))
    assert list(streamed.sequences.index) == list(batch.sequences.index)
    for col in streamed.sequences.columns:
        np.testing.assert_allclose(
            streamed.sequences[col].to_numpy(float), batch.sequences[col].to_numpy(float),
            rtol=0, atol=1e-9, err_msg=col,
        )
    pd.testing.assert_frame_equal(
        streamed.positions.reset_index(drop=True), batch.positions.reset_index(drop=True),
        check_exact=False, atol=1e-9, rtol=0,
    )
    _assert_metrics_equal(streamed.metrics, batch.metrics, 1e-9)


def test_disk_cached_panel_keeps_the_cost_arrays(long_costed_run, tmp_path):
    """A panel read back from the disk cache carries its delay rows, funding and betas."""
    from alphadev import cache as panel_cache

    sc, folder, batch = long_costed_run
    config = _costed_config(sc, folder, alpha_class=RollingMeanAlpha, alpha_kwargs={"hours": 6})
    first = run_backtest(config, cache_dir=tmp_path)
    panel_cache.clear_memory()
    hits = panel_cache.STATS["disk_hits"]
    second = run_backtest(config, cache_dir=tmp_path)
    assert panel_cache.STATS["disk_hits"] == hits + 1
    for result in (first, second):
        pd.testing.assert_frame_equal(result.sequences, batch.sequences, check_exact=True)
