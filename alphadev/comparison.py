"""The sweep table: one row per result, from its saved description and metrics, with
the sweep statistics (PSR, DSR, break-even fee).

``comparison_table`` is the one place it is built: ``comparison.csv``,
``Backtester.get_comparison_table`` and the HTML report all use it, so one sweep shows
one DSR.  Each row carries its result's ``fingerprint`` and the ``n_trials`` its DSR
was deflated over, so a table read back from ``comparison.csv`` still says what it was
built from (``read_comparison_table``, ``deflation``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alphadev.results import BacktestResult
from alphadev.store import atomic_write

COMPARISON = "comparison.csv"

SETTING_COLUMNS = (
    "start_date", "end_date", "open_quantile", "close_quantile", "gross_exposure",
    "frequency", "trading_fee_rate", "mode", "chunk_days", "max_fill_bars",
    "execution_delay", "slippage_rate",
)
# Settings a config description leaves out at their default (alphadev.config).
_SETTING_DEFAULTS = {"execution_delay": 0, "slippage_rate": 0.0}
IDENTITY_COLUMNS = ("name", "alpha_class", "fingerprint")


def result_row(result: BacktestResult) -> dict[str, Any]:
    """Flat row: alpha parameters as ``alpha.<name>``, leg metrics as ``long_<metric>``."""
    cfg = result.config_dict
    row: dict[str, Any] = {
        "name": cfg["name"], "alpha_class": cfg["alpha_class"], "fingerprint": result.fingerprint,
    }
    for key, value in cfg["alpha_kwargs"].items():
        row[f"alpha.{key}"] = value if not isinstance(value, (list, dict)) else repr(value)
    settings = {
        **_SETTING_DEFAULTS, **cfg,
        "open_quantile": cfg["quantile"][0], "close_quantile": cfg["quantile"][1],
    }
    if isinstance(settings["slippage_rate"], dict):  # per symbol: one readable cell
        settings["slippage_rate"] = ", ".join(
            f"{symbol}:{rate:g}" for symbol, rate in settings["slippage_rate"].items()
        )
    row.update({key: settings[key] for key in SETTING_COLUMNS})
    metrics = result.metrics
    row.update(metrics["total"])
    for leg in ("long", "short"):
        row.update({f"{leg}_{k}": v for k, v in metrics[leg].items()})
    skip = ("total", "long", "short", "frequency", "cost_breakdown")
    row.update({k: v for k, v in metrics.items() if k not in skip})
    # Results saved before slippage and funding existed paid neither.
    row.setdefault("total_slippage", 0.0)
    row.setdefault("total_funding", 0.0)
    row["cost_share"] = cost_share(metrics.get("cost_breakdown"))
    return row


def cost_share(breakdown: dict[str, Any] | None) -> float | None:
    """The share of the gross return eaten by costs: (fees + slippage - funding) / gross.

    None when the gross return is not positive (there is nothing to share) or unknown
    (results saved before the breakdown existed).  Above 1: costs ate more than the
    gross; negative: funding received exceeded fees and slippage.
    """
    if not breakdown:
        return None
    values = [breakdown.get(k) for k in ("gross", "fees", "slippage", "funding")]
    if any(v is None for v in values):
        return None
    gross, fees, slippage, funding = (float(v) for v in values if v is not None)
    return (fees + slippage - funding) / gross if gross > 0 else None


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


def deflation(table: pd.DataFrame) -> dict[str, Any]:
    """``n_trials``, ``sharpe_variance`` and ``expected_max_sharpe`` (per period) behind
    the ``dsr`` column of a non-empty table, from its own columns: the same numbers for
    a table just built and for ``comparison.csv`` read back."""
    from alphadev.stats import selection_benchmark

    n_trials = int(table["n_trials"].iloc[0])
    sharpes = pd.to_numeric(table["sharpe_per_period"], errors="coerce")
    variance, sr0 = selection_benchmark(sharpes.dropna().tolist(), n_trials)
    return {"n_trials": n_trials, "sharpe_variance": variance, "expected_max_sharpe": sr0}


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
