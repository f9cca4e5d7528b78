"""Per-config panels (quantstats / alphalens style) and the single-config tear sheet.

The sweep report uses these panels for its top configs; ``build_tear_sheet(folder)``
(``python -m alphadev report SAVE_DIR/NAME``) writes them for one config to
``SAVE_DIR/NAME/tear_sheet.html``.  Everything is drawn from the saved files of a
results folder: ``metrics.json``, ``config.json``, ``sequences/returns.parquet`` and
the signal series the run recorded, ``sequences/ic_decay.parquet``,
``quantile_returns.parquet`` and ``factor_sequences.parquet``
(``alphadev.signal_series``; for older results ``alphadev.research.write_ic_decay`` /
``write_factor_sequences`` write them by running the alpha again).

Results written before slippage and funding existed have no such columns: they count
as 0 (their backtests charged neither).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphadev.analysis import daily_returns, monthly_table
from alphadev.layout import ResultDir
from alphadev.metrics import (
    SHORT_SAMPLE_DAYS,
    beta,
    conditional_value_at_risk,
    drawdown_periods,
    information_ratio,
    is_fragile,
    is_short_sample,
    rolling_beta,
    tail_ratio,
    value_at_risk,
)
from alphadev.report.layout import (
    SHORT_MARK,
    figure,
    note,
    num,
    pct,
    short_sample_note,
    stamp,
    table,
)
from alphadev.results import BacktestResult
from alphadev.signal_series import EQUAL_WEIGHT
from alphadev.stats import norm_cdf, return_moments

_RELATIVE = ResultDir(Path())  # file names as a config's folder sees them
COST_COLUMNS = ("gross", "fees", "slippage", "impact", "funding")
EDGE_IC_RATIO = 0.5
"""IC at horizon 2 below this share of IC at horizon 1 (itself > 0) is flagged."""
WORST_DRAWDOWNS = 5


@dataclass
class ConfigView:
    """What the panels need of one config.  ``label`` names it in legends;
    ``signal_label`` names its signal (configs with identical ICs are drawn once)."""

    label: str
    signal_label: str
    result: BacktestResult
    returns: pd.DataFrame
    decay: pd.DataFrame | None
    quantiles: pd.Series | None
    factor: pd.DataFrame | None
    benchmark: pd.DataFrame | None = None  # benchmark.parquet: equal_weight [, BTC...]

    @property
    def periods_per_year(self) -> float | None:
        value = self.result.metrics.get("periods_per_year")
        return float(value) if value else None


def load_view(result: BacktestResult, label: str, signal_label: str | None = None) -> ConfigView:
    """Read a config's returns (missing cost columns as 0) and saved signal files."""
    folder = None if result.path is None else ResultDir(result.path)
    if folder is not None:
        frame = pd.read_parquet(folder.returns)
    else:
        frame = result.sequences.copy()
    for column in ("slippage", "impact", "funding"):
        if column not in frame.columns:
            frame[column] = 0.0

    def saved(series: str) -> pd.DataFrame | None:
        """A recorded signal series (a ``ResultDir`` property), None when absent."""
        path = None if folder is None else getattr(folder, series)
        if path is None or not path.exists():
            return None
        return pd.read_parquet(path)

    quantiles = saved("quantile_returns")
    return ConfigView(
        label=label,
        signal_label=signal_label or label,
        result=result,
        returns=frame,
        decay=saved("ic_decay"),
        quantiles=None if quantiles is None
        else quantiles.set_index("quantile")["mean_forward_return"],
        factor=saved("factor_sequences"),
        benchmark=saved("benchmark"),
    )


def benchmark_of(view: ConfigView) -> tuple[pd.Series, str] | None:
    """The bar returns a config is compared with and their label: the BTC perpetual held
    long when the config trades one, else the equal-weighted universe; None for results
    saved before runs recorded them."""
    frame = view.benchmark
    if frame is None:
        return None
    symbols = [c for c in frame.columns if c != EQUAL_WEIGHT and frame[c].notna().any()]
    if symbols:  # a BTC perpetual without a single price falls back to the universe
        return frame[symbols[0]], f"{symbols[0]} held long"
    return frame[EQUAL_WEIGHT], "equal-weighted universe held long"


