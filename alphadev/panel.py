"""Load a window of data, run the alpha, and align everything on a (bars x symbols) grid.

This is where pandas ends: the Panel holds plain arrays, one row per bar and one column
per symbol (sorted by name), ready for the kernel.  docs/semantics.md#data-conventions in code:
last observation per bar, causal forward fill of at most ``max_fill_bars`` bars, and a
universe flag that holds until the symbol's next universe row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from alphadev.alpha import Alpha, lookback_timedelta
from alphadev.config import DAY_NS, NO_LAG, BacktestConfig, lag_text
from alphadev.data.loaders import CompositeDataLoader, load_range, normalize_frame
from alphadev.errors import AlphaError, DataError

if TYPE_CHECKING:  # the engine loads numba: not imported just to build a panel
    from alphadev.engine.simulate import PanelDerived
    from alphadev.signal_series import SignalSeries

EPOCH = pd.Timestamp(0, tz="UTC")
log = logging.getLogger(__name__)


@dataclass
class Panel:
    bars: np.ndarray  # (B,) int64 UTC nanoseconds, bar labels (left edges)
    prices: np.ndarray  # (B, N) close, filled
    alpha: np.ndarray  # (B, N) alpha, filled
    universe: np.ndarray  # (B, N) bool
    observed: np.ndarray  # (B, N) bool: a raw price was observed inside the bar
    # docs/semantics.md#execution-and-costs; None where the config does not use them.
    # (d + 1, N) alpha of the d + 1 bars before bars[0]: d for the book, one more for
    # its next-bar twin (docs/semantics.md#next-bar).
    alpha_before: np.ndarray | None = None
    funding: np.ndarray | None = None  # (B, N) funding rates of the events inside the bar
    betas: np.ndarray | None = None  # (B, N) beta_loader's beta held at each bar
    # docs/semantics.md#market-impact, with volume_loader: each bar's summed volume (NaN
    # without rows) and sigma / sqrt(ADV) of the window before it (NaN: undefined).
    volume: np.ndarray | None = None
    impact_scale: np.ndarray | None = None
    # docs/semantics.md#execution-lag, with execution_lag > 0: the price each bar's book
    # trades at, the last one at close + lag (the close rule on a grid shifted by the lag).
    trade_prices: np.ndarray | None = None
    # Values derived from the panel alone (returns, alpha order, IC), shared by every
    # config that uses this panel; filled by alphadev.runner, keyed by (first, stop) row.
    derived: dict[tuple[int, int], PanelDerived] = field(
        default_factory=dict, repr=False, compare=False
    )
    # The signal series of those rows from a fresh start (docs/semantics.md#signal-series).
    signal: dict[tuple[int, int], SignalSeries] = field(
        default_factory=dict, repr=False, compare=False
    )


def bar_floor(ts: pd.Timestamp, bar_ns: int) -> pd.Timestamp:
    return pd.Timestamp((ts.value // bar_ns) * bar_ns, tz="UTC")


def bar_ceil(ts: pd.Timestamp, bar_ns: int) -> pd.Timestamp:
    return pd.Timestamp(-((-ts.value) // bar_ns) * bar_ns, tz="UTC")


def history_needed(config: BacktestConfig, alpha: Alpha) -> pd.Timedelta:
    """Data loaded before a window: the alpha's lookback plus what filling can reach,
    plus ``execution_delay`` + 1 bars (the traded alpha is the one of d bars earlier,
    and the next-bar book's the one of d + 1 bars earlier)."""
    lookback = lookback_timedelta(alpha)
    _warn_short_int_lookback(alpha, lookback, config)
    bars = config.max_fill_bars + 2 + config.execution_delay
    if config.volume_loader is not None:  # the impact estimates' trailing window
        bars += config.impact_window_bars
    return lookback + pd.Timedelta(bars * config.bar_nanos, "ns")


_WARNED_LOOKBACKS: set[tuple[str, int, int]] = set()


def _warn_short_int_lookback(alpha: Alpha, lookback: pd.Timedelta, config: BacktestConfig) -> None:
    """An int lookback means minutes: ``lookback=24`` on hourly bars is 24 minutes of
    history, almost certainly meant as 24 bars.  Said once per alpha class and value."""
    raw = alpha.lookback
    if isinstance(raw, bool) or not isinstance(raw, int):
        return
    if not 0 < lookback.value < config.bar_nanos:
        return
    key = (type(alpha).__qualname__, raw, config.bar_nanos)
    if key in _WARNED_LOOKBACKS:
        return
    _WARNED_LOOKBACKS.add(key)
    log.warning(
        "%s.lookback is %d, which means %d minutes: less than one %r bar. If you meant "
        "%d bars, return a timedelta: pandas.Timedelta(%r) * %d",
        type(alpha).__name__, raw, raw, config.frequency, raw, config.frequency, raw,
    )


def build_panel(
    config: BacktestConfig,
    alpha: Alpha,
    start: pd.Timestamp,
    end: pd.Timestamp,
    progress: Callable[[str], None] | None = None,
) -> Panel:
    """The panel of bars with labels in [start, end); ``start`` is on the bar grid."""
    bar_ns = config.bar_nanos
    symbols = config.sorted_symbols
    load_start = bar_floor(start - history_needed(config, alpha), bar_ns)
    n_all = int((bar_ceil(end, bar_ns).value - load_start.value) // bar_ns)
    skip = int((start.value - load_start.value) // bar_ns)

    if progress:
        progress("load data")
    loader = CompositeDataLoader([config.price_loader, *config.alpha_loaders])
    data = loader.load_range(load_start, end, symbols)
    check_values(config, data)
    # Everything the engine needs from ``data`` is copied out before the alpha sees it:
    # compute() may edit its input freely without touching the prices traded on.
    prices, observed = to_bars(data["close"], symbols, load_start.value, n_all, bar_ns)
    trade_prices = None
    if config.execution_lag != NO_LAG:
        trade_prices = _lagged_prices(config, data["close"], symbols, load_start, end, n_all)

    if progress:
        progress("compute alpha")
    alpha.reset()
    scores = _alpha_scores(alpha, data, config)
    del data

    if progress:
        progress("align")
    alpha_values, alpha_observed = to_bars(scores, symbols, load_start.value, n_all, bar_ns)
    prices = fill_forward(prices, observed, config.max_fill_bars)
    alpha_values = fill_forward(alpha_values, alpha_observed, config.max_fill_bars)
    if config.universe_loader is None:
        universe = np.ones((n_all, len(symbols)), dtype=bool)
    else:
        universe = _universe(config, symbols, load_start, end, n_all)

    delay = config.execution_delay  # history_needed makes skip > delay + 1
    bars = load_start.value + bar_ns * np.arange(skip, n_all, dtype=np.int64)
    volume = scale = None
    if config.volume_loader is not None:
        volume, scale = _impact_inputs(config, symbols, load_start, end, n_all, prices, skip)
    return Panel(
        bars=bars,
        prices=prices[skip:],
        alpha=alpha_values[skip:],
        universe=universe[skip:],
        observed=observed[skip:],
        alpha_before=alpha_values[skip - delay - 1:skip],
        funding=_funding(config, symbols, start, bars, bar_ns,
                         pd.Timedelta(config.execution_lag).value),
        betas=_betas(config, symbols, load_start, end, n_all)[skip:]
        if config.beta_loader is not None else None,
        volume=volume,
        impact_scale=scale,
        trade_prices=None if trade_prices is None else trade_prices[skip:],
    )


def _lagged_prices(
    config: BacktestConfig, close: pd.Series, symbols: list[str], load_start: pd.Timestamp,
    end: pd.Timestamp, n_bars: int,
) -> np.ndarray:
    """The filled price at close + ``execution_lag`` of each bar: the last price row in
    [label + lag, label + bar + lag), with the rows after ``end`` the lag reaches into."""
    lag = pd.Timedelta(config.execution_lag)
    _check_lag_resolution(config, close, lag)
    after = load_range(config.price_loader, end, end + lag, symbols)[["close"]]
    check_values(config, after)
    rows = pd.concat([close, after["close"]]) if len(after) else close
    values, seen = to_bars(rows, symbols, load_start.value + lag.value, n_bars,
                           config.bar_nanos)
    return fill_forward(values, seen, config.max_fill_bars)


def _check_lag_resolution(config: BacktestConfig, close: pd.Series, lag: pd.Timedelta) -> None:
    """Rows further apart than the lag would trade a whole row later than asked: with
    hourly rows, a 5-minute lag would be a one-hour delay."""
    rows = close.dropna()
    if len(rows) < 2:
        return
    index = rows.index
    stamps = index.levels[0].as_unit("ns").asi8[np.asarray(index.codes[0])]
    symbol = np.asarray(index.codes[1])
    order = np.lexsort((stamps, symbol))
    steps = np.diff(stamps[order])
    steps = steps[(symbol[order][1:] == symbol[order][:-1]) & (steps > 0)]
    if not steps.size:
        return
    spacing = pd.Timedelta(int(np.median(steps)), "ns")
    if spacing > lag:
        raise DataError(
            f"config {config.name!r}: execution_lag={lag_text(lag)} is shorter than the "
            f"spacing of price_loader {config.price_loader!r}'s rows ({spacing}, the median "
            "step between one symbol's rows): the price at close + lag would come from the "
            f"next row, {spacing} after the close. Load prices at {lag_text(lag)} or finer, "
            f"or set execution_lag to at least {spacing}"
        )


def _impact_inputs(
    config: BacktestConfig, symbols: list[str], load_start: pd.Timestamp, end: pd.Timestamp,
    n_bars: int, prices: np.ndarray, skip: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Bar volumes and impact scales of rows ``skip`` onwards (docs/semantics.md#market-impact)."""
    loader = config.volume_loader
    assert loader is not None  # called only for configs that have one
    rows = load_range(loader, load_start, end, symbols)[loader.get_columns()[0]]
    values = rows.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isinf(values) | (values < 0)
    if bad.any():
        _raise_bad_row(rows, config, "volume_loader", int(np.flatnonzero(bad)[0]),
                       int(bad.sum()), "volumes must be finite and >= 0 (leave the cell "
                       "empty for 'no observation')")
    volume = _bar_sums(rows, values, symbols, load_start.value, n_bars, config.bar_nanos)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.full(prices.shape, np.nan)
        returns[1:] = prices[1:] / prices[:-1] - 1.0
    returns[~np.isfinite(returns)] = np.nan
    from alphadev.engine.impact import impact_estimates  # numba: only configs with volumes

    bars_per_day = DAY_NS / config.bar_nanos
    estimates = impact_estimates(volume, returns, config.impact_window_bars, bars_per_day, skip,
                                 origin=load_start.value // config.bar_nanos)
    return volume[skip:], estimates.scale


def to_bars(
    series: pd.Series, symbols: list[str], bar0_ns: int, n_bars: int, bar_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Last non-missing observation of each (bar, symbol) and whether there was one."""
    n_sym = len(symbols)
    values = np.full((n_bars, n_sym), np.nan)
    observed = np.zeros((n_bars, n_sym), dtype=bool)
    if len(series) == 0:
        return values, observed
    vals = series.to_numpy(dtype=np.float64, na_value=np.nan)
    ts, key, keep = _cells(series.index, vals, symbols, bar0_ns, n_bars, bar_ns)
    if not keep.any():
        return values, observed
    ts, vals = ts[keep], vals[keep]
    step = np.diff(key)
    if np.any(step < 0) or np.any((step == 0) & (ts[1:] < ts[:-1])):
        order = np.lexsort((ts, key))  # not yet in (bar, symbol, time) order
        key, vals = key[order], vals[order]
    last = np.append(key[1:] != key[:-1], True)
    values.flat[key[last]] = vals[last]
    observed.flat[key[last]] = True
    return values, observed


def _cells(
    index: pd.MultiIndex, vals: np.ndarray, symbols: list[str], bar0_ns: int, n_bars: int,
    bar_ns: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's timestamp (ns), its flat (bar, symbol) cell among ``n_bars`` bars (kept
    rows only) and whether it is kept: a configured symbol, a value, a bar in range.
    Read from the index's codes, without materialising its levels per row."""
    ts_codes = np.asarray(index.codes[0])
    sym_codes = np.asarray(index.codes[1])
    ts = index.levels[0].as_unit("ns").asi8[np.maximum(ts_codes, 0)]
    position = pd.Index(symbols).get_indexer(index.levels[1])
    column = np.where((sym_codes >= 0) & (ts_codes >= 0), position[np.maximum(sym_codes, 0)], -1)
    bar = (ts - bar0_ns) // bar_ns
    keep = (column >= 0) & ~np.isnan(vals) & (bar >= 0) & (bar < n_bars)
    return ts, bar[keep] * len(symbols) + column[keep], keep


def _bar_sums(
    rows: pd.Series, values: np.ndarray, symbols: list[str], bar0_ns: int, n_bars: int,
    bar_ns: int,
) -> np.ndarray:
    """(n_bars, N) sum of each bar's non-missing values; NaN for a bar without any."""
    n_sym = len(symbols)
    if not values.size:
        return np.full((n_bars, n_sym), np.nan)
    _, key, keep = _cells(rows.index, values, symbols, bar0_ns, n_bars, bar_ns)
    sums = np.bincount(key, weights=values[keep], minlength=n_bars * n_sym)
    seen = np.bincount(key, minlength=n_bars * n_sym) > 0
    return np.where(seen, sums, np.nan).reshape(n_bars, n_sym)


def fill_forward(values: np.ndarray, observed: np.ndarray, limit: int | None) -> np.ndarray:
    """Causal fill: a bar without observation takes the last one at most ``limit`` bars old."""
    n_bars = values.shape[0]
    rows = np.arange(n_bars)[:, None]
    last_seen = np.maximum.accumulate(np.where(observed, rows, -1), axis=0)
    usable = last_seen >= 0
    if limit is not None:
        usable &= rows - last_seen <= limit
    cols = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    return np.where(usable, values[np.maximum(last_seen, 0), cols], np.nan)


def check_values(config: BacktestConfig, data: pd.DataFrame) -> None:
    """Prices must be finite and > 0, other loaded columns finite or NaN (no observation).

    A zero or negative price would be traded (or divide by zero) and an infinite value
    poisons every statistic it touches, so they stop the run naming the file and row.
    """
    for column in data.columns:
        values = data[column].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values)
        if column == "close":
            bad |= values <= 0
        if not bad.any():
            continue
        k = int(np.flatnonzero(bad)[0])
        stamp, symbol = data.index[k]
        is_price = column == "close"
        loader = config.price_loader if is_price else next(
            (x for x in config.alpha_loaders if column in x.get_columns()), config.price_loader
        )
        field = "price_loader" if is_price else "alpha_loaders"
        where = f"{field} {loader!r}"
        file_of = getattr(loader, "file_of", None)
        path = file_of(stamp, symbol, config.symbols) if file_of is not None else None
        if path is not None:
            where += f": file {path!r}"
        rule = "prices must be finite and > 0" if is_price else "values must be finite"
        raise DataError(
            f"{where} has {column}={float(values[k])!r} for symbol {symbol!r} at {stamp} "
            f"({int(bad.sum())} bad row(s) in the loaded window); {rule}: correct the "
            "file, or leave the cell empty for 'no observation'"
        )


def _alpha_scores(alpha: Alpha, data: pd.DataFrame, config: BacktestConfig) -> pd.Series:
    owner = f"config {config.name!r}: {type(alpha).__name__}.compute()"
    out = alpha.compute(data)
    if not isinstance(out, pd.DataFrame) or "alpha" not in out.columns:
        got = list(out.columns) if isinstance(out, pd.DataFrame) else type(out).__name__
        raise AlphaError(
            f"{owner} must return a DataFrame with a column 'alpha', got {got}; "
            "e.g. return frame[['alpha']]"
        )
    try:
        out = normalize_frame(
            out[["alpha"]], f"config {config.name!r}", f"{type(alpha).__name__}.compute()"
        )
    except ValueError as exc:
        raise AlphaError(str(exc)) from None
    values = out["alpha"]
    if not pd.api.types.is_numeric_dtype(values.dtype):
        shown = values.dropna()
        example = f" (e.g. {shown.iloc[0]!r} at {shown.index[0]})" if len(shown) else ""
        raise AlphaError(
            f"{owner} returned a non-numeric alpha column of dtype {values.dtype}{example}; "
            "return numbers of a numeric dtype (NaN for 'no signal'), e.g. "
            "frame['alpha'].astype(float)"
        )
    values = pd.to_numeric(values)
    if np.isinf(values.to_numpy(dtype=np.float64, na_value=np.nan)).any():
        where = out.index[np.isinf(values.to_numpy(dtype=np.float64, na_value=np.nan))][0]
        raise AlphaError(
            f"{owner} returned an infinite alpha at {where}; return NaN for "
            "'no signal' (e.g. .replace([np.inf, -np.inf], np.nan))"
        )
    if out.index.has_duplicates:
        where = out.index[out.index.duplicated()][0]
        raise AlphaError(f"{owner} returned more than one alpha for {where}; return one per row")
    return values


def _universe(
    config: BacktestConfig, symbols: list[str], load_start: pd.Timestamp, end: pd.Timestamp,
    n_bars: int,
) -> np.ndarray:
    """Universe flags; a row holds until the symbol's next row, with no age limit."""
    assert config.universe_loader is not None  # called only for configs that have one
    rows = load_range(config.universe_loader, EPOCH, end, symbols)["in_universe"]
    flags = _held(rows, config, symbols, load_start, n_bars)
    return np.nan_to_num(flags, nan=0.0) != 0.0


def _betas(
    config: BacktestConfig, symbols: list[str], load_start: pd.Timestamp, end: pd.Timestamp,
    n_bars: int,
) -> np.ndarray:
    """Betas held like the universe (missing cells ignored); 1.0 before the first one."""
    loader = config.beta_loader
    assert loader is not None  # called only for configs that have one
    column = loader.get_columns()[0]
    rows = load_range(loader, EPOCH, end, symbols)[column]
    _check_finite(rows, config, "beta_loader", "betas must be finite (or empty: ignored)")
    return np.nan_to_num(_held(rows, config, symbols, load_start, n_bars), nan=1.0)


def _funding(
    config: BacktestConfig, symbols: list[str], start: pd.Timestamp, bars: np.ndarray,
    bar_ns: int, lag_ns: int = 0,
) -> np.ndarray | None:
    """F[t, i]: the rates of every funding event with label + lag <= timestamp < label +
    bar + lag (the book traded at close + lag holds through that interval)."""
    loader = config.funding_loader
    if loader is None:
        return None
    column = loader.get_columns()[0]
    start = start + pd.Timedelta(lag_ns, "ns")
    end = pd.Timestamp(int(bars[-1]) + bar_ns + lag_ns, tz="UTC") if bars.size else start
    rows = load_range(loader, start, end, symbols)[column]
    values = rows.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    if missing.any():
        _raise_bad_row(rows, config, "funding_loader", int(np.flatnonzero(missing)[0]),
                       int(missing.sum()), "a funding event needs a rate (write 0 for "
                       "none, or drop the row)")
    _check_finite(rows, config, "funding_loader", "funding rates must be finite")
    funding = np.zeros((bars.size, len(symbols)))
    if values.size:
        index = rows.index
        stamps = index.get_level_values(0).as_unit("ns").asi8
        column_of = pd.Index(symbols).get_indexer(index.get_level_values(1))
        bar = (stamps - start.value) // bar_ns
        keep = (column_of >= 0) & (bar >= 0) & (bar < bars.size)
        np.add.at(funding, (bar[keep], column_of[keep]), values[keep])
    return funding


def _check_finite(rows: pd.Series, config: BacktestConfig, field: str, rule: str) -> None:
    values = rows.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isinf(values)
    if bad.any():
        _raise_bad_row(rows, config, field, int(np.flatnonzero(bad)[0]), int(bad.sum()), rule)


def _raise_bad_row(
    rows: pd.Series, config: BacktestConfig, field: str, k: int, count: int, rule: str
) -> None:
    """A DataError naming the loader, its file, the symbol and the timestamp of row k."""
    loader = getattr(config, field)
    stamp, symbol = rows.index[k]
    where = f"{field} {loader!r}"
    file_of = getattr(loader, "file_of", None)
    path = file_of(stamp, symbol, config.symbols) if file_of is not None else None
    if path is not None:
        where += f": file {path!r}"
    raise DataError(
        f"config {config.name!r}: {where} has {rows.name}={float(rows.iloc[k])!r} for symbol "
        f"{symbol!r} at {stamp} ({count} such row(s) in the loaded window); {rule}"
    )


def _held(
    rows: pd.Series, config: BacktestConfig, symbols: list[str], load_start: pd.Timestamp,
    n_bars: int,
) -> np.ndarray:
    """Last value per bar, held with no age limit (seeded by the rows before load_start)."""
    stamps = rows.index.get_level_values(0)
    before = rows[stamps < load_start].dropna()
    initial = before.groupby(level=1).last().reindex(symbols).to_numpy(dtype=np.float64)
    inside = rows[stamps >= load_start]
    values, observed = to_bars(inside, symbols, load_start.value, n_bars, config.bar_nanos)
    seeded_values = np.vstack([initial[None, :], values])
    seeded_observed = np.vstack([~np.isnan(initial)[None, :], observed])
    return fill_forward(seeded_values, seeded_observed, None)[1:]
