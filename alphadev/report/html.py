"""The sweep report: one self-contained HTML file from a results directory.

``build_report(save_dir)`` reads every result folder of ``save_dir`` (a subfolder
holding ``sequences/``, names starting with '.' skipped), and writes a single HTML
file with inline CSS, no scripts and no external links; figures are embedded as
base64 PNG ``data:`` URIs, so the file can be mailed or archived as is.

Contents: a summary (number of configs, the deflated-Sharpe verdict on the best one),
the leaderboard of all configs sorted by Sharpe (with PSR, DSR and break-even fee,
see ``alphadev.stats``), then for the top K configs equity, drawdown, long vs short
leg, rolling IC, IC decay and quantile returns, then over the whole sweep heatmaps of
Sharpe over each pair of grid dimensions, turnover vs Sharpe and the distribution of
Sharpe ratios against the expected best of as many unskilled configs.

Data sources: ``config.json``, ``metrics.json`` and ``sequences/returns.parquet``
(only its needed columns; positions and trades are never read).  The leaderboard is
``comparison.csv`` when its (name, fingerprint) rows are exactly the result folders: it
was deflated over all the sweep's configs, failed ones included, so the report shows
the DSR the sweep wrote.  Otherwise the same function
(``alphadev.comparison.comparison_table``) builds it over the folders on disk.

IC decay and quantile returns need the alpha and the prices, which a results folder
does not keep: they are shown when ``sequences/ic_decay.parquet`` /
``sequences/quantile_returns.parquet`` exist (written by
``alphadev.analysis.write_ic_decay``), and the report says how to get them otherwise.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import os
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphadev.analysis import IC_DECAY_FILE, QUANTILE_RETURNS_FILE
from alphadev.comparison import (
    COMPARISON,
    SETTING_COLUMNS,
    comparison_table,
    deflation,
    read_comparison_table,
)
from alphadev.results import BacktestResult, load_result
from alphadev.store import atomic_write
from alphadev.validation import check_scalar

MAX_HEATMAPS = 6
DSR_CONFIDENCE = 0.95
REPORT_NAME = "report.html"


# ---------------------------------------------------------------------- reading
def result_dirs(save_dir: str | os.PathLike) -> list[Path]:
    """Result folders of a sweep: subfolders with ``sequences/``, hidden ones skipped."""
    root = Path(save_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {str(root)!r} does not exist")
    return sorted(
        entry for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and (entry / "sequences").is_dir()
    )


def load_sweep(save_dir: str | os.PathLike) -> list[BacktestResult]:
    """Every saved result of ``save_dir`` (sequences are read lazily)."""
    return [load_result(folder) for folder in result_dirs(save_dir)]


def grid_dimensions(table: pd.DataFrame) -> list[str]:
    """Columns that vary across configs: ``alpha.*`` parameters, then settings."""
    candidates = [c for c in table.columns if c.startswith("alpha.")]
    candidates += [c for c in SETTING_COLUMNS if c in table.columns]
    return [c for c in candidates if table[c].astype(str).nunique() > 1]


def sweep_table(
    results: Sequence[BacktestResult], comparison: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The comparison table of ``results``, sorted by Sharpe (best first).

    ``comparison`` (``comparison.csv`` read back) is used when its (name, fingerprint)
    rows are exactly those of ``results``, since it was deflated over every config of
    the sweep; otherwise ``comparison_table`` deflates over ``results``.  Adds ``rank``
    (1 = best Sharpe) and ``label`` (``#rank`` and the varying grid values, short
    enough for a legend); ``attrs`` hold the numbers behind ``dsr`` (``deflation``).
    """
    identities = sorted((r.name, r.fingerprint) for r in results)
    if comparison is not None and sorted(
        zip(comparison["name"], comparison["fingerprint"])
    ) == identities:
        table = comparison.copy()
    else:
        table = comparison_table(results)
    table.attrs.update(deflation(table))
    table["sharpe"] = pd.to_numeric(table["sharpe"], errors="coerce")
    table = table.sort_values(["sharpe", "name"], ascending=[False, True], na_position="last",
                              kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    dims = grid_dimensions(table)
    table["label"] = [_label(row, dims) for _, row in table.iterrows()]
    return table


def _label(row: pd.Series, dims: Sequence[str]) -> str:
    if not dims:
        return f"#{row['rank']} {row['name']}"
    parts = [f"{d.removeprefix('alpha.')}={_plain(row[d])}" for d in dims]
    return f"#{row['rank']} " + ", ".join(parts)


# ---------------------------------------------------------------------- rendering
def build_report(
    save_dir: str | os.PathLike, top: int = 5, out: str | os.PathLike | None = None
) -> Path:
    """Write the HTML report of ``save_dir`` to ``out`` (default ``save_dir/report.html``)."""
    top = check_scalar("top", top, integer=True, low=1)
    results = load_sweep(save_dir)
    if not results:
        raise ValueError(
            f"no results in {str(save_dir)!r}: expected subfolders holding sequences/ "
            "(written by Backtester.run_all(save_dir=...) or the Luigi Sweep)"
        )
    target = Path(out) if out is not None else Path(save_dir) / REPORT_NAME
    comparison = read_comparison_table(Path(save_dir) / COMPARISON)
    document = render_report(results, top=top, source=str(save_dir), comparison=comparison)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return target


def render_report(
    results: Sequence[BacktestResult], top: int = 5, source: str = "",
    comparison: pd.DataFrame | None = None,
) -> str:
    """The report as an HTML string (see the module docstring and ``sweep_table``)."""
    from alphadev.report import plots

    table = sweep_table(results, comparison)
    by_name = {r.name: r for r in results}
    leaders = table.head(top)
    labels = dict(zip(table["name"], table["label"]))
    chosen = [(labels[name], by_name[name]) for name in leaders["name"]]
    dims = grid_dimensions(table)

    sections = [
        _summary(table, source, top),
        _section("Leaderboard", _leaderboard(table, dims, top)),
        _top_sections(chosen, plots),
        _sweep_sections(table, dims, leaders, labels, plots),
    ]
    return _page(f"alphadev sweep report: {Path(source).name or source}", "\n".join(sections))


def _top_sections(chosen: list[tuple[str, BacktestResult]], plots: Any) -> str:
    frames = {
        label: _returns(result, ("equity", "long_return", "short_return", "ic"))
        for label, result in chosen
    }
    equity = {label: frame["equity"] for label, frame in frames.items()}
    legs = {label: frame[["long_return", "short_return"]] for label, frame in frames.items()}
    ic = {label: frame["ic"] for label, frame in frames.items()}
    window, window_label = _rolling_window(ic)

    performance = [
        _figure(plots.equity_curves, equity, alt="equity curves"),
        _figure(plots.drawdown_curves, equity, alt="drawdown curves"),
        _figure(plots.leg_curves, legs, alt="long and short leg"),
    ]
    signal = [_figure(plots.rolling_ic, ic, window, window_label, alt="rolling IC")]
    decay = _saved_frames(chosen, IC_DECAY_FILE, "lag", "ic")
    if decay:
        signal.append(_figure(plots.ic_decay, decay, alt="IC decay"))
    quantiles = _saved_frames(chosen, QUANTILE_RETURNS_FILE, "quantile", "mean_forward_return")
    if quantiles:
        signal.append(_figure(plots.quantile_returns, quantiles, alt="quantile returns"))
    if not decay or not quantiles:
        signal.append(
            "<p class='note'>IC decay and quantile returns need the alpha and prices, which "
            "a results folder does not keep. They are shown for configs whose folder holds "
            f"<code>sequences/{IC_DECAY_FILE}</code>: write it with "
            "<code>alphadev.analysis.write_ic_decay(result_dir, config)</code>, or compute "
            "them directly with <code>alphadev.analysis.signal_analysis(config)</code>.</p>"
        )
    return "\n".join(
        [
            _section(f"Top {len(chosen)} configs: performance", "\n".join(performance)),
            _section(f"Top {len(chosen)} configs: signal", "\n".join(signal)),
        ]
    )


def _sweep_sections(
    table: pd.DataFrame, dims: list[str], leaders: pd.DataFrame, labels: dict[str, str],
    plots: Any,
) -> str:
    stability: list[str] = []
    plot_table = table.copy()
    for dim in dims:
        plot_table[dim] = [_plain(v) if not _is_number(v) else v for v in plot_table[dim]]
    pairs = list(combinations(dims, 2))
    for x, y in pairs[:MAX_HEATMAPS]:
        stability.append(_figure(plots.sharpe_heatmap, plot_table, x, y,
                                 alt=f"Sharpe heatmap {y} x {x}"))
    if len(pairs) > MAX_HEATMAPS:
        stability.append(f"<p class='note'>{len(pairs) - MAX_HEATMAPS} more pairs of grid "
                         "dimensions not shown.</p>")
    if len(dims) == 1:
        stability.append(_figure(plots.sharpe_by_dimension, plot_table, dims[0],
                                 alt=f"Sharpe by {dims[0]}"))
    if not dims:
        stability.append("<p class='note'>No grid dimension varies across these configs.</p>")
    stability.append(_figure(plots.turnover_vs_sharpe, table, list(leaders["name"]), labels,
                             alt="turnover vs Sharpe"))
    sharpe, sr0, unit = _sharpe_for_distribution(table)
    stability.append(_figure(plots.sharpe_distribution, sharpe, sr0,
                             alt=f"distribution of Sharpe ratios ({unit})"))
    return _section("Parameter stability and selection bias", "\n".join(stability))


# ---------------------------------------------------------------------- pieces
def _summary(table: pd.DataFrame, source: str, top: int) -> str:
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
                   f"{DSR_CONFIDENCE}: its Sharpe may well be luck of trying {n_trials} configs.")
    period = ", ".join(
        sorted({f"{s} .. {e}" for s, e in zip(table["start_date"], table["end_date"])})
    )
    frequencies = ", ".join(sorted({str(f) for f in table["frequency"]}))
    items = [
        ("results", html.escape(source)),
        ("configs", f"{n if n == n_trials else f'{n} of {n_trials}'} "
                    f"(top {min(top, n)} detailed below)"),
        ("period", html.escape(period)),
        ("bars", html.escape(frequencies)),
        ("best", f"{html.escape(str(best['name']))} (Sharpe {_num(best['sharpe'], 2)})"),
        (f"expected best Sharpe of {n_trials} unskilled configs", sr0_text),
        ("generated", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in items)
    return (
        f"<h1>Sweep report</h1>\n<table class='summary'>{rows}</table>\n"
        f"<p class='verdict'>{verdict}</p>"
    )


LEADERBOARD_COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("sharpe", "Sharpe", lambda v: _num(v, 2)),
    ("dsr", "DSR", lambda v: _num(v, 3)),
    ("psr", "PSR", lambda v: _num(v, 3)),
    ("annualized_return", "ann. return", lambda v: _pct(v)),
    ("max_drawdown", "max DD", lambda v: _pct(v)),
    ("sortino", "Sortino", lambda v: _num(v, 2)),
    ("ic_mean", "IC mean", lambda v: _num(v, 4)),
    ("ic_ir", "IC IR", lambda v: _num(v, 3)),
    ("avg_turnover", "turnover/bar", lambda v: _num(v, 4)),
    ("breakeven_fee", "break-even fee (bp)", lambda v: _num(v * 1e4 if _finite(v) else v, 2)),
    ("long_sharpe", "long Sharpe", lambda v: _num(v, 2)),
    ("short_sharpe", "short Sharpe", lambda v: _num(v, 2)),
    ("num_periods", "bars", lambda v: _num(v, 0)),
]