def tail_rows(views: Sequence[ConfigView]) -> list[list[str]]:
    """Distribution and benchmark rows of the key-metrics table (per-bar net returns)."""
    pnl = [v.returns["pnl"].to_numpy(dtype=np.float64) for v in views]
    moments = [return_moments(x) for x in pnl]
    days = [daily_returns(v.returns["pnl"]) for v in views]
    rows = [
        ["skew (per bar)"] + [num(m[1], 2) for m in moments],
        ["kurtosis (per bar, normal = 3)"] + [num(m[2], 1) for m in moments],
        ["VaR 5% (per bar)"] + [pct(value_at_risk(x)) for x in pnl],
        ["CVaR 5% (per bar)"] + [pct(conditional_value_at_risk(x)) for x in pnl],
        ["tail ratio (95th / 5th pct.)"] + [num(tail_ratio(x), 2) for x in pnl],
        ["best day (UTC)"] + [pct(d.max() if len(d) else None) for d in days],
        ["worst day (UTC)"] + [pct(d.min() if len(d) else None) for d in days],
    ]
    compared = [benchmark_of(v) for v in views]
    if any(c is not None for c in compared):
        rows.append(["benchmark"] + [html.escape(c[1]) if c else "&ndash;" for c in compared])
        rows.append(["beta to the benchmark"] + [
            num(beta(x, c[0].to_numpy(dtype=np.float64)), 3) if c else "&ndash;"
            for x, c in zip(pnl, compared)])
        rows.append(["information ratio (annualised)"] + [
            num(information_ratio(x, c[0].to_numpy(dtype=np.float64), v.periods_per_year), 2)
            if c and v.periods_per_year else "&ndash;"
            for x, c, v in zip(pnl, compared, views)])
    return rows


def ic_table(views: Sequence[ConfigView]) -> str:
    """Per-bar rank IC of each signal: mean, std, t-stat and two-sided p-value of the
    mean (normal approximation, bars taken as independent), skew and kurtosis."""
    rows = []
    for view in views:
        ic = view.returns["ic"].to_numpy(dtype=np.float64)
        ic = ic[np.isfinite(ic)]
        std = float(ic.std(ddof=1)) if ic.size >= 2 else math.nan
        t_stat = float(ic.mean()) / (std / math.sqrt(ic.size)) if std > 0 else math.nan
        p_value = 2.0 * (1.0 - norm_cdf(abs(t_stat))) if math.isfinite(t_stat) else math.nan
        _, skew, kurtosis = return_moments(ic)
        rows.append([html.escape(view.label), num(ic.mean() if ic.size else None, 4),
                     num(std, 4), num(t_stat, 2), num(p_value, 4), num(skew, 2),
                     num(kurtosis, 1), str(ic.size)])
    return "<h3>Rank IC per bar</h3>" + table(
        ["signal", "mean", "std", "t-stat", "p-value", "skew", "kurtosis", "bars"], rows,
        css="board") + note("t-stat = mean / (std / sqrt(bars)); p-value two-sided from the "
                            "normal distribution. Bars overlap in information, so both "
                            "overstate the evidence when the IC is autocorrelated.")


def cost_breakdown(view: ConfigView) -> dict[str, float]:
    """gross, fees, slippage, impact, funding as sums of per-bar returns
    (``metrics.json``'s ``cost_breakdown`` when present, else summed from
    ``returns.parquet``)."""
    recorded = view.result.metrics.get("cost_breakdown")
    saved: dict[str, float | None] = {} if not recorded else {
        "gross": recorded.get("gross"), "fees": recorded.get("fees"),
        "slippage": recorded.get("slippage"), "impact": recorded.get("impact"),
        "funding": recorded.get("funding")}
    return {
        key: float(value) if (value := saved.get(key)) is not None
        else float(view.returns[key].fillna(0.0).sum())
        for key in COST_COLUMNS
    }


def rolling_window(index: pd.Index) -> tuple[pd.Timedelta, str]:
    """A week when the data span four weeks or more, a day from four days, else 1/10."""
    span = index.max() - index.min() if len(index) > 1 else pd.Timedelta(days=1)
    if span >= pd.Timedelta(days=28):
        return pd.Timedelta(days=7), "7 days"
    if span >= pd.Timedelta(days=4):
        return pd.Timedelta(days=1), "1 day"
    window = max(span / 10, pd.Timedelta(minutes=1)).ceil("min")
    return window, str(window)


def window_bars(index: pd.Index, window: pd.Timedelta) -> int:
    """How many bars a time window holds (at the median bar spacing), at least 2."""
    step = pd.Series(index).diff().median() if len(index) > 1 else window
    return max(2, int(window / step)) if step and step > pd.Timedelta(0) else 2


