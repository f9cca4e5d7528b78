"""Signal analysis: IC by horizon (IC decay), quantile returns, rank autocorrelation.

Pure statistics, as alphalens keeps ``performance.py``: the ``*_from_arrays`` functions
take (T, N) arrays of alpha, close prices and universe flags (bars in time order,
symbols in any fixed order) in vectorised numpy; nothing is simulated, run or
written.  ``factor_arrays`` turns an alphalens-style factor on a (timestamp, symbol)
index and a frame of close prices into those arrays (no universe, no filling: the
prices' rows are the bars).  Running a config's alpha for them, and writing files, is
``alphadev.research``'s.

Definitions (T bars t = 0..T-1, symbols i):

* Bar return ``r[t, i] = P[t, i] / P[t - 1, i] - 1``, missing when either price is
  missing; ``r[0]`` is missing (docs/semantics.md#accounting).
* Forward return at lag h >= 1 of bar t: ``r[t + h]``, the return realised over bar
  ``t + h - 1 -> t + h``, i.e. ``P[t + h] / P[t + h - 1] - 1`` (a one-bar return h bars
  ahead, not the cumulative return over h bars).
* ``IC(h)[t]``: Spearman rank correlation (average ranks for ties) between
  ``A[t, :]`` and ``r[t + h, :]`` over the symbols where both are finite and
  ``U[t]`` is true; missing with fewer than 2 such symbols or a constant side.
  ``IC(1)[t]`` is exactly the backtest's ``ic[t + 1]``, so ``ic_decay(config)[1]``
  equals ``metrics["ic_mean"]`` of a batch run.
* IC decay: ``ic_decay[h] = mean over t of IC(h)[t]`` over the bars where it exists
  (each lag averages over its own bars), for h = 1..max_lag.
* Quantile returns (alphalens-style, equal-count buckets): at bar t, among the m
  symbols with finite ``A[t]``, finite ``r[t + horizon]`` and ``U[t]``, symbol i with
  1-based average rank ``k_i`` of its alpha goes to bucket ``ceil(k_i * Q / m)``
  (1 = lowest alpha, Q = highest); bars with m < Q are skipped.  A bucket's bar value
  is the equal-weighted mean of its symbols' forward returns; the result is the mean
  of those bar values over the bars where the bucket is not empty (ties can empty
  a bucket).  This is the per-bar return of an equal-weighted portfolio per bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from alphadev.errors import DataError
from alphadev.signal_series import decay_frame
from alphadev.validation import check_scalar

__all__ = [
    "SignalAnalysis",
    "check_horizons",
    "daily_returns",
    "factor_arrays",
    "ic_by_lag_from_arrays",
    "ic_decay_from_arrays",
    "monthly_table",
    "panel_returns",
    "quantile_returns_by_bar_from_arrays",
    "quantile_returns_from_arrays",
    "rank_autocorrelation_from_arrays",
    "signal_analysis_from_arrays",
]


DEFAULT_HORIZONS = (1, 2, 4, 8, 24)


@dataclass
class SignalAnalysis:
    """What ``signal_analysis`` finds about a signal (horizons and quantiles in bars).

    * ``ic``: index ``timestamp`` (bar t), one column per horizon h: ``IC(h)[t]``.
    * ``ic_summary``: index ``horizon``; ``ic_mean``, ``ic_std`` (ddof=1), ``ic_ir``
      (mean / std), ``t_stat`` (mean / (std / sqrt(count))), ``ic_count``.
    * ``quantile_returns``: index ``quantile`` 1..Q (low..high alpha), one column per
      horizon: the mean forward return of the bucket's equal-weighted portfolio.
    * ``rank_autocorrelation``: index ``timestamp``; Spearman correlation of the signal
      at bar t with the signal at bar t - 1 (over symbols with both): how much of the
      ranking survives a bar, i.e. how much turnover the signal asks for.
    """

    ic: pd.DataFrame
    ic_summary: pd.DataFrame
    quantile_returns: pd.DataFrame
    rank_autocorrelation: pd.Series

    @property
    def ic_decay(self) -> pd.Series:
        """Mean IC per horizon (index ``lag``, name ``ic``), as ``ic_decay`` gives it."""
        decay = self.ic_summary["ic_mean"].rename("ic")
        decay.index = decay.index.rename("lag")
        return decay


# ---------------------------------------------------------------------- arrays
def panel_returns(prices: npt.ArrayLike) -> np.ndarray:
    """``r[t] = P[t] / P[t - 1] - 1`` per column; NaN for t = 0 and missing prices.

    A whole panel with nothing before it, in plain numpy: the engine's
    ``chained_returns`` computes the same numbers from a carried row, but would load
    numba for an analysis that needs none.
    """
    p = np.asarray(prices, dtype=np.float64)
    r = np.full(p.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r[1:] = p[1:] / p[:-1] - 1.0
    r[~np.isfinite(r)] = np.nan
    return r


def _check_arrays(alpha, prices, universe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(alpha, dtype=np.float64)
    p = np.asarray(prices, dtype=np.float64)
    u = np.ones(a.shape, dtype=bool) if universe is None else np.asarray(universe, dtype=bool)
    if a.ndim != 2 or a.shape != p.shape or a.shape != u.shape:
        raise ValueError(
            f"alpha {a.shape}, prices {p.shape} and universe {u.shape} must be (T, N) "
            "arrays of one shape"
        )
    return a, p, u


def _row_ranks(x: np.ndarray) -> np.ndarray:
    """1-based average ranks within each row; NaN cells stay NaN and are not ranked."""
    return pd.DataFrame(x).rank(axis=1, method="average", na_option="keep").to_numpy()


def _ranks_under(
    values: np.ndarray, mask: np.ndarray, base_ranks: np.ndarray, base_mask: np.ndarray
) -> np.ndarray:
    """Row ranks of ``values`` over ``mask``, re-ranking only rows whose mask differs.

    ``base_ranks`` are the ranks of the same rows over ``base_mask``; rows with equal
    masks are reused, so each lag costs one full ranking only when data are missing.
    """
    ranks = base_ranks.copy()
    redo = (mask != base_mask).any(axis=1)
    if redo.any():
        ranks[redo] = _row_ranks(np.where(mask[redo], values[redo], np.nan))
    return ranks


def _spearman_from_ranks(ra: np.ndarray, rr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of average ranks over ``mask`` (NaN if undefined)."""
    m = mask.sum(axis=1)
    centre = ((m + 1) / 2.0)[:, None]  # mean of the average ranks 1..m
    ra = np.where(mask, ra - centre, 0.0)
    rr = np.where(mask, rr - centre, 0.0)
    num = (ra * rr).sum(axis=1)
    den = np.sqrt((ra * ra).sum(axis=1) * (rr * rr).sum(axis=1))
    ic = np.full(mask.shape[0], np.nan)
    ok = (m >= 2) & (den > 0.0)
    ic[ok] = num[ok] / den[ok]
    return ic


