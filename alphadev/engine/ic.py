"""Rank information coefficient per bar (SPEC section 4).

ic[t] is the Spearman correlation between A[t-1, :] and r[t, :] over the symbols where
both are finite and U[t-1] is true.  Ranks use the average rank for ties, as
``scipy.stats.spearmanr`` does.  Whole rows are sorted at once by numpy; the compiled
loop walks each sorted row once to assign average ranks and correlate them.
"""

from __future__ import annotations

import numba
import numpy as np


def rank_ic(
    alpha: np.ndarray,
    returns: np.ndarray,
    universe: np.ndarray,
    prev_alpha: np.ndarray,
    prev_universe: np.ndarray,
    lagged_alpha_order: np.ndarray | None = None,
) -> np.ndarray:
    """IC for every bar of ``returns``; ``prev_*`` are the rows of bar t = -1.

    ``lagged_alpha_order`` is ``argsort`` of the lagged alpha rows, if the caller has it.
    """
    lagged_alpha = np.vstack([prev_alpha[None, :], alpha[:-1]]).astype(np.float64)
    lagged_universe = np.vstack([prev_universe[None, :], universe[:-1]]).astype(np.bool_)
    returns = np.ascontiguousarray(returns, dtype=np.float64)
    if lagged_alpha_order is None:
        lagged_alpha_order = np.argsort(lagged_alpha, axis=1)
    return _rank_ic(
        np.ascontiguousarray(lagged_alpha),
        returns,
        np.ascontiguousarray(lagged_universe),
        np.ascontiguousarray(lagged_alpha_order, dtype=np.int32),
        np.argsort(returns, axis=1).astype(np.int32),
    )


@numba.njit(cache=True)
def _average_ranks(order_row, values, member, ranks):
    """1-based ranks of the members, walked in sorted order; ties get their mean rank.

    Returns the number of members.
    """
    n_sym = order_row.shape[0]
    k = 0
    run_start = 0
    previous = np.nan
    for j in range(n_sym):
        i = order_row[j]
        if not member[i]:
            continue
        if k > 0 and values[i] != previous:
            _fill_run(order_row, values, member, ranks, run_start, j, k)
            run_start = j
        if k == 0 or values[i] != previous:
            previous = values[i]
            ranks[i] = k  # start of the run, in 0-based rank units
        k += 1
    if k > 0:
        _fill_run(order_row, values, member, ranks, run_start, n_sym, k)
    return k


@numba.njit(cache=True)
def _fill_run(order_row, values, member, ranks, start, stop, k_end):
    """Give every member in order_row[start:stop] the mean rank of its run."""
    first = -1.0
    count = 0
    for j in range(start, stop):
        i = order_row[j]
        if member[i]:
            if first < 0.0:
                first = ranks[i]
            count += 1
    mean_rank = first + 0.5 * (count - 1) + 1.0
    for j in range(start, stop):
        i = order_row[j]
        if member[i]:
            ranks[i] = mean_rank


@numba.njit(cache=True)
def _rank_ic(lagged_alpha, returns, lagged_universe, alpha_order, returns_order):
    n_bars, n_sym = returns.shape
    ic = np.full(n_bars, np.nan)
    member = np.zeros(n_sym, dtype=np.bool_)
    rank_a = np.zeros(n_sym)
    rank_r = np.zeros(n_sym)
    for t in range(n_bars):
        m = 0
        for i in range(n_sym):
            ok = (
                lagged_universe[t, i]
                and np.isfinite(lagged_alpha[t, i])
                and np.isfinite(returns[t, i])
            )
            member[i] = ok
            m += ok
        if m < 2:
            continue
        _average_ranks(alpha_order[t], lagged_alpha[t], member, rank_a)
        _average_ranks(returns_order[t], returns[t], member, rank_r)
        center = 0.5 * (m + 1)
        cov = 0.0
        var_a = 0.0
        var_r = 0.0
        for i in range(n_sym):
            if member[i]:
                da = rank_a[i] - center
                dr = rank_r[i] - center
                cov += da * dr
                var_a += da * da
                var_r += dr * dr
        denom = np.sqrt(var_a * var_r)
        if denom > 0.0:
            ic[t] = cov / denom
    return ic