# ---------------------------------------------------------------------- tables
KEY_METRICS: list[tuple[str, str, Any]] = [
    ("cumulative_return", "cumulative return", pct),
    ("annualized_return", "annualised return", pct),
    ("annualized_volatility", "annualised volatility", pct),
    ("sharpe", "Sharpe", lambda v: num(v, 2)),
    ("sortino", "Sortino", lambda v: num(v, 2)),
    ("max_drawdown", "max drawdown", pct),
    ("calmar", "Calmar", lambda v: num(v, 2)),
    ("hit_rate", "hit rate", lambda v: pct(v, 1).lstrip("+")),
]
ANNUALISED = ("annualized_return", "calmar")
"""Key metrics that extrapolate the sample to a year (marked on a short sample)."""


def key_metrics(views: Sequence[ConfigView]) -> str:
    """Metrics by row, one column per config: returns, risk, signal and costs."""
    rows: list[list[str]] = []
    short = [is_short_sample(v.result.metrics["total"].get("num_periods"), v.periods_per_year)
             for v in views]
    for key, title, fmt in KEY_METRICS:
        marks = [SHORT_MARK if s and key in ANNUALISED else "" for s in short]
        rows.append([title] + [fmt(v.result.metrics["total"].get(key)) + mark
                               for v, mark in zip(views, marks)])
    for leg in ("long", "short"):
        rows.append([f"{leg} leg Sharpe"]
                    + [num(v.result.metrics[leg].get("sharpe"), 2) for v in views])
    rows.append(["IC mean"] + [num(v.result.metrics.get("ic_mean"), 4) for v in views])
    rows.append(["IC IR (per bar)"] + [num(v.result.metrics.get("ic_ir"), 3) for v in views])
    rows.append(["turnover per bar"]
                + [num(v.result.metrics.get("avg_turnover"), 4) for v in views])
    breakdowns = [cost_breakdown(v) for v in views]
    rows.append(["gross return (sum)"] + [pct(b["gross"]) for b in breakdowns])
    rows.append(["fees (sum)"] + [pct(-b["fees"]) for b in breakdowns])
    rows.append(["slippage (sum)"] + [pct(-b["slippage"]) for b in breakdowns])
    rows.append(["impact (sum)"] + [pct(-b["impact"]) for b in breakdowns])
    rows.append(["funding (sum)"] + [pct(b["funding"]) for b in breakdowns])
    rows.append(["bars"] + [num(v.result.metrics["total"].get("num_periods"), 0) for v in views])
    rows += tail_rows(views)
    head = ["metric"] + [html.escape(v.label) for v in views]
    return table(head, rows, css="board metrics") + (
        short_sample_note(SHORT_SAMPLE_DAYS) if any(short) else "")


def drawdown_table(view: ConfigView) -> str:
    """The worst drawdowns with their dates: peak, trough, recovery, depth, length."""
    index = view.returns.index
    pnl = view.returns["pnl"].fillna(0.0).to_numpy(dtype=np.float64)
    rows = []
    for k, period in enumerate(drawdown_periods(pnl, WORST_DRAWDOWNS), start=1):
        peak = index[period.peak] if period.peak >= 0 else index[0]
        end = index[period.recovery] if period.recovery is not None else None
        length = (end if end is not None else index[-1]) - peak
        rows.append([
            str(k), stamp(peak), stamp(index[period.trough]),
            stamp(end) if end is not None else "<b class='bad'>not recovered</b>",
            pct(period.depth), _duration(length),
        ])
    if not rows:
        return note("No drawdown: equity never fell below its running peak.")
    return table(["#", "peak", "trough", "recovered", "depth", "peak to recovery"], rows)


