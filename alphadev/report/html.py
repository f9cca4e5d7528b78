"""The sweep report: one self-contained HTML file from a results directory.

``build_report(save_dir)`` reads every result folder of ``save_dir`` (a subfolder
holding ``sequences/``, names starting with '.' skipped), and writes a single HTML
file with inline CSS, no scripts and no external links; figures are embedded as
base64 PNG ``data:`` URIs, so the file can be mailed or archived as is.  The output
is deterministic: the same results give the same bytes.

Contents: the sweep's notice (``notice.txt``) as a banner; a summary (number of
configs, the verdict on the best one: fragile one bar later, its deflated Sharpe, and
"synthetic data" only when ``synthetic.txt`` says so);
the leaderboard sorted by Sharpe (PSR, DSR, break-even fee, see ``alphadev.stats``);
for the top K configs a key-metrics table with warnings about edges that live inside
one bar, equity (net, and gross vs net), the cost waterfall, drawdown, legs, rolling
Sharpe and volatility, returns histogram, then the signal (rolling IC, IC histogram,
IC decay, quantile returns, rank autocorrelation); the best config's monthly returns,
worst drawdowns, monthly IC and cumulative return per alpha quantile; the out-of-
sample validation when ``validation/`` holds one whole build (``python -m alphadev
validate``; read with ``alphadev.out_of_sample.files.read_validation``); and over the
whole sweep Sharpe heatmaps over pairs of grid dimensions, turnover vs Sharpe and the
distribution of Sharpe ratios against the expected best of N_eff unskilled trials.

Data sources: ``config.json``, ``metrics.json`` and ``sequences/returns.parquet``.  The
leaderboard is ``comparison.csv`` when its (name, fingerprint) rows are exactly the
result folders: it was deflated over all the sweep's configs, failed ones included, so
the report shows the DSR the sweep wrote.  Otherwise the same function
(``alphadev.comparison.comparison_table``) builds it over the folders on disk.

``build_tear_sheet(folder)`` writes the same per-config panels for one config.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from alphadev.comparison import (
    SETTING_COLUMNS,
    comparison_table,
    deflation,
    lag_fragile,
    lags_text,
    read_comparison_table,
    sharpe_at_lags,
)
from alphadev.config import lag_text
from alphadev.layout import ResultDir, SweepDir, warn_damaged
from alphadev.metrics import FRAGILE_RATIO, SHORT_SAMPLE_DAYS, is_short_sample
from alphadev.out_of_sample.files import (
    FORMAT,
    Validation,
    ValidationSummary,
    read_validation,
    sweep_identities,
)
from alphadev.report.layout import (
    SHORT_MARK,
    banner,
    figure,
    finite,
    is_number,
    name,
    note,
    num,
    page,
    pct,
    plain,
    section,
    short_sample_note,
    stamp,
    table,
)
from alphadev.report.tearsheet import (
    ConfigView,
    config_dir_of,
    detail_panels,
    edge_warnings,
    key_metrics,
    load_view,
    performance_panels,
    signal_panels,
)
from alphadev.results import BacktestResult, class_name, load_result
from alphadev.search import held_out_verdict
from alphadev.search import read_summary as read_search_summary
from alphadev.search import read_trials as read_search_trials
from alphadev.store import atomic_write, read_notice, read_synthetic
from alphadev.validation import check_scalar
from alphadev.version import __version__

log = logging.getLogger(__name__)

MAX_HEATMAPS = 6
DSR_CONFIDENCE = 0.95
CONTENTS_META = "alphadev-report-contents"
"""``<meta>`` naming what the report holds (``top=5 detailed=5 ic-decay=5 factor=5``);
the Luigi ``Report`` task is complete only when its report has the IC decay."""
EXTRA_SETTINGS = ("execution_delay", "execution_lag", "slippage_rate")
"""Config fields read from ``config.json`` when the comparison table lacks them
(results written before they existed count as 0)."""
SHORT_NAMES = {
    "trading_fee_rate": "fee", "execution_delay": "delay", "execution_lag": "lag",
    "slippage_rate": "slippage",
    "gross_exposure": "exposure",
}


# ---------------------------------------------------------------------- reading
def result_dirs(save_dir: str | os.PathLike) -> list[Path]:
    """Result folders of a sweep (``SweepDir.result_folders``), whole or not."""
    return [folder.path for folder in _result_folders(SweepDir.of(save_dir))]


def _result_folders(sweep_dir: SweepDir) -> list[ResultDir]:
    if not sweep_dir.root.is_dir():
        raise FileNotFoundError(f"results directory {str(sweep_dir)!r} does not exist")
    return sweep_dir.result_folders()


class SweepFolders(NamedTuple):
    """The whole results of a sweep and the folders left out as damaged."""

    results: list[BacktestResult]
    damaged: list[tuple[str, str]]  # (folder name, what makes it not whole)


def read_sweep(save_dir: str | os.PathLike) -> SweepFolders:
    """Every whole result of ``save_dir`` (sequences are read lazily); a damaged folder
    is skipped with a warning, as ``Backtester.load`` and ``validate`` skip it."""
    results, damaged = [], []
    for folder in _result_folders(SweepDir.of(save_dir)):
        problem = folder.check().problem
        if problem is None:
            results.append(load_result(folder.path))
        else:
            warn_damaged(folder.path, problem, "skipped")
            damaged.append((folder.name, problem))
    return SweepFolders(results, damaged)


def load_sweep(save_dir: str | os.PathLike) -> list[BacktestResult]:
    """Every whole saved result of ``save_dir`` (see ``read_sweep``)."""
    return read_sweep(save_dir).results


def _candidates(table: pd.DataFrame) -> list[str]:
    names = ["alpha"] if "alpha" in table.columns else []
    names += [c for c in table.columns if c.startswith("alpha.")]
    names += [c for c in dict.fromkeys((*SETTING_COLUMNS, *EXTRA_SETTINGS)) if c in table.columns]
    return [c for c in names if _as_text(table[c]).nunique() > 1]


def _as_text(column: pd.Series) -> pd.Series:
    """Cells as display text; a parameter another alpha class lacks reads "None"."""
    return column.map(plain)


def couplings(table: pd.DataFrame) -> dict[str, list[str]]:
    """Varying columns that move together: each kept dimension -> the columns it
    determines one-to-one (e.g. ``open_quantile`` set with ``close_quantile`` as one
    pair), which would only repeat it in the leaderboard and the heatmaps."""
    text = table[_candidates(table)].apply(_as_text)
    kept: dict[str, list[str]] = {}
    for column in text.columns:
        for dim, partners in kept.items():
            pairs = text[[dim, column]].drop_duplicates()
            if len(pairs) == text[dim].nunique() == text[column].nunique():
                partners.append(column)
                break
        else:
            kept[column] = []
    return kept


def grid_dimensions(table: pd.DataFrame) -> list[str]:
    """Columns that vary across configs: ``alpha.*`` parameters, then settings; a column
    that moves one-to-one with an earlier one is left out (see ``couplings``)."""
    return list(couplings(table))


def sweep_table(
    results: Sequence[BacktestResult], comparison: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The comparison table of ``results``, sorted by Sharpe (best first).

    ``comparison`` (``comparison.csv`` read back) is used when its (name, fingerprint)
    rows are exactly those of ``results``, since it was deflated over every config of
    the sweep; otherwise ``comparison_table`` deflates over ``results``.  Adds ``rank``
    (1 = best Sharpe) and ``label`` (``#rank`` and the varying grid values); ``attrs``
    hold the numbers behind ``dsr`` (``deflation``).
    """
    identities = sorted((r.name, r.fingerprint) for r in results)
    if comparison is not None and sorted(
        zip(comparison["name"], comparison["fingerprint"])
    ) == identities:
        table = comparison.copy()
    else:
        table = comparison_table(results)
    table.attrs.update(deflation(table))
    by_name = {r.name: r.config_dict for r in results}
    for field in EXTRA_SETTINGS:
        if field not in table.columns:
            table[field] = [_setting(field, by_name[name].get(field, 0))
                            for name in table["name"]]
    table["sharpe"] = pd.to_numeric(table["sharpe"], errors="coerce")
    table["alpha"] = [class_name(str(c)) for c in table["alpha_class"]]
    table = table.sort_values(["sharpe", "name"], ascending=[False, True], na_position="last",
                              kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    groups = couplings(table)
    table["label"] = [_label(row, groups) for _, row in table.iterrows()]
    return table


def _setting(field: str, value: Any) -> Any:
    """A config.json setting as the comparison table shows it."""
    if field == "execution_lag":
        return lag_text(value)
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def dim_title(dim: str, partners: Sequence[str] = ()) -> str:
    """Short display name of a grid dimension (with the columns coupled to it)."""
    names = [SHORT_NAMES.get(d, d.removeprefix("alpha.")) for d in (dim, *partners)]
    suffixes = {n.partition("_")[2] for n in names}
    if len(names) > 1 and len(suffixes) == 1 and "" not in suffixes:
        return "/".join(n.partition("_")[0] for n in names) + "_" + suffixes.pop()
    return "/".join(names)


def dim_value(row: pd.Series, dim: str, partners: Sequence[str] = ()) -> str:
    return "/".join(plain(row[d]) for d in (dim, *partners))


def _label(row: pd.Series, groups: dict[str, list[str]], dims: Sequence[str] | None = None,
           ) -> str:
    chosen = list(groups) if dims is None else [d for d in groups if d in dims]
    if not chosen:
        return f"#{row['rank']} {row['name']}" if dims is None else f"#{row['rank']}"
    parts = [f"{dim_title(d, groups[d])}={dim_value(row, d, groups[d])}" for d in chosen]
    return f"#{row['rank']} " + ", ".join(parts)


# ---------------------------------------------------------------------- rendering
def build_report(
    save_dir: str | os.PathLike, top: int = 5, out: str | os.PathLike | None = None
) -> Path:
    """Write the HTML report of ``save_dir`` to ``out`` (default ``save_dir/report.html``).

    ``save_dir`` may also be one config's folder (``config.json`` and ``sequences/``):
    then its tear sheet is written (``build_tear_sheet``).
    """
    top = check_scalar("top", top, integer=True, low=1)
    if config_dir_of(save_dir) is not None:
        return build_tear_sheet(save_dir, out)
    results, damaged = read_sweep(save_dir)
    if not results:
        raise ValueError(
            f"no results in {str(save_dir)!r}: expected subfolders holding sequences/ "
            "(written by Backtester.run_all(save_dir=...) or the Luigi Sweep), or one "
            "config's folder holding config.json for its tear sheet"
            + (f"; damaged folders skipped: {[name for name, _ in damaged]}" if damaged else "")
        )
    root = SweepDir.of(save_dir)
    target = Path(out) if out is not None else root.report
    document = render_report(
        results, top=top, source=str(save_dir),
        comparison=read_comparison_table(root.comparison), notice=read_notice(root),
        validation=_current_validation(root), damaged=damaged,
        synthetic=read_synthetic(root), search=_search_records(root),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return target


class SearchRecords(NamedTuple):
    """An adaptive search's ``summary.json`` and ``trials.csv``."""

    summary: dict[str, Any]
    trials: pd.DataFrame


def _search_records(root: SweepDir) -> SearchRecords | None:
    summary, trials = read_search_summary(root), read_search_trials(root)
    if summary is None or trials is None:
        return None
    return SearchRecords(summary, trials)


def _search_section(search: SearchRecords | None, plots: Any) -> str:
    """The trials of an adaptive search: objective by trial with the best so far, the
    chosen trial in-sample and held out, and the parameter importances."""
    if search is None:
        return ""
    record, trials = search
    metric, holdout = record["metric"], float(record["holdout"])
    split = pd.Timestamp(record["split"])
    best = record.get("best") or {}
    parts = [note(
        f"{record['n_trials']} trials ({record['n_configs']} distinct configs, "
        f"{record['failed']} failed; every one counts in the DSR and the validation), "
        f"sampler {html.escape(str(record['sampler']))}. The sampler saw the {metric} of "
        f"the bars before {split:%Y-%m-%d %H:%M} only; the last {holdout:.0%} of the "
        "period is held out.")]
    if best:
        inside, outside = best.get("in_sample"), best.get("held_out")
        parts.append(note(html.escape(held_out_verdict(metric, inside, outside, holdout))))
        parts.append(table(
            ["chosen trial", "config", f"in-sample {metric}", f"held-out {metric}"],
            [[str(best["trial"]), name(str(best["config"])), num(inside, 2),
              num(outside, 2) if holdout > 0 else "no held-out part"]]))
    parts.append(figure(plots.search_history, trials, metric, record["direction"],
                        alt="objective by trial"))
    importances = record.get("importances") or {}
    if importances:
        parts.append(figure(plots.parameter_importances, importances,
                            alt="parameter importances"))
    return section("Adaptive search", "\n".join(parts), anchor="search")


def _current_validation(save_dir: SweepDir | Path) -> Validation | None:
    """``validation/`` when it was built from the sweep's current results; a stale one
    (a config recomputed or added since) is left out with a warning, never shown."""
    root = SweepDir.of(save_dir)
    validation = read_validation(root)
    if validation is None:
        return None
    built_format = validation.summary["built_from"].get("format")
    if built_format != FORMAT:
        log.warning("%s is of format %s, not %d (format 1 ranked duplicate and never-trading "
                    "configs); the report leaves it out: run python -m alphadev validate %s "
                    "again", root.validation.path, built_format, FORMAT, root)
        return None
    built = {tuple(pair) for pair in validation.summary["built_from"]["configs"]}
    if built != sweep_identities(root):
        log.warning("%s was built from other results than the sweep's current ones; the "
                    "report leaves it out: run python -m alphadev validate %s again",
                    root.validation.path, root)
        return None
    return validation


def render_report(
    results: Sequence[BacktestResult], top: int = 5, source: str = "",
    comparison: pd.DataFrame | None = None, notice: str | None = None,
    validation: Validation | None = None, damaged: Sequence[tuple[str, str]] = (),
    synthetic: bool = False, search: SearchRecords | None = None,
) -> str:
    """The report as an HTML string (see the module docstring and ``sweep_table``);
    ``validation`` is ``alphadev.out_of_sample.files.read_validation(save_dir)``,
    ``damaged`` the (folder, problem) pairs ``read_sweep`` skipped, ``synthetic``
    whether the sweep's data are synthetic (``read_synthetic``), ``search`` an adaptive
    search's summary and trials."""
    from alphadev.report import plots

    table = sweep_table(results, comparison)
    by_name = {r.name: r for r in results}
    leaders = table.head(top)
    labels = dict(zip(table["name"], table["label"]))
    groups = couplings(table)
    dims = list(groups)
    shown = couplings(leaders) if len(leaders) > 1 else {}
    varying = [d for d in dims if d in shown]
    signal_dims = [d for d in varying if d == "alpha" or d.startswith("alpha.")]
    views = [
        load_view(by_name[row["name"]], _label(row, groups, varying),
                  _label(row, groups, signal_dims))
        for _, row in leaders.iterrows()
    ]
    sections = [
        banner(notice) if notice else "",
        _summary(table, source, top, synthetic, damaged),
        _search_section(search, plots),
        section("Leaderboard", _leaderboard(table, groups, top)),
        _top_sections(table, views, groups, plots),
        section(f"Best config in detail: {views[0].label}",
                note(html.escape(str(leaders.iloc[0]["name"])))
                + detail_panels(views[0], plots)),
        _validation_section(validation, table, by_name, plots),
        _sweep_sections(table, groups, leaders, labels, plots),
        _footer(synthetic),
    ]
    meta = {CONTENTS_META: (
        f"top={top} detailed={len(views)} "
        f"ic-decay={sum(v.decay is not None for v in views)} "
        f"factor={sum(v.factor is not None for v in views)}"
    )}
    return page(f"alphadev sweep report: {Path(source).name or source}",
                "\n".join(s for s in sections if s), meta)


def _top_sections(
    table: pd.DataFrame, views: list[ConfigView], groups: dict[str, list[str]], plots: Any,
) -> str:
    n = len(views)
    constant = [d for d in groups
                if _as_text(table[d].head(n)).nunique() == 1]  # not one coupled with another
    first = table.iloc[0]
    shared = ", ".join(f"{dim_title(d, groups[d])}={dim_value(first, d, groups[d])}"
                       for d in constant)
    warnings = []
    for view, (_, row) in zip(views, table.head(n).iterrows()):
        warnings += edge_warnings(view, _delayed_sharpe(table, row, groups))
    metrics = key_metrics(views) + (
        note(f"All {n} share {html.escape(shared)}.") if shared and n > 1 else ""
    ) + "".join(warnings)
    return "\n".join([
        section(f"Top {n} configs: key metrics", metrics),
        section(f"Top {n} configs: performance", performance_panels(views, plots)),
        section(f"Top {n} configs: signal", signal_panels(views, plots)),
    ])


def _delayed_sharpe(table: pd.DataFrame, row: pd.Series, groups: dict[str, list[str]]
                    ) -> float | None:
    """Sharpe of the config equal to ``row`` but traded one bar later: its own
    ``sharpe_next_bar`` (docs/semantics.md#next-bar), or for a result saved before that
    existed, its sibling with ``execution_delay`` 1 when the sweep varies it."""
    own = row.get("sharpe_next_bar")
    if own is not None and finite(own):
        return float(own)
    if "execution_delay" not in table.columns or table["execution_delay"].nunique() < 2:
        return None
    if int(row["execution_delay"] or 0) != 0:
        return None
    others = [d for d in groups if d != "execution_delay"]
    others += [p for d in others for p in groups[d]]
    match = table["execution_delay"].fillna(0).astype(int) == 1
    for dim in others:
        match &= _as_text(table[dim]) == plain(row[dim])
    values = table.loc[match, "sharpe"].dropna()
    return float(values.iloc[0]) if len(values) else None


def _validation_section(
    validation: Validation | None, table: pd.DataFrame, by_name: dict[str, BacktestResult],
    plots: Any,
) -> str:
    """Out-of-sample checks written by ``python -m alphadev validate`` (if any): the
    walk-forward equity against the in-sample choice over the same bars, the folds, PBO
    with its logit histogram and the degradation scatter."""
    if validation is None:
        return ""
    pbo = validation.summary
    walk = validation.walk_forward
    best = _in_sample_name(pbo, table)
    # The in-sample choice over the same bars (no bar of its own: no return, 0).
    in_sample = load_view(by_name[best], best).returns["pnl"].reindex(walk.index).fillna(0.0)
    folds = validation.folds
    boundaries = list(pd.to_datetime(folds["test_start"], utc=True))
    parts = [
        figure(plots.oos_equity, walk["pnl"], in_sample, best, boundaries,
               alt="out-of-sample equity"),
        note(f"In-sample choice: {name(best)} (the best config over the whole period), "
             "drawn over the walk-forward bars. Walk-forward: in each fold the config with "
             "the best train-window metric, traded in the following test window."),
        _folds_table(folds),
        _pbo_summary(pbo),
        figure(plots.lambda_histogram, pbo.get("lambdas") or [], pbo.get("pbo"),
               alt="logit histogram with PBO"),
    ]
    degradation = pbo.get("degradation") or {}
    parts.append(figure(plots.degradation_scatter, pbo.get("in_sample_sharpe") or [],
                        pbo.get("out_of_sample_sharpe") or [], degradation.get("slope"),
                        degradation.get("intercept"), alt="degradation scatter"))
    return section("Out-of-sample validation", "\n".join(parts))


def _in_sample_name(pbo: ValidationSummary, table: pd.DataFrame) -> str:
    """The whole-period best config (``in_sample_best_config`` of pbo.json; without it,
    the best Sharpe of the leaderboard, the default selection metric)."""
    name = pbo.get("in_sample_best_config")
    return str(name) if name in set(table["name"]) else str(table.iloc[0]["name"])


def _folds_table(folds: pd.DataFrame) -> str:
    rows = []
    for _, fold in folds.iterrows():
        rows.append([
            str(fold["fold"]), f"{stamp(fold['train_start'])} .. {stamp(fold['train_end'])}",
            f"{stamp(fold['test_start'])} .. {stamp(fold['test_end'])}",
            name(str(fold["chosen"])),
            num(fold["train_metric"], 3), num(fold["test_metric"], 3),
            num(fold["best_test_metric"], 3),
        ])
    return "<h3>Walk-forward folds</h3>" + table(
        ["fold", "train", "test", "chosen", "train metric", "test metric", "best test metric"],
        rows, css="board folds") + note("Windows: start included, end excluded (UTC).")



def _pbo_summary(pbo: ValidationSummary) -> str:
    rows = [
        ["probability of backtest overfitting (PBO)", pct(pbo.get("pbo"), 1).lstrip("+")],
        ["probability of loss (winner's OOS Sharpe < 0)",
         pct(pbo.get("probability_of_loss"), 1).lstrip("+")],
        ["combinations / blocks / distinct trials / configs",
         f"{pbo.get('n_combinations')} / {pbo.get('blocks')} / {pbo.get('n_trials')} / "
         f"{pbo.get('n_configs')}"],
    ]
    if pbo.get("pbo") is None:
        rows.append(["PBO undefined", html.escape(str(pbo.get("pbo_undefined_reason")))])
    undefined = pbo.get("configs_undefined_in_pbo") or []
    if undefined:
        rows.append(["not ranked: never trade (no Sharpe)", ", ".join(map(name, undefined))])
    duplicates = pbo.get("duplicate_configs_in_pbo") or {}
    if duplicates:
        rows.append(["not ranked: same pnl as (one trial)",
                     ", ".join(f"{name(a)} = {name(b)}" for a, b in duplicates.items())])
    for title, metrics in (("walk-forward", pbo.get("walk_forward")),
                           ("in-sample best", pbo.get("in_sample_best"))):
        if metrics:
            rows.append([f"{title}: Sharpe / ann. return / max DD",
                         f"{num(metrics.get('sharpe'), 2)} / "
                         f"{pct(metrics.get('annualized_return'))} / "
                         f"{pct(metrics.get('max_drawdown'))}"])
    return table(None, rows, css="board metrics")


def _sweep_sections(
    table: pd.DataFrame, groups: dict[str, list[str]], leaders: pd.DataFrame,
    labels: dict[str, str], plots: Any,
) -> str:
    classes = list(dict.fromkeys(table["alpha_class"].astype(str)))
    if len(classes) > 1:
        stability = []
        for alpha_class in classes:
            rows = table[table["alpha_class"].astype(str) == alpha_class]
            stability.append(f"<h3>{html.escape(class_name(alpha_class))} "
                             f"({len(rows)} configs)</h3>")
            stability += _grid_panels(rows, couplings(rows), plots)
    else:
        stability = _grid_panels(table, groups, plots)
    stability.append(figure(plots.turnover_vs_sharpe, table, list(leaders["name"]), labels,
                            alt="turnover vs Sharpe"))
    sharpe, sr0, unit = _sharpe_for_distribution(table)
    stability.append(figure(plots.sharpe_distribution, sharpe, sr0,
                            table.attrs.get("n_effective_trials", len(table)),
                            alt=f"distribution of Sharpe ratios ({unit})"))
    return section("Parameter stability and selection bias", "\n".join(stability))


def _grid_panels(table: pd.DataFrame, groups: dict[str, list[str]], plots: Any) -> list[str]:
    """Sharpe over pairs of grid dimensions (or along the only one) of configs that share
    one alpha class, so one axis never mixes two classes' parameters."""
    panels: list[str] = []
    dims = list(groups)
    plot_table = table.copy()
    titles = {d: dim_title(d, groups[d]) for d in dims}
    for dim in dims:
        plot_table[titles[dim]] = [
            dim_value(row, dim, groups[dim]) if groups[dim] or not is_number(row[dim])
            else row[dim] for _, row in table.iterrows()
        ]
    pairs = list(combinations(dims, 2))
    for x, y in pairs[:MAX_HEATMAPS]:
        panels.append(figure(plots.sharpe_heatmap, plot_table, titles[x], titles[y],
                             alt=f"Sharpe heatmap {titles[y]} x {titles[x]}",
                             caption="Colour and numbers: mean Sharpe (annualised) over the "
                                     "other grid dimensions."))
    if len(pairs) > MAX_HEATMAPS:
        panels.append(note(f"{len(pairs) - MAX_HEATMAPS} more pairs of grid dimensions "
                           "not shown."))
    if len(dims) == 1:
        panels.append(figure(plots.sharpe_by_dimension, plot_table, titles[dims[0]],
                             alt=f"Sharpe by {titles[dims[0]]}"))
    if not dims:
        panels.append(note("No grid dimension varies across these configs."))
    return panels


# ---------------------------------------------------------------------- pieces
def _summary(table: pd.DataFrame, source: str, top: int, synthetic: bool,
             damaged: Sequence[tuple[str, str]] = ()) -> str:
    n = len(table)
    n_trials = table.attrs["n_trials"]
    best = table.iloc[0]
    sr0 = table.attrs.get("expected_max_sharpe")
    ppy = _common_periods_per_year(table)
    if sr0 is None:
        sr0_text = "n/a"
    elif ppy:
        sr0_text = f"{sr0 * math.sqrt(ppy):.2f} annualised ({sr0:.4f} per bar)"
    else:
        sr0_text = f"{sr0:.4f} per bar"
    dsr = best.get("dsr")
    if dsr is None or not np.isfinite(dsr):
        verdict = "The deflated Sharpe ratio of the best config is undefined."
    elif dsr >= DSR_CONFIDENCE:
        verdict = (f"Deflated Sharpe ratio of the best config: <b>{dsr:.3f}</b> &ge; "
                   f"{DSR_CONFIDENCE}: its Sharpe is unlikely to be luck of the search.")
    else:
        verdict = (f"Deflated Sharpe ratio of the best config: <b>{dsr:.3f}</b> &lt; "
                   f"{DSR_CONFIDENCE}: its Sharpe may well be luck of trying {n_trials} configs "
                   f"({table.attrs.get('n_effective_trials', n_trials)} effectively "
                   "independent).")
    verdict = _fragility_verdict(table, top) + verdict
    if synthetic:
        verdict += (" <b>Synthetic data: these results say nothing about a real "
                    "market.</b>")
    period = ", ".join(
        sorted({f"{s} .. {e}" for s, e in zip(table["start_date"], table["end_date"])})
    )
    frequencies = ", ".join(sorted({str(f) for f in table["frequency"]}))
    trials = f"{n if n == n_trials else f'{n} of {n_trials}'}"
    n_eff = table.attrs.get("n_effective_trials", n_trials)
    if "n_effective_trials" in table.columns:
        trials += (f"; effective number of independent trials N<sub>eff</sub> = {n_eff} "
                   "(configs whose returns correlate at 0.9 or more count once)")
    items = [
        ("results", html.escape(source)),
        ("configs (N)", f"{trials} (top {min(top, n)} detailed below)"),
        ("period", html.escape(period)),
        ("bars", html.escape(frequencies)),
        ("best", f"{html.escape(str(best['name']))} (Sharpe {num(best['sharpe'], 2)})"),
        (f"expected best Sharpe of {n_eff} independent unskilled trials", sr0_text),
    ]
    if damaged:
        items.append((
            f"damaged folders skipped ({len(damaged)})",
            "<br>".join(f"{html.escape(name)}: {html.escape(problem)}"
                        for name, problem in damaged),
        ))
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in items)
    return (
        f"<h1>Sweep report</h1>\n<table class='summary'>{rows}</table>\n"
        f"<p class='verdict'>{verdict}</p>"
    )


def _fragility_verdict(table: pd.DataFrame, top: int) -> str:
    """First words of the verdict: whether the best configs survive one bar of delay,
    and (a sweep over ``execution_lag``) the next lag inside the bar."""
    return _delay_verdict(table, top) + _lag_verdict(table, top)


def _lag_verdict(table: pd.DataFrame, top: int) -> str:
    at_lags = sharpe_at_lags(table)
    if at_lags is None:
        return ""
    fragile = lag_fragile(at_lags.head(top))
    if not fragile.any():
        return ""
    first, second = at_lags.columns[:2]
    best = at_lags.iloc[0]
    lead = (f"The best config keeps {num(best[second], 2)} of its Sharpe "
            f"{num(best[first], 2)} at execution_lag={html.escape(str(second))} "
            f"(against {html.escape(str(first))}): its edge dies inside one bar. "
            if fragile.iloc[0] else "")
    return (f"<b class='bad'>{lead}{int(fragile.sum())} of the top {len(fragile)} configs "
            f"keep less than {FRAGILE_RATIO:.0%} of their Sharpe at execution_lag="
            f"{html.escape(str(second))}.</b> ")


def _delay_verdict(table: pd.DataFrame, top: int) -> str:
    if "fragile" not in table.columns:
        return ""
    flags = [str(v).strip().lower() in ("true", "1", "1.0") for v in table["fragile"].head(top)]
    best = table.iloc[0]
    later = best.get("sharpe_next_bar")
    if flags and flags[0]:
        return (f"<b class='bad'>The best config is fragile: its Sharpe "
                f"{num(best['sharpe'], 2)} is {num(later, 2)} one bar later "
                f"(execution_delay + 1); its edge does not survive one bar of delay and "
                f"cannot be traded as it is.</b> {sum(flags)} of the top {len(flags)} "
                f"configs lose more than {1 - FRAGILE_RATIO:.0%} of their Sharpe one bar "
                "later. ")
    if any(flags):
        return (f"<b class='bad'>{sum(flags)} of the top {len(flags)} configs lose more "
                f"than {1 - FRAGILE_RATIO:.0%} of their Sharpe one bar later (execution_delay "
                "+ 1).</b> ")
    return ""


def _footer(synthetic: bool) -> str:
    data = "Synthetic data: these results say nothing about a real market. " if synthetic \
        else ""
    return (f"<footer>{data}Written by alphadev {html.escape(__version__)} from the saved "
            "results folder; figures embedded, no network access needed.</footer>")


LEADERBOARD_COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("sharpe", "Sharpe", lambda v: num(v, 2)),
    ("sharpe_next_bar", "Sharpe one bar later", lambda v: num(v, 2)),
    ("dsr", "DSR", lambda v: num(v, 3)),
    ("psr", "PSR", lambda v: num(v, 3)),
    ("annualized_return", "ann. return", pct),
    ("max_drawdown", "max DD", pct),
    ("ic_mean", "IC mean", lambda v: num(v, 4)),
    ("total_funding", "funding (sum)", pct),
    ("cost_share", "costs / gross", pct),
    ("avg_turnover", "turnover /bar", lambda v: num(v, 4)),
    ("breakeven_fee", "break-even fee (bp)", lambda v: num(v * 1e4 if finite(v) else v, 2)),
    ("capacity", "capacity (quote)", lambda v: f"{v:.3g}" if finite(v) else num(v, 0)),
    ("long_sharpe", "long Sharpe", lambda v: num(v, 2)),
    ("short_sharpe", "short Sharpe", lambda v: num(v, 2)),
]


