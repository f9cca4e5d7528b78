"""The per-bar portfolio loop of SPEC section 4, on plain numpy arrays.

Everything here is numba-compiled (``cache=True`` keeps the machine code on disk, so a
fresh process does not recompile).  The module knows nothing of pandas, files or
configs: the runner hands it aligned ``(T, N)`` arrays, one row per bar and one column
per symbol (symbols sorted by name), plus the state carried from the previous bar so
that streaming chunks chain exactly like one batch run.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np


class KernelOutput(NamedTuple):
    weights: np.ndarray  # (T, N) w[t]: weights held from bar t to bar t+1
    returns: np.ndarray  # (T, N) r[t] = P[t] / P[t-1] - 1, NaN where missing
    gross: np.ndarray  # (T,) sum_i w[t-1, i] r[t, i]
    fees: np.ndarray  # (T,)
    turnover: np.ndarray  # (T,)
    long_return: np.ndarray  # (T,)
    short_return: np.ndarray  # (T,)
    forced_closes: int


def run_kernel(
    prices: np.ndarray,
    alpha: np.ndarray,
    universe: np.ndarray,
    beta: np.ndarray,
    prev_prices: np.ndarray,
    prev_weights: np.ndarray,
    open_quantile: float,
    close_quantile: float,
    gross_exposure: float,
    fee_rate: float,
) -> KernelOutput:
    """Simulate the long/short book bar by bar.

    ``prev_prices`` and ``prev_weights`` describe bar t = -1: NaN prices and zero
    weights at the start of a backtest, the last processed bar's values when a
    streaming chunk continues a previous one.
    """
    out = _kernel(
        np.ascontiguousarray(prices, dtype=np.float64),
        np.ascontiguousarray(alpha, dtype=np.float64),
        np.ascontiguousarray(universe, dtype=np.bool_),
        np.ascontiguousarray(beta, dtype=np.float64),
        np.ascontiguousarray(prev_prices, dtype=np.float64),
        np.ascontiguousarray(prev_weights, dtype=np.float64),
        float(open_quantile),
        float(close_quantile),
        float(gross_exposure),
        float(fee_rate),
    )
    return KernelOutput(*out[:7], int(out[7]))


@numba.njit(cache=True)
def _target_weights(
    p_row, a_row, u_row, beta, held, open_q, close_q, gross_exposure, order_buf, target
):
    """Steps 1-6 of SPEC section 4 for one bar; fills ``target`` and returns n = |E|."""
    n_sym = p_row.shape[0]
    target[:] = 0.0

    # 1. Eligible set E, in symbol order.
    n = 0
    for i in range(n_sym):
        if np.isfinite(p_row[i]) and np.isfinite(a_row[i]) and u_row[i]:
            order_buf[n] = i
            n += 1
    # 2. Anything held outside E is closed (target starts at zero); n < 2 is flat.
    if n < 2:
        return n

    # 3. Percentile ranks: stable sort by alpha, so ties keep symbol order.
    elig = order_buf[:n].copy()
    by_alpha = elig[np.argsort(a_row[elig], kind="mergesort")]
    q = np.full(n_sym, np.nan)
    for k in range(n):
        q[by_alpha[k]] = k / (n - 1)

    # 4. Keep held positions whose rank has not crossed the close threshold.
    is_long = np.zeros(n_sym, dtype=np.bool_)
    is_short = np.zeros(n_sym, dtype=np.bool_)
    n_long = 0
    n_short = 0
    for k in range(n):
        i = by_alpha[k]
        if held[i] > 0.0 and q[i] >= 1.0 - close_q:
            is_long[i] = True
            n_long += 1
        elif held[i] < 0.0 and q[i] <= close_q:
            is_short[i] = True
            n_short += 1

    # 5. Top up each leg to K from its candidates, strongest first, flat symbols only.
    n_open = max(1, int(np.floor(n * open_q)))
    for k in range(n - 1, n - 1 - n_open, -1):
        if n_long >= n_open:
            break
        i = by_alpha[k]
        if not is_long[i] and not is_short[i]:
            is_long[i] = True
            n_long += 1
    for k in range(n_open):
        if n_short >= n_open:
            break
        i = by_alpha[k]
        if not is_long[i] and not is_short[i]:
            is_short[i] = True
            n_short += 1
    if n_long == 0 or n_short == 0:
        return n

    # 6. Beta-neutral leg notionals, equal weights within a leg.
    beta_long = 0.0
    beta_short = 0.0
    for i in range(n_sym):
        if is_long[i]:
            beta_long += beta[i]
        elif is_short[i]:
            beta_short += beta[i]
    beta_long /= n_long
    beta_short /= n_short
    if beta_long <= 0.0 or beta_short <= 0.0:
        long_notional = 0.5 * gross_exposure
        short_notional = 0.5 * gross_exposure
    else:
        long_notional = gross_exposure * beta_short / (beta_long + beta_short)
        short_notional = gross_exposure * beta_long / (beta_long + beta_short)
    for i in range(n_sym):
        if is_long[i]:
            target[i] = long_notional / n_long
        elif is_short[i]:
            target[i] = -short_notional / n_short
    return n


@numba.njit(cache=True)
def _kernel(
    prices, alpha, universe, beta, prev_prices, prev_weights,
    open_q, close_q, gross_exposure, fee_rate,
):
    n_bars, n_sym = prices.shape
    weights = np.zeros((n_bars, n_sym))
    returns = np.full((n_bars, n_sym), np.nan)
    gross = np.zeros(n_bars)
    fees = np.zeros(n_bars)
    turnover = np.zeros(n_bars)
    long_return = np.zeros(n_bars)
    short_return = np.zeros(n_bars)
    forced_closes = 0

    held = prev_weights.copy()
    last_price = prev_prices.copy()
    order_buf = np.empty(n_sym, dtype=np.int64)
    target = np.zeros(n_sym)

    for t in range(n_bars):
        # Mark to market the book held over (t-1, t]; a missing return counts as 0.
        long_pnl = 0.0
        short_pnl = 0.0
        for i in range(n_sym):
            r = prices[t, i] / last_price[i] - 1.0
            if np.isfinite(r):
                returns[t, i] = r
                if held[i] > 0.0:
                    long_pnl += held[i] * r
                elif held[i] < 0.0:
                    short_pnl += held[i] * r
            last_price[i] = prices[t, i]

        n_elig = _target_weights(
            prices[t], alpha[t], universe[t], beta, held,
            open_q, close_q, gross_exposure, order_buf, target,
        )

        # Trades, fees split by leg, turnover, and closes the alpha did not ask for.
        traded = 0.0
        long_traded = 0.0
        short_traded = 0.0
        long_before = 0.0
        short_before = 0.0
        long_after = 0.0
        short_after = 0.0
        for i in range(n_sym):
            before = held[i]
            after = target[i]
            traded += abs(after - before)
            long_traded += abs(max(after, 0.0) - max(before, 0.0))
            short_traded += abs(min(after, 0.0) - min(before, 0.0))
            if before > 0.0:
                long_before += before
            elif before < 0.0:
                short_before -= before
            if after > 0.0:
                long_after += after
            elif after < 0.0:
                short_after -= after
            if before != 0.0 and after == 0.0:
                eligible = (
                    np.isfinite(prices[t, i]) and np.isfinite(alpha[t, i]) and universe[t, i]
                )
                if not eligible or n_elig < 2:
                    forced_closes += 1
            weights[t, i] = after
            held[i] = after

        fees[t] = fee_rate * traded
        gross[t] = long_pnl + short_pnl
        turnover[t] = 0.5 * traded
        long_notional = long_before if long_before > 0.0 else long_after
        short_notional = short_before if short_before > 0.0 else short_after
        if long_notional > 0.0:
            long_return[t] = (long_pnl - fee_rate * long_traded) / long_notional
        if short_notional > 0.0:
            short_return[t] = (short_pnl - fee_rate * short_traded) / short_notional

    return weights, returns, gross, fees, turnover, long_return, short_return, forced_closes
