"""Multiple-testing statistics for a sweep: PSR, DSR and the break-even fee.

References: D. H. Bailey and M. López de Prado, "The Sharpe Ratio Efficient Frontier"
(2012) for the probabilistic Sharpe ratio, and "The Deflated Sharpe Ratio: Correcting
for Selection Bias, Backtest Overfitting and Non-Normality" (2014) for the deflated one.

Conventions (all fixed here so numbers are comparable across sweeps):

* Sharpe ratios are **per period** (per bar, not annualised): ``SR = mean / std``
  with ``std`` the sample standard deviation (ddof=1), as in ``metrics.json``'s
  ``sharpe`` divided by ``sqrt(periods_per_year)``.
* ``skew`` is the sample skewness ``m3 / m2**1.5`` and ``kurtosis`` the **non-excess**
  sample kurtosis ``m4 / m2**2`` (3 for a normal distribution), with ``mk`` the
  biased central moments ``mean((x - mean(x))**k)`` (what ``scipy.stats.skew`` and
  ``scipy.stats.kurtosis(fisher=False)`` return by default).
* ``PSR(SR*) = Phi((SR - SR*) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR**2))``
  with T the number of bars.
* ``DSR = PSR(SR0)`` with the expected maximum Sharpe of N unskilled trials
  ``SR0 = sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e)))``, g the
  Euler-Mascheroni constant.  N is the *effective* number of trials: configs whose
  returns are near-duplicates (fee variants of one alpha) form one cluster and count
  once (``alphadev.trials``), and V is the variance (ddof=1) across the
  clusters of their mean per-period Sharpe ratio.  For N = 1 there is no selection and
  SR0 = 0, so DSR equals PSR(0).
* Break-even fee: the fee rate f at which ``prod(1 + gross - f * 2 * turnover) = 1``
  (``2 * turnover = sum |w[t] - w[t-1]|`` is the traded notional, so the saved net
  pnl is this expression at the config's own rate).

Every function returns ``None`` for an undefined value, never NaN or inf.  scipy is
not required: the normal CDF uses ``math.erf`` and its inverse Acklam's rational
approximation refined by one Halley step (relative error ~1e-15).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from alphadev.layout import ResultDir
from alphadev.metrics import finite_or_none, sample_std
from alphadev.trials import MAX_CLUSTERED_CONFIGS, cluster_trials
from alphadev.validation import check_scalar

if TYPE_CHECKING:
    from alphadev.results import BacktestResult

__all__ = [
    "EULER_GAMMA",
    "SWEEP_STATISTICS_COLUMNS",
    "breakeven_fee",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "norm_cdf",
    "norm_ppf",
    "probabilistic_sharpe_ratio",
    "effective_trials",
    "return_moments",
    "selection_benchmark",
    "sweep_statistics",
]

EULER_GAMMA = 0.5772156649015329
SWEEP_STATISTICS_COLUMNS = (
    "name", "psr", "dsr", "sharpe_per_period", "skew", "kurtosis", "breakeven_fee",
    "trial_cluster",
)


# ---------------------------------------------------------------------- normal law
def norm_cdf(x: float) -> float:
    """Standard normal CDF, ``0.5 * (1 + erf(x / sqrt(2)))`` (erfc in the lower tail)."""
    if x < 0:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)
_P_LOW = 0.02425


def norm_ppf(p: float) -> float:
    """Inverse standard normal CDF; ``-inf`` at 0, ``+inf`` at 1, ValueError outside."""
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"norm_ppf: p={p!r} must lie in [0, 1]")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p > 0.5:
        # 1 - p is exact here (Sterbenz), and the lower tail refines with erfc's precision.
        return -norm_ppf(1.0 - p)
    if p < _P_LOW:
        x = _tail(math.sqrt(-2.0 * math.log(p)))
    else:
        q = p - 0.5
        r = q * q
        num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
        den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0
        x = num / den
    # One Halley step on Phi(x) - p brings the 1e-9 approximation to machine precision.
    err = norm_cdf(x) - p
    u = err * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


def _tail(q: float) -> float:
    num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
    den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
    return num / den


# ---------------------------------------------------------------------- moments
def return_moments(pnl: npt.ArrayLike) -> tuple[float | None, float | None, float | None]:
    """``(sharpe_per_period, skew, kurtosis)`` of a return sequence (NaNs dropped).

    Sharpe uses std with ddof=1; skew and non-excess kurtosis use biased central
    moments (module docstring).  All None with fewer than 2 values or zero spread.
    """
    x = np.asarray(pnl, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None, None, None
    std = sample_std(x)
    if not std:
        return None, None, None
    dev = x - x.mean()
    m2 = float(np.mean(dev**2))
    m3 = float(np.mean(dev**3))
    m4 = float(np.mean(dev**4))
    return (
        finite_or_none(x.mean() / std),
        finite_or_none(m3 / m2**1.5),
        finite_or_none(m4 / m2**2),
    )


# ---------------------------------------------------------------------- PSR / DSR
def probabilistic_sharpe_ratio(
    sharpe: float | None,
    n_obs: int,
    skew: float | None,
    kurtosis: float | None,
    benchmark: float = 0.0,
) -> float | None:
    """P(true Sharpe > ``benchmark``) given an estimate from ``n_obs`` bars.

    ``Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))``; every
    Sharpe is per period and ``kurtosis`` is non-excess.  None when an input is
    undefined, T < 2, or the variance term is not positive.
    """
    if sharpe is None or skew is None or kurtosis is None or n_obs < 2:
        return None
    variance = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance > 0.0 or not math.isfinite(variance):
        return None
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance)
    return finite_or_none(norm_cdf(z))


def expected_max_sharpe(n_trials: int, sharpe_variance: float | None) -> float:
    """SR0: expected maximum per-period Sharpe of ``n_trials`` trials with no skill.

    ``sqrt(V) * ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``; 0 for N = 1 (no
    selection) and when V is undefined or zero.
    """
    n_trials = check_scalar("n_trials", n_trials, integer=True, low=1)
    if n_trials == 1 or not sharpe_variance or sharpe_variance <= 0:
        return 0.0
    z = (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * norm_ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return math.sqrt(sharpe_variance) * z


def deflated_sharpe_ratio(
    sharpe: float | None,
    n_obs: int,
    skew: float | None,
    kurtosis: float | None,
    n_trials: int,
    sharpe_variance: float | None,
) -> float | None:
    """PSR against the expected maximum Sharpe of ``n_trials`` unskilled trials."""
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, n_obs, skew, kurtosis, benchmark)


# ---------------------------------------------------------------------- break-even fee
def breakeven_fee(
    gross: npt.ArrayLike, turnover: npt.ArrayLike, rtol: float = 1e-12
) -> float | None:
    """Fee rate f with ``prod(1 + gross - f * 2 * turnover) = 1``, by bisection.

    ``log prod(1 + pnl(f))`` falls strictly as f grows (wherever turnover > 0) and
    tends to -inf as some bar's equity factor reaches 0, so the root is unique and
    bracketed by [0, f_max].  None when the gross cumulative return is already <= 0,
    when nothing is ever traded (no crossing), or for empty input.  NaNs count as 0.
    """
    g = np.nan_to_num(np.asarray(gross, dtype=np.float64).ravel())
    cost = 2.0 * np.nan_to_num(np.asarray(turnover, dtype=np.float64).ravel())
    if g.shape != cost.shape:
        raise ValueError(f"gross {g.shape} and turnover {cost.shape} differ in length")
    if g.size == 0 or np.any(1.0 + g <= 0.0):
        return None

    growth = 1.0 + g
    factors = np.empty_like(g)  # one buffer for every step: a sweep solves one per config

    def log_growth(fee: float) -> float:
        np.multiply(cost, fee, out=factors)
        np.subtract(growth, factors, out=factors)
        if factors.min() <= 0.0:
            return -math.inf
        return float(np.log(factors, out=factors).sum())

    if not log_growth(0.0) > 0.0:
        return None
    traded = cost > 0.0
    if not traded.any():
        return None
    lo, hi = 0.0, float(np.min(growth[traded] / cost[traded]))
    for _ in range(2000):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi or hi - lo <= rtol * hi:
            break
        if log_growth(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return finite_or_none(0.5 * (lo + hi))


# ---------------------------------------------------------------------- sweep table
def selection_benchmark(
    sharpes: Iterable[float | None],
    n_trials: int,
    clusters: Iterable[int] | None = None,
) -> tuple[float | None, float]:
    """``(V, SR0)``: the variance (ddof=1) of the defined per-period Sharpe ratios and
    the expected maximum Sharpe of ``n_trials`` unskilled trials, which DSR tests against.

    With ``clusters`` (one label per Sharpe ratio) V is taken across clusters: each
    cluster's value is the mean of its members' defined Sharpe ratios, so ten fee
    variants of one alpha weigh as one trial.  Kept apart from ``sweep_statistics`` so a
    saved table can be explained (the report shows SR0) from its own columns, with the
    very numbers its ``dsr`` used.
    """
    values = list(sharpes)
    labels = list(range(len(values))) if clusters is None else [int(c) for c in clusters]
    if len(labels) != len(values):
        raise ValueError(f"{len(values)} Sharpe ratios but {len(labels)} cluster labels")
    members: dict[int, list[float]] = {}
    for sharpe, label in zip(values, labels):
        if sharpe is not None and math.isfinite(sharpe):
            members.setdefault(label, []).append(float(sharpe))
    means = np.array([np.mean(m) for m in members.values()], dtype=np.float64)
    variance = finite_or_none(np.var(means, ddof=1)) if means.size >= 2 else None
    sr0 = expected_max_sharpe(n_trials, variance) if n_trials >= 1 else 0.0
    return variance, sr0


def effective_trials(n_trials: int, n_clusters: int, n_results: int) -> int:
    """N_eff: the clusters among the completed configs, plus one trial for each config
    without results (failed or not run: nothing says what it duplicates), at most N."""
    return max(1, min(n_trials, n_clusters + max(0, n_trials - n_results)))


STAMP_COLUMN = "timestamp"  # the bar column of a saved returns file


class ReturnsColumns(NamedTuple):
    """Some columns of a result's returns, as arrays, and its bars (UTC nanoseconds)."""

    columns: dict[str, np.ndarray]
    stamps: np.ndarray


