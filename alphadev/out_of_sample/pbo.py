"""Probability of backtest overfitting by combinatorially symmetric cross-validation.

Bailey, Borwein, López de Prado and Zhu, "The Probability of Backtest Overfitting"
(2015); docs/semantics.md#probability-of-backtest-overfitting.  Arrays only: ``pnl`` is
bars x configs on the union grid with NaN where a config has no bar; configs are
columns in name order ("ties by name" = ties to the lower column).

Speed: each config's per-block count, mean and sum of squared deviations from that
mean are taken once (two passes, so sums do not cancel), and each of the C(S, S/2)
combinations merges S of them per config: O(C * S * N) after one O(T * N) pass,
compiled with numba.  A block's numbers depend on its own bars only, so two configs
with equal pnl on a combination's out-of-sample bars tie exactly (average ranks).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from alphadev.metrics import STD_ZERO_RTOL
from alphadev.validation import ParameterError, check_scalar

__all__ = ["PBO", "block_edges", "check_blocks", "probability_of_overfitting"]


class PBO(NamedTuple):
    """Per combination (in ``combinations`` order, lexicographic in-sample blocks):
    ``chosen`` n*, its in-sample and out-of-sample per-bar Sharpe (NaN if undefined),
    ``omega`` and ``lambdas``; ``used`` marks the configs ranked (every block has data)."""

    combinations: npt.NDArray[np.int64]
    chosen: npt.NDArray[np.int64]
    is_sharpe: npt.NDArray[np.float64]
    oos_sharpe: npt.NDArray[np.float64]
    omega: npt.NDArray[np.float64]
    lambdas: npt.NDArray[np.float64]
    used: npt.NDArray[np.bool_]

    @property
    def pbo(self) -> float:
        """Share of combinations whose n* ranks in the lower half out of sample."""
        return float(np.mean(self.lambdas <= 0.0))

    @property
    def probability_of_loss(self) -> float:
        """Share of combinations where n*'s out-of-sample Sharpe is (defined and) < 0."""
        return float(np.mean(np.nan_to_num(self.oos_sharpe, nan=0.0) < 0.0))

    def degradation(self) -> tuple[float | None, float | None]:
        """(slope, intercept) of the least-squares line of out-of-sample on in-sample
        Sharpe over the combinations where both are defined; None when the line is
        undefined (fewer than 2 points or no spread in-sample)."""
        ok = np.isfinite(self.is_sharpe) & np.isfinite(self.oos_sharpe)
        x, y = self.is_sharpe[ok], self.oos_sharpe[ok]
        if x.size < 2:
            return None, None
        dx = x - x.mean()
        sxx = float(dx @ dx)
        if not sxx > 0.0 or sxx <= (STD_ZERO_RTOL * float(np.abs(x).max())) ** 2:
            return None, None
        slope = float(dx @ (y - y.mean())) / sxx
        return slope, float(y.mean() - slope * x.mean())


MAX_BLOCKS = 22
"""C(22, 11) = 705,432 combinations; 24 blocks would be 2.7 million."""


