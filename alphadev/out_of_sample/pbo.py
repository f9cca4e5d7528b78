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

Only distinct trials are ranked: a config whose whole-period Sharpe is undefined (it
never trades: zero spread) is left out, and a config whose pnl equals an earlier one's
exactly is one trial with it.  Fewer than ``MIN_TRIALS`` leave PBO undefined, with the
reason (``undefined_reason``).
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

__all__ = ["MIN_TRIALS", "PBO", "block_edges", "check_blocks", "probability_of_overfitting"]

MIN_TRIALS = 3
"""Distinct trials below which PBO is undefined: with 2, the in-sample best can only be
first or last out of sample, which says which of two configs won, not how much of the
selection is luck."""


class PBO(NamedTuple):
    """Per combination (in ``combinations`` order, lexicographic in-sample blocks):
    ``chosen`` n* (-1 when no trial is ranked), its in-sample and out-of-sample per-bar
    Sharpe (NaN if undefined), ``omega`` and ``lambdas`` (NaN when PBO is undefined),
    ``tie_decides`` (n* is in the lower half only because it ties other trials out of
    sample).  Per config: ``used`` (every block has data), ``defined`` (used, and its
    whole-period Sharpe is defined), ``duplicate_of`` (the config whose trial it is
    collapsed into, else -1)."""

    combinations: npt.NDArray[np.int64]
    chosen: npt.NDArray[np.int64]
    is_sharpe: npt.NDArray[np.float64]
    oos_sharpe: npt.NDArray[np.float64]
    omega: npt.NDArray[np.float64]
    lambdas: npt.NDArray[np.float64]
    tie_decides: npt.NDArray[np.bool_]
    used: npt.NDArray[np.bool_]
    defined: npt.NDArray[np.bool_]
    duplicate_of: npt.NDArray[np.int64]
    undefined_reason: str | None

    @property
    def ranked(self) -> npt.NDArray[np.bool_]:
        """The configs ranked: one per distinct trial, the first by name."""
        return self.defined & (self.duplicate_of < 0)

    @property
    def n_trials(self) -> int:
        return int(self.ranked.sum())

    @property
    def pbo(self) -> float | None:
        """Share of combinations whose n* ranks in the lower half out of sample; None
        when undefined (``undefined_reason``)."""
        if self.undefined_reason is not None:
            return None
        return float(np.mean(self.lambdas <= 0.0))

    @property
    def pbo_from_ties(self) -> float | None:
        """The part of ``pbo`` from combinations that ``tie_decides``."""
        return None if self.undefined_reason is not None else float(np.mean(self.tie_decides))

    @property
    def probability_of_loss(self) -> float | None:
        """Share of combinations where n*'s out-of-sample Sharpe is (defined and) < 0;
        None when no trial is ranked."""
        if self.n_trials == 0:
            return None
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
    blocks = check_blocks(blocks, n_bars)
    edges = block_edges(n_bars, blocks)
    count, block_mean, block_m2, peak = _block_stats(np.ascontiguousarray(x.T), edges)
    used = (count > 0).all(axis=1)
    defined = used & np.isfinite(_whole_sharpe(count, block_mean, block_m2, peak,
                                               STD_ZERO_RTOL))
    duplicate_of = _duplicates(x, defined, count, block_mean, block_m2)
    ranked = defined & (duplicate_of < 0)
    combinations = np.array(list(itertools.combinations(range(blocks), blocks // 2)),
                            dtype=np.int64)
    chosen, is_sr, oos_sr, omega, tie_decides = _cscv(count, block_mean, block_m2, peak,
                                                      ranked, combinations, STD_ZERO_RTOL)
    reason = _undefined_reason(n_configs, used, defined, ranked, blocks)
    if reason is not None:
        omega[:] = np.nan
        tie_decides[:] = False
    with np.errstate(divide="ignore", invalid="ignore"):
        lambdas = np.log(omega / (1.0 - omega))
    return PBO(combinations, chosen, is_sr, oos_sr, omega, lambdas, tie_decides, used,
               defined, duplicate_of, reason)


def _duplicates(x: npt.NDArray[np.float64], defined: npt.NDArray[np.bool_],
                count: np.ndarray, block_mean: np.ndarray, block_m2: np.ndarray
                ) -> npt.NDArray[np.int64]:
    """For each defined config whose pnl equals an earlier defined config's exactly
    (same bars, equal values), that earlier config; else -1.  Equal pnl gives equal
    block numbers bit for bit, so only configs with equal block numbers are compared."""
    duplicate_of = np.full(x.shape[1], -1, dtype=np.int64)
    groups: dict[bytes, list[int]] = {}
    for i in np.flatnonzero(defined):
        key = count[i].tobytes() + block_mean[i].tobytes() + block_m2[i].tobytes()
        firsts = groups.setdefault(key, [])
        same = next((j for j in firsts if np.array_equal(x[:, i], x[:, j], equal_nan=True)),
                    None)
        if same is None:
            firsts.append(int(i))
        else:
            duplicate_of[i] = same
    return duplicate_of


def _undefined_reason(n_configs: int, used: np.ndarray, defined: np.ndarray,
                      ranked: np.ndarray, blocks: int) -> str | None:
    """Why PBO is undefined (fewer than MIN_TRIALS distinct trials), else None."""
    n_trials = int(ranked.sum())
    if n_trials >= MIN_TRIALS:
        return None
    parts = [f"{n} {text}" for n, text in (
        (int((~used).sum()), f"lack bars in some of the {blocks} blocks"),
        (int((used & ~defined).sum()), "have zero spread, so no Sharpe: they never trade"),
        (int((defined & ~ranked).sum()), "duplicate another config's pnl exactly"),
    ) if n]
    detail = f" ({'; '.join(parts)})" if parts else ""
    return (f"PBO needs at least {MIN_TRIALS} distinct trials with a defined Sharpe, got "
            f"{n_trials} of {n_configs} configs{detail}; with fewer, the out-of-sample rank "
            "of the in-sample best says which config won, not how much of the selection "
            "is luck: sweep more distinct configs")


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
def _whole_sharpe(count, block_mean, block_m2, peak, rtol):  # type: ignore[no-untyped-def]
    """Each config's Sharpe over all its bars (blocks merged in order, as in _cscv)."""
    n, s = count.shape
    out = np.full(n, np.nan)
    for i in range(n):
        k, m, q, t = 0, 0.0, 0.0, 0.0
        for b in range(s):
            nb = count[i, b]
            if nb == 0:
                continue
            d = block_mean[i, b] - m
            m += d * nb / (k + nb)
            q += block_m2[i, b] + d * d * k * nb / (k + nb)
            k += nb
            t = max(t, peak[i, b])
        out[i] = _sharpe(k, m, q, t, rtol)
    return out


@njit(cache=True)
def _cscv(count, block_mean, block_m2, peak, used, combinations, rtol):  # type: ignore[no-untyped-def]
    n, s = count.shape
    n_comb, half = combinations.shape
    chosen = np.full(n_comb, -1, dtype=np.int64)
    is_out = np.full(n_comb, np.nan)
    oos_out = np.full(n_comb, np.nan)
    omega = np.full(n_comb, np.nan)
    tie_decides = np.zeros(n_comb, dtype=np.bool_)
    in_sample = np.zeros(s, dtype=np.bool_)
    oos = np.empty(n)
    n_used = 0
    for i in range(n):
        if used[i]:
            n_used += 1
    if n_used == 0:
        return chosen, is_out, oos_out, omega, tie_decides
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
        # Lower half (2 rank <= N + 1) at its average rank, upper half at the top of its tie.
        tie_decides[c] = 2.0 * rank <= n_used + 1.0 < 2.0 * (below + equal)
    return chosen, is_out, oos_out, omega, tie_decides