def ic_by_lag_from_arrays(
    alpha: npt.ArrayLike,
    prices: npt.ArrayLike,
    universe: npt.ArrayLike | None,
    max_lag: int,
) -> np.ndarray:
    """Per-bar ICs, shape (max_lag, T): row h - 1 holds ``IC(h)[t]`` (NaN where missing)."""
    max_lag = check_scalar("max_lag", max_lag, integer=True, low=1)
    a, p, u = _check_arrays(alpha, prices, universe)
    returns = panel_returns(p)
    n_bars = a.shape[0]
    alpha_mask = np.isfinite(a) & u
    return_mask = np.isfinite(returns)
    alpha_ranks = _row_ranks(np.where(alpha_mask, a, np.nan))
    return_ranks = _row_ranks(returns)
    out = np.full((int(max_lag), n_bars), np.nan)
    for lag in range(1, min(int(max_lag), n_bars - 1) + 1):
        rows = n_bars - lag
        mask = alpha_mask[:rows] & return_mask[lag:]
        ra = _ranks_under(a[:rows], mask, alpha_ranks[:rows], alpha_mask[:rows])
        rr = _ranks_under(returns[lag:], mask, return_ranks[lag:], return_mask[lag:])
        out[lag - 1, :rows] = _spearman_from_ranks(ra, rr, mask)
    return out