def _leaderboard(table: pd.DataFrame, dims: list[str], top: int) -> str:
    columns = [c for c in LEADERBOARD_COLUMNS if c[0] in table.columns]
    head = ["#", "config"] + [html.escape(d.removeprefix("alpha.")) for d in dims]
    head += [title for _, title, _ in columns]
    lines = ["<div class='scroll'><table class='board'><thead><tr>"]
    lines += [f"<th>{h}</th>" for h in head]
    lines.append("</tr></thead><tbody>")
    for _, row in table.iterrows():
        css = " class='top'" if row["rank"] <= top else ""
        cells = [str(row["rank"]), f"<span class='name'>{html.escape(str(row['name']))}</span>"]
        cells += [html.escape(_plain(row[d])) for d in dims]
        for key, _, fmt in columns:
            text = fmt(row[key])
            if key == "dsr" and _finite(row[key]) and row[key] >= DSR_CONFIDENCE:
                text = f"<b class='good'>{text}</b>"
            cells.append(text)
        lines.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    lines.append("</tbody></table></div>")
    lines.append(
        "<p class='note'>Sorted by annualised Sharpe; highlighted rows are detailed below. "
        "PSR = probability that the true Sharpe exceeds 0; DSR = the same against the "
        f"expected best Sharpe of {table.attrs['n_trials']} unskilled configs (Bailey &amp; "
        "L&oacute;pez de Prado 2014; per-bar Sharpe, skewness and kurtosis of the net returns). "
        "Break-even fee: the fee rate per unit traded at which the net cumulative return "
        "is zero (blank when the gross return is not positive).</p>"
    )
    return "".join(lines)


