"""Figures of the sweep report: one function per figure, each returning a Figure.

matplotlib is imported inside the functions (it is the optional ``report`` extra and
``import alphadev`` must not load it).  Figures are built with the object-oriented
API on an explicit Agg canvas, never through pyplot, so no global backend is switched
and nothing is shown on screen.  ``to_png`` renders a figure to PNG bytes.

Series passed in are keyed by a short display label, in the order they should be
drawn (the report passes the top-K configs best first).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from alphadev.metrics import drawdown

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


def _legend(ax: Axes, n_items: int) -> None:
    if n_items:
        ax.legend(fontsize="small", loc="best", frameon=False, ncols=1 if n_items <= 6 else 2)


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
def equity_curves(equity: Mapping[str, pd.Series]) -> Figure:
    """Equity (net of fees, starting at 1) of each config over time."""
    fig, (ax,) = new_figure(4.2)
    for label, series in equity.items():
        ax.plot(_naive(series.index), series.to_numpy(), lw=1.2, label=label)
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
    ax.set_title("Equity curves (net of fees)")
    ax.set_ylabel("equity")
    _time_axis(ax)
    _legend(ax, len(equity))
    return fig


def drawdown_curves(equity: Mapping[str, pd.Series]) -> Figure:
    """Drawdown ``equity / running peak - 1`` (peak starting at 1) of each config."""
    fig, (ax,) = new_figure(3.4)
    for label, series in equity.items():
        ax.plot(_naive(series.index), drawdown(series.to_numpy(dtype=np.float64)), lw=1.0,
                label=label)
    ax.set_title("Drawdown")
    ax.set_ylabel("equity / peak - 1")
    ax.yaxis.set_major_formatter(_percent())
    _time_axis(ax)
    _legend(ax, len(equity))
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
    _legend(axes[0], len(legs))
    return fig


def rolling_ic(ic: Mapping[str, pd.Series], window: pd.Timedelta, window_label: str) -> Figure:
    """Rolling mean of the per-bar rank IC over a time ``window`` (bars without IC skipped).

    A point is drawn once the window holds at least half as many ICs as it has bars,
    so the curve does not start with a mean of one or two bars.
    """
    fig, (ax,) = new_figure(3.6)
    for label, series in ic.items():
        series = series.astype(np.float64)
        step = pd.Series(series.index).diff().median() if len(series) > 1 else window
        bars = max(1, int(window / step)) if step and step > pd.Timedelta(0) else 1
        rolled = series.rolling(window, min_periods=max(1, bars // 2)).mean()
        ax.plot(_naive(rolled.index), rolled.to_numpy(), lw=1.0, label=label)
    ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_title(f"Rolling rank IC (mean over {window_label})")
    ax.set_ylabel("IC")
    _time_axis(ax)
    _legend(ax, len(ic))
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
    _legend(ax, len(decay))
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
    _legend(ax, len(returns))
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
    fig.colorbar(image, ax=ax, label=f"{value} (mean over other dimensions)")
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
    ax.set_title(f"{value} by {dim}")
    ax.grid(True, alpha=0.3)
    _legend(ax, 1)
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
    _legend(ax, 2)
    return fig


def sharpe_distribution(sharpe: pd.Series, expected_max: float | None) -> Figure:
    """Histogram of the configs' Sharpe ratios with the luck threshold of the sweep.

    ``expected_max``: the expected best annualised Sharpe of as many unskilled configs
    (the DSR benchmark SR0); a best Sharpe not well above it may be luck.
    """
    fig, (ax,) = new_figure(3.4)
    values = pd.to_numeric(sharpe, errors="coerce").dropna().to_numpy()
    ax.hist(values, bins=max(5, min(40, int(np.sqrt(values.size)) * 2)), color="C0",
            alpha=0.8)
    if expected_max is not None and math.isfinite(expected_max):
        ax.axvline(expected_max, color="C3", ls="--",
                   label=f"expected best of {values.size} unskilled: {expected_max:.2f}")
    if values.size:
        ax.axvline(values.max(), color="k", lw=1.0, label=f"best: {values.max():.2f}")
    ax.set_xlabel("Sharpe (annualised)")
    ax.set_ylabel("configs")
    ax.set_title("Distribution of Sharpe ratios across the sweep")
    ax.grid(True, alpha=0.3)
    _legend(ax, 2)
    return fig


# ---------------------------------------------------------------------- helpers
def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0)


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