def ic_decay_from_arrays(
    alpha: npt.ArrayLike,
    prices: npt.ArrayLike,
    universe: npt.ArrayLike | None,
    max_lag: int = 24,
) -> pd.Series:
    """Mean rank IC between A[t] and the return over bar t+h-1 -> t+h, for h = 1..max_lag.

    ``universe=None`` means every symbol is eligible.  Index ``lag``, name ``ic``.
    """
    by_lag = ic_by_lag_from_arrays(alpha, prices, universe, max_lag)
    frame = decay_frame(by_lag, range(1, by_lag.shape[0] + 1))
    return pd.Series(frame["ic"].to_numpy(), index=pd.Index(frame["lag"], name="lag"), name="ic")


def quantile_returns_from_arrays(
    alpha: npt.ArrayLike,
    prices: npt.ArrayLike,
    universe: npt.ArrayLike | None,
    n_quantiles: int = 5,
    horizon: int = 1,
) -> pd.Series:
    """Mean forward return (lag ``horizon``) per alpha bucket 1..n_quantiles (low..high)."""
    n_quantiles = check_scalar("n_quantiles", n_quantiles, integer=True, low=1)
    horizon = check_scalar("horizon", horizon, integer=True, low=1)
    a, p, u = _check_arrays(alpha, prices, universe)
    q = int(n_quantiles)
    index = pd.Index(np.arange(1, q + 1), name="quantile")
    if horizon >= a.shape[0]:
        return pd.Series(np.nan, index=index, name="mean_forward_return")
    rows = a.shape[0] - int(horizon)
    r = panel_returns(p)[int(horizon):]
    mask = np.isfinite(a[:rows]) & u[:rows] & np.isfinite(r)
    a = np.where(mask, a[:rows], np.nan)
    m = mask.sum(axis=1)
    usable = mask & (m >= q)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        bucket = np.ceil(_row_ranks(a) * q / m[:, None])
    bucket = np.where(usable, np.nan_to_num(bucket), 0).astype(np.int64)
    means = np.full(q, np.nan)
    for k in range(1, q + 1):
        member = bucket == k
        count = member.sum(axis=1)
        total = np.where(member, r, 0.0).sum(axis=1)
        bars = count > 0
        if bars.any():
            means[k - 1] = float(np.mean(total[bars] / count[bars]))
    return pd.Series(means, index=index, name="mean_forward_return")


def signal_analysis_from_arrays(
    bars: pd.DatetimeIndex,
    alpha: npt.ArrayLike,
    prices: npt.ArrayLike,
    universe: npt.ArrayLike | None,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    quantiles: int = 5,
) -> SignalAnalysis:
    """``signal_analysis`` of (T, N) arrays on the bars ``bars``: IC per horizon, its
    summary, quantile returns and rank autocorrelation (definitions in the module
    docstring)."""
    steps = check_horizons(horizons)
    quantiles = check_scalar("quantiles", quantiles, integer=True, low=1)
    by_lag = ic_by_lag_from_arrays(alpha, prices, universe, max(steps))
    index = pd.DatetimeIndex(bars, name="timestamp")
    columns = pd.Index(steps, name="horizon")
    ic = pd.DataFrame({h: by_lag[h - 1] for h in steps}, index=index, columns=columns)
    summary = decay_frame(by_lag, range(1, by_lag.shape[0] + 1)).set_index("lag").loc[list(steps)]
    summary = pd.DataFrame(
        {
            "ic_mean": summary["ic"],
            "ic_std": summary["ic_std"],
            "ic_ir": summary["ic"] / summary["ic_std"],
            "t_stat": summary["ic"] / summary["ic_std"] * np.sqrt(summary["ic_count"]),
            "ic_count": summary["ic_count"],
        }
    ).set_axis(columns, axis=0)
    by_quantile = pd.DataFrame(
        {h: quantile_returns_from_arrays(alpha, prices, universe, quantiles, h) for h in steps},
        columns=columns,
    )
    return SignalAnalysis(
        ic=ic,
        ic_summary=summary.replace([np.inf, -np.inf], np.nan),
        quantile_returns=by_quantile,
        rank_autocorrelation=pd.Series(
            rank_autocorrelation_from_arrays(alpha, universe), index=index,
            name="rank_autocorrelation",
        ),
    )


