"""Rank information coefficient per bar (SPEC section 4).

ic[t] is the Spearman correlation between A[t-1, :] and r[t, :] over the symbols where
both are finite and U[t-1] is true.  Ranks use the average rank for ties, as
``scipy.stats.spearmanr`` does.  The loop over bars is compiled; each bar ranks its
whole row at once.
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
) -> np.ndarray:
    """IC for every bar of ``returns``; ``prev_*`` are the rows of bar t = -1."""
    lagged_alpha = np.vstack([prev_alpha[None, :], alpha[:-1]]).astype(np.float64)
    lagged_universe = np.vstack([prev_universe[None, :], universe[:-1]]).astype(np.bool_)
    return _rank_ic(
        np.ascontiguousarray(lagged_alpha),
        np.ascontiguousarray(returns, dtype=np.float64),
        np.ascontiguousarray(lagged_universe),
    )


@numba.njit(cache=True)
def _average_ranks(x):
    """1-based ranks of ``x`` with ties given their mean rank."""
    n = x.shape[0]
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(n)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and x[order[stop]] == x[order[start]]:
            stop += 1
        mean_rank = 0.5 * (start + stop - 1) + 1.0
        for k in range(start, stop):
            ranks[order[k]] = mean_rank
        start = stop
    return ranks


@numba.njit(cache=True)
def _rank_ic(lagged_alpha, returns, lagged_universe):
    n_bars, n_sym = returns.shape
    ic = np.full(n_bars, np.nan)
    a = np.empty(n_sym)
    r = np.empty(n_sym)
    for t in range(n_bars):
        m = 0
        for i in range(n_sym):
            if (
                lagged_universe[t, i]
                and np.isfinite(lagged_alpha[t, i])
                and np.isfinite(returns[t, i])
            ):
                a[m] = lagged_alpha[t, i]
                r[m] = returns[t, i]
                m += 1
        if m < 2:
            continue
        ra = _average_ranks(a[:m])
        rr = _average_ranks(r[:m])
        ra -= ra.mean()
        rr -= rr.mean()
        denom = np.sqrt((ra * ra).sum() * (rr * rr).sum())
        if denom > 0.0:
            ic[t] = (ra * rr).sum() / denom
    return ic