def _returns_columns(result: BacktestResult, columns: Sequence[str]) -> ReturnsColumns:
    """Those of ``columns`` a result's returns frame has (results saved before the costs
    existed have no ``slippage``/``funding``), without loading positions/trades.  A
    saved file is read as plain arrays: a sweep's summary reads one per config, and
    building each as a timezone-aware pandas frame cost more than the statistics."""
    in_memory = getattr(result, "_sequences", None)
    if in_memory is None and result.path is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        saved = pq.ParquetFile(ResultDir(result.path).returns)  # opened once
        present = set(saved.schema_arrow.names)
        if STAMP_COLUMN in present:
            wanted = [c for c in columns if c in present]
            table = saved.read(columns=[*wanted, STAMP_COLUMN], use_pandas_metadata=False)
            stamps = table.column(STAMP_COLUMN).cast(pa.timestamp("ns", tz="UTC"))
            return ReturnsColumns(
                {c: table.column(c).to_numpy().astype(np.float64, copy=False) for c in wanted},
                stamps.cast(pa.int64()).to_numpy())
        table = saved.read(columns=[c for c in columns if c in present], use_pandas_metadata=True)
        frame = table.to_pandas()
    else:
        frame = result.sequences
    index = pd.DatetimeIndex(frame.index)
    stamps = (index.tz_convert("UTC") if index.tz is not None else index).as_unit("ns").asi8
    return ReturnsColumns({c: frame[c].to_numpy(dtype=np.float64) for c in columns
                           if c in frame.columns}, np.asarray(stamps, dtype=np.int64))


