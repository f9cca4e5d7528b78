"""Signal analysis of one config: IC decay and quantile returns.

Both are computed **on demand from a BacktestConfig**: the config's alpha is run over
its whole period once (``alphadev.panel.build_panel``, as a batch backtest would) and
the statistics come from that panel in vectorised numpy; nothing is simulated.  The
array-level functions (``*_from_arrays``) are pure and take (T, N) arrays of alpha,
close prices and universe flags, bars in time order, symbols in any fixed order.

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

Streaming configs are analysed as one batch window (identical for any alpha whose
output depends only on data within its lookback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from alphadev.config import BacktestConfig
from alphadev.data.loaders import day_bounds
from alphadev.errors import DataError
from alphadev.panel import Panel, bar_ceil, build_panel
from alphadev.store import atomic_write
from alphadev.validation import check_scalar

__all__ = [
    "IC_DECAY_FILE",
    "QUANTILE_RETURNS_FILE",
    "SignalAnalysis",
    "config_panel",
    "ic_by_lag_from_arrays",
    "ic_decay",
    "ic_decay_from_arrays",
    "panel_returns",
    "quantile_returns",
    "quantile_returns_from_arrays",
    "signal_analysis",
    "write_ic_decay",
]

IC_DECAY_FILE = "ic_decay.parquet"
QUANTILE_RETURNS_FILE = "quantile_returns.parquet"


@dataclass
class SignalAnalysis:
    """IC decay (index ``lag``) and quantile returns (index ``quantile``) of one config."""

    ic_decay: pd.Series
    quantile_returns: pd.Series


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


def _decay_frame(ic_by_lag: np.ndarray) -> pd.DataFrame:
    """lag, ic (mean), ic_std (ddof=1), ic_count per lag; NaN where undefined."""
    rows = []
    for lag, values in enumerate(ic_by_lag, start=1):
        x = values[np.isfinite(values)]
        rows.append(
            {
                "lag": lag,
                "ic": float(x.mean()) if x.size else np.nan,
                "ic_std": float(x.std(ddof=1)) if x.size >= 2 else np.nan,
                "ic_count": int(x.size),
            }
        )
    return pd.DataFrame(rows, columns=["lag", "ic", "ic_std", "ic_count"])


def ic_decay_from_arrays(
    alpha: npt.ArrayLike,
    prices: npt.ArrayLike,
    universe: npt.ArrayLike | None,
    max_lag: int = 24,
) -> pd.Series:
    """Mean rank IC between A[t] and the return over bar t+h-1 -> t+h, for h = 1..max_lag.

    ``universe=None`` means every symbol is eligible.  Index ``lag``, name ``ic``.
    """
    frame = _decay_frame(ic_by_lag_from_arrays(alpha, prices, universe, max_lag))
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


# ---------------------------------------------------------------------- configs
def config_panel(config: BacktestConfig) -> Panel:
    """The config's panel over its whole period, trimmed to the backtest's bar grid."""
    if not isinstance(config, BacktestConfig):
        raise TypeError(f"expected a BacktestConfig, got {type(config).__name__}")
    start, end = day_bounds(config.start_date, config.end_date)
    start = bar_ceil(start, config.bar_nanos)
    alpha = config.alpha_class(**config.alpha_kwargs)
    panel = build_panel(config, alpha, start, end)
    seen = np.flatnonzero(panel.observed.any(axis=1))
    if seen.size == 0:
        raise DataError(
            f"config {config.name!r}: no price rows between {config.start_date} and "
            f"{config.end_date}; check the dates, symbols and price_loader"
        )
    rows = slice(int(seen[0]), int(seen[-1]) + 1)
    return Panel(
        bars=panel.bars[rows],
        prices=panel.prices[rows],
        alpha=panel.alpha[rows],
        universe=panel.universe[rows],
        observed=panel.observed[rows],
    )


def signal_analysis(
    config: BacktestConfig, max_lag: int = 24, n_quantiles: int = 5, horizon: int = 1
) -> SignalAnalysis:
    """IC decay and quantile returns from one build of the config's panel."""
    panel = config_panel(config)
    return SignalAnalysis(
        ic_decay=ic_decay_from_arrays(panel.alpha, panel.prices, panel.universe, max_lag),
        quantile_returns=quantile_returns_from_arrays(
            panel.alpha, panel.prices, panel.universe, n_quantiles, horizon
        ),
    )


def ic_decay(config: BacktestConfig, max_lag: int = 24) -> pd.Series:
    """Mean rank IC at lags 1..max_lag (see the module docstring); index ``lag``."""
    panel = config_panel(config)
    return ic_decay_from_arrays(panel.alpha, panel.prices, panel.universe, max_lag)