def _leaderboard(table: pd.DataFrame, groups: dict[str, list[str]], top: int) -> str:
    columns = [c for c in LEADERBOARD_COLUMNS if c[0] in table.columns
               and not (c[0] == "capacity" and table[c[0]].isna().all())]
    at_lags = sharpe_at_lags(table)
    if at_lags is not None:  # docs/semantics.md#execution-lag
        table = table.assign(sharpe_by_lag=lags_text(at_lags))
        at = next((k + 1 for k, c in enumerate(columns) if c[0] == "sharpe_next_bar"), 1)
        columns.insert(at, ("sharpe_by_lag", "Sharpe by execution lag", html.escape))
    head = ["#", "config"] + [html.escape(dim_title(d, p)) for d, p in groups.items()]
    head += [title for _, title, _ in columns]
    lines = ["<div class='scroll'><table class='board leader'><thead><tr>"]
    lines += [f"<th>{h}</th>" for h in head]
    lines.append("</tr></thead><tbody>")
    for _, row in table.iterrows():
        css = " class='top'" if row["rank"] <= top else ""
        cells = [str(row["rank"]), name(str(row["name"]))]
        cells += [html.escape(dim_value(row, d, p)) for d, p in groups.items()]
        for key, _, fmt in columns:
            text = fmt(row[key])
            if key == "dsr" and finite(row[key]) and row[key] >= DSR_CONFIDENCE:
                text = f"<b class='good'>{text}</b>"
            if key == "annualized_return" and _short(row):
                text += SHORT_MARK
            cells.append(text)
        lines.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    lines.append("</tbody></table></div>")
    if any(_short(row) for _, row in table.iterrows()):
        lines.append(short_sample_note(SHORT_SAMPLE_DAYS))
    lines.append(note(
        "Sorted by annualised Sharpe; highlighted rows are detailed below. Returns and "
        "drawdowns in percent. "
        "PSR = probability that the true Sharpe exceeds 0; DSR = the same against the "
        f"expected best Sharpe of {table.attrs.get('n_effective_trials', table.attrs['n_trials'])}"
        " independent unskilled trials (Bailey &amp; "
        "L&oacute;pez de Prado 2014; per-bar Sharpe, skewness and kurtosis of the net returns). "
        "Break-even fee: the fee rate per unit traded at which the net cumulative return "
        "is zero (blank when the gross return is not positive). Tear sheet of one config: "
        "<code>python -m alphadev report SAVE_DIR/NAME</code>."
    ))
    return "".join(lines)


