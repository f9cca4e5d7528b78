"""What a run records for the report's signal and benchmark panels
(docs/semantics.md#signal-series): IC by lag, quantile returns and turnover, rank
autocorrelation, and the bar returns of the equal-weighted universe and of BTC.

They are computed on the arrays the run already holds, window by window, so the
report never has to run the alpha again, and any chunking gives the numbers of one
batch: each window continues from the last ``max(SIGNAL_LAGS)`` alpha rows of the one
before (``SignalTail``).  The definitions are those of ``alphadev.analysis``; its
``ic_decay`` at these lags, ``quantile_returns`` and ``write_factor_sequences`` give
the same numbers for the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SIGNAL_LAGS = (1, 2, 3, 4, 6, 8, 12, 24)
"""Lags (bars) of the recorded IC decay: the first bars one by one, then up to a day
of hourly bars."""
SIGNAL_QUANTILES = 5
EQUAL_WEIGHT = "equal_weight"


def benchmark_symbol(symbols: list[str]) -> str | None:
    """The symbol a book is compared with: the first BTC perpetual among them, if any."""
    return next((s for s in sorted(symbols) if s.upper().startswith("BTC")), None)


@dataclass
class SignalTail:
    """The alpha and universe rows of the last bars before a window (NaN / False
    where the run had not started)."""

    alpha: np.ndarray  # (H, N)
    universe: np.ndarray  # (H, N)

    @classmethod
    def start(cls, n_sym: int) -> SignalTail:
        history = max(SIGNAL_LAGS)
        return cls(np.full((history, n_sym), np.nan), np.zeros((history, n_sym), dtype=bool))

    def after(self, alpha: np.ndarray, universe: np.ndarray) -> SignalTail:
        """The tail once the rows of a window follow these ones."""
        history = self.alpha.shape[0]
        return SignalTail(np.concatenate([self.alpha, alpha])[-history:].copy(),
                          np.concatenate([self.universe, universe])[-history:].copy())


@dataclass
class SignalSeries:
    """Per-bar signal series, dated by the bar whose return they use."""

    ic_by_lag: np.ndarray  # (len(SIGNAL_LAGS), T): IC of A[t - lag] with r[t]
    quantile_returns: np.ndarray  # (T, Q): r[t] of the buckets formed on A[t - 1]
    rank_autocorrelation: np.ndarray  # (T,): Spearman of A[t - 1] and A[t]
    quantile_turnover: np.ndarray  # (T, 2): bottom and top bucket, A[t] against A[t - 1]
    market: np.ndarray  # (T, 2): equal-weighted r[t] over U[t - 1]; the benchmark's r[t]
    benchmark: str | None = None  # the benchmark symbol (column 1 of ``market``)

    @classmethod
    def of_window(cls, alpha: np.ndarray, universe: np.ndarray, returns: np.ndarray,
                  tail: SignalTail, benchmark: int | None = None,
                  alpha_order: np.ndarray | None = None,
                  returns_order: np.ndarray | None = None) -> SignalSeries:
        """The series of one window's rows, continuing from ``tail``; ``benchmark`` is
        the column of the benchmark symbol (``benchmark_symbol``), if any.  The run
        passes the row-wise argsorts of ``alpha`` and ``returns`` it already has."""
        from alphadev.engine.signal import (  # numba: loaded by runs, not by readers
            lagged_rank_ic,
            quantile_bar_returns,
            quantile_turnover,
            rank_autocorrelation,
        )

        history = tail.alpha.shape[0]
        ext_alpha = np.concatenate([tail.alpha, alpha])
        ext_universe = np.concatenate([tail.universe, universe])
        order = None if alpha_order is None else np.concatenate(
            [np.argsort(tail.alpha, axis=1), alpha_order])
        held = ext_universe[history - 1:-1] & np.isfinite(returns)
        with np.errstate(invalid="ignore"):
            equal = np.where(held, returns, 0.0).sum(axis=1) / held.sum(axis=1)
        market = np.column_stack([
            np.where(held.any(axis=1), equal, np.nan),
            returns[:, benchmark] if benchmark is not None else np.full(len(returns), np.nan),
        ])
        return cls(
            lagged_rank_ic(ext_alpha, ext_universe, returns, history,
                           np.array(SIGNAL_LAGS, dtype=np.int64), order, returns_order),
            quantile_bar_returns(ext_alpha, ext_universe, returns, history, SIGNAL_QUANTILES,
                                 order),
            rank_autocorrelation(ext_alpha, ext_universe, history, order),
            quantile_turnover(ext_alpha, ext_universe, history, SIGNAL_QUANTILES, order),
            market,
        )

    @classmethod
    def joined(cls, parts: list[SignalSeries], benchmark: str | None = None) -> SignalSeries:
        return cls(
            np.concatenate([p.ic_by_lag for p in parts], axis=1),
            np.concatenate([p.quantile_returns for p in parts]),
            np.concatenate([p.rank_autocorrelation for p in parts]),
            np.concatenate([p.quantile_turnover for p in parts]),
            np.concatenate([p.market for p in parts]),
            benchmark,
        )

    def ic_decay(self) -> pd.DataFrame:
        """``lag, ic, ic_std, ic_count`` (the ``ic_decay.parquet`` columns)."""
        return decay_frame(self.ic_by_lag, SIGNAL_LAGS)

    def quantile_means(self) -> pd.DataFrame:
        """``quantile, mean_forward_return``: each bucket's mean over the bars it is
        not empty (the ``quantile_returns.parquet`` columns)."""
        means = [_mean(column) for column in self.quantile_returns.T]
        return pd.DataFrame({"quantile": np.arange(1, len(means) + 1),
                             "mean_forward_return": means})

    def factor_frame(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """``quantile_1..Q`` and ``rank_autocorrelation`` on the run's bars (the
        ``factor_sequences.parquet`` layout)."""
        frame = pd.DataFrame(
            self.quantile_returns,
            columns=[f"quantile_{k}" for k in range(1, self.quantile_returns.shape[1] + 1)],
            index=pd.DatetimeIndex(index, name="timestamp"),
        )
        frame["rank_autocorrelation"] = self.rank_autocorrelation
        frame["turnover_bottom"] = self.quantile_turnover[:, 0]
        frame["turnover_top"] = self.quantile_turnover[:, 1]
        return frame

    def benchmark_frame(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """``equal_weight`` and (when there is one) the benchmark symbol's bar returns on
        the run's bars (the ``benchmark.parquet`` layout)."""
        frame = pd.DataFrame({EQUAL_WEIGHT: self.market[:, 0]},
                             index=pd.DatetimeIndex(index, name="timestamp"))
        if self.benchmark is not None:
            frame[self.benchmark] = self.market[:, 1]
        return frame


def decay_frame(ic_by_lag: np.ndarray, lags: tuple[int, ...] | range) -> pd.DataFrame:
    """lag, ic (mean), ic_std (ddof=1), ic_count per lag over the bars where IC exists."""
    rows = []
    for lag, values in zip(lags, ic_by_lag):
        x = values[np.isfinite(values)]
        rows.append({
            "lag": int(lag), "ic": _mean(x),
            "ic_std": float(x.std(ddof=1)) if x.size >= 2 else np.nan,
            "ic_count": int(x.size),
        })
    return pd.DataFrame(rows, columns=["lag", "ic", "ic_std", "ic_count"])


def _mean(values: np.ndarray) -> float:
    x = values[np.isfinite(values)]
    return float(x.mean()) if x.size else np.nan
