"""Walk-forward selection: choose on each train window, keep the choice's test window.

Arrays only (bars x configs ``pnl`` on the union grid, NaN where a config has no bar,
which counts as a return of 0; int64 nanosecond timestamps).  Configs are columns in
name order, so "ties by name" is "ties to the lower column".  Metrics are the §5
functions of ``alphadev.metrics`` on each window's pnl (docs/semantics.md#walk-forward).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from alphadev import metrics as m
from alphadev.validation import ParameterError

__all__ = ["SELECTION_METRICS", "WalkForward", "best_in_window", "fold_bounds", "walk_forward"]

SELECTION_METRICS: dict[str, Callable[[npt.NDArray[np.float64], float], float | None]] = {
    "sharpe": m.sharpe_ratio,
    "sortino": m.sortino_ratio,
    "calmar": m.calmar_ratio,
    "annualized_return": m.annualized_return,
    "cumulative_return": lambda x, ppy: m.cumulative_return(x),
    "max_drawdown": lambda x, ppy: m.max_drawdown(x),
    "hit_rate": lambda x, ppy: m.hit_rate(x),
}
"""§5 metrics a config can be chosen by (higher is better for each of them)."""


class WalkForward(NamedTuple):
    """Folds (one entry per fold) and the stitched out-of-sample series.

    ``bounds[k]`` = (train_start, train_end, test_start, test_end) in ns, ends
    exclusive; metrics are NaN where undefined; ``bars`` index the union grid and
    ``bar_config`` names the chosen column on each of them.
    """

    bounds: npt.NDArray[np.int64]
    chosen: npt.NDArray[np.int64]
    train_metric: npt.NDArray[np.float64]
    test_metric: npt.NDArray[np.float64]
    best_test_metric: npt.NDArray[np.float64]
    bars: npt.NDArray[np.int64]
    bar_config: npt.NDArray[np.int64]
    pnl: npt.NDArray[np.float64]


def check_metric(metric: str) -> str:
    """``metric`` if it is a selection metric, else one clear error listing them."""
    if metric not in SELECTION_METRICS:
        raise ParameterError(
            f"metric={metric!r} is not a selection metric; choose one of "
            f"{', '.join(SELECTION_METRICS)}"
        )
    return metric


def fold_bounds(
    timestamps: npt.NDArray[np.int64], train: int, test: int, anchored: bool
) -> npt.NDArray[np.int64]:
    """(train_start, train_end, test_start, test_end) per fold, from the first bar.

    ``e_0 = first + train``, ``e_{k+1} = e_k + test``, ``s_k = e_k - train`` (or the
    first bar when anchored); folds continue while the test window [e_k, e_k + test)
    holds at least one bar, so a gap in the data longer than ``test`` ends them.
    """
    if train <= 0 or test <= 0:
        raise ParameterError(f"train={train} and test={test} (ns) must be positive spans")
    ts = np.asarray(timestamps, dtype=np.int64)
    rows = []
    if ts.size:
        first = int(ts[0])
        end = first + train
        while True:
            lo = np.searchsorted(ts, end, side="left")
            hi = np.searchsorted(ts, end + test, side="left")
            if hi <= lo:
                break
            rows.append((first if anchored else end - train, end, end, end + test))
            end += test
    return np.array(rows, dtype=np.int64).reshape(len(rows), 4)


def _score(value: float | None) -> float:
    return np.nan if value is None else float(value)


SCREEN_TOLERANCE = 1e-9
"""Relative gap below the best §5 value beyond which a screened config cannot win."""


def _screen(
    metric: str, window: npt.NDArray[np.float64], ppy: float
) -> npt.NDArray[np.float64] | None:
    """An estimate of every config's metric on one window, for ordering only.

    For ``sharpe`` a vectorised mean / std (-inf where undefined); the §5 function
    decides every value that is reported or compared (``best_in_window``).  Other
    metrics have no estimate (None): every config is scored.
    """
    if metric != "sharpe" or window.shape[1] < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = window.mean(axis=1) / window.std(axis=1, ddof=1) * np.sqrt(ppy)
    return np.where(np.isfinite(estimate), estimate, -np.inf)


def best_in_window(
    metric: str, window: npt.NDArray[np.float64], ppy: float
) -> tuple[int, float]:
    """(config, §5 value) with the highest metric on ``window`` (configs x bars, no
    NaN); undefined counts as
    lowest, ties to the lower index; (0, NaN) when every value is undefined.

    Configs are scored with the §5 function in the order of the screen and scoring
    stops once the screen falls clearly below the best value found, so with the Sharpe
    screen only a handful of configs per window are scored.
    """
    score = SELECTION_METRICS[metric]
    screen = _screen(metric, window, ppy)
    order = range(window.shape[0]) if screen is None else np.argsort(-screen, kind="stable")
    best, best_value = 0, np.nan
    for i in order:
        if screen is not None and not np.isnan(best_value):
            if screen[i] < best_value - SCREEN_TOLERANCE * max(1.0, abs(best_value)):
                break
        value = _score(score(window[i], ppy))
        if np.isnan(value):
            continue
        if np.isnan(best_value) or value > best_value or (value == best_value and i < best):
            best, best_value = int(i), value
    return best, best_value


def walk_forward(
    timestamps: npt.NDArray[np.int64],
    pnl: npt.NDArray[np.float64],
    train: int,
    test: int,
    anchored: bool = False,
    metric: str = "sharpe",
    periods_per_year: float = 8760.0,
) -> WalkForward:
    """Choose the best config by ``metric`` on each train window; stitch its test pnl."""
    score = SELECTION_METRICS[check_metric(metric)]
    ts = np.asarray(timestamps, dtype=np.int64)
    by_config = np.ascontiguousarray(np.nan_to_num(np.asarray(pnl, dtype=np.float64).T))
    bounds = fold_bounds(ts, train, test, anchored)
    n_folds = len(bounds)
    chosen = np.zeros(n_folds, dtype=np.int64)
    train_metric = np.full(n_folds, np.nan)
    test_metric = np.full(n_folds, np.nan)
    best_test = np.full(n_folds, np.nan)
    bars, bar_config = [], []
    for k, (s, e, _, t_end) in enumerate(bounds):
        a, b, c = np.searchsorted(ts, (s, e, t_end), side="left")
        pick, train_metric[k] = best_in_window(metric, by_config[:, a:b], periods_per_year)
        chosen[k] = pick
        test_metric[k] = _score(score(by_config[pick, b:c], periods_per_year))
        best_test[k] = best_in_window(metric, by_config[:, b:c], periods_per_year)[1]
        bars.append(np.arange(b, c, dtype=np.int64))
        bar_config.append(np.full(c - b, pick, dtype=np.int64))
    stitched = np.concatenate(bars) if bars else np.zeros(0, dtype=np.int64)
    configs = np.concatenate(bar_config) if bar_config else np.zeros(0, dtype=np.int64)
    return WalkForward(
        bounds, chosen, train_metric, test_metric, best_test, stitched, configs,
        by_config[configs, stitched] if stitched.size else np.zeros(0),
    )
