"""Figures of the sweep report: one function per figure, each returning a Figure.

matplotlib is imported inside the functions (it is the optional ``report`` extra and
``import alphadev`` must not load it).  Figures are built with the object-oriented
API on an explicit Agg canvas, never through pyplot, so no global backend is switched
and nothing is shown on screen.  ``to_png`` renders a figure to PNG bytes.

Series passed in are keyed by a short display label, in the order they should be
drawn (the report passes the top-K configs best first).  Figures carry no legend:
``legend_entries`` reads their labelled artists and ``layout.figure`` writes the
legend in HTML under the image, where a long label wraps rather than being clipped.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from alphadev.metrics import cum_returns, drawdown, rolling_sharpe, rolling_volatility

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH = 10.0  # inches; at DPI below a figure is 1000 px wide
DPI = 100


def new_figure(height: float = 4.0, ncols: int = 1, nrows: int = 1) -> tuple[Figure, list[Axes]]:
    """A Figure on an Agg canvas and its axes (always a flat list)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, list(axes.ravel())


def to_png(fig: Figure) -> bytes:
    """PNG bytes of a figure (no metadata, so no URL is embedded)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


class LegendEntry(NamedTuple):
    """One legend item, drawn in HTML under the figure (``layout.figure``) so a long
    config label wraps instead of being cut at the edge of the PNG."""

    label: str
    colour: str  # "#rrggbb"
    mark: str  # "line", "dashed", "dotted" or "box"


def legend_entries(fig: Figure) -> list[LegendEntry]:
    """The labelled artists of every axes of ``fig``, each label once, in drawing order."""
    from matplotlib.collections import Collection
    from matplotlib.colors import to_hex
    from matplotlib.container import BarContainer
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    entries: dict[str, LegendEntry] = {}
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels):
            if label in entries:
                continue
            if isinstance(handle, Line2D):
                style = {"--": "dashed", ":": "dotted"}.get(str(handle.get_linestyle()), "line")
                entries[label] = LegendEntry(label, to_hex(handle.get_color()), style)
                continue
            if isinstance(handle, BarContainer):
                handle = handle.patches[0]
            if isinstance(handle, Patch):
                filled = handle.get_fill()
                colour = to_hex(handle.get_facecolor() if filled else handle.get_edgecolor())
                entries[label] = LegendEntry(label, colour, "box" if filled else "line")
            elif isinstance(handle, Collection):
                rgba = np.asarray(handle.get_facecolor(), dtype=np.float64).reshape(-1, 4)[0]
                entries[label] = LegendEntry(label, to_hex(rgba.tolist()), "box")
    return list(entries.values())


def _time_axis(ax: Axes) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)


def _naive(index: pd.Index) -> pd.Index:
    """Datetime index without timezone (UTC wall time) for plotting."""
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert("UTC").tz_localize(None)
    return index


# ---------------------------------------------------------------------- time series
def draw_lines(ax: Axes, series: Mapping[str, pd.Series], title: str, ylabel: str = "",
               baseline: float | None = None, percent: bool = False, lw: float = 1.0,
               dashed: bool = False) -> None:
    """The one helper behind the time-series panels: one line per labelled series in
    colours C0, C1, ... (so a config keeps its colour across panels), a dotted baseline,
    a title, a y label, percent ticks if asked and the concise date axis."""
    for colour, (label, values) in enumerate(series.items()):
        ax.plot(_naive(values.index), values.to_numpy(dtype=np.float64), lw=lw,
                color=f"C{colour}", ls="--" if dashed else "-", label=label)
    if baseline is not None:
        ax.axhline(baseline, color="0.4", lw=0.8, ls=":")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if percent:
        ax.yaxis.set_major_formatter(_percent())
    _time_axis(ax)


def equity_curves(equity: Mapping[str, pd.Series]) -> Figure:
    """Equity (net of fees, slippage, impact and funding, starting at 1) of each config."""
    fig, (ax,) = new_figure(4.2)
    draw_lines(ax, equity, "Equity curves (net of costs)", "equity", baseline=1.0, lw=1.2)
    return fig


def drawdown_curves(equity: Mapping[str, pd.Series]) -> Figure:
    """Drawdown ``equity / running peak - 1`` (peak starting at 1) of each config."""
    fig, (ax,) = new_figure(3.4)
    depth = {label: pd.Series(drawdown(series.to_numpy(dtype=np.float64)), index=series.index)
             for label, series in equity.items()}
    draw_lines(ax, depth, "Drawdown", "equity / peak - 1", percent=True)
    return fig


def versus_benchmark(equity: Mapping[str, pd.Series], benchmark: pd.Series,
                     benchmark_label: str, betas: Mapping[str, pd.Series],
                     window_label: str) -> Figure:
    """Left: each config's equity against the benchmark held long (dashed, black);
    right: each config's rolling beta to the benchmark."""
    fig, axes = new_figure(3.8, ncols=2)
    draw_lines(axes[0], equity, "Equity against the benchmark", "equity", baseline=1.0)
    growth = cum_returns(benchmark.fillna(0.0).to_numpy(dtype=np.float64))
    axes[0].plot(_naive(benchmark.index), growth, color="k", lw=1.0, ls="--",
                 label=f"benchmark: {benchmark_label}")
    draw_lines(axes[1], betas, f"Rolling beta to the benchmark ({window_label})", "beta",
               baseline=0.0)
    return fig


