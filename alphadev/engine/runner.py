"""Batch and streaming runs: panels -> kernel -> sequences -> BacktestResult.

Batch mode is streaming with a single window.  Each window's panel starts where the
previous window stopped, and the kernel continues from the carried state (last prices,
weights, alpha and universe row), so any chunking gives the same numbers as one batch.

Bar grid: from the first to the last bar at which any requested symbol has an observed
price.  A window's trailing bars without any observation are not simulated until a
later window shows that data continues; a run that ends there drops them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphadev.cache import cached_panel
from alphadev.config import BacktestConfig
from alphadev.data.beta import load_betas
from alphadev.data.loaders import day_bounds
from alphadev.engine.ic import rank_ic
from alphadev.engine.kernel import alpha_argsort, bar_returns, run_kernel
from alphadev.errors import DataError
from alphadev.metrics import compute_metrics
from alphadev.panel import Panel, bar_ceil, build_panel
from alphadev.results import BacktestResult, Sequences

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class _Carry:
    """State at the last simulated bar, handed from one window to the next."""

    n_sym: int
    started: bool = False
    prices: np.ndarray = field(init=False)
    weights: np.ndarray = field(init=False)
    alpha: np.ndarray = field(init=False)
    universe: np.ndarray = field(init=False)
    equity: float = 1.0

    def __post_init__(self) -> None:
        self.prices = np.full(self.n_sym, np.nan)
        self.weights = np.zeros(self.n_sym)
        self.alpha = np.full(self.n_sym, np.nan)
        self.universe = np.zeros(self.n_sym, dtype=bool)


def warm_up() -> None:
    """Load the compiled kernels now (e.g. before forking task processes)."""
    n = 2
    prices = np.ones((2, n))
    flags = np.ones((2, n), dtype=bool)
    out = run_kernel(prices, prices, flags, np.ones(n), np.full(n, np.nan), np.zeros(n),
                     0.5, 0.5, 1.0, 0.0)
    rank_ic(prices, out.returns, flags, np.full(n, np.nan), np.zeros(n, dtype=bool))


def windows(config: BacktestConfig) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """[start, end) windows: the whole period, or ``chunk_days`` at a time."""
    start, end = day_bounds(config.start_date, config.end_date)
    if config.mode == "batch":
        yield start, end
        return
    step = pd.Timedelta(days=config.chunk_days)
    lo = start
    while lo < end:
        hi = min(lo + step, end)
        yield lo, hi
        lo = hi


def run_backtest(
    config: BacktestConfig,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> BacktestResult:
    """Run one config in this process and return its in-memory result.

    Batch runs take their panel from ``alphadev.cache`` (memory, and ``cache_dir`` on
    disk when given), so configs that differ only in portfolio settings share it.
    """
    try:
        return _run(config, progress, cache_dir)
    except DataError as exc:
        if f"config {config.name!r}" in str(exc):
            raise
        raise DataError(f"config {config.name!r}: {exc}") from exc


def _run(
    config: BacktestConfig, progress: Progress | None, cache_dir: str | os.PathLike | None
) -> BacktestResult:
    began = time.perf_counter()
    symbols = config.sorted_symbols
    alpha = config.alpha_class(**config.alpha_kwargs)
    betas = load_betas(config.beta_csv_path, symbols)
    carry = _Carry(len(symbols))
    parts: list[dict[str, np.ndarray]] = []
    seen = np.zeros(len(symbols), dtype=bool)
    forced = 0

    next_bar = None  # first bar not yet simulated
    for lo, hi in windows(config):
        lo = bar_ceil(lo, config.bar_nanos)
        if next_bar is None or not carry.started:
            next_bar = lo
        if config.mode == "batch":
            panel = cached_panel(config, alpha, next_bar, hi, progress, cache_dir)
        else:
            panel = build_panel(config, alpha, next_bar, hi, progress)
        rows_seen = np.flatnonzero(panel.observed.any(axis=1))
        if rows_seen.size == 0:
            if not carry.started:
                next_bar = None
            continue
        first = 0 if carry.started else int(rows_seen[0])
        stop = int(rows_seen[-1]) + 1
        if progress:
            progress("simulate")
        part, n_forced = _simulate(panel, first, stop, betas, carry, config)
        parts.append(part)
        forced += n_forced
        seen |= panel.observed[first:stop].any(axis=0)
        next_bar = pd.Timestamp(int(panel.bars[stop - 1]) + config.bar_nanos, tz="UTC")

    if not parts:
        raise DataError(
            f"config {config.name!r}: no price rows between {config.start_date} and "
            f"{config.end_date} for symbols {symbols}; check the dates, symbols and "
            f"price_loader {config.price_loader!r}"
        )
    missing = [s for s, ok in zip(symbols, seen) if not ok]
    if missing:
        log.warning(
            "config %r: no price data for %s between %s and %s; continuing without them",
            config.name, missing, config.start_date, config.end_date,
        )
    if progress:
        progress("metrics")
    sequences = _assemble(parts, symbols)
    metrics = compute_metrics(sequences.returns, config.bar_nanos, config.frequency)
    metadata = {
        "forced_closes": forced,
        "symbols_without_data": missing,
        "num_bars": len(sequences.returns),
        "runtime_seconds": time.perf_counter() - began,
    }
    return BacktestResult(config=config, metrics=metrics, metadata=metadata, sequences=sequences)


def _simulate(
    panel: Panel,
    first: int,
    stop: int,
    betas: np.ndarray,
    carry: _Carry,
    config: BacktestConfig,
) -> tuple[dict[str, np.ndarray], int]:
    seg = slice(first, stop)
    prices, alpha, universe = panel.prices[seg], panel.alpha[seg], panel.universe[seg]
    # Returns, alpha order and IC do not depend on portfolio settings: from a fresh
    # start they are computed once per panel and shared by every config using it.
    key = (first, stop)
    if carry.started or key not in panel.derived:
        order = alpha_argsort(np.vstack([carry.alpha[None, :], alpha]))  # rows t-1 .. T-1
        returns = bar_returns(prices, carry.prices)
        ic = rank_ic(
            alpha, returns, universe, carry.alpha, carry.universe,
            lagged_alpha_order=order[:-1],
        )
        if not carry.started:
            panel.derived[key] = (order, returns, ic)
    else:
        order, returns, ic = panel.derived[key]
    out = run_kernel(
        prices, alpha, universe, betas, carry.prices, carry.weights,
        config.open_quantile, config.close_quantile, config.gross_exposure,
        config.trading_fee_rate, alpha_order=order[1:], returns=returns,
    )
    pnl = out.gross - out.fees
    equity = carry.equity * np.cumprod(1.0 + pnl)

    previous = np.vstack([carry.weights[None, :], out.weights[:-1]])
    carry.prices = prices[-1].copy()
    carry.weights = out.weights[-1].copy()
    carry.alpha = alpha[-1].copy()
    carry.universe = universe[-1].copy()
    carry.equity = float(equity[-1])
    carry.started = True

    held_t, held_i = np.nonzero(out.weights)
    trade_t, trade_i = np.nonzero(out.weights != previous)
    part = {
        "timestamp": panel.bars[seg],
        "pnl": pnl,
        "gross": out.gross,
        "fees": out.fees,
        "turnover": out.turnover,
        "long_return": out.long_return,
        "short_return": out.short_return,
        "ic": ic,
        "equity": equity,
        "pos_time": panel.bars[seg][held_t],
        "pos_symbol": held_i,
        "pos_weight": out.weights[held_t, held_i],
        "trade_time": panel.bars[seg][trade_t],
        "trade_symbol": trade_i,
        "trade_previous": previous[trade_t, trade_i],
        "trade_weight": out.weights[trade_t, trade_i],
    }
    return part, out.forced_closes


def _assemble(parts: list[dict[str, np.ndarray]], symbols: list[str]) -> Sequences:
    def cat(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    def stamps(key: str) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(cat(key).view("datetime64[ns]")).tz_localize("UTC")

    def names(key: str) -> pd.Categorical:
        return pd.Categorical.from_codes(cat(key), categories=symbols)

    index = stamps("timestamp").rename("timestamp")
    returns = pd.DataFrame(
        {k: cat(k) for k in Sequences.RETURN_COLUMNS},
        index=index,
    )
    positions = pd.DataFrame(
        {
            "timestamp": stamps("pos_time"),
            "symbol": names("pos_symbol"),
            "weight": cat("pos_weight"),
        }
    )
    previous = cat("trade_previous")
    weight = cat("trade_weight")
    trades = pd.DataFrame(
        {
            "timestamp": stamps("trade_time"),
            "symbol": names("trade_symbol"),
            "previous_weight": previous,
            "weight": weight,
            "delta": weight - previous,
        }
    )
    return Sequences(returns=returns, positions=positions, trades=trades)
