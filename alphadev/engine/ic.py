"""Rank information coefficient per bar (docs/semantics.md#accounting).

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
    alpha_order: np.ndarray | None = None,
    returns_order: np.ndarray | None = None,
) -> np.ndarray:
    """IC for every bar of ``returns``; ``prev_*`` are the rows of bar t = -1.

    ``alpha_order`` and ``returns_order`` are the row-wise argsorts, if the caller has them.
    """
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    returns = np.ascontiguousarray(returns, dtype=np.float64)
    prev_alpha = np.ascontiguousarray(prev_alpha, dtype=np.float64)
    if alpha_order is None:
        alpha_order = np.argsort(alpha, axis=1)
    if returns_order is None:
        returns_order = np.argsort(returns, axis=1)
    return _rank_ic_nb(
        alpha,
        prev_alpha,
        np.ascontiguousarray(universe, dtype=np.bool_),
        np.ascontiguousarray(prev_universe, dtype=np.bool_),
        returns,
        np.ascontiguousarray(alpha_order),
        np.argsort(prev_alpha),
        np.ascontiguousarray(returns_order),
    )


@numba.njit(cache=True, nogil=True)
def _average_ranks_nb(order_row, values, member, buf, ranks):
    """1-based ranks of the members of a row, ties sharing their mean rank.

    Walks the sorted row once to list the members in order, then the list once.
    Returns the number of members.
    """
    m = 0
    for j in range(order_row.shape[0]):
        i = order_row[j]
        if member[i]:
            buf[m] = i
            m += 1
    start = 0
    while start < m:
        stop = start + 1
        while stop < m and values[buf[stop]] == values[buf[start]]:
            stop += 1
        mean_rank = 0.5 * (start + stop - 1) + 1.0
        for k in range(start, stop):
            ranks[buf[k]] = mean_rank
        start = stop
    return m


@numba.njit(cache=True, nogil=True)
def _rank_ic_nb(
    alpha, prev_alpha, universe, prev_universe, returns, alpha_order, prev_order, returns_order
):
    n_bars, n_sym = returns.shape
    ic = np.full(n_bars, np.nan)
    member = np.zeros(n_sym, dtype=np.bool_)
    buf = np.empty(n_sym, dtype=np.int64)
    rank_a = np.zeros(n_sym)
    rank_r = np.zeros(n_sym)
    for t in range(n_bars):
        a_row = prev_alpha if t == 0 else alpha[t - 1]
        u_row = prev_universe if t == 0 else universe[t - 1]
        m = 0
        for i in range(n_sym):
            ok = u_row[i] and np.isfinite(a_row[i]) and np.isfinite(returns[t, i])
            member[i] = ok
            m += ok
        if m < 2:
            continue
        _average_ranks_nb(returns_order[t], returns[t], member, buf, rank_r)
        _average_ranks_nb(prev_order if t == 0 else alpha_order[t - 1], a_row, member, buf, rank_a)
        ic[t] = spearman_of_ranks_nb(rank_a, rank_r, buf, m)
    return ic


@numba.njit(cache=True, nogil=True)
def spearman_of_ranks_nb(rank_a, rank_b, buf, m):
    """Pearson correlation of two rank vectors over the ``m`` members listed in ``buf``
    (ranks 1..m, so both means are (m + 1) / 2); NaN when a side is constant."""
    center = 0.5 * (m + 1)
    cov = 0.0
    var_a = 0.0
    var_b = 0.0
    for k in range(m):
        i = buf[k]
        da = rank_a[i] - center
        db = rank_b[i] - center
        cov += da * db
        var_a += da * da
        var_b += db * db
    denom = np.sqrt(var_a * var_b)
    return cov / denom if denom > 0.0 else np.nan