def equity_with_drawdowns(equity: pd.Series, spans: Sequence[tuple[pd.Timestamp, pd.Timestamp]]
                          ) -> Figure:
    """Equity of one config with its worst drawdowns shaded, peak to recovery (or end)."""
    fig, (ax,) = new_figure(3.8)
    draw_lines(ax, {"equity": equity}, "Equity with the worst drawdowns shaded", "equity",
               baseline=1.0, lw=1.2)
    for start, end in spans:
        ax.axvspan(*_naive(pd.DatetimeIndex([start, end])), color="C3", alpha=0.15, lw=0)
    return fig


def quantile_spread(spread: Mapping[str, pd.Series], window: pd.Timedelta,
                    window_label: str) -> Figure:
    """Rolling mean of the top-minus-bottom quantile bar return (basis points) with a
    band of +-1.96 standard errors of that mean (bars without a spread skipped)."""
    fig, (ax,) = new_figure(3.6)
    for colour, (label, values) in enumerate(spread.items()):
        values = values.astype(np.float64) * 1e4
        rolled = values.rolling(window, min_periods=2)
        mean, error = rolled.mean(), 1.96 * rolled.std() / np.sqrt(rolled.count())
        x = _naive(values.index)
        ax.plot(x, mean.to_numpy(), lw=1.0, color=f"C{colour}", label=label)
        ax.fill_between(x, (mean - error).to_numpy(), (mean + error).to_numpy(),
                        color=f"C{colour}", alpha=0.15, lw=0)
    ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_title(f"Top minus bottom quantile return (mean over {window_label}, band: "
                 "95% of that mean)")
    ax.set_ylabel("basis points per bar")
    _time_axis(ax)
    return fig


