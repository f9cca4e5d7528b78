"""Hand-checked cases for execution delay, slippage, funding and time-varying betas
(docs/semantics.md#execution-and-costs); arithmetic in the comments.

Kernel cases run on the numba kernel and on the slow reference; data cases (when a
funding event or a beta change counts) run the whole pipeline on small CSV files.
Columns are symbols A, B, (C) in name order.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, CSVDataLoader
from alphadev.engine.kernel import run_kernel
from alphadev.errors import DataError
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha
from tests.reference import reference_weights_and_accounting

nan = math.nan


@pytest.fixture(params=["engine", "reference"])
def impl(request):
    return request.param


def _eq(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, float), expected, rtol=0, atol=1e-15)


def _kernel(impl, prices, alpha, rates=None, funding=None, fee=0.0):
    prices = np.array(prices, dtype=float)
    alpha = np.array(alpha, dtype=float)
    n_sym = prices.shape[1]
    universe = np.ones_like(prices, dtype=bool)
    rates = None if rates is None else np.array(rates, dtype=float)
    funding = None if funding is None else np.array(funding, dtype=float)
    if impl == "engine":
        return run_kernel(prices, alpha, universe, np.ones(n_sym), np.full(n_sym, nan),
                          np.zeros(n_sym), 0.5, 0.5, 1.0, fee, slippage_rates=rates,
                          funding=funding)
    return reference_weights_and_accounting(prices, alpha, universe, np.ones(n_sym), 0.5, 0.5,
                                            1.0, fee, slippage_rates=rates, funding=funding)


def test_slippage_on_a_flip_from_long_to_short(impl):
    # bar 0: short A, long B (0.5 each). Slippage 0.001 * 0.5 + 0.002 * 0.5 = 0.0015;
    #   the long leg's part is B's 0.001, the short leg's A's 0.0005; leg notionals of
    #   w[0] (w[-1] is flat): 0.5 -> long_return -0.002, short_return -0.001.
    # bar 1: the alphas swap: A -0.5 -> +0.5, B +0.5 -> -0.5; each trades 1.0:
    #   slippage 0.001 * 1 + 0.002 * 1 = 0.003.
    #   long parts: A |0.5 - 0| * 0.001 + B |0 - 0.5| * 0.002 = 0.0015 = short parts.
    #   leg notionals of w[0]: 0.5 -> long_return = short_return = -0.0015 / 0.5 = -0.003.
    # Prices are flat and the fee is 0: pnl = -slippage.
    out = _kernel(impl, [[1, 1], [1, 1]], [[1, 2], [2, 1]], rates=[0.001, 0.002])
    _eq(out.weights, [[-0.5, 0.5], [0.5, -0.5]])
    _eq(out.slippage, [0.0015, 0.003])
    _eq(out.long_return, [-0.002, -0.003])
    _eq(out.short_return, [-0.001, -0.003])
    pnl = out.gross - out.fees - out.slippage + out.funding if impl == "engine" else out.pnl
    _eq(pnl, [-0.0015, -0.003])


def test_funding_is_paid_by_the_book_held_through_the_bar(impl):
    # bar 0: the book opens (w[-1] = 0): funding at bar 0 is 0 whatever the rates.
    # bar 1: held w[0] = (-0.5, +0.5); F = (0.002, 0.001): longs pay, shorts receive:
    #   funding = -(-0.5 * 0.002 + 0.5 * 0.001) = 0.001 - 0.0005 = 0.0005.
    #   long_return = -0.0005 / 0.5 = -0.001; short_return = +0.001 / 0.5 = 0.002.
    out = _kernel(impl, [[1, 1], [1, 1]], [[1, 2], [1, 2]], funding=[[0.5, 0.5],
                                                                     [0.002, 0.001]])
    _eq(out.funding, [0.0, 0.0005])
    _eq(out.long_return, [0.0, -0.001])
    _eq(out.short_return, [0.0, 0.002])


# ---------------------------------------------------------------- data cases

DAY = pd.Timestamp("2024-01-02", tz="UTC")


def _write(path, rows, column):
    frame = pd.DataFrame(rows, columns=["timestamp", "symbol", column])
    frame["timestamp"] = [
        ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts.microsecond:06d}{ts.nanosecond:03d}Z"
        for ts in frame["timestamp"]
    ]
    frame.to_csv(path, index=False)
    return str(path)


def _market(folder, prices, alphas, symbols=("A", "B")):
    """prices/alphas: {offset hours from 2024-01-02: [one value per symbol]}."""
    price_rows = [(DAY + pd.Timedelta(hours=h), s, p) for h, row in prices.items()
                  for s, p in zip(symbols, row)]
    alpha_rows = [(DAY + pd.Timedelta(hours=h), s, a) for h, row in alphas.items()
                  for s, a in zip(symbols, row)]
    return dict(
        name="hand", alpha_class=EchoAlpha, alpha_kwargs={}, start_date=dt.date(2024, 1, 2),
        end_date=dt.date(2024, 1, 2), symbols=list(symbols),
        price_loader=CSVDataLoader(_write(folder / "p.csv", price_rows, "close"), "close"),
        alpha_loaders=[CSVDataLoader(_write(folder / "a.csv", alpha_rows, "value"), "value")],
        beta_csv_path=None, quantile=(0.5, 0.5), trading_fee_rate=0.0,
    )


def test_funding_event_timing(tmp_path):
    # A, B, C; C has no alpha, so it is never held. Long B, short A (0.5 each) from bar 0;
    # flat prices. Events:
    #   B 00:00 rate 0.003 -> bar 0, but w[-1] = 0: nothing.
    #   B 01:00 exactly on the label of bar 1, rate 0.001: -(0.5 * 0.001) = -0.0005.
    #   A 02:59:59.999999999, one ns before bar 3, counts in bar 2, rate 0.002:
    #     -(-0.5 * 0.002) = +0.001.
    #   B 2024-01-01 23:00, before the first bar: not counted anywhere.
    #   C 01:30, a symbol not held: nothing.
    hours = {h: [100.0, 100.0, 100.0] for h in range(4)}
    fields = _market(tmp_path, hours, {h: [1.0, 2.0, nan] for h in range(4)},
                     symbols=("A", "B", "C"))
    events = [
        (DAY - pd.Timedelta(hours=1), "B", 0.01),
        (DAY, "B", 0.003),
        (DAY + pd.Timedelta(hours=1), "B", 0.001),
        (DAY + pd.Timedelta(hours=1, minutes=30), "C", 0.05),
        (DAY + pd.Timedelta(hours=3) - pd.Timedelta(1, "ns"), "A", 0.002),
    ]
    funding = CSVDataLoader(_write(tmp_path / "f.csv", events, "rate"), "rate")
    result = run_backtest(BacktestConfig(**fields, funding_loader=funding))
    _eq(result.funding, [0.0, -0.0005, 0.001, 0.0])
    _eq(result.pnl, [0.0, -0.0005, 0.001, 0.0])
    _eq(result.long_returns, [0.0, -0.001, 0.0, 0.0])
    _eq(result.short_returns, [0.0, 0.0, 0.002, 0.0])
    assert result.metrics["total_funding"] == pytest.approx(0.0005, abs=1e-15)
    assert result.metrics["cost_breakdown"]["funding"] == pytest.approx(0.0005, abs=1e-15)


def test_delay_one_on_a_two_bar_panel(tmp_path):
    # History at 2024-01-01 23:00 (before start_date): alpha A=2, B=1.
    # bar 0 (00:00) trades the alpha of 23:00: long A, short B. bar 1 (01:00) trades the
    #   alpha of 00:00 (A=1, B=2): short A, long B, a flip: traded 2.0.
    # Returns at bar 1: A 100 -> 110 (+0.1), B 100 -> 90 (-0.1):
    #   gross[1] = 0.5 * 0.1 + (-0.5) * (-0.1) = 0.1.  fee 0.001: fees = [0.001, 0.002].
    # IC[1] uses the undelayed alpha of bar 0 (A=1, B=2) against r[1] = (0.1, -0.1): -1.
    fields = _market(
        tmp_path, {-1: [100.0, 100.0], 0: [100.0, 100.0], 1: [110.0, 90.0]},
        {-1: [2.0, 1.0], 0: [1.0, 2.0], 1: [2.0, 1.0]},
    )
    fields["trading_fee_rate"] = 0.001
    result = run_backtest(BacktestConfig(**fields, execution_delay=1))
    weights = result.positions.pivot(index="timestamp", columns="symbol", values="weight")
    _eq(weights[["A", "B"]].to_numpy(), [[0.5, -0.5], [-0.5, 0.5]])
    _eq(result.gross, [0.0, 0.1])
    _eq(result.fees, [0.001, 0.002])
    _eq(result.ic_sequence.iloc[1:], [-1.0])
    undelayed = run_backtest(BacktestConfig(**fields))
    _eq(undelayed.gross, [0.0, -0.1])  # long B, short A from bar 0: the opposite book


def test_beta_change_in_the_middle_of_a_bar(tmp_path):
    # Long B, short A. A has no beta rows: 1.0. B: 3.0 at 01:30 (inside bar 1), an empty
    # cell at 02:10 (ignored). bar 0: betas (1, 1) -> L = S = 0.5.
    # bars 1, 2: L * 3 = S * 1 and L + S = 1 -> L = 0.25, S = 0.75.
    fields = _market(tmp_path, {h: [100.0, 100.0] for h in range(3)},
                     {h: [1.0, 2.0] for h in range(3)})
    rows = [(DAY + pd.Timedelta(hours=1, minutes=30), "B", 3.0),
            (DAY + pd.Timedelta(hours=2, minutes=10), "B", nan)]
    betas = CSVDataLoader(_write(tmp_path / "b.csv", rows, "beta"), "beta")
    result = run_backtest(BacktestConfig(**fields, beta_loader=betas))
    weights = result.positions.pivot(index="timestamp", columns="symbol", values="weight")
    _eq(weights[["A", "B"]].to_numpy(), [[-0.5, 0.5], [-0.75, 0.25], [-0.75, 0.25]])


def test_funding_row_without_a_rate_is_an_error(tmp_path):
    fields = _market(tmp_path, {h: [100.0, 100.0] for h in range(3)},
                     {h: [1.0, 2.0] for h in range(3)})
    events = [(DAY + pd.Timedelta(hours=1), "A", 1e-4), (DAY + pd.Timedelta(hours=2), "B", nan)]
    path = _write(tmp_path / "f.csv", events, "rate")
    config = BacktestConfig(**fields, funding_loader=CSVDataLoader(path, "rate"))
    with pytest.raises(DataError) as info:
        run_backtest(config)
    message = str(info.value)
    assert "funding_loader" in message and path in message and "'B'" in message
    assert "2024-01-02 02:00:00" in message and "rate=nan " in message  # not np.float64(nan)