def _before_fees(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The per-bar return before exchange fees: gross less slippage and impact plus
    funding, so the break-even fee is the fee at which the book, with its other costs,
    breaks even."""
    before = columns["gross"]
    for cost in ("slippage", "impact"):
        if cost in columns:
            before = before - columns[cost]
    if "funding" in columns:
        before = before + columns["funding"]
    return before


def _union_columns(series: Sequence[ReturnsColumns], key: str) -> np.ndarray:
    """(bars x configs) of column ``key`` on the sorted union of their bars, NaN where a
    config has no such bar (an outer join, as ``pd.concat(axis=1)`` of the series)."""
    if not series:
        return np.empty((0, 0), dtype=np.float64)
    bars = np.unique(np.concatenate([s.stamps for s in series]))
    out = np.full((len(bars), len(series)), np.nan, dtype=np.float64)
    for j, s in enumerate(series):
        out[np.searchsorted(bars, s.stamps), j] = s.columns[key]
    return out


def sweep_statistics(
    results: Iterable[BacktestResult | None], n_trials: int | None = None
) -> pd.DataFrame:
    """One row per result: ``name, psr, dsr, sharpe_per_period, skew, kurtosis,
    breakeven_fee, trial_cluster``.

    ``psr`` is PSR(0); ``dsr`` deflates by the effective number of trials: the results
    are clustered on the correlation of their ``pnl`` (``trial_cluster``, see
    ``alphadev.trials``), ``n_trials`` (default: the number of results
    given, ``None`` entries skipped) counts every config and ``effective_trials`` turns
    it into N_eff.  Rows keep the order of ``results``; undefined values are NaN (as
    elsewhere in the comparison table).  The frame's ``attrs`` hold ``n_trials``,
    ``n_effective_trials``, ``sharpe_variance`` (across clusters) and
    ``expected_max_sharpe`` (per period).  Only ``pnl``, ``gross`` and ``turnover`` are
    read from each saved result.
    """

    rows: list[dict[str, Any]] = []
    n_obs: list[int] = []
    read: list[ReturnsColumns] = []
    for result in results:
        if result is None:
            continue
        found = _returns_columns(
            result, ("pnl", "gross", "turnover", "slippage", "impact", "funding")
        )
        pnl = found.columns["pnl"]
        sharpe, skew, kurt = return_moments(pnl)
        rows.append(
            {
                "name": result.name,
                "sharpe_per_period": sharpe,
                "skew": skew,
                "kurtosis": kurt,
                "breakeven_fee": breakeven_fee(_before_fees(found.columns),
                                               found.columns["turnover"]),
            }
        )
        n_obs.append(int(np.isfinite(pnl).sum()))
        if len(rows) <= MAX_CLUSTERED_CONFIGS:  # beyond it, no bars x configs matrix
            read.append(ReturnsColumns({"pnl": pnl}, found.stamps))
        else:
            read.clear()
    trials = len(rows) if n_trials is None else int(n_trials)
    # Clustered in name order, so a table's clusters do not depend on the order of results
    # (a loaded sweep lists them as comparison.csv does, a run as its configs).
    by_name = sorted(range(len(rows)), key=lambda i: rows[i]["name"])
    if len(rows) > MAX_CLUSTERED_CONFIGS:  # not clustered (alphadev.trials)
        union = np.empty((0, len(rows)), dtype=np.float64)
    else:
        union = _union_columns([read[i] for i in by_name], "pnl")
    clusters = cluster_trials(union)
    labels = np.empty(len(rows), dtype=np.int64)
    labels[by_name] = clusters.labels
    n_effective = effective_trials(trials, clusters.n_effective, len(rows)) if rows else trials
    variance, sr0 = selection_benchmark(
        [r["sharpe_per_period"] for r in rows], n_effective, labels.tolist()
    )
    for row, t, label in zip(rows, n_obs, labels.tolist()):
        args = (row["sharpe_per_period"], t, row["skew"], row["kurtosis"])
        row["psr"] = probabilistic_sharpe_ratio(*args)
        row["dsr"] = probabilistic_sharpe_ratio(*args, benchmark=sr0)
        row["trial_cluster"] = label
    table = pd.DataFrame(rows, columns=list(SWEEP_STATISTICS_COLUMNS))
    table = table.astype({c: np.float64 for c in SWEEP_STATISTICS_COLUMNS[1:-1]})
    table.attrs.update(
        {"n_trials": trials, "n_effective_trials": n_effective,
         "sharpe_variance": variance, "expected_max_sharpe": sr0}
    )
    return table