def quantile_turnover(turnover: Mapping[str, pd.DataFrame], window: pd.Timedelta,
                      window_label: str) -> Figure:
    """Rolling mean turnover of the top (solid) and bottom (dashed) alpha quantile."""
    fig, (ax,) = new_figure(3.4)
    title = (f"Quantile turnover: share of names new to the quantile (mean over "
             f"{window_label})")
    draw_lines(ax, {f"{k} (top)": rolling_mean(f["turnover_top"], window)
                    for k, f in turnover.items()}, title, "turnover per bar", percent=True)
    draw_lines(ax, {f"{k} (bottom)": rolling_mean(f["turnover_bottom"], window)
                    for k, f in turnover.items()}, title, "turnover per bar", percent=True,
               dashed=True)
    return fig


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def by_hour_and_weekday(pnl: Mapping[str, pd.Series], ic: Mapping[str, pd.Series]) -> Figure:
    """Mean net return (basis points) and mean rank IC by UTC hour of day and by day of
    week, grouped bars per config: when in the 24/7 week the edge is earned."""
    fig, axes = new_figure(6.4, ncols=2, nrows=2)
    panels = ((pnl, "hour", "Mean net return by hour (UTC), bp", 1e4),
              (pnl, "weekday", "Mean net return by weekday, bp", 1e4),
              (ic, "hour", "Mean rank IC by hour (UTC)", 1.0),
              (ic, "weekday", "Mean rank IC by weekday", 1.0))
    for ax, (series, by, title, scale) in zip(axes, panels):
        slots = 24 if by == "hour" else 7
        width = 0.8 / max(1, len(series))
        for k, (label, values) in enumerate(series.items()):
            index = pd.DatetimeIndex(_naive(values.index))
            keys = index.hour if by == "hour" else index.day_of_week
            means = values.astype(np.float64).groupby(keys).mean().reindex(range(slots))
            ax.bar(np.arange(slots) + (k - (len(series) - 1) / 2) * width,
                   means.to_numpy() * scale, width=width, color=f"C{k}", label=label)
        ax.set_xticks(range(slots), [str(h) for h in range(slots)] if by == "hour"
                      else list(WEEKDAYS), fontsize="x-small" if by == "hour" else None)
        ax.axhline(0.0, color="0.4", lw=0.8)
        ax.set_title(title, fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
    return fig


def leg_curves(legs: Mapping[str, pd.DataFrame]) -> Figure:
    """Cumulative return of the long leg and of the short leg, side by side.

    Each frame has columns ``long_return`` and ``short_return`` (returns on each
    leg's notional, docs/semantics.md#accounting); a config keeps its colour in both panels.
    """
    fig, axes = new_figure(3.8, ncols=2)
    for colour, (label, frame) in enumerate(legs.items()):
        for ax, column in zip(axes, ("long_return", "short_return")):
            growth = np.cumprod(1.0 + frame[column].fillna(0.0).to_numpy()) - 1.0
            ax.plot(_naive(frame.index), growth, lw=1.0, color=f"C{colour}", label=label)
    for ax, title in zip(axes, ("Long leg", "Short leg")):
        ax.set_title(f"{title}: cumulative return")
        ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
        ax.yaxis.set_major_formatter(_percent())
        _time_axis(ax)
    return fig


def rolling_mean(series: pd.Series, window: pd.Timedelta) -> pd.Series:
    """Mean over a trailing time ``window``, drawn once the window holds at least half as
    many values as it has bars (so a curve does not start with a mean of one or two)."""
    series = series.astype(np.float64)
    step = pd.Series(series.index).diff().median() if len(series) > 1 else window
    bars = max(1, int(window / step)) if step and step > pd.Timedelta(0) else 1
    return series.rolling(window, min_periods=max(1, bars // 2)).mean()


def rolling_ic(ic: Mapping[str, pd.Series], window: pd.Timedelta, window_label: str) -> Figure:
    """Rolling mean of the per-bar rank IC over a time ``window`` (bars without IC skipped)."""
    fig, (ax,) = new_figure(3.6)
    draw_lines(ax, {label: rolling_mean(series, window) for label, series in ic.items()},
               f"Rolling rank IC (mean over {window_label})", "IC", baseline=0.0)
    return fig


# ---------------------------------------------------------------------- signal
def ic_decay(decay: Mapping[str, pd.Series]) -> Figure:
    """Mean rank IC by forward lag (bars), one line with markers per config."""
    fig, (ax,) = new_figure(3.6)
    for label, series in decay.items():
        ax.plot(series.index.to_numpy(), series.to_numpy(), marker="o", ms=3, lw=1.0,
                label=label)
    ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_title("IC decay: rank IC of A[t] with the return of bar t+h-1 -> t+h")
    ax.set_xlabel("lag h (bars)")
    ax.set_ylabel("mean IC")
    ax.grid(True, alpha=0.3)
    return fig


def quantile_returns(returns: Mapping[str, pd.Series]) -> Figure:
    """Mean next-bar return per alpha quantile (1 = lowest alpha), grouped bars."""
    fig, (ax,) = new_figure(3.6)
    n = max(len(returns), 1)
    width = 0.8 / n
    for k, (label, series) in enumerate(returns.items()):
        x = np.arange(len(series)) + (k - (n - 1) / 2) * width
        ax.bar(x, series.to_numpy() * 1e4, width=width, label=label)
    if returns:
        first = next(iter(returns.values()))
        ax.set_xticks(np.arange(len(first)), [str(q) for q in first.index])
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_title("Mean next-bar return by alpha quantile (1 = lowest alpha)")
    ax.set_xlabel("quantile")
    ax.set_ylabel("basis points per bar")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ---------------------------------------------------------------------- sweep
def sharpe_heatmap(table: pd.DataFrame, x: str, y: str, value: str = "sharpe") -> Figure:
    """Mean of ``value`` over the other grid dimensions, for each (x, y) pair of values."""
    grid = table.pivot_table(index=y, columns=x, values=value, aggfunc="mean", dropna=False)
    grid = grid.reindex(index=_ordered(grid.index), columns=_ordered(grid.columns))
    data = grid.to_numpy(dtype=np.float64)
    fig, (ax,) = new_figure(max(2.8, min(7.0, 1.2 + 0.45 * len(grid.index))))
    finite = data[np.isfinite(data)]
    bound = (float(np.max(np.abs(finite))) if finite.size else 0.0) or 1.0
    image = ax.imshow(
        np.ma.masked_invalid(data), cmap="RdYlGn", vmin=-bound, vmax=bound,
        aspect="auto", origin="lower",
    )
    ax.set_xticks(range(len(grid.columns)), [_tick(v) for v in grid.columns],
                  rotation=30 if len(grid.columns) > 6 else 0)
    ax.set_yticks(range(len(grid.index)), [_tick(v) for v in grid.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if data.size <= 120:
        for (row, col), v in np.ndenumerate(data):
            if math.isfinite(v):
                ax.text(col, row, f"{v:.2f}", ha="center", va="center", fontsize="small")
    fig.colorbar(image, ax=ax)
    ax.set_title(f"{value} by {y} x {x}")
    return fig


def sharpe_by_dimension(table: pd.DataFrame, dim: str, value: str = "sharpe") -> Figure:
    """``value`` against the one grid dimension that varies: each config a dot, mean a line."""
    fig, (ax,) = new_figure(3.4)
    levels = _ordered(pd.Index(table[dim].dropna().unique()))
    position = {v: k for k, v in enumerate(levels)}
    x = table[dim].map(position)
    ax.scatter(x, table[value], s=18, alpha=0.7)
    means = table.groupby(dim)[value].mean().reindex(levels)
    ax.plot(range(len(levels)), means.to_numpy(), color="C3", lw=1.2, label="mean")
    ax.set_xticks(range(len(levels)), [_tick(v) for v in levels])
    ax.set_xlabel(dim)
    ax.set_ylabel(value)
    ax.set_title(f"{value} by {dim} (dots: configs, line: mean)")
    ax.grid(True, alpha=0.3)
    return fig


def turnover_vs_sharpe(
    table: pd.DataFrame, highlight: Sequence[str] = (), labels: Mapping[str, str] | None = None
) -> Figure:
    """Average turnover per bar against Sharpe, one dot per config; top configs marked."""
    fig, (ax,) = new_figure(4.0)
    chosen = table["name"].isin(list(highlight))
    ax.scatter(table.loc[~chosen, "avg_turnover"], table.loc[~chosen, "sharpe"], s=16,
               alpha=0.6, color="C0", label="configs")
    ax.scatter(table.loc[chosen, "avg_turnover"], table.loc[chosen, "sharpe"], s=40,
               color="C3", label="top configs")
    for _, row in table.loc[chosen].iterrows():
        text = (labels or {}).get(row["name"], row["name"]).split(" ")[0]
        ax.annotate(text, (row["avg_turnover"], row["sharpe"]), fontsize="small",
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("average turnover per bar")
    ax.set_ylabel("Sharpe (annualised)")
    ax.set_title("Turnover vs Sharpe")
    ax.grid(True, alpha=0.3)
    return fig


def sharpe_distribution(sharpe: pd.Series, expected_max: float | None,
                        n_trials: int | None = None) -> Figure:
    """Histogram of the configs' Sharpe ratios with the luck threshold of the sweep.

    ``expected_max``: the expected best annualised Sharpe of ``n_trials`` (the effective
    number of trials, default the number of configs) unskilled trials, the DSR benchmark
    SR0; a best Sharpe not well above it may be luck.
    """
    fig, (ax,) = new_figure(3.4)
    values = pd.to_numeric(sharpe, errors="coerce").dropna().to_numpy()
    ax.hist(values, bins=max(5, min(40, int(np.sqrt(values.size)) * 2)), color="C0",
            alpha=0.8)
    if expected_max is not None and math.isfinite(expected_max):
        ax.axvline(expected_max, color="C3", ls="--",
                   label=f"expected best of {n_trials or values.size} unskilled trials: "
                         f"{expected_max:.2f}")
    if values.size:
        ax.axvline(values.max(), color="k", lw=1.0, label=f"best: {values.max():.2f}")
    ax.set_xlabel("Sharpe (annualised)")
    ax.set_ylabel("configs")
    ax.set_title("Distribution of Sharpe ratios across the sweep")
    ax.grid(True, alpha=0.3)
    return fig


# ---------------------------------------------------------------------- helpers
def _percent(xmax: float = 1.0):
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax)


def _signed(value: float) -> str:
    """Short signed number for tick labels (no "-0.0"; no decimals from 100 up)."""
    digits = 0 if abs(value) >= 100 else 1
    return f"{round(value, digits) + 0.0:+.{digits}f}"


def _ordered(values: pd.Index) -> list:
    """Grid values in natural order: numerically when they all are numbers."""
    items = list(values)
    try:
        return sorted(items, key=float)
    except (TypeError, ValueError):
        return sorted(items, key=str)


def _tick(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---------------------------------------------------------------------- tear sheet
def gross_net_equity(frames: Mapping[str, pd.DataFrame]) -> Figure:
    """Equity before costs (dashed) and after them (solid), one colour per config.

    Each frame has columns ``gross`` and ``pnl`` (per-bar returns); the gap between the
    two curves is what fees, slippage, impact and funding took.
    """
    fig, (ax,) = new_figure(4.0)
    for colour, (label, frame) in enumerate(frames.items()):
        x = _naive(frame.index)
        ax.plot(x, cum_returns(frame["pnl"].fillna(0.0)), lw=1.2, color=f"C{colour}",
                label=f"{label} (net)")
        ax.plot(x, cum_returns(frame["gross"].fillna(0.0)), lw=1.0, ls="--",
                color=f"C{colour}", label=f"{label} (gross)")
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
    ax.set_title("Equity before costs (dashed) and after them (solid)")
    ax.set_ylabel("equity")
    _time_axis(ax)
    return fig


def rolling_sharpe_volatility(
    pnl: Mapping[str, pd.Series], window: int, window_label: str, periods_per_year: float
) -> Figure:
    """Rolling annualised Sharpe (left) and volatility (right) over ``window`` bars."""
    fig, axes = new_figure(3.6, ncols=2)
    for colour, (label, series) in enumerate(pnl.items()):
        x = _naive(series.index)
        values = series.fillna(0.0).to_numpy(dtype=np.float64)
        axes[0].plot(x, rolling_sharpe(values, window, periods_per_year), lw=1.0,
                     color=f"C{colour}", label=label)
        axes[1].plot(x, rolling_volatility(values, window, periods_per_year), lw=1.0,
                     color=f"C{colour}", label=label)
    axes[0].axhline(0.0, color="0.4", lw=0.8, ls=":")
    axes[0].set_title(f"Rolling Sharpe (annualised, {window_label})")
    axes[1].set_title(f"Rolling volatility (annualised, {window_label})")
    axes[1].yaxis.set_major_formatter(_percent())
    for ax in axes:
        _time_axis(ax)
    return fig


def returns_histogram(pnl: Mapping[str, pd.Series]) -> Figure:
    """Distribution of per-bar net returns (basis points), one outline per config."""
    fig, (ax,) = new_figure(3.4)
    arrays = {k: v.dropna().to_numpy(dtype=np.float64) * 1e4 for k, v in pnl.items()}
    pooled = np.concatenate([a for a in arrays.values() if a.size] or [np.zeros(1)])
    low, high = np.percentile(pooled, [0.5, 99.5])
    if high <= low:
        low, high = low - 1.0, high + 1.0
    bins = list(np.linspace(low, high, 61))
    for colour, (label, values) in enumerate(arrays.items()):
        ax.hist(np.clip(values, low, high), bins=bins, histtype="step", lw=1.2,
                color=f"C{colour}", label=label)
    ax.axvline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_title("Per-bar net returns (outermost 0.5% on each side clipped into the end bins)")
    ax.set_xlabel("basis points per bar")
    ax.set_ylabel("bars")
    ax.grid(True, alpha=0.3)
    return fig


COST_STEPS = ("gross", "fees", "slippage", "impact", "funding")


def cost_waterfalls(breakdowns: Mapping[str, Mapping[str, float]]) -> Figure:
    """Per config: gross -> fees -> slippage -> impact -> funding -> net, as sums of
    per-bar returns (in % of notional).  Costs step down, funding up or down."""
    n = max(1, len(breakdowns))
    ncols = min(n, 5)
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(3.2 * nrows, ncols=ncols, nrows=nrows)
    for ax, (label, parts) in zip(axes, breakdowns.items()):
        steps = [parts["gross"], -parts["fees"], -parts["slippage"], -parts.get("impact", 0.0),
                 parts["funding"]]
        heights = np.array([*steps, sum(steps)]) * 100
        bottoms = np.append(np.concatenate([[0.0], np.cumsum(steps)[:-1]]), 0.0) * 100
        colours = ["C0"] + ["C2" if v >= 0 else "C3" for v in steps[1:]] + ["C1"]
        x = np.arange(len(steps) + 1)
        ax.bar(x, heights, bottom=bottoms, color=colours, width=0.7)
        ends = np.concatenate([bottoms, bottoms + heights])
        low, high = min(0.0, float(ends.min())), max(0.0, float(ends.max()))
        pad = 0.08 * ((high - low) or 1.0)
        ax.set_ylim(low - (pad if low < 0 else 0.0), high + pad)
        ax.axhline(0.0, color="0.4", lw=0.8)
        names = ["gross", "fees", "slip.", "imp.", "fund.", "net"]
        ax.set_xticks(x, [f"{step}\n{_signed(v)}" for step, v in zip(names, heights)],
                      fontsize="x-small")
        ax.set_title(textwrap.fill(label, 24), fontsize="small")
        ax.yaxis.set_major_formatter(_percent(100.0))
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes[len(breakdowns):]:
        ax.set_visible(False)
    fig.suptitle("Cost waterfall: sums of per-bar returns, % of notional")
    return fig


def capacity_curves(curves: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Net Sharpe against the book's capital (log axis), one line per config, with each
    config's capacity marked (docs/semantics.md#capacity)."""
    fig, (ax,) = new_figure(4.0)
    for k, (label, curve) in enumerate(curves.items()):
        sharpe = np.array([np.nan if v is None else v for v in curve["sharpe"]], dtype=float)
        ax.plot(curve["capital"], sharpe, color=f"C{k % 10}", lw=1.4, label=label)
        if curve.get("capacity") is not None:
            ax.axvline(curve["capacity"], color=f"C{k % 10}", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_xlabel("capital (quote currency)")
    ax.set_ylabel("net Sharpe")
    ax.set_title("Sharpe by book size; dashed: capacity (half the zero-impact Sharpe)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small")
    return fig


def monthly_heatmap(table: pd.DataFrame, title: str, percent: bool) -> Figure:
    """Year x month heatmap (``alphadev.analysis.monthly_table``), values written in; a
    single year shows only the months from its first to its last with data."""
    data = table.to_numpy(dtype=np.float64)
    months = np.arange(12)
    filled = np.flatnonzero(np.isfinite(data).any(axis=0))
    if len(table.index) == 1 and filled.size:
        months = months[filled[0]:filled[-1] + 1]
    data = data[:, months]
    fig, (ax,) = new_figure(max(1.6, 0.9 + 0.45 * len(table.index)))
    finite = data[np.isfinite(data)]
    bound = (float(np.max(np.abs(finite))) if finite.size else 0.0) or 1.0
    image = ax.imshow(np.ma.masked_invalid(data), cmap="RdYlGn", vmin=-bound, vmax=bound,
                      aspect="auto")
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
             "Dec"]
    ax.set_xticks(range(len(months)), [names[m] for m in months])
    ax.set_yticks(range(len(table.index)), [str(y) for y in table.index])
    for (row, col), v in np.ndenumerate(data):
        if math.isfinite(v):
            ax.text(col, row, f"{v:+.1%}" if percent else f"{v:+.3f}", ha="center",
                    va="center", fontsize="small")
    fig.colorbar(image, ax=ax, format=_percent() if percent else None, pad=0.01)
    ax.set_title(title)
    return fig


def ic_histogram(ic: Mapping[str, pd.Series]) -> Figure:
    """Distribution of the per-bar rank IC, with each config's mean marked."""
    fig, (ax,) = new_figure(3.4)
    bins = list(np.linspace(-1.0, 1.0, 51))
    for colour, (label, series) in enumerate(ic.items()):
        values = series.dropna().to_numpy(dtype=np.float64)
        ax.hist(values, bins=bins, histtype="step", lw=1.2, color=f"C{colour}", label=label)
        if values.size:
            ax.axvline(values.mean(), color=f"C{colour}", ls="--", lw=1.0)
    ax.axvline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_title("Per-bar rank IC (dashed: mean)")
    ax.set_xlabel("IC")
    ax.set_ylabel("bars")
    ax.grid(True, alpha=0.3)
    return fig


def quantile_cumulative(frame: pd.DataFrame) -> Figure:
    """Cumulative return of each equal-weighted alpha bucket over time (``quantile_k``
    columns of ``factor_sequences.parquet``), lowest alpha blue to highest red."""
    from matplotlib import colormaps

    columns = [c for c in frame.columns if c.startswith("quantile_")]
    fig, (ax,) = new_figure(3.8)
    cmap = colormaps["coolwarm"]
    for k, column in enumerate(columns):
        growth = cum_returns(frame[column].fillna(0.0)) - 1.0
        ax.plot(_naive(frame.index), growth, lw=1.1,
                color=cmap(k / max(1, len(columns) - 1)),
                label=f"quantile {column.removeprefix('quantile_')}")
    ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_title("Cumulative return per alpha quantile (1 = lowest alpha, equal weights, "
                 "no costs)")
    ax.yaxis.set_major_formatter(_percent())
    _time_axis(ax)
    return fig


def rank_autocorrelation(series: Mapping[str, pd.Series], window: pd.Timedelta,
                         window_label: str) -> Figure:
    """Factor rank autocorrelation (lag 1 bar), rolling mean over ``window``."""
    fig, (ax,) = new_figure(3.2)
    draw_lines(ax, {f"{label} (mean {values.mean():.3f})": rolling_mean(values, window)
                    for label, values in series.items()},
               f"Factor rank autocorrelation, lag 1 bar (rolling mean over {window_label})",
               "Spearman")
    return fig


# ---------------------------------------------------------------------- validation
def oos_equity(walk_forward: pd.Series, in_sample: pd.Series, in_sample_label: str,
               boundaries: Sequence[pd.Timestamp]) -> Figure:
    """Equity of the stitched walk-forward selection against the in-sample best config
    over the same bars.

    ``walk_forward``/``in_sample``: per-bar pnl; dotted verticals mark fold starts.
    """
    fig, (ax,) = new_figure(3.8)
    ax.plot(_naive(walk_forward.index), cum_returns(walk_forward.fillna(0.0)), lw=1.3,
            color="C0", label="walk-forward (chosen on the past, out of sample)")
    ax.plot(_naive(in_sample.index), cum_returns(in_sample.fillna(0.0)), lw=1.0, color="C3",
            ls="--", label=f"in-sample best: {in_sample_label}")
    for stamp in _naive(pd.DatetimeIndex(boundaries)):
        ax.axvline(stamp, color="0.6", lw=0.6, ls=":")
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.set_title("Out-of-sample equity of the walk-forward choice vs the in-sample choice")
    ax.set_ylabel("equity")
    _time_axis(ax)
    return fig


def lambda_histogram(lambdas: Sequence[float], pbo: float | None) -> Figure:
    """Logits of the in-sample winner's out-of-sample rank; PBO = share at or below 0."""
    fig, (ax,) = new_figure(3.2)
    values = np.asarray([v for v in lambdas if v is not None], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size:
        ax.hist(values, bins=max(5, min(40, int(np.sqrt(values.size)) * 2)), color="C0",
                alpha=0.8)
    ax.axvline(0.0, color="C3", ls="--", lw=1.2, label="logit 0 (median rank)")
    pbo_text = f"{pbo:.1%}" if pbo is not None and math.isfinite(pbo) else "n/a"
    ax.set_title(f"Logit of the out-of-sample rank of the in-sample best (PBO = {pbo_text})")
    ax.set_xlabel("\u03bb = ln(\u03c9 / (1 - \u03c9))  (< 0: below the median out of sample)")
    ax.set_ylabel("combinations")
    ax.grid(True, alpha=0.3)
    return fig


def degradation_scatter(in_sample: Sequence[float], out_of_sample: Sequence[float],
                        slope: float | None, intercept: float | None) -> Figure:
    """In-sample vs out-of-sample Sharpe (per bar) of each combination's winner, with
    the least-squares line of ``pbo.json``."""
    fig, (ax,) = new_figure(3.6)
    x = np.asarray(in_sample, dtype=np.float64)
    y = np.asarray(out_of_sample, dtype=np.float64)
    if x.size == y.size:
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
    else:
        x = y = np.zeros(0)
    if x.size:
        ax.scatter(x, y, s=12, alpha=0.6, color="C0", label="combinations")
        span = np.array([np.nanmin(x), np.nanmax(x)])
    else:
        span = np.array([0.0, 1.0])
    if slope is not None and intercept is not None:
        ax.plot(span, intercept + slope * span, color="C3", lw=1.2,
                label=f"fit: OOS = {intercept:.3g} + {slope:.3g} x IS")
    ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_title("Performance degradation: in-sample vs out-of-sample Sharpe of the winner")
    ax.set_xlabel("in-sample Sharpe (per bar)")
    ax.set_ylabel("out-of-sample Sharpe (per bar)")
    ax.grid(True, alpha=0.3)
    return fig


def search_history(trials: pd.DataFrame, metric: str, direction: str) -> Figure:
    """A search's in-sample objective by trial, the best so far, and the held-out
    objective of the trial that was best so far (what the choice would have earned on
    data the sampler never saw)."""
    fig, (ax,) = new_figure(3.6)
    inside = pd.to_numeric(trials[f"in_sample_{metric}"], errors="coerce").to_numpy()
    outside = pd.to_numeric(trials[f"held_out_{metric}"], errors="coerce").to_numpy()
    number = trials["trial"].to_numpy()
    sign = 1.0 if direction == "maximize" else -1.0
    scored = np.where(np.isfinite(inside), sign * inside, -np.inf)
    best_at = np.empty(len(scored), dtype=np.int64)  # the first best trial so far
    current, best = -1, -np.inf
    for k, value in enumerate(scored):
        if value > best:
            current, best = k, value
        best_at[k] = current
    defined = np.isfinite(inside)
    ax.plot(number[defined], inside[defined], "o", ms=3.5, color="0.55",
            label=f"trial (in-sample {metric})")
    running = best_at >= 0
    ax.step(number[running], inside[best_at][running], where="post", color="C0", lw=1.6,
            label="best so far (in-sample)")
    ax.step(number[running], outside[best_at][running], where="post", color="C3", lw=1.2,
            ls="--", label="that trial held out (never shown to the sampler)")
    ax.set_title(f"Objective by trial: {metric} ({direction})")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    return fig


def parameter_importances(importances: Mapping[str, float]) -> Figure:
    """Optuna's parameter importances (they sum to 1), largest on top."""
    ranked = sorted(importances.items(), key=lambda kv: kv[1])
    fig, (ax,) = new_figure(max(1.6, 0.45 * len(ranked) + 1.0))
    ax.barh([k for k, _ in ranked], [v for _, v in ranked], color="C0", alpha=0.85)
    ax.set_xlim(0, 1)
    ax.set_title("Parameter importances (Optuna, PED-ANOVA)")
    ax.set_xlabel("share of the objective's variation")
    ax.grid(True, axis="x", alpha=0.3)
    return fig
