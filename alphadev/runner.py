"""Batch and streaming runs: panels -> engine -> sequences -> BacktestResult.

The orchestration above the arrays-only engine (``alphadev.engine``): windows, the
state carried between them, frames, Parquet sinks, metrics and metadata.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from alphadev.cache import cached_panel
from alphadev.capacity import capacity_curve
from alphadev.config import BacktestConfig
from alphadev.data.beta import load_betas
from alphadev.data.coverage import (
    Uncovered,
    beta_file_coverage,
    beta_loader_coverage,
    funding_coverage,
    volume_coverage,
)
from alphadev.data.loaders import day_bounds
from alphadev.engine.kernel import (
    NO_PARTICIPATION,
    BookChanges,
    BookSettings,
    Participation,
    PreviousBar,
    book_changes,
    cost_settings,
)
from alphadev.engine.simulate import next_bar_book, simulate_arrays
from alphadev.errors import DataError
from alphadev.layout import sequence_file
from alphadev.metrics import (
    FRAGILE_RATIO,
    Metrics,
    ParticipationMetrics,
    compute_metrics,
    is_fragile,
)
from alphadev.panel import Panel, bar_ceil, build_panel
from alphadev.results import BacktestResult, Metadata, Sequences
from alphadev.signal_series import SignalSeries, SignalTail, benchmark_symbol

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class _Carry:
    """State at the last simulated bar, handed from one window to the next."""

    previous: PreviousBar
    # The next-bar book's own weights and ruin (docs/semantics.md#next-bar); its prices,
    # alpha and universe rows are the main book's.
    next_bar: PreviousBar
    signal_tail: SignalTail
    equity: float = 1.0
    started: bool = False
    ruined_at: int | None = None  # the ruin bar's stamp (ns), docs/semantics.md#ruin


class _Part(NamedTuple):
    """One simulated stretch of bars: its per-bar columns and its book changes."""

    columns: dict[str, np.ndarray]  # "timestamp" and Sequences.RETURN_COLUMNS
    book: BookChanges
    forced_closes: int
    pnl_next_bar: np.ndarray  # (T,) net return of the book traded one bar later
    signal: SignalSeries
    participation: Participation


def book_settings(config: BacktestConfig) -> BookSettings:
    """The config's portfolio settings, as the engine takes them."""
    symbols = config.sorted_symbols
    return BookSettings(
        open_quantile=config.open_quantile,
        close_quantile=config.close_quantile,
        gross_exposure=config.gross_exposure,
        costs=cost_settings(config.trading_fee_rate, config.slippage_rates(symbols),
                            len(symbols), config.impact_coefficient, config.capital),
    )


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
    spill_dir: str | os.PathLike | None = None,
) -> BacktestResult:
    """Run one config in this process and return its result.

    Batch runs take their panel from ``alphadev.cache`` (memory, and ``cache_dir`` on
    disk when given), so configs that differ only in portfolio settings share it.
    Streaming runs with ``spill_dir`` append positions and trades to Parquet files
    there chunk by chunk, so memory does not grow with the length of the backtest.
    """
    try:
        return _run(config, progress, cache_dir, spill_dir)
    except DataError as exc:
        if f"config {config.name!r}" in str(exc):
            raise
        raise DataError(f"config {config.name!r}: {exc}") from exc


