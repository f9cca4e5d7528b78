"""The sweep table: one row per result, from its saved description and metrics, with
the sweep statistics (PSR, DSR, break-even fee).

``comparison_table`` is the one place it is built: ``comparison.csv``,
``Backtester.get_comparison_table`` and the HTML report all use it, so one sweep shows
one DSR.  Each row carries its result's ``fingerprint`` and the ``n_trials`` its DSR
was deflated over, so a table read back from ``comparison.csv`` still says what it was
built from (``read_comparison_table``, ``deflation``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alphadev.metrics import FRAGILE_RATIO
from alphadev.results import (
    IDENTITY_COLUMNS,
    SETTING_COLUMNS,
    BacktestResult,
    cost_share,
    result_row,
)
from alphadev.store import atomic_write

__all__ = [
    "IDENTITY_COLUMNS", "SETTING_COLUMNS", "comparison_table", "cost_share",
    "deflation", "leaderboard", "read_comparison_table", "read_identities", "result_row",
    "write_comparison", "sharpe_at_lags", "lag_fragile", "lags_text",
]
_LEADERBOARD_COLUMNS = (
    "name", "sharpe", "sharpe_next_bar", "fragile", "dsr", "annualized_return",
    "max_drawdown", "ic_mean", "avg_turnover", "total_funding", "cost_share", "capacity",
)
# Shown only where some row has a value (a book without volume_loader has no size).
_OPTIONAL_LEADERBOARD_COLUMNS = ("capacity",)


def comparison_table(
    results: Sequence[BacktestResult],
    metrics: Sequence[str] | None = None,
    sort_by: str | None = None,
    ascending: bool = False,
    n_trials: int | None = None,
) -> pd.DataFrame:
    """Rows of ``result_row`` plus PSR, DSR (deflated over ``n_trials`` configs, default
    the number of results; column ``n_trials``), moments and the break-even fee from
    ``alphadev.stats.sweep_statistics``.

    ``fingerprint`` identifies the result each row was built from (a sweep rebuilds a
    table whose (name, fingerprint) rows are not its current results).  Without
    results the table has the identity columns and no rows.
    """
    from alphadev.stats import sweep_statistics

    table = pd.DataFrame([result_row(r) for r in results])
    if table.empty:
        return pd.DataFrame(columns=list(IDENTITY_COLUMNS))
    statistics = sweep_statistics(results, n_trials=n_trials)
    table = table.merge(statistics, on="name", how="left")
    table["n_trials"] = statistics.attrs["n_trials"]
    table["n_effective_trials"] = statistics.attrs["n_effective_trials"]
    if metrics is not None:
        unknown = [m for m in metrics if m not in table.columns]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; choose from {list(table.columns)}")
        descriptive = [
            c for c in table.columns
            if c in IDENTITY_COLUMNS or c in SETTING_COLUMNS or c.startswith("alpha.")
        ]
        table = table[descriptive + [m for m in metrics if m not in descriptive]]
    if sort_by is not None:
        if sort_by not in table.columns:
            raise ValueError(
                f"sort_by={sort_by!r} is not a column; choose from {list(table.columns)}"
            )
        table = table.sort_values(sort_by, ascending=ascending, na_position="last", kind="stable")
        table = table.reset_index(drop=True)
    return table


def sharpe_at_lags(table: pd.DataFrame) -> pd.DataFrame | None:
    """Each row's Sharpe at every ``execution_lag`` of the sweep, read from its siblings
    (the rows that differ from it in the lag alone), then one full bar later (the
    lag-0 sibling's ``sharpe_next_bar``), one column per lag in time order and a last
    column ``1 bar``; None when the table has fewer than two lags
    (docs/semantics.md#execution-lag)."""
    if "execution_lag" not in table.columns:
        return None
    lags = table["execution_lag"].fillna("0s").astype(str)
    order = sorted(set(lags), key=pd.Timedelta)
    if len(order) < 2:
        return None
    same = [c for c in table.columns if c != "execution_lag" and (
        c == "alpha_class" or c.startswith("alpha.") or c in SETTING_COLUMNS)]
    group = pd.Series([repr(tuple(str(v) for v in row))
                       for row in table[same].itertuples(index=False)], index=table.index)
    sharpe = pd.to_numeric(table["sharpe"], errors="coerce")
    later = pd.to_numeric(table.get("sharpe_next_bar", pd.Series(None, index=table.index)),
                          errors="coerce")
    found = pd.DataFrame({"group": group, "lag": lags, "sharpe": sharpe, "later": later})
    # Two rows at one lag that the columns cannot tell apart (they differ in a field the
    # table does not show): their siblings are unknown, not the first row's.
    ambiguous = found.loc[found.duplicated(["group", "lag"], keep=False), "group"].unique()
    found = found[~found["group"].isin(ambiguous)]
    wide = found.pivot(index="group", columns="lag", values="sharpe").reindex(columns=order)
    wide["1 bar"] = found[found["lag"] == order[0]].set_index("group")["later"]
    out = wide.reindex(group.to_numpy())
    out.index = table.index
    return out


def lag_fragile(at_lags: pd.DataFrame) -> pd.Series:
    """True where the Sharpe at the smallest lag is > 0 and the next lag keeps less than
    ``FRAGILE_RATIO`` of it (or changes sign): the edge dies inside one bar."""
    first, second = at_lags.iloc[:, 0], at_lags.iloc[:, 1]
    return (first > 0) & (second < FRAGILE_RATIO * first)


def lags_text(at_lags: pd.DataFrame) -> list[str]:
    """One cell per row: '0s 1.60 | 5min 1.21 | 1 bar 0.40' ('-' for a missing sibling)."""
    return [" | ".join(f"{lag} {value:.2f}" if pd.notna(value) else f"{lag} -"
                       for lag, value in row.items()) for _, row in at_lags.iterrows()]


def leaderboard(table: pd.DataFrame, top: int = 10) -> str:
    """The best ``top`` configs by (net) Sharpe with their Sharpe one bar later, IC,
    turnover, what costs took (``cost_share``) and, for books with a size, their
    ``capacity`` (docs/semantics.md#capacity), then one line per warning.

    Column ``fragile`` marks ``!`` on a config whose Sharpe falls by more than half (or
    changes sign) one bar later, ``?`` where that is unknown (saved by an older
    alphadev); the lines under the table count them (docs/semantics.md#next-bar).
    """
    if table.empty:
        return "no completed configs"
    best = table.sort_values("sharpe", ascending=False, na_position="last", kind="stable")
    best = best.head(top).copy()
    flags = [_flag(v) for v in best.get("fragile", pd.Series(None, index=best.index))]
    fragile = pd.Series([f is True for f in flags])
    unknown = pd.Series([f is None for f in flags])
    if "fragile" in best.columns:
        best["fragile"] = ["!" if f else "?" if f is None else "" for f in flags]
    cols = [c for c in _LEADERBOARD_COLUMNS if c in best.columns
            and not (c in _OPTIONAL_LEADERBOARD_COLUMNS and best[c].isna().all())]
    at_lags = sharpe_at_lags(table)
    if at_lags is not None:
        at_lags = at_lags.loc[best.index]
        best["sharpe_by_lag"] = lags_text(at_lags)
        cols.insert(cols.index("sharpe_next_bar") + 1 if "sharpe_next_bar" in cols else 2,
                    "sharpe_by_lag")
    lines = [best[cols].to_string(index=False, na_rep="", float_format=lambda x: f"{x:.4g}")]
    if fragile.any():
        lines.append(
            f"! {int(fragile.sum())} of the top {len(best)} configs lose more than "
            f"{1 - FRAGILE_RATIO:.0%} of their Sharpe one bar later (sharpe_next_bar, "
            "execution_delay + 1): their edge does not survive one bar of delay "
            "(docs/semantics.md#next-bar)"
        )
    if at_lags is not None and lag_fragile(at_lags).any():
        first, second = at_lags.columns[:2]
        lines.append(
            f"! {int(lag_fragile(at_lags).sum())} of the top {len(best)} configs keep less "
            f"than {FRAGILE_RATIO:.0%} of their Sharpe at execution_lag={first} when traded "
            f"at execution_lag={second} (sharpe_by_lag): their edge dies inside one bar "
            "(docs/semantics.md#execution-lag)"
        )
    if "fragile" in table.columns and unknown.any():
        lines.append(
            f"? {int(unknown.sum())} of the top {len(best)} configs were saved by an older "
            "alphadev and have no Sharpe one bar later; rerun them to know"
        )
    return "\n".join(lines)


def _flag(value: Any) -> bool | None:
    """A ``fragile`` cell as built (bool, None) or read back from CSV (bool, NaN, text)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip().lower() in ("true", "1", "1.0")


def deflation(table: pd.DataFrame) -> dict[str, Any]:
    """``n_trials``, ``n_effective_trials``, ``sharpe_variance`` and
    ``expected_max_sharpe`` (per period) behind the ``dsr`` column of a non-empty table,
    from its own columns: the same numbers for a table just built and for
    ``comparison.csv`` read back.  A table written before N_eff existed (no
    ``n_effective_trials``/``trial_cluster`` columns) deflated over every config."""
    from alphadev.stats import selection_benchmark

    n_trials = int(table["n_trials"].iloc[0])
    n_effective = int(table["n_effective_trials"].iloc[0]) if (
        "n_effective_trials" in table.columns) else n_trials
    sharpes = pd.to_numeric(table["sharpe_per_period"], errors="coerce")
    clusters = table["trial_cluster"] if "trial_cluster" in table.columns else None
    variance, sr0 = selection_benchmark(
        [None if pd.isna(s) else float(s) for s in sharpes], n_effective,
        None if clusters is None else [int(c) for c in clusters],
    )
    return {"n_trials": n_trials, "n_effective_trials": n_effective,
            "sharpe_variance": variance, "expected_max_sharpe": sr0}


def write_comparison(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the table as CSV atomically: readers (a report, another machine's sweep)
    never see half a table."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as tmp:
        table.to_csv(tmp, index=False)


def read_comparison_table(path: str | os.PathLike) -> pd.DataFrame | None:
    """A table written by ``write_comparison``, identity columns as text (a name such as
    ``NA`` or an all-digit fingerprint stays what it was); None when the file is missing,
    unreadable or written by older code (no ``fingerprint`` or ``n_trials`` column)."""
    try:
        table = pd.read_csv(path)
        identities = pd.read_csv(path, usecols=lambda c: c in IDENTITY_COLUMNS, dtype=str,
                                 keep_default_na=False)
    except (OSError, ValueError):
        return None
    if not {*IDENTITY_COLUMNS, "n_trials"} <= set(table.columns):
        return None
    for column in IDENTITY_COLUMNS:
        table[column] = identities[column]
    return table


def read_identities(path: str | os.PathLike) -> set[tuple[str, str]] | None:
    """The (name, fingerprint) rows of a comparison CSV; None when the file is missing,
    unreadable or has no fingerprint column (written by older code)."""
    try:
        table = pd.read_csv(path, usecols=lambda c: c in ("name", "fingerprint"), dtype=str,
                            keep_default_na=False)
    except (OSError, ValueError):
        return None
    if set(table.columns) != {"name", "fingerprint"}:
        return None
    return set(zip(table["name"], table["fingerprint"]))
