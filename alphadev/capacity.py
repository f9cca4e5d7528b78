"""How a book's net return falls with its size (docs/semantics.md#capacity).

The book's weights do not depend on capital and the square-root impact of every trade
scales with sqrt(capital), so one run gives the net return at any size:
y_C[t] = base[t] - sqrt(C) * unit[t], with base the net return before impact and unit
the impact per sqrt(quote).  Pure functions of those two arrays.
"""

from __future__ import annotations

from typing import NamedTuple, TypedDict

import numpy as np
import numpy.typing as npt

from alphadev.metrics import annualized_return, finite_or_none, sharpe_ratio

CAPITAL_GRID = tuple(float(10 ** (4 + j / 4)) for j in range(21))  # 1e4 .. 1e9, 4 a decade
CAPACITY_SHARE = 0.5  # capacity: the net Sharpe still at least this share of zero-impact's
_BISECTIONS = 200


class CapacityCurve(TypedDict):
    """``metrics.json["capacity_curve"]``."""

    capital: list[float]
    sharpe: list[float | None]
    annualized_return: list[float | None]
    zero_impact_sharpe: float | None
    capacity: float | None
    zero_sharpe_capital: float | None
    ruin_capital: float | None


class _Moments(NamedTuple):
    mean_base: float
    mean_unit: float
    var_base: float
    var_unit: float
    cov: float


def net_at_capital(base: npt.ArrayLike, unit: npt.ArrayLike, capital: float) -> np.ndarray:
    """y_C with the ruin rule: the first bar at or below -1 ends at -1, the rest flat."""
    y = np.asarray(base, dtype=np.float64) - np.sqrt(capital) * np.asarray(unit, np.float64)
    ruined = np.flatnonzero(1.0 + y <= 0.0)
    if ruined.size:
        y[ruined[0]] = -1.0
        y[ruined[0] + 1:] = 0.0
    return y


def ruin_capital(base: npt.ArrayLike, unit: npt.ArrayLike) -> float | None:
    """The smallest capital at which a bar's net return reaches -1: min (1 + base) / unit
    over the bars with impact, squared; None when no bar can ruin the book."""
    b = np.asarray(base, dtype=np.float64)
    k = np.asarray(unit, dtype=np.float64)
    paying = k > 0.0
    if not paying.any():
        return None
    return float(np.min((1.0 + b[paying]) / k[paying])) ** 2


def _moments(base: np.ndarray, unit: np.ndarray) -> _Moments:
    both = np.cov(np.vstack([base, unit]), ddof=1)
    return _Moments(float(base.mean()), float(unit.mean()), float(both[0, 0]),
                    float(both[1, 1]), float(both[0, 1]))


def _excess(x: float, m: _Moments, target: float) -> float:
    """mean(y) - target * std(y) at sqrt(capital) = x, without the ruin rule: concave in x."""
    variance = max(m.var_base - 2.0 * x * m.cov + x * x * m.var_unit, 0.0)
    return (m.mean_base - x * m.mean_unit) - target * np.sqrt(variance)


def capacity_curve(
    base: npt.ArrayLike, unit: npt.ArrayLike, periods_per_year: float,
    capitals: tuple[float, ...] = CAPITAL_GRID,
) -> CapacityCurve:
    """Sharpe and annualised return at each of ``capitals``, and three capitals:

    ``capacity``, the largest at which the Sharpe is still ``CAPACITY_SHARE`` of the
    zero-impact Sharpe S0; ``zero_sharpe_capital``, where the mean net return reaches 0;
    ``ruin_capital``, where a bar would lose all equity (both others are capped by it).
    None where undefined: S0 not positive, or no impact paid.
    """
    b = np.asarray(base, dtype=np.float64)
    k = np.asarray(unit, dtype=np.float64)
    curve_sharpe = []
    curve_return = []
    for capital in capitals:
        y = net_at_capital(b, k, capital)
        curve_sharpe.append(sharpe_ratio(y, periods_per_year))
        curve_return.append(annualized_return(y, periods_per_year))
    s0 = sharpe_ratio(b, periods_per_year)
    ruin = ruin_capital(b, k)
    capacity = zero = None
    if s0 is not None and s0 > 0 and b.size >= 2 and np.any(k > 0):
        m = _moments(b, k)
        zero_x = m.mean_base / m.mean_unit
        target = CAPACITY_SHARE * m.mean_base / np.sqrt(m.var_base)
        lo, hi = 0.0, zero_x  # excess(lo) > 0 >= excess(hi); concave: one crossing
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if _excess(mid, m, target) >= 0.0:
                lo = mid
            else:
                hi = mid
        capacity, zero = lo * lo, zero_x * zero_x
        if ruin is not None:
            capacity, zero = min(capacity, ruin), min(zero, ruin)
    return CapacityCurve(
        capital=list(capitals), sharpe=curve_sharpe, annualized_return=curve_return,
        zero_impact_sharpe=s0, capacity=finite_or_none(capacity),
        zero_sharpe_capital=finite_or_none(zero), ruin_capital=finite_or_none(ruin),
    )
