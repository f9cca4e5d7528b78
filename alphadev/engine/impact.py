"""Trailing estimates for the square-root impact law (docs/semantics.md#market-impact).

For bar t the estimates use the ``window`` bars t - window .. t - 1 only, so they are
known before bar t trades and a streaming chunk (which loads the window before its
first bar) gets the numbers of one batch run.  The window's sums are built from sums
over blocks of ``window`` bars aligned on the bar number (a suffix of one block plus a
prefix of the next): O(T N) whatever the window, each window adds only its own bars
(one extreme bar cannot spoil later windows by cancellation), and every chunking adds
them in the same order, so streaming equals batch bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np


class ImpactEstimates(NamedTuple):
    """Per bar and symbol: the estimates a trade of that bar pays against."""

    adv: np.ndarray  # (T, N) mean daily volume over the window, NaN where undefined
    sigma: np.ndarray  # (T, N) daily volatility of the bar returns, NaN where undefined
    scale: np.ndarray  # (T, N) sigma / sqrt(adv): NaN where either is undefined


def min_observations(bars_per_day: float) -> int:
    """Bars with data a window needs before its estimates count: one day's worth, at
    least two (a volatility needs two returns)."""
    return max(2, int(np.ceil(bars_per_day - 1e-9)))


def impact_estimates(
    volume: np.ndarray, returns: np.ndarray, window: int, bars_per_day: float, first: int,
    origin: int = 0,
) -> ImpactEstimates:
    """Estimates for rows ``first`` .. T - 1 of ``volume`` and ``returns`` (T, N).

    ``volume`` is each bar's summed volume (NaN: no row); ``returns`` the bar returns
    (NaN: missing); ``origin`` the bar number (bars since the epoch) of row 0.  ADV =
    mean volume of the window's bars with a row, times ``bars_per_day``; sigma = sample
    standard deviation (ddof 1) of the window's finite returns, times
    sqrt(``bars_per_day``).  Each is undefined with fewer than ``min_observations`` bars
    of data in the window, and ADV also when it is not > 0.
    """
    adv, sigma = _window_estimates_nb(
        np.ascontiguousarray(np.asarray(volume, dtype=np.float64).T),
        np.ascontiguousarray(np.asarray(returns, dtype=np.float64).T),
        int(window), int(first), min_observations(bars_per_day), float(bars_per_day),
        int(origin) % int(window),
    )
    return ImpactEstimates(adv.T, sigma.T, (sigma / np.sqrt(adv)).T)


@numba.njit(cache=True, nogil=True)
def _block_sums_nb(x, window, origin, prefix, suffix):
    """Sums of x inside blocks of ``window`` bars aligned on the bar number: ``prefix[s]``
    from the block's first bar to s, ``suffix[s]`` from s to the block's last bar."""
    n = x.shape[0]
    total = 0.0
    for s in range(n):
        if (s + origin) % window == 0:
            total = 0.0
        total += x[s]
        prefix[s] = total
    total = 0.0
    for s in range(n - 1, -1, -1):
        if (s + 1 + origin) % window == 0:
            total = 0.0
        total += x[s]
        suffix[s] = total


@numba.njit(cache=True, nogil=True)
def _window_sum_nb(prefix, suffix, a, b, window, origin):
    """Sum of x[a..b] (b - a + 1 = window): inside one block, or a suffix plus a prefix.
    Only the window's own bars are added, in an order fixed by the bar numbers: the
    same for every chunking, and no cancellation against bars outside the window."""
    if (a + origin) % window == 0:
        return prefix[b]
    return suffix[a] + prefix[b]


@numba.njit(cache=True, nogil=True)
def _window_estimates_nb(volume, returns, window, first, needed, per_day, origin):
    """(N, T) inputs, symbol by symbol; (N, T - first) ADV and sigma."""
    n_sym, n_rows = volume.shape
    n_out = max(n_rows - first, 0)
    adv = np.full((n_sym, n_out), np.nan)
    sigma = np.full((n_sym, n_out), np.nan)
    values = np.zeros((5, n_rows))
    prefix = np.zeros((5, n_rows))
    suffix = np.zeros((5, n_rows))
    for i in range(n_sym):
        for s in range(n_rows):
            v = volume[i, s]
            seen = not np.isnan(v)
            values[0, s] = v if seen else 0.0
            values[1, s] = 1.0 if seen else 0.0
            r = returns[i, s]
            ok = np.isfinite(r)
            values[2, s] = r if ok else 0.0
            values[3, s] = r * r if ok else 0.0
            values[4, s] = 1.0 if ok else 0.0
        for k in range(5):
            _block_sums_nb(values[k], window, origin, prefix[k], suffix[k])
        for t in range(first, n_rows):
            a = t - window
            if a < 0:
                continue  # not a whole window of history: undefined
            b = t - 1
            volume_sum = _window_sum_nb(prefix[0], suffix[0], a, b, window, origin)
            volume_count = _window_sum_nb(prefix[1], suffix[1], a, b, window, origin)
            return_sum = _window_sum_nb(prefix[2], suffix[2], a, b, window, origin)
            square_sum = _window_sum_nb(prefix[3], suffix[3], a, b, window, origin)
            m = _window_sum_nb(prefix[4], suffix[4], a, b, window, origin)
            row = t - first
            if volume_count >= needed:
                mean = volume_sum / volume_count * per_day
                if mean > 0.0:
                    adv[i, row] = mean
            if m >= needed:
                variance = (square_sum - return_sum * return_sum / m) / (m - 1.0)
                sigma[i, row] = np.sqrt(max(variance, 0.0) * per_day)
    return adv, sigma