def edge_warnings(view: ConfigView, delayed_sharpe: float | None = None) -> list[str]:
    """Signs that the edge lives inside one bar (bid-ask bounce rather than alpha), and ruin.

    IC at horizon 2 well below horizon 1 (``ic_decay.parquet``), or a fragile Sharpe
    (``delayed_sharpe``: the same config traded one bar later, ``metrics.is_fragile``).
    """
    warnings = []
    if view.decay is not None:
        ic = view.decay.set_index("lag")["ic"]
        ic1, ic2 = ic.get(1), ic.get(2)
        if ic1 is not None and ic2 is not None and math.isfinite(ic1) and ic1 > 0 and (
            not math.isfinite(ic2) or ic2 < EDGE_IC_RATIO * ic1
        ):
            warnings.append(
                f"{html.escape(view.label)}: IC at horizon 2 ({num(ic2, 4)}) is below "
                f"{EDGE_IC_RATIO:.0%} of IC at horizon 1 ({num(ic1, 4)}): the edge may live "
                "inside one bar. Check it with execution_delay=1."
            )
    sharpe = view.result.metrics["total"].get("sharpe")
    if is_fragile(sharpe, delayed_sharpe):
        warnings.append(
            f"{html.escape(view.label)}: Sharpe {num(sharpe, 2)} falls to "
            f"{num(delayed_sharpe, 2)} when trading one bar later (execution_delay + 1): "
            "the edge lives inside one bar."
        )
    ruined_at = view.result.metadata.get("ruined_at")
    if ruined_at:
        warnings.append(
            f"{html.escape(view.label)}: ruined at {html.escape(str(ruined_at))}: that bar "
            "took equity to zero, so the book was closed there and stayed flat."
        )
    return [f"<div class='warning'>{w}</div>" for w in warnings]


# ---------------------------------------------------------------------- panels
def performance_panels(views: Sequence[ConfigView], plots: Any) -> str:
    """Equity (net, and gross vs net), drawdown, legs, Sharpe by capital (books with a
    size), rolling Sharpe and volatility, returns histogram and the cost waterfall."""
    returns = {v.label: v.returns for v in views}
    parts = [
        figure(plots.equity_curves, {k: f["equity"] for k, f in returns.items()},
               alt="equity curves"),
        figure(plots.gross_net_equity, {k: f[["gross", "pnl"]] for k, f in returns.items()},
               alt="gross vs net equity"),
        figure(plots.cost_waterfalls, {v.label: cost_breakdown(v) for v in views},
               alt="cost waterfall"),
        figure(plots.drawdown_curves, {k: f["equity"] for k, f in returns.items()},
               alt="drawdown curves"),
        figure(plots.leg_curves, {k: f[["long_return", "short_return"]]
                                  for k, f in returns.items()}, alt="long and short leg"),
    ]
    curves = {v.label: curve for v in views
              if (curve := v.result.metrics.get("capacity_curve"))}
    if curves:
        parts.append(figure(plots.capacity_curves, curves, alt="Sharpe by capital"))
    ppy = {v.periods_per_year for v in views}
    index = views[0].returns.index
    window, label = rolling_window(index)
    if len(ppy) == 1 and None not in ppy:
        parts.append(figure(plots.rolling_sharpe_volatility,
                            {k: f["pnl"] for k, f in returns.items()},
                            window_bars(index, window), label, ppy.pop(),
                            alt="rolling Sharpe and volatility"))
    parts.append(figure(plots.returns_histogram, {k: f["pnl"] for k, f in returns.items()},
                        alt="returns histogram"))
    compared = benchmark_of(views[0])
    if compared is not None:
        bench, bench_label = compared
        bars = window_bars(index, window)
        betas = {v.label: pd.Series(rolling_beta(
            v.returns["pnl"].to_numpy(dtype=np.float64),
            bench.reindex(v.returns.index).to_numpy(dtype=np.float64), bars),
            index=v.returns.index) for v in views}
        parts.append(figure(plots.versus_benchmark, {k: f["equity"] for k, f in returns.items()},
                            bench, bench_label, betas, label,
                            alt="equity against the benchmark and rolling beta"))
    return "\n".join(parts)


def _distinct_signals(views: Sequence[ConfigView]) -> list[ConfigView]:
    """One view per distinct per-bar IC series (configs that differ only in fees or
    portfolio settings share their signal), labelled with every config sharing it."""
    groups: list[list[ConfigView]] = []
    for view in views:
        ic = view.returns["ic"].to_numpy(dtype=np.float64)
        for group in groups:
            other = group[0].returns["ic"].to_numpy(dtype=np.float64)
            if other.shape == ic.shape and np.array_equal(other, ic, equal_nan=True) and (
                group[0].returns.index.equals(view.returns.index)
            ):
                group.append(view)
                break
        else:
            groups.append([view])
    merged = []
    for group in groups:
        first = group[0]
        if len(group) > 1:
            label = first.signal_label + " (same signal: " + ", ".join(
                v.label.split(" ")[0] for v in group[1:]) + ")"
        else:
            label = first.signal_label
        merged.append(ConfigView(label, label, first.result, first.returns, first.decay,
                                 first.quantiles, first.factor, first.benchmark))
    return merged


