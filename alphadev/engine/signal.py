"""Signal series of a stretch of bars: rank IC by lag, quantile bar returns, rank
autocorrelation (docs/semantics.md#signal-series).

Arrays only, like the rest of the engine.  Alpha rows come with the rows of the bars
before the stretch (``history`` of them, NaN where none), so a stretch continues from
the previous one exactly: return row ``t`` pairs with alpha row ``history + t - lag``.
Ranks are average ranks over the symbols that count at that pair of bars, as in
``alphadev.engine.ic``.
"""

from __future__ import annotations

import numba
import numpy as np

from alphadev.engine.ic import _average_ranks_nb, spearman_of_ranks_nb


def lagged_rank_ic(
    alpha: np.ndarray,
    universe: np.ndarray,
    returns: np.ndarray,
    history: int,
    lags: np.ndarray,
    alpha_order: np.ndarray | None = None,
    returns_order: np.ndarray | None = None,
) -> np.ndarray:
    """(len(lags), T) rank IC of alpha row ``history + t - lag`` with return row ``t``
    over the symbols in that alpha row's universe with both values finite; NaN with
    fewer than two such symbols, a constant side or no alpha row that far back.

    ``alpha_order`` / ``returns_order``: the row-wise argsorts, if the caller has them.
    """
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    returns = np.ascontiguousarray(returns, dtype=np.float64)
    return _lagged_ic_nb(
        alpha, np.ascontiguousarray(universe, dtype=np.bool_), _order(alpha, alpha_order),
        returns, _order(returns, returns_order), history,
        np.ascontiguousarray(lags, dtype=np.int64),
    )