def _returns(result: BacktestResult, columns: Sequence[str]) -> pd.DataFrame:
    if result.path is not None:
        return pd.read_parquet(result.path / "sequences" / "returns.parquet",
                               columns=list(columns))
    return result.sequences[list(columns)]


def _saved_frames(
    chosen: list[tuple[str, BacktestResult]], filename: str, index: str, value: str
) -> dict[str, pd.Series]:
    found = {}
    for label, result in chosen:
        if result.path is None:
            continue
        path = result.path / "sequences" / filename
        if path.exists():
            frame = pd.read_parquet(path)
            found[label] = frame.set_index(index)[value]
    return found


def _rolling_window(ic: dict[str, pd.Series]) -> tuple[pd.Timedelta, str]:
    """A week when the data span four weeks or more, a day from four days, else 1/10."""
    spans = [s.index.max() - s.index.min() for s in ic.values() if len(s) > 1]
    span = max(spans) if spans else pd.Timedelta(days=1)
    if span >= pd.Timedelta(days=28):
        return pd.Timedelta(days=7), "7 days"
    if span >= pd.Timedelta(days=4):
        return pd.Timedelta(days=1), "1 day"
    window = max(span / 10, pd.Timedelta(minutes=1)).ceil("min")
    return window, str(window)


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