def check_blocks(blocks: int, n_bars: int) -> int:
    """``blocks`` as an even int in [4, MAX_BLOCKS] leaving at least 2 bars per block."""
    blocks = check_scalar("blocks", blocks, integer=True, low=4, high=MAX_BLOCKS,
                          hint="an even number of blocks, 16 by default")
    if blocks % 2:
        raise ParameterError(f"blocks={blocks} must be even (half the blocks are in-sample); "
                             f"use {blocks - 1} or {blocks + 1}")
    if n_bars // blocks < 2:
        fits = min(MAX_BLOCKS, (n_bars // 2) // 2 * 2)
        fix = f"use at most {fits} blocks" if fits >= 4 else "run a longer sweep"
        raise ParameterError(
            f"blocks={blocks} leaves fewer than 2 bars per block ({n_bars} bars); {fix}"
        )
    return blocks


def block_edges(n_bars: int, blocks: int) -> npt.NDArray[np.int64]:
    """``blocks + 1`` bar offsets: contiguous blocks, the first ``n_bars % blocks`` one
    bar longer than the rest."""
    size, extra = divmod(n_bars, blocks)
    lengths = np.full(blocks, size, dtype=np.int64)
    lengths[:extra] += 1
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def probability_of_overfitting(pnl: npt.ArrayLike, blocks: int = 16) -> PBO:
    """CSCV over the columns of ``pnl`` (bars x configs, NaN = no bar)."""
    x = np.asarray(pnl, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"pnl must be bars x configs, got shape {x.shape}")
    n_bars, n_configs = x.shape
    if n_configs < 2:
        raise ParameterError(f"PBO needs at least 2 configs, got {n_configs}; "
                             "run (or complete) more configs of the sweep")
    blocks = check_blocks(blocks, n_bars)
    edges = block_edges(n_bars, blocks)
    count, block_mean, block_m2, peak = _block_stats(np.ascontiguousarray(x.T), edges)
    used = (count > 0).all(axis=1)
    if used.sum() < 2:
        raise ParameterError(
            f"PBO needs at least 2 configs with bars in every one of the {blocks} blocks, "
            f"got {int(used.sum())}; use fewer blocks or configs covering the whole period"
        )
    combinations = np.array(list(itertools.combinations(range(blocks), blocks // 2)),
                            dtype=np.int64)
    chosen, is_sr, oos_sr, omega = _cscv(count, block_mean, block_m2, peak, used,
                                         combinations, STD_ZERO_RTOL)
    with np.errstate(divide="ignore"):
        lambdas = np.log(omega / (1.0 - omega))
    return PBO(combinations, chosen, is_sr, oos_sr, omega, lambdas, used)


@njit(cache=True)
def _block_stats(by_config: np.ndarray, edges: np.ndarray):  # type: ignore[no-untyped-def]
    """Per config and block (NaN bars skipped): bar count, mean, sum of squared
    deviations from that mean, and max |pnl|.  Each block's numbers come from its own
    bars only, so configs with the same pnl in a block have the same numbers there."""
    n, t = by_config.shape
    s = edges.size - 1
    count = np.zeros((n, s), dtype=np.int64)
    block_mean = np.zeros((n, s))
    block_m2 = np.zeros((n, s))
    peak = np.zeros((n, s))
    for i in range(n):
        for b in range(s):
            total = 0.0
            k = 0
            for j in range(edges[b], edges[b + 1]):
                v = by_config[i, j]
                if not np.isnan(v):
                    total += v
                    k += 1
                    if abs(v) > peak[i, b]:
                        peak[i, b] = abs(v)
            if k == 0:
                continue
            mu = total / k
            m2 = 0.0
            for j in range(edges[b], edges[b + 1]):
                v = by_config[i, j]
                if not np.isnan(v):
                    m2 += (v - mu) * (v - mu)
            count[i, b] = k
            block_mean[i, b] = mu
            block_m2[i, b] = m2
    return count, block_mean, block_m2, peak


@njit(cache=True)
def _sharpe(n: int, mu: float, m2: float, top: float, rtol: float) -> float:
    """Per-bar mean / std (ddof=1) from count, mean and sum of squared deviations; NaN
    when undefined."""
    if n < 2:
        return np.nan
    var = m2 / (n - 1)
    std = math.sqrt(var) if var > 0.0 else 0.0
    if std <= rtol * top:
        return np.nan
    return mu / std


@njit(cache=True)
def _cscv(count, block_mean, block_m2, peak, used, combinations, rtol):  # type: ignore[no-untyped-def]
    n, s = count.shape
    n_comb, half = combinations.shape
    chosen = np.zeros(n_comb, dtype=np.int64)
    is_out = np.full(n_comb, np.nan)
    oos_out = np.full(n_comb, np.nan)
    omega = np.zeros(n_comb)
    in_sample = np.zeros(s, dtype=np.bool_)
    oos = np.empty(n)
    n_used = 0
    for i in range(n):
        if used[i]:
            n_used += 1
    for c in range(n_comb):
        in_sample[:] = False
        for h in range(half):
            in_sample[combinations[c, h]] = True
        best = -1
        best_is = -np.inf
        for i in range(n):
            if not used[i]:
                continue
            # Blocks merged in index order (Chan, Golub and LeVeque's pairwise update):
            # the same blocks' numbers give the same bits, so configs with equal pnl on
            # one side tie exactly there.
            ni, mi, qi, ti = 0, 0.0, 0.0, 0.0
            no, mo, qo, to = 0, 0.0, 0.0, 0.0
            for b in range(s):
                nb = count[i, b]
                if nb == 0:
                    continue
                if in_sample[b]:
                    d = block_mean[i, b] - mi
                    mi += d * nb / (ni + nb)
                    qi += block_m2[i, b] + d * d * ni * nb / (ni + nb)
                    ni += nb
                    ti = max(ti, peak[i, b])
                else:
                    d = block_mean[i, b] - mo
                    mo += d * nb / (no + nb)
                    qo += block_m2[i, b] + d * d * no * nb / (no + nb)
                    no += nb
                    to = max(to, peak[i, b])
            sr_in = _sharpe(ni, mi, qi, ti, rtol)
            sr_out = _sharpe(no, mo, qo, to, rtol)
            oos[i] = -np.inf if np.isnan(sr_out) else sr_out
            score = -np.inf if np.isnan(sr_in) else sr_in
            if best < 0 or score > best_is:
                best = i
                best_is = score
        below = 0
        equal = 0
        target = oos[best]
        for i in range(n):
            if used[i]:
                if oos[i] < target:
                    below += 1
                elif oos[i] == target:
                    equal += 1
        rank = below + (equal + 1) / 2.0
        chosen[c] = best
        is_out[c] = best_is if np.isfinite(best_is) else np.nan
        oos_out[c] = target if np.isfinite(target) else np.nan
        omega[c] = rank / (n_used + 1.0)
    return chosen, is_out, oos_out, omega
