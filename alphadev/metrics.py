"""Performance metrics over a per-bar net return sequence (docs/semantics.md#metrics).

Empyrical style: one small pure function per metric, numpy only.  Every function takes
a 1-D array ``pnl`` of per-bar net returns (assumed finite) and returns a Python
``float`` or ``None``; ``None`` means undefined and is what ``metrics.json`` stores as
``null``.  No function returns NaN or inf: results that overflow are also ``None``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypedDict, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "STD_ZERO_RTOL",
    "annualized_return",
    "annualized_volatility",
    "calmar_ratio",
    "compute_metrics",
    "CostBreakdown",
    "Metrics",
    "ReturnMetrics",
    "cum_returns",
    "cumulative_return",
    "drawdown",
    "DrawdownPeriod",
    "drawdown_periods",
    "finite_or_none",
    "hit_rate",
    "ic_metrics",
    "is_fragile",
    "json_safe",
    "max_drawdown",
    "num_periods",
    "periods_per_year",
    "return_metrics",
    "rolling_sharpe",
    "rolling_volatility",
    "sample_std",
    "sharpe_ratio",
    "sortino_ratio",
]

NS_PER_DAY = 86_400 * 10**9
DAYS_PER_YEAR = 365  # 24/7 markets

STD_ZERO_RTOL = 1e-12
"""A standard deviation <= STD_ZERO_RTOL * max|x| counts as zero.

For constant data the computed std is rounding noise of a few ulps of the value
(~1e-16 relative), not exactly 0; real spread that small is indistinguishable from
rounding.  Scaling by max|x| (not |mean|) keeps zero-mean data such as [1, -1] safe.
"""


def finite_or_none(x: float | np.floating | np.integer | int | None) -> float | None:
    """``float(x)``, or None when x is None, NaN or +-inf."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def json_safe(obj: Any) -> Any:
    """Recursively convert to plain JSON types, mapping NaN/inf to None.

    dicts keep their keys; lists, tuples and arrays become lists; numpy scalars become
    Python scalars (ints stay ints, bools stay bools).  Anything else is returned as is.
    """
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return finite_or_none(obj)
    return obj


_F = TypeVar("_F", bound=Callable[..., Any])


def _quiet(func: _F) -> _F:
    """Silence numpy overflow/invalid warnings: such results are mapped to None anyway."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(over="ignore", invalid="ignore"):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _as_1d(pnl: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(pnl, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    return arr


def sample_std(x: npt.NDArray[np.float64]) -> float | None:
    """std(x, ddof=1), snapped to 0.0 below the rounding tolerance; None if len < 2.

    The one place the near-zero rule (``STD_ZERO_RTOL``) is applied.
    """
    if x.size < 2:
        return None
    std = float(np.std(x, ddof=1))
    if std <= STD_ZERO_RTOL * float(np.max(np.abs(x))):
        return 0.0
    return finite_or_none(std)


def cum_returns(pnl: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Equity after each bar from 1: cumprod(1 + pnl)."""
    return np.cumprod(1.0 + _as_1d(pnl), dtype=np.float64)