def _order(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    return np.ascontiguousarray(np.argsort(values, axis=1) if order is None else order)


def quantile_bar_returns(
    alpha: np.ndarray,
    universe: np.ndarray,
    returns: np.ndarray,
    history: int,
    n_quantiles: int,
    alpha_order: np.ndarray | None = None,
) -> np.ndarray:
    """(T, Q) return ``r[t]`` of each equal-weighted alpha bucket formed on alpha row
    ``history + t - 1``: among its m eligible symbols (in the universe, alpha and
    return finite) the one of average rank k goes to bucket ``ceil(k * Q / m)``
    (1 = lowest); NaN where a bucket is empty or m < Q."""
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    return _quantiles_nb(
        alpha, np.ascontiguousarray(universe, dtype=np.bool_), _order(alpha, alpha_order),
        np.ascontiguousarray(returns, dtype=np.float64), history, int(n_quantiles),
    )


def quantile_turnover(alpha: np.ndarray, universe: np.ndarray, history: int,
                      n_quantiles: int, alpha_order: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) turnover of the bottom and the top alpha bucket at bar t: the share of the
    bucket's symbols at alpha row ``history + t`` that were not in it at the row before.
    Buckets as in ``quantile_bar_returns`` over the symbols in the universe with finite
    alpha (no return needed); NaN where either row has fewer than Q such symbols."""
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    return _turnover_nb(alpha, np.ascontiguousarray(universe, dtype=np.bool_),
                        _order(alpha, alpha_order), history, int(n_quantiles))


def rank_autocorrelation(alpha: np.ndarray, universe: np.ndarray, history: int,
                         alpha_order: np.ndarray | None = None) -> np.ndarray:
    """(T,) Spearman correlation of alpha rows ``history + t - 1`` and ``history + t``
    over the symbols in the universe with finite alpha at both; NaN where undefined."""
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    return _autocorrelation_nb(
        alpha, np.ascontiguousarray(universe, dtype=np.bool_), _order(alpha, alpha_order),
        history,
    )


@numba.njit(cache=True, nogil=True)
def _members_nb(alpha_row, universe_row, returns_row, member):
    """Flag the symbols in the universe with finite alpha and return; their count."""
    m = 0
    for i in range(alpha_row.shape[0]):
        ok = universe_row[i] and np.isfinite(alpha_row[i]) and np.isfinite(returns_row[i])
        member[i] = ok
        m += ok
    return m


@numba.njit(cache=True, nogil=True)
def _lagged_ic_nb(alpha, universe, alpha_order, returns, returns_order, history, lags):
    n_bars, n_sym = returns.shape
    out = np.full((lags.shape[0], n_bars), np.nan)
    member = np.zeros(n_sym, dtype=np.bool_)
    buf = np.empty(n_sym, dtype=np.int64)
    rank_a = np.zeros(n_sym)
    rank_r = np.zeros(n_sym)
    for k in range(lags.shape[0]):
        for t in range(n_bars):
            row = history + t - lags[k]
            if row < 0:
                continue
            m = _members_nb(alpha[row], universe[row], returns[t], member)
            if m < 2:
                continue
            _average_ranks_nb(returns_order[t], returns[t], member, buf, rank_r)
            _average_ranks_nb(alpha_order[row], alpha[row], member, buf, rank_a)
            out[k, t] = spearman_of_ranks_nb(rank_a, rank_r, buf, m)
    return out


@numba.njit(cache=True, nogil=True)
def _quantiles_nb(alpha, universe, alpha_order, returns, history, n_q):
    n_bars, n_sym = returns.shape
    out = np.full((n_bars, n_q), np.nan)
    member = np.zeros(n_sym, dtype=np.bool_)
    buf = np.empty(n_sym, dtype=np.int64)
    ranks = np.zeros(n_sym)
    total = np.zeros(n_q)
    count = np.zeros(n_q, dtype=np.int64)
    for t in range(n_bars):
        row = history + t - 1
        if row < 0:
            continue
        m = _members_nb(alpha[row], universe[row], returns[t], member)
        if m < n_q or m == 0:
            continue
        _average_ranks_nb(alpha_order[row], alpha[row], member, buf, ranks)
        total[:] = 0.0
        count[:] = 0
        for j in range(m):
            i = buf[j]
            bucket = int(np.ceil(ranks[i] * n_q / m)) - 1
            total[bucket] += returns[t, i]
            count[bucket] += 1
        for q in range(n_q):
            if count[q] > 0:
                out[t, q] = total[q] / count[q]
    return out


@numba.njit(cache=True, nogil=True)
def _autocorrelation_nb(alpha, universe, alpha_order, history):
    n_rows, n_sym = alpha.shape
    out = np.full(n_rows - history, np.nan)
    member = np.zeros(n_sym, dtype=np.bool_)
    buf = np.empty(n_sym, dtype=np.int64)
    rank_before = np.zeros(n_sym)
    rank_after = np.zeros(n_sym)
    for t in range(n_rows - history):
        row = history + t
        if row < 1:
            continue
        m = 0
        for i in range(n_sym):
            ok = (universe[row, i] and np.isfinite(alpha[row, i]) and universe[row - 1, i]
                  and np.isfinite(alpha[row - 1, i]))
            member[i] = ok
            m += ok
        if m < 2:
            continue
        _average_ranks_nb(alpha_order[row - 1], alpha[row - 1], member, buf, rank_before)
        _average_ranks_nb(alpha_order[row], alpha[row], member, buf, rank_after)
        out[t] = spearman_of_ranks_nb(rank_before, rank_after, buf, m)
    return out


@numba.njit(cache=True, nogil=True)
def _buckets_nb(alpha_row, universe_row, order_row, n_q, member, buf, ranks, out):
    """Bucket 1..Q of each symbol of one alpha row (0: none); False when m < Q."""
    n_sym = alpha_row.shape[0]
    m = 0
    for i in range(n_sym):
        ok = universe_row[i] and np.isfinite(alpha_row[i])
        member[i] = ok
        m += ok
        out[i] = 0
    if m < n_q or m == 0:
        return False
    _average_ranks_nb(order_row, alpha_row, member, buf, ranks)
    for j in range(m):
        i = buf[j]
        out[i] = int(np.ceil(ranks[i] * n_q / m))
    return True


@numba.njit(cache=True, nogil=True)
def _turnover_nb(alpha, universe, alpha_order, history, n_q):
    n_rows, n_sym = alpha.shape
    out = np.full((n_rows - history, 2), np.nan)
    member = np.zeros(n_sym, dtype=np.bool_)
    buf = np.empty(n_sym, dtype=np.int64)
    ranks = np.zeros(n_sym)
    before = np.zeros(n_sym, dtype=np.int64)
    now = np.zeros(n_sym, dtype=np.int64)
    ready = False
    if history >= 1:
        ready = _buckets_nb(alpha[history - 1], universe[history - 1],
                            alpha_order[history - 1], n_q, member, buf, ranks, before)
    for t in range(n_rows - history):
        row = history + t
        formed = _buckets_nb(alpha[row], universe[row], alpha_order[row], n_q, member, buf,
                             ranks, now)
        if formed and ready:
            for side in range(2):
                bucket = 1 if side == 0 else n_q
                size = 0
                new = 0
                for i in range(n_sym):
                    if now[i] == bucket:
                        size += 1
                        new += before[i] != bucket
                if size > 0:
                    out[t, side] = new / size
        before[:] = now
        ready = formed
    return out
