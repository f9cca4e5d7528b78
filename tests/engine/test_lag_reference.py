"""Execution inside the bar (``execution_lag``) against tests/reference.py.

Random scenarios of sub-bar price rows (1 to 15 minutes apart, with gaps, listings,
delistings, empty cells and rows off the grid) resampled to longer bars, with funding
events on and around the moved bar edges, slippage, an execution delay and sometimes
impact; the whole pipeline (CSV files -> run_backtest) in batch and streaming mode
matches the literal reference to 1e-9, next-bar twin included.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphadev.data import CSVDataLoader
from alphadev.runner import run_backtest
from tests.engine.test_pipeline_reference import (
    POOL,
    _config,
    _write_csv,
    assert_matches_reference,
    assert_next_bar_matches,
)
from tests.reference import reference_backtest

COST_COLUMNS = ["slippage", "funding", "impact"]


@st.composite
def lag_scenarios(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = pd.Timedelta(draw(st.sampled_from(["1min", "5min", "5min", "15min"])))
    choices = [f for f in ("15min", "30min", "1h", "2h") if pd.Timedelta(f) > base]
    bar = pd.Timedelta(draw(st.sampled_from(choices)))
    steps = int(bar / base)
    # on a row (k base steps), between rows, and up to the last row before the next bar
    k = draw(st.integers(1, steps - 1)) if steps > 1 else 1
    lag = k * base
    if draw(st.booleans()) and lag + base < bar:
        lag += pd.Timedelta(seconds=int(rng.integers(1, int(base.total_seconds()))))
    if draw(st.integers(0, 5)) == 0:
        lag = pd.Timedelta(0)
    n_sym = draw(st.integers(2, 5))
    symbols = sorted(draw(st.permutations(POOL))[:n_sym])
    n_days = draw(st.integers(1, 2))
    start = dt.date(2024, 3, 4)
    end = start + dt.timedelta(days=n_days - 1)
    t0 = pd.Timestamp(start, tz="UTC")
    t_end = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    first = t0 - pd.Timedelta(days=1)
    n_rows = int((t_end + 2 * bar - first) / base)  # rows past the end: the lag reads them
    gap_prob = draw(st.sampled_from([0.0, 0.1, 0.3]))
    mfb = draw(st.sampled_from([0, 1, 3]))
    price_rows, alpha_rows = [], []
    for j, sym in enumerate(symbols):
        listing = int(rng.integers(0, n_rows)) if rng.random() < 0.3 else 0
        delisting = int(rng.integers(listing, n_rows + 1)) if rng.random() < 0.3 else n_rows
        level = 50.0 * (j + 1)
        dead = int(rng.integers(0, n_rows))
        dead_len = int(rng.integers(0, 3 * steps)) if rng.random() < 0.4 else 0
        for s in range(listing, delisting):
            if dead <= s < dead + dead_len or rng.random() < gap_prob:
                continue
            ts = first + s * base
            if rng.random() < 0.05:  # a row off the grid, inside its step
                ts += pd.Timedelta(seconds=int(rng.integers(1, int(base.total_seconds()))))
            level *= math.exp(0.01 * rng.standard_normal())
            price = level if rng.random() > 0.02 else math.nan
            price_rows.append((ts, sym, price))
            if rng.random() < 0.9:
                alpha_rows.append((ts, sym, float(rng.standard_normal())))
    price_df = pd.DataFrame(price_rows, columns=["timestamp", "symbol", "close"])
    if price_df[(price_df["timestamp"] >= t0) & (price_df["timestamp"] < t_end)].empty:
        price_df = pd.concat([price_df, pd.DataFrame(
            [(t0 + base, symbols[0], 10.0), (t0 + 2 * base, symbols[0], 11.0)],
            columns=price_df.columns)], ignore_index=True)
    funding_rows = []
    stamp = first
    while stamp < t_end + 2 * bar:  # hourly events, on the bar edges
        for sym in symbols:
            if rng.random() < 0.7:
                funding_rows.append((stamp, sym, float(rng.normal(1e-4, 3e-4))))
        stamp += pd.Timedelta(hours=1)
    for _ in range(int(rng.integers(0, 8))):  # on the moved edges and one ns before them
        label = t0 + int(rng.integers(-2, int((t_end - t0) / bar))) * bar
        ts = label + lag - pd.Timedelta(int(rng.integers(0, 2)), "ns")
        funding_rows.append((ts, str(rng.choice(symbols)), float(rng.normal(0, 1e-3))))
    funding = pd.DataFrame(funding_rows, columns=["timestamp", "symbol", "rate"])
    sc = dict(
        symbols=symbols, freq=f"{int(bar.total_seconds() // 60)}min", mfb=mfb, start=start,
        end=end, price_df=price_df.drop_duplicates(["timestamp", "symbol"]),
        alpha_df=pd.DataFrame(alpha_rows, columns=["timestamp", "symbol", "value"])
        .drop_duplicates(["timestamp", "symbol"]),
        universe_df=None, beta_df=None,
        quantile=draw(st.sampled_from([(0.2, 0.4), (0.5, 0.5), (0.25, 0.25)])),
        gross=draw(st.sampled_from([1.0, 2.0])), fee=draw(st.sampled_from([0.0, 4.5e-4])),
        style=draw(st.sampled_from(["offset", "zulu"])), lag=lag,
        delay=draw(st.sampled_from([0, 0, 1, 2])),
        slippage=draw(st.sampled_from([0.0, 2e-4])),
        funding_df=funding.drop_duplicates(["timestamp", "symbol"]).reset_index(drop=True),
        volume_df=None, impact=0.0,
    )
    if draw(st.booleans()):
        volume = price_df[["timestamp", "symbol"]].copy()
        volume["volume"] = rng.lognormal(12, 1, len(volume))
        sc["volume_df"] = volume.drop_duplicates(["timestamp", "symbol"])
        sc["impact"] = 0.5
    return sc


def _lag_config(sc, folder, **overrides):
    _write_csv(sc["funding_df"], folder / "funding.csv", sc["style"])
    extra = dict(
        execution_lag=sc["lag"], execution_delay=sc["delay"], slippage_rate=sc["slippage"],
        funding_loader=CSVDataLoader(str(folder / "funding.csv"), "rate"),
    )
    if sc["volume_df"] is not None:
        _write_csv(sc["volume_df"], folder / "volume.csv", sc["style"])
        extra.update(volume_loader=CSVDataLoader(str(folder / "volume.csv"), "volume"),
                     impact_coefficient=sc["impact"], capital=1e6, impact_window="1D")
    return _config(sc, folder, **extra, **overrides)


def _lag_reference(sc, later=0):
    window = int(pd.Timedelta(days=1) / pd.Timedelta(sc["freq"]))
    return reference_backtest(
        sc["price_df"], sc["alpha_df"].rename(columns={"value": "alpha"}), None, None,
        sc["symbols"], sc["start"], sc["end"], sc["freq"], sc["mfb"], sc["quantile"][0],
        sc["quantile"][1], sc["gross"], sc["fee"], execution_delay=sc["delay"] + later,
        slippage_rate=sc["slippage"], funding_df=sc["funding_df"], volume_df=sc["volume_df"],
        impact_coefficient=sc["impact"], capital=1e6, impact_window_bars=window,
        execution_lag=sc["lag"],
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=lag_scenarios(), mode=st.sampled_from(["batch", 1, 2]))
def test_pipeline_with_execution_lag_matches_reference(sc, mode, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lag")
    streaming = {} if mode == "batch" else {"mode": "streaming", "chunk_days": mode}
    result = run_backtest(_lag_config(sc, folder, **streaming))
    ref = _lag_reference(sc)
    assert_matches_reference(result, ref, atol=1e-9, rtol=1e-9)
    for col in COST_COLUMNS:
        np.testing.assert_allclose(result.sequences[col].to_numpy(float),
                                   ref.sequences[col].to_numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=col)
    assert_next_bar_matches(result, _lag_reference(sc, later=1))
