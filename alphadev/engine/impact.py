"""Trailing estimates for the square-root impact law (docs/semantics.md#market-impact).

For bar t the estimates use the ``window`` bars t - window .. t - 1 only, so they are
known before bar t trades and a streaming chunk (which loads the window before its
first bar) gets the numbers of one batch run.  Sums over the window come from running
sums over the loaded rows: O(T N), whatever the window.
"""

from __future__ import annotations

from typing import NamedTuple

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
    volume: np.ndarray, returns: np.ndarray, window: int, bars_per_day: float, first: int
) -> ImpactEstimates:
    """Estimates for rows ``first`` .. T - 1 of ``volume`` and ``returns`` (T, N).

    ``volume`` is each bar's summed volume (NaN: no row); ``returns`` the bar returns
    (NaN: missing).  ADV = mean volume of the window's bars with a row, times
    ``bars_per_day``; sigma = sample standard deviation (ddof 1) of the window's finite
    returns, times sqrt(``bars_per_day``).  Each is undefined with fewer than
    ``min_observations`` bars of data in the window, and ADV also when it is not > 0.
    """
    n_rows = volume.shape[0]
    needed = min_observations(bars_per_day)
    has_volume = ~np.isnan(volume)
    has_return = np.isfinite(returns)
    r = np.where(has_return, returns, 0.0)
    sums = [_running_sum(x) for x in (np.where(has_volume, volume, 0.0), has_volume,
                                      r, r * r, has_return)]
    stop = np.arange(first, n_rows)
    start = np.maximum(stop - window, 0)
    volume_sum, volume_count, return_sum, square_sum, return_count = (
        s[stop] - s[start] for s in sums
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        adv = volume_sum / volume_count * bars_per_day
        variance = (square_sum - return_sum * return_sum / return_count) / (return_count - 1)
        sigma = np.sqrt(np.maximum(variance, 0.0) * bars_per_day)
    adv = np.where((volume_count >= needed) & (adv > 0.0), adv, np.nan)
    sigma = np.where(return_count >= needed, sigma, np.nan)
    return ImpactEstimates(adv, sigma, sigma / np.sqrt(adv))


def _running_sum(values: np.ndarray) -> np.ndarray:
    """(T + 1, N): row k is the sum of rows 0 .. k - 1."""
    out = np.zeros((values.shape[0] + 1, values.shape[1]))
    np.cumsum(values, axis=0, out=out[1:])
    return out