def _run(
    config: BacktestConfig,
    progress: Progress | None,
    cache_dir: str | os.PathLike | None,
    spill_dir: str | os.PathLike | None,
) -> BacktestResult:
    began = time.perf_counter()
    symbols = config.sorted_symbols
    alpha = config.alpha_class(**config.alpha_kwargs)
    betas = load_betas(config.beta_csv_path, symbols)
    side_data = side_data_coverage(config)
    settings = book_settings(config)
    carry = _Carry(PreviousBar.start(len(symbols)), PreviousBar.start(len(symbols)),
                   SignalTail.start(len(symbols)))
    parts: list[dict[str, np.ndarray]] = []
    next_bar_parts: list[np.ndarray] = []
    signal_parts: list[SignalSeries] = []
    benchmark_name = benchmark_symbol(symbols)
    benchmark = None if benchmark_name is None else symbols.index(benchmark_name)
    spill = Path(spill_dir) if spill_dir is not None and config.mode == "streaming" else None
    positions = _TableSink(sequence_file(spill, "positions") if spill else None)
    trades = _TableSink(sequence_file(spill, "trades") if spill else None)
    seen = np.zeros(len(symbols), dtype=bool)
    forced = 0
    participation = NO_PARTICIPATION

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
        part = _simulate(panel, first, stop, betas, carry, settings, config.execution_delay,
                         benchmark)
        next_bar_parts.append(part.pnl_next_bar)
        signal_parts.append(part.signal)
        positions.add(_positions_frame(part.book, symbols))
        trades.add(_trades_frame(part.book, symbols))
        parts.append(part.columns)
        forced += part.forced_closes
        participation = participation.joined(part.participation)
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
    warnings = []
    for uncovered in side_data.values():
        if uncovered.message:
            warnings.append(f"config {config.name!r}: {uncovered.message}")
            log.warning("%s", warnings[-1])
    ruined_at = None
    if carry.ruined_at is not None:
        ruined_at = pd.Timestamp(carry.ruined_at, tz="UTC").isoformat()
        warnings.append(
            f"config {config.name!r} was ruined at {ruined_at}: that bar's net return took "
            "equity to zero or below, so the book was closed there and stayed flat. Lower "
            f"gross_exposure={config.gross_exposure} or check the prices of that bar"
        )
        log.warning("%s", warnings[-1])
    sequences = Sequences(
        returns=_returns_frame(parts),
        positions=positions.finish(_positions_frame(_NO_CHANGES, symbols)),
        trades=trades.finish(_trades_frame(_NO_CHANGES, symbols)),
        signal=SignalSeries.joined(signal_parts, benchmark_name),
    )
    metrics = compute_metrics(
        sequences.returns, config.bar_nanos, config.frequency,
        pnl_next_bar=np.concatenate(next_bar_parts),
    )
    if config.volume_loader is not None:
        warnings += _size_metrics(config, metrics, sequences.returns, participation,
                                  ruined=carry.ruined_at is not None)
    if is_fragile(metrics["total"]["sharpe"], metrics["sharpe_next_bar"]):
        warnings.append(
            f"config {config.name!r} is fragile: its Sharpe {metrics['total']['sharpe']:.2f} "
            f"is {metrics['sharpe_next_bar']:.2f} one bar later (execution_delay="
            f"{config.execution_delay + 1}), less than {FRAGILE_RATIO:.0%} of it. Its edge "
            "does not survive one bar of delay; do not trade it as it is "
            "(docs/semantics.md#next-bar)"
        )
        # INFO, not WARNING: a sweep of fragile configs would print a line each; the
        # leaderboard counts them and metadata keeps the warning.
        log.info("%s", warnings[-1])
    if not np.any(sequences.returns["turnover"].to_numpy() > 0):
        warnings.append(
            f"config {config.name!r} traded nothing: no bar had two or more eligible symbols "
            "(price, alpha and universe all present). Check that compute() returns "
            "non-NaN alpha, the symbols, the universe and the dates"
            + (f", and that execution_delay={config.execution_delay} bars is shorter than "
               "the data" if config.execution_delay else "")
        )
        log.warning("%s", warnings[-1])
    metadata = Metadata(forced_closes=forced, symbols_without_data=missing)
    if "symbols_without_funding" in side_data:
        metadata["symbols_without_funding"] = side_data["symbols_without_funding"].symbols
    if "symbols_without_beta" in side_data:
        metadata["symbols_without_beta"] = side_data["symbols_without_beta"].symbols
    if "symbols_without_volume" in side_data:
        metadata["symbols_without_volume"] = side_data["symbols_without_volume"].symbols
    metadata["num_bars"] = len(sequences.returns)
    metadata["ruined_at"] = ruined_at
    metadata["runtime_seconds"] = time.perf_counter() - began
    metadata["warnings"] = warnings
    return BacktestResult(config=config, metrics=metrics, metadata=metadata, sequences=sequences)