def rank_autocorrelation_from_arrays(
    alpha: npt.ArrayLike, universe: npt.ArrayLike | None = None
) -> np.ndarray:
    """Per bar t >= 1, the Spearman correlation of ``A[t - 1]`` and ``A[t]`` over the
    symbols finite (and in the universe) at both bars; NaN where undefined."""
    a, _, u = _check_arrays(alpha, alpha, universe)
    out = np.full(a.shape[0], np.nan)
    if a.shape[0] < 2:
        return out
    valid = np.isfinite(a) & u
    mask = valid[1:] & valid[:-1]
    before = _row_ranks(np.where(mask, a[:-1], np.nan))
    after = _row_ranks(np.where(mask, a[1:], np.nan))
    out[1:] = _spearman_from_ranks(before, after, mask)
    return out


def check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    """Forward horizons as sorted distinct bar counts >= 1 (a clear error otherwise)."""
    if isinstance(horizons, (int, np.integer)):
        horizons = (int(horizons),)
    if isinstance(horizons, (str, bytes)) or not isinstance(horizons, Iterable):
        raise TypeError(f"horizons={horizons!r} must be bar counts such as (1, 2, 4, 8, 24)")
    steps = tuple(
        int(check_scalar("horizons", h, integer=True, low=1,
                         hint="forward horizons in bars such as (1, 2, 4)"))
        for h in horizons
    )
    if not steps:
        raise ValueError("horizons=() is empty; pass bar counts such as (1, 2, 4, 8, 24)")
    return tuple(sorted(set(steps)))


def _utc(index: pd.Index, what: str) -> pd.DatetimeIndex:
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(index, utc=True)).as_unit("ns")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what}: timestamps cannot be read ({exc}); use a DatetimeIndex") from None
    return stamps