def quantile_returns(
    config: BacktestConfig, n_quantiles: int = 5, horizon: int = 1
) -> pd.Series:
    """Mean lag-``horizon`` forward return per alpha bucket; index ``quantile`` 1..Q."""
    panel = config_panel(config)
    return quantile_returns_from_arrays(
        panel.alpha, panel.prices, panel.universe, n_quantiles, horizon
    )


def write_ic_decay(
    result_dir: str | os.PathLike,
    config: BacktestConfig,
    max_lag: int = 24,
    n_quantiles: int | None = 5,
) -> Path:
    """Write ``{result_dir}/sequences/ic_decay.parquet`` (and quantile returns).

    ``ic_decay.parquet``: columns ``lag, ic, ic_std, ic_count`` (one row per lag).
    With ``n_quantiles``, also ``quantile_returns.parquet``: ``quantile,
    mean_forward_return`` at horizon 1.  Each file is written to a temporary name and
    renamed, so a reader never sees half a file.  ``result_dir`` can be a results
    folder being built (before it is published) or a published one.  Returns the
    path of ``ic_decay.parquet``.
    """
    folder = Path(result_dir) / "sequences"
    folder.mkdir(parents=True, exist_ok=True)
    panel = config_panel(config)
    decay = _decay_frame(ic_by_lag_from_arrays(panel.alpha, panel.prices, panel.universe, max_lag))
    target = folder / IC_DECAY_FILE
    _write_parquet(decay, target)
    if n_quantiles is not None:
        qr = quantile_returns_from_arrays(panel.alpha, panel.prices, panel.universe, n_quantiles)
        _write_parquet(qr.reset_index(), folder / QUANTILE_RETURNS_FILE)
    return target


def _write_parquet(frame: pd.DataFrame, target: Path) -> None:
    with atomic_write(target) as tmp:
        frame.to_parquet(tmp, index=False)


# ---------------------------------------------------------------------- factor sequences
FACTOR_SEQUENCES_FILE = "factor_sequences.parquet"


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


def rank_autocorrelation_from_arrays(
    alpha: npt.ArrayLike, universe: npt.ArrayLike | None, lag: int = 1
) -> np.ndarray:
    """Spearman correlation of ``A[t - lag]`` and ``A[t]`` across symbols (alphalens'
    factor rank autocorrelation): near 1 the ranking, hence the book, barely changes
    between bars; low values mean high turnover.  NaN for t < lag or fewer than 2
    symbols with both values (in the universe at both bars)."""
    lag = check_scalar("lag", lag, integer=True, low=1)
    a, _, u = _check_arrays(alpha, alpha, universe)
    out = np.full(a.shape[0], np.nan)
    if a.shape[0] <= lag:
        return out
    ok = np.isfinite(a) & u
    mask = ok[:-lag] & ok[lag:]
    before = _row_ranks(np.where(mask, a[:-lag], np.nan))
    after = _row_ranks(np.where(mask, a[lag:], np.nan))
    out[lag:] = _spearman_from_ranks(before, after, mask)
    return out


def write_factor_sequences(
    result_dir: str | os.PathLike, config: BacktestConfig, n_quantiles: int = 5
) -> Path:
    """Write ``{result_dir}/sequences/factor_sequences.parquet`` for the tear sheet.

    Index ``timestamp`` (the config's bars, UTC); columns ``quantile_1`` ..
    ``quantile_Q`` (``quantile_returns_by_bar_from_arrays``: bar returns of equal-weighted
    alpha buckets, 1 = lowest alpha) and ``rank_autocorrelation`` (lag 1).  Like
    ``write_ic_decay`` it needs the alpha and prices, so it runs the config's alpha once.
    """
    folder = Path(result_dir) / "sequences"
    folder.mkdir(parents=True, exist_ok=True)
    panel = config_panel(config)
    by_bar = quantile_returns_by_bar_from_arrays(
        panel.alpha, panel.prices, panel.universe, n_quantiles
    )
    frame = pd.DataFrame(
        by_bar, columns=[f"quantile_{k}" for k in range(1, by_bar.shape[1] + 1)],
        index=pd.DatetimeIndex(pd.to_datetime(panel.bars, utc=True), name="timestamp"),
    )
    frame["rank_autocorrelation"] = rank_autocorrelation_from_arrays(panel.alpha, panel.universe)
    target = folder / FACTOR_SEQUENCES_FILE
    with atomic_write(target) as tmp:
        frame.to_parquet(tmp)
    return target


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