def drawdown(equity: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """equity / peak - 1 per bar, the peak being the running maximum and at least the
    initial equity 1 (so a loss on the first bar counts)."""
    values = np.asarray(equity, dtype=np.float64)
    return values / np.maximum(np.maximum.accumulate(values), 1.0) - 1.0


def _growth(x: npt.NDArray[np.float64]) -> float:
    """Final equity from 1: prod(1 + pnl)."""
    return float(np.prod(1.0 + x))


def num_periods(pnl: npt.ArrayLike) -> int:
    """Number of bars in the sequence."""
    return int(_as_1d(pnl).size)


def periods_per_year(frequency_ns: int) -> float:
    """Bars per year for a bar length in ns: 365 * (86400e9 / frequency_ns)."""
    if frequency_ns <= 0:
        raise ValueError(f"frequency_ns must be positive, got {frequency_ns}")
    return DAYS_PER_YEAR * (NS_PER_DAY / frequency_ns)


@_quiet
def cumulative_return(pnl: npt.ArrayLike) -> float | None:
    """prod(1 + pnl) - 1; 0.0 for no bars, None on overflow."""
    return finite_or_none(_growth(_as_1d(pnl)) - 1.0)


@_quiet
def annualized_return(pnl: npt.ArrayLike, periods_per_year: float) -> float | None:
    """(1 + cumulative) ** (periods_per_year / num_periods) - 1.

    None for no bars, for 1 + cumulative < 0 (no real root) and on overflow;
    -1.0 when equity ends at exactly 0.  1 + cumulative is taken as prod(1 + pnl)
    directly so tiny final equity does not cancel to 0.
    """
    x = _as_1d(pnl)
    if x.size == 0:
        return None
    growth = _growth(x)
    if not math.isfinite(growth) or growth < 0.0:
        return None
    if growth == 0.0:
        return -1.0
    try:
        return finite_or_none(growth ** (periods_per_year / x.size) - 1.0)
    except OverflowError:
        return None


@_quiet
def annualized_volatility(pnl: npt.ArrayLike, periods_per_year: float) -> float | None:
    """std(pnl, ddof=1) * sqrt(periods_per_year); None with fewer than 2 bars."""
    std = sample_std(_as_1d(pnl))
    return None if std is None else finite_or_none(std * math.sqrt(periods_per_year))


@_quiet
def sharpe_ratio(pnl: npt.ArrayLike, periods_per_year: float) -> float | None:
    """mean(pnl) / std(pnl, ddof=1) * sqrt(periods_per_year).

    None with fewer than 2 bars or when std is zero (see STD_ZERO_RTOL), so constant
    pnl is undefined rather than +-inf or a huge ratio of rounding noise.
    """
    x = _as_1d(pnl)
    std = sample_std(x)
    if not std:
        return None
    return finite_or_none(float(np.mean(x)) / std * math.sqrt(periods_per_year))


@_quiet
def sortino_ratio(pnl: npt.ArrayLike, periods_per_year: float) -> float | None:
    """mean(pnl) / sqrt(mean(min(pnl, 0) ** 2)) * sqrt(periods_per_year).

    The mean of squares runs over all bars, as in empyrical.  None for no bars or when
    the downside deviation is 0 (no losing bars).
    """
    x = _as_1d(pnl)
    if x.size == 0:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(x, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return finite_or_none(float(np.mean(x)) / downside * math.sqrt(periods_per_year))


@_quiet
def max_drawdown(pnl: npt.ArrayLike) -> float | None:
    """min(equity / peak - 1) with equity = cumprod(1 + pnl), peak = max(1, running max).

    The peak starts at the initial equity 1, so a loss on the first bar counts.
    Returns a number <= 0; 0.0 for no bars; None on overflow.
    """
    x = _as_1d(pnl)
    if x.size == 0:
        return 0.0
    deepest = float(np.min(drawdown(cum_returns(x))))
    return finite_or_none(min(deepest, 0.0))


@_quiet
def calmar_ratio(pnl: npt.ArrayLike, periods_per_year: float) -> float | None:
    """annualized_return / |max_drawdown|; None when either is undefined or mdd is 0."""
    x = _as_1d(pnl)
    ann = annualized_return(x, periods_per_year)
    mdd = max_drawdown(x)
    if ann is None or not mdd:
        return None
    return finite_or_none(ann / abs(mdd))


def hit_rate(pnl: npt.ArrayLike) -> float | None:
    """count(pnl > 0) / count(pnl != 0); None when every bar is flat (or no bars)."""
    x = _as_1d(pnl)
    active = int(np.count_nonzero(x))
    if active == 0:
        return None
    return int(np.count_nonzero(x > 0.0)) / active


class ReturnMetrics(TypedDict):
    """The return metrics of one pnl sequence (``metrics.json``'s ``total``, ``long``,
    ``short``); None where undefined."""

    cumulative_return: float | None
    annualized_return: float | None
    annualized_volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    calmar: float | None
    hit_rate: float | None
    num_periods: int


class _CostBreakdownAlways(TypedDict):
    gross: float | None
    fees: float | None
    slippage: float | None
    funding: float | None


class CostBreakdown(_CostBreakdownAlways, total=False):
    """Sums of the per-bar returns: what ate the gross return (funding: + received);
    ``impact`` is absent from results saved before impact existed."""

    impact: float | None


class ParticipationMetrics(TypedDict):
    """|dw| * capital / bar volume over the trades (docs/semantics.md#market-impact)."""

    mean: float | None
    max: float | None
    trades: int  # trades at bars with a positive volume
    trades_without_volume: int


class ICMetrics(TypedDict):
    """The rank IC's summary (``ic_metrics``)."""

    ic_mean: float | None
    ic_std: float | None
    ic_ir: float | None
    ic_count: int


class _MetricsAlways(ICMetrics):
    total: ReturnMetrics
    long: ReturnMetrics
    short: ReturnMetrics
    avg_turnover: float | None
    total_fees: float | None
    frequency: str
    periods_per_year: float


class Metrics(_MetricsAlways, total=False):
    """``metrics.json`` (docs/semantics.md#metrics) as it passes between modules; the
    keys of this class are absent from results saved before they existed."""

    total_slippage: float | None
    total_funding: float | None
    sharpe_next_bar: float | None
    total_return_next_bar: float | None
    cost_breakdown: CostBreakdown
    total_impact: float | None
    participation: ParticipationMetrics  # with volume_loader only
    capacity: float | None  # with volume_loader only (docs/semantics.md#capacity)
    capacity_curve: Any  # alphadev.capacity.CapacityCurve, or None for a ruined book


@_quiet
def return_metrics(pnl: npt.ArrayLike, periods_per_year: float) -> ReturnMetrics:
    """All return metrics of one pnl sequence, keyed as in metrics.json."""
    x = _as_1d(pnl)
    return {
        "cumulative_return": cumulative_return(x),
        "annualized_return": annualized_return(x, periods_per_year),
        "annualized_volatility": annualized_volatility(x, periods_per_year),
        "sharpe": sharpe_ratio(x, periods_per_year),
        "sortino": sortino_ratio(x, periods_per_year),
        "max_drawdown": max_drawdown(x),
        "calmar": calmar_ratio(x, periods_per_year),
        "hit_rate": hit_rate(x),
        "num_periods": num_periods(x),
    }


@_quiet
def ic_metrics(ic: npt.ArrayLike) -> ICMetrics:
    """ic_mean, ic_std (ddof=1), ic_ir = ic_mean / ic_std and ic_count.

    Computed over the finite entries only (NaN marks a bar with no IC).  ic_mean is
    None with no entries, ic_std with fewer than 2, ic_ir also when ic_std is zero.
    """
    x = _as_1d(ic)
    x = x[np.isfinite(x)]
    mean = finite_or_none(np.mean(x)) if x.size else None
    std = sample_std(x)
    ir = mean / std if mean is not None and std else None
    return {
        "ic_mean": mean,
        "ic_std": std,
        "ic_ir": finite_or_none(ir),
        "ic_count": int(x.size),
    }


def compute_metrics(
    returns: Any, frequency_ns: int, frequency: str, pnl_next_bar: npt.ArrayLike
) -> Metrics:
    """The full metrics dict (docs/semantics.md#metrics) from a result's returns frame.

    ``pnl_next_bar`` is the net return per bar of the same book traded one bar later
    (docs/semantics.md#next-bar).
    """
    ppy = periods_per_year(frequency_ns)
    later = _as_1d(pnl_next_bar)
    turnover = np.asarray(returns["turnover"], dtype=np.float64)
    sums = {name: finite_or_none(np.asarray(returns[name], dtype=np.float64).sum())
            for name in ("gross", "fees", "slippage", "funding", "impact")}
    totals = CostBreakdown(gross=sums["gross"], fees=sums["fees"], slippage=sums["slippage"],
                           funding=sums["funding"], impact=sums["impact"])
    return {
        "total": return_metrics(returns["pnl"].to_numpy(), ppy),
        "long": return_metrics(returns["long_return"].to_numpy(), ppy),
        "short": return_metrics(returns["short_return"].to_numpy(), ppy),
        **ic_metrics(returns["ic"].to_numpy()),
        "avg_turnover": finite_or_none(turnover.mean()) if turnover.size else None,
        "total_fees": totals["fees"],
        "total_slippage": totals["slippage"],
        "total_funding": totals["funding"],
        "total_impact": totals["impact"],
        "sharpe_next_bar": sharpe_ratio(later, ppy),
        "total_return_next_bar": cumulative_return(later),
        # What ate the gross return: sums of per-bar returns (funding: + received).
        "cost_breakdown": totals,
        "frequency": frequency,
        "periods_per_year": ppy,
    }


FRAGILE_RATIO = 0.5
"""A Sharpe that falls below this share of itself one bar later marks a fragile edge."""


def is_fragile(sharpe: float | None, sharpe_next_bar: float | None) -> bool:
    """True when a positive Sharpe falls by more than half (or changes sign) one bar later.

    ``sharpe_next_bar`` is the Sharpe of the same config traded with ``execution_delay
    + 1`` (docs/semantics.md#next-bar).  Undefined (None or NaN) values are never
    flagged, nor is a Sharpe <= 0: there is no edge to lose.
    """
    if sharpe is None or sharpe_next_bar is None:
        return False
    if not (math.isfinite(sharpe) and math.isfinite(sharpe_next_bar)) or sharpe <= 0:
        return False
    return sharpe_next_bar < FRAGILE_RATIO * sharpe


SHORT_SAMPLE_DAYS = 60.0
"""Annualised figures of a sample shorter than this many days are marked as short."""


def sample_days(num_periods: float | None, periods_per_year: float | None) -> float | None:
    """Length of a sample in days as annualisation sees it, ``365 * n / periods_per_year``
    (None when either is unknown)."""
    if num_periods is None or not periods_per_year:
        return None
    days = DAYS_PER_YEAR * float(num_periods) / float(periods_per_year)
    return days if math.isfinite(days) else None


def is_short_sample(num_periods: float | None, periods_per_year: float | None) -> bool:
    """True when the sample spans fewer than ``SHORT_SAMPLE_DAYS`` days: its annualised
    return and Calmar extrapolate weeks to a year."""
    days = sample_days(num_periods, periods_per_year)
    return days is not None and days < SHORT_SAMPLE_DAYS


# ---------------------------------------------------------------------- tear-sheet series
class DrawdownPeriod(NamedTuple):
    """One drawdown of an equity curve, as bar positions into the pnl sequence.

    ``peak``: last bar at the running peak before the fall (-1 = the initial equity,
    before bar 0); ``trough``: the lowest bar; ``recovery``: the first bar back at the
    peak, or None while still under water; ``depth``: trough equity / peak - 1 (< 0).
    """

    peak: int
    trough: int
    recovery: int | None
    depth: float


def drawdown_periods(pnl: npt.ArrayLike, top: int = 5) -> list[DrawdownPeriod]:
    """The ``top`` deepest non-overlapping drawdowns of cum_returns(pnl), deepest first.

    Each episode runs from a running peak until equity is back at that peak (the
    quantstats/pyfolio convention), so episodes never overlap.
    """
    equity = cum_returns(pnl)
    under = drawdown(equity)
    periods: list[DrawdownPeriod] = []
    peak, k, n = -1, 0, equity.size
    while k < n:
        if under[k] >= 0.0:
            peak, k = k, k + 1
            continue
        start = k
        while k < n and under[k] < 0.0:
            k += 1
        trough = start + int(np.argmin(under[start:k]))
        periods.append(DrawdownPeriod(peak, trough, k if k < n else None, float(under[trough])))
    periods.sort(key=lambda p: (p.depth, p.peak))
    return periods[:top]


def rolling_sharpe(pnl: npt.ArrayLike, window: int, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe over the trailing ``window`` bars; NaN before a full window
    and where the window's std is zero (``sample_std``'s rule)."""
    x = _as_1d(pnl)
    out = np.full(x.size, np.nan)
    if window < 2 or x.size < window:
        return out
    views = np.lib.stride_tricks.sliding_window_view(x, window)
    mean = views.mean(axis=1)
    std = views.std(axis=1, ddof=1)
    ok = std > STD_ZERO_RTOL * np.abs(views).max(axis=1)
    values = np.full(mean.size, np.nan)
    values[ok] = mean[ok] / std[ok] * math.sqrt(periods_per_year)
    out[window - 1:] = values
    return out


def rolling_volatility(pnl: npt.ArrayLike, window: int, periods_per_year: float) -> np.ndarray:
    """Annualised volatility (std ddof=1) over the trailing ``window`` bars; NaN before
    a full window."""
    x = _as_1d(pnl)
    out = np.full(x.size, np.nan)
    if window < 2 or x.size < window:
        return out
    views = np.lib.stride_tricks.sliding_window_view(x, window)
    out[window - 1:] = views.std(axis=1, ddof=1) * math.sqrt(periods_per_year)
    return out


# ---------------------------------------------------------------------- tails and benchmark
def value_at_risk(pnl: npt.ArrayLike, level: float = 0.05) -> float | None:
    """Historical value at risk: the ``level`` quantile of the per-bar returns
    (linear interpolation between order statistics; a loss is negative)."""
    x = _as_1d(pnl)
    x = x[np.isfinite(x)]
    return float(np.quantile(x, level)) if x.size else None


def conditional_value_at_risk(pnl: npt.ArrayLike, level: float = 0.05) -> float | None:
    """Expected shortfall: the mean of the per-bar returns at or below ``value_at_risk``."""
    x = _as_1d(pnl)
    x = x[np.isfinite(x)]
    var = value_at_risk(x, level)
    return None if var is None else float(x[x <= var].mean())


def tail_ratio(pnl: npt.ArrayLike) -> float | None:
    """``|95th percentile| / |5th percentile|`` of the per-bar returns: above 1, the
    right tail is fatter than the left."""
    x = _as_1d(pnl)
    x = x[np.isfinite(x)]
    if not x.size:
        return None
    low, high = np.quantile(x, [0.05, 0.95])
    return finite_or_none(abs(high) / abs(low)) if low != 0 else None


def _paired(pnl: npt.ArrayLike, benchmark: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, b = _as_1d(pnl), _as_1d(benchmark)
    both = np.isfinite(x) & np.isfinite(b)
    return x[both], b[both]


def beta(pnl: npt.ArrayLike, benchmark: npt.ArrayLike) -> float | None:
    """``cov(r, b) / var(b)`` (ddof 1) over the bars where both returns exist."""
    x, b = _paired(pnl, benchmark)
    if x.size < 2:
        return None
    var = float(np.var(b, ddof=1))
    return finite_or_none(float(np.cov(x, b, ddof=1)[0, 1]) / var) if var > 0 else None


def rolling_beta(pnl: npt.ArrayLike, benchmark: npt.ArrayLike, window: int) -> np.ndarray:
    """``beta`` over the trailing ``window`` bars (missing returns as 0); NaN before a
    full window and where the benchmark does not move."""
    x = np.nan_to_num(_as_1d(pnl))
    b = np.nan_to_num(_as_1d(benchmark))
    out = np.full(x.size, np.nan)
    if window < 2 or x.size < window:
        return out
    xs = np.lib.stride_tricks.sliding_window_view(x, window)
    bs = np.lib.stride_tricks.sliding_window_view(b, window)
    dx, db = xs - xs.mean(axis=1, keepdims=True), bs - bs.mean(axis=1, keepdims=True)
    var = (db * db).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[window - 1:] = np.where(var > 0, (dx * db).sum(axis=1) / var, np.nan)
    return out


def information_ratio(pnl: npt.ArrayLike, benchmark: npt.ArrayLike,
                      periods_per_year: float) -> float | None:
    """Annualised Sharpe of the active return ``r - b`` (ddof 1)."""
    x, b = _paired(pnl, benchmark)
    return sharpe_ratio(x - b, periods_per_year)