def factor_arrays(
    factor: pd.Series | pd.DataFrame, prices: pd.DataFrame | pd.Series | None
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """(bars, factor (T, N), close (T, N)) on the prices' bars and symbols (sorted)."""
    if isinstance(factor, pd.DataFrame):
        if factor.shape[1] != 1:
            raise TypeError(
                f"factor has columns {list(factor.columns)}; pass one column (a Series on "
                "a (timestamp, symbol) index, e.g. alpha_frame['alpha'])"
            )
        factor = factor.iloc[:, 0]
    if not isinstance(factor, pd.Series) or not (
        isinstance(factor.index, pd.MultiIndex) and factor.index.nlevels == 2
    ):
        raise TypeError(
            "factor must be a pandas Series on a (timestamp, symbol) MultiIndex, got "
            f"{type(factor).__name__}"
        )
    if prices is None:
        raise TypeError("signal_analysis(factor, prices): prices are required with a factor")
    wide = _wide_prices(prices)
    stamps = _utc(factor.index.get_level_values(0), "factor")
    keys = pd.MultiIndex.from_arrays(
        [stamps, factor.index.get_level_values(1).astype(str)], names=["timestamp", "symbol"]
    )
    if keys.has_duplicates:
        first = keys[keys.duplicated()][0]
        raise DataError(f"factor has more than one value for {first}; keep one per "
                        "(timestamp, symbol)")
    values = pd.Series(pd.to_numeric(factor.to_numpy(), errors="coerce"), index=keys)
    table = values.unstack("symbol").reindex(index=wide.index, columns=wide.columns)
    if not np.isfinite(table.to_numpy(dtype=np.float64)).any():
        raise DataError(
            "factor has no value at any (timestamp, symbol) of prices: its timestamps "
            f"({stamps.min()} .. {stamps.max()}) or symbols do not match the prices' "
            f"({wide.index.min()} .. {wide.index.max()}, {list(wide.columns)[:5]}...)"
        )
    return wide.index, table.to_numpy(dtype=np.float64), wide.to_numpy(dtype=np.float64)


def _wide_prices(prices: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """Close prices as (timestamp x symbol), UTC, bars sorted, symbols by name."""
    if isinstance(prices, pd.DataFrame) and isinstance(prices.index, pd.MultiIndex):
        if "close" in prices.columns:
            prices = prices["close"]
        elif prices.shape[1] == 1:
            prices = prices.iloc[:, 0]
        else:
            raise TypeError(
                f"long prices have columns {list(prices.columns)}; name the price column "
                "'close' or pass one column"
            )
    if isinstance(prices, pd.Series):
        if not (isinstance(prices.index, pd.MultiIndex) and prices.index.nlevels == 2):
            raise TypeError("prices as a Series must be on a (timestamp, symbol) MultiIndex")
        stamps = _utc(prices.index.get_level_values(0), "prices")
        keys = pd.MultiIndex.from_arrays([stamps, prices.index.get_level_values(1).astype(str)])
        if keys.has_duplicates:
            raise DataError(f"prices have more than one value for {keys[keys.duplicated()][0]}")
        prices = pd.Series(prices.to_numpy(), index=keys).unstack()
    if not isinstance(prices, pd.DataFrame):
        raise TypeError(
            "prices must be a DataFrame (timestamps x symbols, or long on a (timestamp, "
            f"symbol) index), got {type(prices).__name__}"
        )
    wide = prices.copy()
    wide.index = _utc(wide.index, "prices")
    wide.columns = pd.Index([str(c) for c in wide.columns], name="symbol")
    if wide.index.has_duplicates:
        raise DataError(f"prices have the timestamp {wide.index[wide.index.duplicated()][0]} "
                        "twice; keep one row per bar")
    wide = wide.sort_index().sort_index(axis=1)
    return wide.apply(pd.to_numeric, errors="coerce").astype(np.float64)


# ---------------------------------------------------------------------- factor sequences
def quantile_returns_by_bar_from_arrays(
    alpha: npt.ArrayLike,
    prices: npt.ArrayLike,
    universe: npt.ArrayLike | None,
    n_quantiles: int = 5,
) -> np.ndarray:
    """Per-bar return of each alpha bucket, shape (T, Q): row t holds the bar-t return
    ``r[t]`` of the buckets formed on ``A[t - 1]`` (the buckets of
    ``quantile_returns_from_arrays`` at horizon 1, dated when the return is realised);
    NaN where a bucket is empty or the bar is skipped (row 0 always)."""
    q = check_scalar("n_quantiles", n_quantiles, integer=True, low=1)
    a, p, u = _check_arrays(alpha, prices, universe)
    out = np.full((a.shape[0], int(q)), np.nan)
    if a.shape[0] < 2:
        return out
    r = panel_returns(p)[1:]
    mask = np.isfinite(a[:-1]) & u[:-1] & np.isfinite(r)
    m = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bucket = np.ceil(_row_ranks(np.where(mask, a[:-1], np.nan)) * q / m[:, None])
    bucket = np.where(mask & (m >= q)[:, None], np.nan_to_num(bucket), 0).astype(np.int64)
    for k in range(1, int(q) + 1):
        member = bucket == k
        count = member.sum(axis=1)
        total = np.where(member, r, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[1:, k - 1] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def daily_returns(pnl: pd.Series) -> pd.Series:
    """Per-bar returns compounded per UTC calendar day: ``prod(1 + r) - 1``."""
    index = pd.DatetimeIndex(pnl.index)
    days = (index.tz_convert("UTC") if index.tz is not None else index).floor("D")
    return (1.0 + pnl.fillna(0.0)).groupby(days).prod() - 1.0


def monthly_table(series: pd.Series, how: str = "compound") -> pd.DataFrame:
    """Calendar-month (UTC) table of a per-bar series: rows years, columns 1..12.

    ``how="compound"``: prod(1 + x) - 1 of each month (monthly returns from per-bar
    returns); ``how="mean"``: the month's mean (e.g. of the IC), NaN ignored.  Months
    without data are NaN.
    """
    if how not in ("compound", "mean"):
        raise ValueError(f"how={how!r}: use 'compound' or 'mean'")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise TypeError("monthly_table needs a series on a DatetimeIndex")
    index = series.index.tz_convert("UTC") if series.index.tz is not None else series.index
    values = pd.Series(series.to_numpy(dtype=np.float64), index=index).dropna()
    if values.empty:
        return pd.DataFrame(columns=pd.Index(range(1, 13), name="month"),
                            index=pd.Index([], name="year"), dtype=np.float64)
    keys = [values.index.year, values.index.month]
    if how == "compound":
        months = (1.0 + values).groupby(keys).prod() - 1.0
    else:
        months = values.groupby(keys).mean()
    table = months.unstack()
    table = table.reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table