def _short(row: pd.Series) -> bool:
    return is_short_sample(row.get("num_periods"), row.get("periods_per_year"))


def _common_periods_per_year(table: pd.DataFrame) -> float | None:
    values = pd.to_numeric(table.get("periods_per_year"), errors="coerce").dropna().unique()
    return float(values[0]) if len(values) == 1 else None


def _sharpe_for_distribution(table: pd.DataFrame) -> tuple[pd.Series, float | None, str]:
    """Annualised Sharpe and SR0 when all configs share a frequency, else per bar."""
    sr0 = table.attrs.get("expected_max_sharpe")
    ppy = _common_periods_per_year(table)
    if ppy:
        return table["sharpe"], None if sr0 is None else sr0 * math.sqrt(ppy), "annualised"
    return table["sharpe_per_period"], sr0, "per bar"


def report_contents(path: str | os.PathLike) -> dict[str, int] | None:
    """What a written report holds (its ``CONTENTS_META`` tag: ``top``, ``detailed``,
    ``ic-decay``, ``factor``), or None when the file is missing or has no such tag."""
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    found = re.search(rf"<meta name='{CONTENTS_META}' content='([^']*)'>", head)
    if found is None:
        return None
    pairs = (item.partition("=") for item in found.group(1).split())
    return {key: int(value) for key, _, value in pairs if value.isdigit()}