def _size_metrics(
    config: BacktestConfig, metrics: Metrics, returns: pd.DataFrame,
    participation: Participation, ruined: bool,
) -> list[str]:
    """Participation and the capacity curve into ``metrics``; the warnings they raise
    (docs/semantics.md#market-impact, #capacity)."""
    mean = participation.total / participation.trades if participation.trades else None
    metrics["participation"] = ParticipationMetrics(
        mean=mean, max=participation.largest if participation.trades else None,
        trades=participation.trades, trades_without_volume=participation.without_volume,
    )
    warnings = []
    if participation.trades and participation.largest > config.max_participation:
        warnings.append(
            f"config {config.name!r} trades up to {participation.largest:.1%} of a bar's "
            f"volume (mean {mean:.2%}) at capital={config.capital:g}, above "
            f"max_participation={config.max_participation:g}: a book of this size could not "
            "trade these weights at these prices. Lower capital, or read the capacity curve"
        )
        log.warning("%s", warnings[-1])
    if ruined:
        metrics["capacity"] = None
        metrics["capacity_curve"] = None
        return warnings
    column = {name: returns[name].to_numpy() for name in
              ("gross", "fees", "slippage", "funding", "impact")}
    base = column["gross"] - column["fees"] - column["slippage"] + column["funding"]
    unit = column["impact"] / np.sqrt(config.capital)
    curve = capacity_curve(base, unit, metrics["periods_per_year"])
    metrics["capacity"] = curve["capacity"]
    metrics["capacity_curve"] = curve
    return warnings


def side_data_coverage(config: BacktestConfig) -> dict[str, Uncovered]:
    """``symbols_without_funding`` / ``symbols_without_beta`` of a config that has such files.

    Decided on the whole period at once, so every chunking reports the same symbols; a
    file matching no configured symbol at all is a DataError.
    """
    symbols = config.sorted_symbols
    start, end = day_bounds(config.start_date, config.end_date)
    found = {}
    if config.funding_loader is not None:
        found["symbols_without_funding"] = funding_coverage(
            config.funding_loader, symbols, start, end
        )
    if config.beta_loader is not None:
        found["symbols_without_beta"] = beta_loader_coverage(config.beta_loader, symbols, end)
    if config.volume_loader is not None:
        found["symbols_without_volume"] = volume_coverage(config.volume_loader, symbols,
                                                          start, end)
    if config.beta_csv_path is not None:
        found["symbols_without_beta"] = beta_file_coverage(config.beta_csv_path, symbols)
    return found


def _simulate(
    panel: Panel,
    first: int,
    stop: int,
    betas: np.ndarray,
    carry: _Carry,
    settings: BookSettings,
    delay: int,
    benchmark: int | None,
) -> _Part:
    seg = slice(first, stop)
    prices, alpha, universe = panel.prices[seg], panel.alpha[seg], panel.universe[seg]
    betas = betas if panel.betas is None else panel.betas[seg]
    funding = None if panel.funding is None else panel.funding[seg]
    impact_scale = None if panel.impact_scale is None else panel.impact_scale[seg]
    volume = None if panel.volume is None else panel.volume[seg]
    trade_prices = None if panel.trade_prices is None else panel.trade_prices[seg]
    # Returns, alpha order and IC do not depend on portfolio settings: from a fresh
    # start they are computed once per panel and shared by every config using it.
    key = (first, stop)
    shared = panel.derived.get(key) if not carry.started else None
    simulated = simulate_arrays(
        prices, alpha, universe, betas, carry.previous, settings, shared,
        alpha_before=_rows_before(panel, first, delay) if delay else None, funding=funding,
        impact_scale=impact_scale, volume=volume, trade_prices=trade_prices,
    )
    if not carry.started:
        panel.derived[key] = simulated.derived
    later = next_bar_book(
        prices, alpha, universe, betas, carry.next_bar, settings, simulated.derived,
        _rows_before(panel, first, delay + 1), funding, impact_scale, volume,
    )
    signal = panel.signal.get(key) if not carry.started else None
    if signal is None:
        derived = simulated.derived
        signal = SignalSeries.of_window(alpha, universe, derived.returns, carry.signal_tail,
                                        benchmark, derived.order, derived.returns_order)
        if not carry.started:
            panel.signal[key] = signal
    carry.signal_tail = carry.signal_tail.after(alpha, universe)
    carry.next_bar = PreviousBar(
        prices=prices[-1], weights=later.weights[-1].copy(), alpha=alpha[-1],
        universe=universe[-1], ruined=carry.next_bar.ruined or later.ruined_at >= 0,
        impact_scale=later.impact_scale,
        trade_prices=None if trade_prices is None else trade_prices[-1].copy(),
    )
    out = simulated.book
    pnl = out.pnl
    if out.ruined_at >= 0:
        carry.ruined_at = int(panel.bars[first + out.ruined_at])
    equity = carry.equity * np.cumprod(1.0 + pnl)

    book = book_changes(out.weights, carry.previous.weights, panel.bars[seg])
    carry.previous = PreviousBar(
        prices=prices[-1].copy(),
        weights=out.weights[-1].copy(),
        alpha=alpha[-1].copy(),
        universe=universe[-1].copy(),
        ruined=carry.ruined_at is not None,
        impact_scale=out.impact_scale,
        trade_prices=None if trade_prices is None else trade_prices[-1].copy(),
    )
    carry.equity = float(equity[-1])
    carry.started = True

    columns = {
        "timestamp": panel.bars[seg],
        "pnl": pnl,
        "gross": out.gross,
        "fees": out.fees,
        "slippage": out.slippage,
        "impact": out.impact,
        "funding": out.funding,
        "turnover": out.turnover,
        "long_return": out.long_return,
        "short_return": out.short_return,
        "ic": simulated.derived.ic,
        "equity": equity,
    }
    return _Part(columns, book, out.forced_closes, later.pnl, signal, out.participation)