def _figure(plot: Callable[..., Any], *args: Any, alt: str) -> str:
    from alphadev.report.plots import to_png

    figure = plot(*args)
    data = base64.b64encode(to_png(figure)).decode("ascii")
    return f"<figure><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'></figure>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>"


STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px;
       color: #1d2330; background: #ffffff; max-width: 1240px; }
h1 { font-size: 26px; margin: 0 0 12px 0; }
h2 { font-size: 19px; border-bottom: 2px solid #d0d7e2; padding-bottom: 4px; margin-top: 32px; }
table { border-collapse: collapse; font-size: 13px; }
table.summary th { text-align: left; padding: 2px 16px 2px 0; color: #55607a; font-weight: 600; }
table.summary td { padding: 2px 0; }
.verdict { font-size: 15px; background: #f2f5fa; border-left: 4px solid #4a76c9;
           padding: 8px 12px; }
.scroll { overflow: auto; max-height: 640px; border: 1px solid #d0d7e2; }
table.board th { position: sticky; top: 0; background: #e8edf5; padding: 4px 8px;
                 text-align: right; white-space: nowrap; }
table.board td { padding: 3px 8px; text-align: right; border-top: 1px solid #eef1f6;
                 white-space: nowrap; }
table.board td:nth-child(2), table.board th:nth-child(2) { text-align: left; }
table.board tr.top td { background: #fff7dc; }
.name { font-family: Menlo, Consolas, monospace; font-size: 12px; }
.good { color: #17803d; }
.note { color: #55607a; font-size: 13px; }
figure { margin: 16px 0; }
img { max-width: 100%; height: auto; border: 1px solid #eef1f6; }
code { background: #f2f5fa; padding: 1px 4px; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------- formatting
def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    ) and _finite(value)


def _num(value: Any, digits: int) -> str:
    return f"{float(value):,.{digits}f}" if _finite(value) else "&ndash;"


def _pct(value: Any) -> str:
    if not _finite(value):
        return "&ndash;"
    value = float(value)
    return f"{value:+.2%}" if abs(value) < 100 else f"{value * 100:+.2e}%"


def _plain(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and _finite(value):
        return f"{float(value):g}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    return str(value)