# ---------------------------------------------------------------------- tear sheet
def build_tear_sheet(folder: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write one config's tear sheet to ``out`` (default ``folder/tear_sheet.html``).

    PSR and DSR come from the sweep's ``comparison.csv`` next to the folder when it
    lists this config (deflated over the whole sweep), else they are left out.
    """
    root = config_dir_of(folder)
    if root is None:
        raise FileNotFoundError(
            f"{str(folder)!r} is not a config's results folder: expected config.json and "
            "sequences/ inside (pass the sweep's directory for the sweep report)"
        )
    result = load_result(root)
    target = Path(out) if out is not None else ResultDir(root).tear_sheet
    sweep_dir = SweepDir(root.parent)
    comparison = read_comparison_table(sweep_dir.comparison)
    document = render_tear_sheet(result, comparison, read_notice(sweep_dir),
                                 read_synthetic(sweep_dir))
    with atomic_write(target) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return target


def render_tear_sheet(result: BacktestResult, comparison: pd.DataFrame | None = None,
                      notice: str | None = None, synthetic: bool = False) -> str:
    """One config's tear sheet as an HTML string."""
    from alphadev.report import plots

    view = load_view(result, result.name)
    config = result.config_dict
    settings = {k: config[k] for k in ("quantile", *SETTING_COLUMNS) if k in config}
    settings.update({k: _setting(k, config.get(k, 0))
                     for k in EXTRA_SETTINGS})  # saved only when not 0
    items = [("config", name(result.name)),
             ("alpha", html.escape(f"{class_name(str(config.get('alpha_class')))}"
                                   f"({config.get('alpha_kwargs')})")),
             ("settings", html.escape(", ".join(f"{k}={plain(v)}" for k, v in settings.items())))]
    if comparison is not None and result.name in set(comparison["name"]):
        row = comparison.set_index("name").loc[result.name]
        items.append(("deflated Sharpe", f"PSR {num(row.get('psr'), 3)}, DSR "
                      f"{num(row.get('dsr'), 3)} over {row.get('n_trials')} trials of the sweep"))
    summary = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in items)
    body = [
        banner(notice) if notice else "",
        f"<h1>Tear sheet</h1>\n<table class='summary'>{summary}</table>",
        section("Key metrics", key_metrics([view]) + "".join(edge_warnings(view))),
        section("Performance", performance_panels([view], plots)),
        section("Returns in detail", detail_panels(view, plots)),
        section("Signal", signal_panels([view], plots)),
        _footer(synthetic),
    ]
    return page(f"alphadev tear sheet: {result.name}", "\n".join(b for b in body if b))