def signal_panels(views: Sequence[ConfigView], plots: Any) -> str:
    """Rolling IC, IC histogram, IC decay, quantile returns and rank autocorrelation;
    configs with one identical signal are drawn once."""
    signals = _distinct_signals(views)
    window, label = rolling_window(views[0].returns.index)
    ic = {v.label: v.returns["ic"] for v in signals}
    parts = [
        figure(plots.rolling_ic, ic, window, label, alt="rolling IC"),
        figure(plots.ic_histogram, ic, alt="IC histogram"),
    ]
    decay = {v.label: v.decay.set_index("lag")["ic"] for v in signals if v.decay is not None}
    if decay:
        parts.append(figure(plots.ic_decay, decay, alt="IC decay"))
    quantiles = {v.label: v.quantiles for v in signals if v.quantiles is not None}
    if quantiles:
        parts.append(figure(plots.quantile_returns, quantiles, alt="quantile returns"))
    autocorrelation = {v.label: v.factor["rank_autocorrelation"] for v in signals
                       if v.factor is not None}
    if autocorrelation:
        parts.append(figure(plots.rank_autocorrelation, autocorrelation, window, label,
                            alt="factor rank autocorrelation"))
    factors = {v.label: v.factor for v in signals if v.factor is not None}
    if factors:
        spread = {}
        for key, frame in factors.items():
            buckets = sorted(c for c in frame.columns if c.startswith("quantile_"))
            spread[key] = frame[buckets[-1]] - frame[buckets[0]]
        parts.append(figure(plots.quantile_spread, spread, window, label,
                            alt="top minus bottom quantile spread"))
        turnover = {k: f for k, f in factors.items() if "turnover_top" in f.columns}
        if turnover:
            parts.append(figure(plots.quantile_turnover, turnover, window, label,
                                alt="quantile turnover"))
    parts.append(figure(plots.by_hour_and_weekday,
                        {v.label: v.returns["pnl"] for v in views}, ic,
                        alt="PnL and IC by hour and weekday"))
    parts.insert(0, ic_table(signals))
    if not decay or not autocorrelation:
        parts.append(note(
            "IC decay, quantile returns, quantile equity and rank autocorrelation are "
            "recorded by the run; results saved by an alphadev older than that have none. "
            f"Write <code>{_RELATIVE.ic_decay.as_posix()}</code> and "
            f"<code>{_RELATIVE.factor_sequences.as_posix()}</code> for them with "
            "<code>alphadev.research.write_ic_decay(result_dir, config)</code> and "
            "<code>write_factor_sequences(result_dir, config)</code> (they run the alpha "
            "again), or run the Luigi <code>Report</code> task, which does both for the top "
            "configs."
        ))
    return "\n".join(parts)


def detail_panels(view: ConfigView, plots: Any) -> str:
    """Single-config panels: monthly returns, worst drawdowns, monthly IC, cumulative
    return per alpha quantile."""
    returns = view.returns
    index = returns.index
    pnl = returns["pnl"].fillna(0.0).to_numpy(dtype=np.float64)
    spans = [(index[max(p.peak, 0)],
              index[p.recovery] if p.recovery is not None else index[-1])
             for p in drawdown_periods(pnl, WORST_DRAWDOWNS)]
    parts = [figure(plots.equity_with_drawdowns, returns["equity"], spans,
                    alt="equity with drawdowns shaded")]
    months = monthly_table(returns["pnl"], "compound")
    if not months.empty:
        parts.append(figure(plots.monthly_heatmap, months, "Monthly net returns", True,
                            alt="monthly returns heatmap"))
    parts.append("<h3>Worst drawdowns</h3>" + drawdown_table(view))
    months = monthly_table(returns["ic"], "mean")
    if not months.empty:
        parts.append(figure(plots.monthly_heatmap, months, "Monthly mean rank IC", False,
                            alt="monthly IC heatmap"))
    if view.factor is not None:
        parts.append(figure(plots.quantile_cumulative, view.factor,
                            alt="cumulative returns per alpha quantile"))
    return "\n".join(parts)



def _duration(delta: pd.Timedelta) -> str:
    hours = delta / pd.Timedelta(hours=1)
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} h"


def config_dir_of(path: str | os.PathLike) -> Path | None:
    """``path`` when it is one config's results folder (``config.json`` + ``sequences/``)."""
    folder = ResultDir(Path(path))
    return folder.path if folder.is_result() else None
