"""Signal research on a config: its alpha run once over its whole period
(``config_panel``, as a batch backtest would), then the pure statistics of
``alphadev.analysis``; and, for results saved before runs recorded their signal series,
the files the report reads (``write_ic_decay``, ``write_factor_sequences``).

Streaming configs are analysed as one batch window (identical for any alpha whose
output depends only on data within its lookback).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alphadev.analysis import (
    DEFAULT_HORIZONS,
    SignalAnalysis,
    check_horizons,
    factor_arrays,
    ic_by_lag_from_arrays,
    ic_decay_from_arrays,
    quantile_returns_by_bar_from_arrays,
    quantile_returns_from_arrays,
    rank_autocorrelation_from_arrays,
    signal_analysis_from_arrays,
)
from alphadev.config import BacktestConfig
from alphadev.data.loaders import day_bounds
from alphadev.errors import DataError
from alphadev.layout import ResultDir
from alphadev.panel import Panel, bar_ceil, build_panel
from alphadev.signal_series import decay_frame
from alphadev.store import atomic_write
from alphadev.validation import check_scalar

__all__ = [
    "config_panel",
    "ic_decay",
    "quantile_returns",
    "signal_analysis",
    "write_factor_sequences",
    "write_ic_decay",
]


def signal_analysis(
    source: BacktestConfig | pd.Series | pd.DataFrame,
    prices: pd.DataFrame | pd.Series | None = None,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    quantiles: int = 5,
) -> SignalAnalysis:
    """IC per horizon, its summary, quantile returns and rank autocorrelation of a signal.

    Definitions are in ``alphadev.analysis`` (the return at horizon h is the one-bar
    return h bars ahead, so horizon 1 is the backtest's IC).

    Parameters
    ----------
    source
        A factor on a ``(timestamp, symbol)`` index (a Series, or a frame with one
        column such as an alpha's ``alpha``) together with ``prices``, as alphalens
        takes them (no config is built); or a BacktestConfig, whose alpha is run over
        its panel as a batch backtest would, universe included.
    prices
        Close prices for a factor: a frame with one column per symbol, or long on a
        ``(timestamp, symbol)`` index; the bars are its timestamps (factor values at
        other timestamps are ignored).  None for a config.
    horizons
        Forward horizons in bars.
    quantiles
        Number of equal-count alpha buckets.

    Returns
    -------
    SignalAnalysis
    """
    check_horizons(horizons)  # before the alpha runs: a bad argument fails at once
    check_scalar("quantiles", quantiles, integer=True, low=1)
    if isinstance(source, BacktestConfig):
        if prices is not None:
            raise TypeError("signal_analysis(config) reads prices from the config; "
                            "pass prices only with a factor Series")
        panel = config_panel(source)
        bars = pd.DatetimeIndex(pd.to_datetime(panel.bars, utc=True)).as_unit("ns")
        return signal_analysis_from_arrays(bars, panel.alpha, panel.prices, panel.universe,
                                           horizons, quantiles)
    bars, alpha, close = factor_arrays(source, prices)
    return signal_analysis_from_arrays(bars, alpha, close, None, horizons, quantiles)


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
    panel: Panel | None = None,
) -> Path:
    """Write ``{result_dir}/sequences/ic_decay.parquet`` (and quantile returns).

    ``ic_decay.parquet``: columns ``lag, ic, ic_std, ic_count`` (one row per lag).
    With ``n_quantiles``, also ``quantile_returns.parquet``: ``quantile,
    mean_forward_return`` at horizon 1.  Each file is written to a temporary name and
    renamed, so a reader never sees half a file.  ``result_dir`` can be a results
    folder being built (before it is published) or a published one.  Returns the
    path of ``ic_decay.parquet``.  ``panel`` is ``config_panel(config)`` when the caller
    has it (it runs the alpha).
    """
    folder = ResultDir(Path(result_dir))
    folder.sequences.mkdir(parents=True, exist_ok=True)
    panel = config_panel(config) if panel is None else panel
    by_lag = ic_by_lag_from_arrays(panel.alpha, panel.prices, panel.universe, max_lag)
    decay = decay_frame(by_lag, range(1, by_lag.shape[0] + 1))
    target = folder.ic_decay
    _write_parquet(decay, target)
    if n_quantiles is not None:
        qr = quantile_returns_from_arrays(panel.alpha, panel.prices, panel.universe, n_quantiles)
        _write_parquet(qr.reset_index(), folder.quantile_returns)
    return target


def _write_parquet(frame: pd.DataFrame, target: Path) -> None:
    with atomic_write(target) as tmp:
        frame.to_parquet(tmp, index=False)


def write_factor_sequences(
    result_dir: str | os.PathLike, config: BacktestConfig, n_quantiles: int = 5,
    panel: Panel | None = None,
) -> Path:
    """Write ``{result_dir}/sequences/factor_sequences.parquet`` for the tear sheet.

    Index ``timestamp`` (the config's bars, UTC); columns ``quantile_1`` ..
    ``quantile_Q`` (``quantile_returns_by_bar_from_arrays``: bar returns of equal-weighted
    alpha buckets, 1 = lowest alpha) and ``rank_autocorrelation`` (lag 1).  Like
    ``write_ic_decay`` it needs the alpha and prices: it runs the config's alpha once,
    unless ``panel`` (``config_panel(config)``) is given.
    """
    folder = ResultDir(Path(result_dir))
    folder.sequences.mkdir(parents=True, exist_ok=True)
    panel = config_panel(config) if panel is None else panel
    by_bar = quantile_returns_by_bar_from_arrays(
        panel.alpha, panel.prices, panel.universe, n_quantiles
    )
    frame = pd.DataFrame(
        by_bar, columns=[f"quantile_{k}" for k in range(1, by_bar.shape[1] + 1)],
        index=pd.DatetimeIndex(pd.to_datetime(panel.bars, utc=True), name="timestamp"),
    )
    frame["rank_autocorrelation"] = rank_autocorrelation_from_arrays(panel.alpha, panel.universe)
    from alphadev.engine.signal import quantile_turnover  # numba, as the run uses it

    turnover = quantile_turnover(panel.alpha, panel.universe, 0, n_quantiles)
    frame["turnover_bottom"], frame["turnover_top"] = turnover[:, 0], turnover[:, 1]
    target = folder.factor_sequences
    with atomic_write(target) as tmp:
        frame.to_parquet(tmp)
    return target