def _rows_before(panel: Panel, first: int, count: int) -> np.ndarray:
    """The alpha rows of the ``count`` bars before row ``first``.

    Taken from the panel itself where it reaches, else from ``alpha_before`` (which
    holds ``execution_delay + 1`` rows, so any ``count`` up to that fits).
    """
    if first >= count:
        return panel.alpha[first - count:first]
    before = panel.alpha_before
    assert before is not None and before.shape[0] >= count, "panel built for another delay"
    return np.concatenate([before[before.shape[0] - count + first:], panel.alpha[:first]])


def _stamps(values: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")


def _returns_frame(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    columns = {k: np.concatenate([p[k] for p in parts]) for k in Sequences.RETURN_COLUMNS}
    index = _stamps(np.concatenate([p["timestamp"] for p in parts])).rename("timestamp")
    return pd.DataFrame(columns, index=index, copy=False)


_NO_INT = np.array([], dtype=np.int64)
_NO_FLOAT = np.array([], dtype=np.float64)
# Book changes of no bars: the frames built from them are the empty tables' types.
_NO_CHANGES = BookChanges(_NO_INT, _NO_INT, _NO_FLOAT, _NO_INT, _NO_INT, _NO_FLOAT, _NO_FLOAT)


def _positions_frame(book: BookChanges, symbols: list[str]) -> pd.DataFrame:
    """Non-zero weights of one chunk."""
    return pd.DataFrame(
        {
            "timestamp": _stamps(book.pos_time),
            "symbol": pd.Categorical.from_codes(book.pos_symbol, categories=symbols),
            "weight": book.pos_weight,
        },
        copy=False,  # fresh arrays: no copy into one consolidated block
    )


def _trades_frame(book: BookChanges, symbols: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": _stamps(book.trade_time),
            "symbol": pd.Categorical.from_codes(book.trade_symbol, categories=symbols),
            "previous_weight": book.trade_previous,
            "weight": book.trade_weight,
            "delta": book.trade_weight - book.trade_previous,
        },
        copy=False,
    )


class _TableSink:
    """A long table built chunk by chunk: kept in memory, or appended to a Parquet file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.frames: list[pd.DataFrame] = []
        self.writer: Any = None  # a pyarrow ParquetWriter once the first chunk arrives

    def add(self, frame: pd.DataFrame) -> None:
        if self.path is None:
            self.frames.append(frame)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)

    def finish(self, empty: pd.DataFrame) -> pd.DataFrame | Path:
        if self.path is None:
            return pd.concat(self.frames, ignore_index=True) if self.frames else empty
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            empty.to_parquet(self.path, index=False)
        else:
            self.writer.close()
        return self.path
