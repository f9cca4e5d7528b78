"""The disk edge of out-of-sample validation: a sweep's saved returns in, and
``{save_dir}/validation/`` out and back (docs/semantics.md#validating-a-sweep).

Only whole result folders are read (``alphadev.layout.check_folder``), and only
``config.json``, ``metrics.json`` and ``sequences/returns.parquet``'s ``pnl``: no user
code is imported and nothing is re-run.  Which folders are the sweep's current results
is given by the caller (``pipelines.Validate`` knows the spec) or, from the command
line, by ``comparison.csv``'s (name, fingerprint) rows.

The three files are written atomically, ``pbo.json`` last: it records what the files
were built from (every config's name and fingerprint, the parameters) and the sha256
of the other two, so a reader never mixes files of two builds and a validation of
other results or other parameters is known to be stale.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from alphadev.comparison import read_identities
from alphadev.config import DEFAULT_CAPITAL, lag_text
from alphadev.layout import VALIDATION_NAME, ResultDir, SweepDir, ValidationDir
from alphadev.metrics import (
    DAYS_PER_YEAR,
    NS_PER_DAY,
    ReturnMetrics,
    is_fragile,
    json_safe,
    return_metrics,
)
from alphadev.out_of_sample.pbo import (
    MAX_BLOCKS,
    PBO,
    block_edges,
    check_blocks,
    probability_of_overfitting,
)
from alphadev.out_of_sample.walk_forward import best_in_window, check_metric, walk_forward
from alphadev.store import atomic_write, read_json, write_json
from alphadev.validation import ParameterError

__all__ = [
    "SweepReturns",
    "Validation",
    "ValidationParameters",
    "bar_nanos",
    "check_window_bars",
    "read_sweep_returns",
    "read_validation",
    "validate_sweep",
    "validation_is_current",
]

log = logging.getLogger(__name__)

FOLDS_COLUMNS = ("fold", "train_start", "train_end", "test_start", "test_end", "chosen",
                 "train_metric", "test_metric", "best_test_metric")
FORMAT = 2
"""pbo.json's format: 2 ranks distinct trials only (``pbo`` may be null, with
``pbo_undefined_reason``); readers skip other formats."""
PARTIAL = "configs_not_covering_whole_period"


class ValidationParameters(NamedTuple):
    """The settings of one validation, checked (``check``) and recorded in pbo.json."""

    # None: chosen from the sweep's span (``choose_windows``), so short data still validate.
    train: str | None = None
    test: str | None = None
    anchored: bool = False
    metric: str = "sharpe"
    blocks: int = 16

    def check(self) -> ValidationParameters:
        """The same settings, each checked: one clear error for the first bad one."""
        for field in ("train", "test"):
            if getattr(self, field) is not None:
                _span(field, getattr(self, field))
        if not isinstance(self.anchored, (bool, np.bool_)):
            raise ParameterError(f"anchored={self.anchored!r} must be True or False")
        check_metric(self.metric)
        blocks = check_blocks(self.blocks, n_bars=2 * MAX_BLOCKS)
        return self._replace(anchored=bool(self.anchored), blocks=blocks)

    def record(self) -> dict[str, Any]:
        """JSON form; the spans as nanoseconds too, so '60D' and '1440h' agree."""
        return {**self._asdict(),
                "train_ns": None if self.train is None else _span("train", self.train),
                "test_ns": None if self.test is None else _span("test", self.test)}


_BARE_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _span(name: str, text: Any) -> int:
    """A positive pandas time span such as '60D' or '14D', in nanoseconds.

    A number without a unit is refused: pandas reads '10' as 10 nanoseconds, one bar
    per window, and every fold would quietly pick the first config by name."""
    if isinstance(text, str) and _BARE_NUMBER.fullmatch(text.strip()):
        raise ParameterError(
            f"{name}={text!r} has no unit (pandas would read it as {text.strip()} "
            "nanoseconds); write the unit, e.g. '60D', '14D' or '36h'"
        )
    try:
        span = pd.Timedelta(text)
    except (ValueError, TypeError):
        span = pd.NaT
    if pd.isna(span) or span.value <= 0 or isinstance(text, (bool, int, float)):
        raise ParameterError(
            f"{name}={text!r} is not a positive time span; write one such as '60D', '14D' "
            "or '36h'"
        )
    return int(span.value)


def check_window_bars(params: ValidationParameters, bar_ns: int, frequency: str) -> None:
    """Each of the train and test windows spans at least 2 bars of ``bar_ns``: with one
    bar every Sharpe in it is undefined and each fold picks the first config by name."""
    for field in ("train", "test"):
        text = getattr(params, field)
        if text is not None and _span(field, text) < 2 * bar_ns:
            raise ParameterError(
                f"{field}={text!r} is shorter than 2 bars of the sweep's {frequency} bars; "
                f"a window needs at least 2 bars (2 x {frequency}), e.g. "
                f"{'60D' if field == 'train' else '14D'}"
            )


def bar_nanos(periods_per_year: float) -> int:
    """The bar length (ns) whose bars per year are ``periods_per_year``."""
    return round(DAYS_PER_YEAR * NS_PER_DAY / periods_per_year)


class SweepReturns(NamedTuple):
    """Configs in name order with their pnl on the union of their bar grids (NaN where
    a config has no bar)."""

    names: list[str]
    fingerprints: list[str]
    timestamps: pd.DatetimeIndex
    pnl: npt.NDArray[np.float64]
    frequency: str
    periods_per_year: float
    left_out: dict[str, str]
    """Configs of the sweep that are not validated, each with the reason."""

    def identities(self) -> set[tuple[str, str]]:
        return set(zip(self.names, self.fingerprints))


def _whole_folders(root: SweepDir, damaged: dict[str, str] | None = None
                   ) -> dict[str, dict[str, Any]]:
    """name -> description of the whole result folders; the others' problems are
    logged and, given ``damaged``, put there."""
    found = {}
    for folder in root.result_folders():
        check = folder.check()
        if check.problem is None and check.description is not None:
            found[folder.name] = check.description
        elif check.problem is not None:
            log.warning("validation skips %s: %s", folder.path, check.problem)
            if damaged is not None:
                damaged[folder.name] = check.problem
    return found


def sweep_identities(save_dir: str | os.PathLike) -> set[tuple[str, str]]:
    """The (name, fingerprint) of the sweep's current results, from ``comparison.csv``
    (the sweep's record of them); every whole folder when there is no such table."""
    root = SweepDir.of(save_dir)
    table = read_identities(root.comparison)
    if table is not None:
        return table
    log.warning("%s has no readable %s: validating every whole result folder in it",
                root, root.comparison.name)
    return {(name, str(d.get("fingerprint"))) for name, d in _whole_folders(root).items()}


def read_sweep_returns(
    save_dir: str | os.PathLike, identities: set[tuple[str, str]] | None = None
) -> SweepReturns:
    """The pnl of the whole result folders whose (name, fingerprint) is in
    ``identities`` (default ``sweep_identities``), on their union grid."""
    root = _sweep_folder(save_dir)
    wanted = sweep_identities(root) if identities is None else identities
    if any(name == VALIDATION_NAME for name, _ in wanted):
        raise ParameterError(
            f"a config of {str(root)!r} is named {VALIDATION_NAME!r}, the folder validation "
            "writes to; rename that config"
        )
    damaged: dict[str, str] = {}
    folders = _whole_folders(root, damaged)
    chosen = sorted(name for name, fp in wanted
                    if name in folders and folders[name].get("fingerprint") == fp)
    left_out = _left_out(root, wanted, folders, chosen, from_table=identities is None)
    left_out = dict(sorted({**{n: f"its folder is damaged: {why}" for n, why in damaged.items()
                               if n not in left_out}, **left_out}.items()))
    if len(chosen) < 2:
        raise ParameterError(
            f"validation needs at least 2 completed configs in {str(root)!r}, found "
            f"{len(chosen)}; run the sweep (to completion) first"
        )
    frequencies: dict[float, list[str]] = {}
    labels: dict[float, str] = {}
    series = []
    for name in chosen:
        facts = read_json(root.result(name).metrics)
        ppy = float(facts["periods_per_year"])
        frequencies.setdefault(ppy, []).append(name)
        labels[ppy] = str(facts.get("frequency"))
        frame = pd.read_parquet(root.result(name).returns, columns=["pnl"])
        series.append(frame["pnl"])
    if len(frequencies) > 1:
        listing = "; ".join(f"{labels[p]}: {len(n)} configs (e.g. {n[0]})"
                            for p, n in frequencies.items())
        raise ParameterError(
            f"the configs in {str(root)!r} have mixed frequencies ({listing}); validate one "
            "frequency at a time (one sweep per frequency, or remove the others' folders)"
        )
    stamps = [pd.DatetimeIndex(s.index) for s in series]
    tz = stamps[0].tz
    ns = [s.tz_convert("UTC").asi8 if s.tz is not None else s.asi8 for s in stamps]
    grid = np.unique(np.concatenate(ns))
    pnl = np.full((grid.size, len(chosen)), np.nan)
    for j, (times, s) in enumerate(zip(ns, series)):
        pnl[np.searchsorted(grid, times), j] = s.to_numpy(dtype=np.float64)
    index = pd.DatetimeIndex(pd.to_datetime(grid, utc=tz is not None), name="timestamp")
    ppy = next(iter(frequencies))
    return SweepReturns(chosen, [folders[n]["fingerprint"] for n in chosen], index, pnl,
                        labels[ppy], ppy, left_out)


def _left_out(root: SweepDir, wanted: set[tuple[str, str]], folders: dict[str, Any],
              chosen: list[str], from_table: bool) -> dict[str, str]:
    """The configs not validated, with the reason (also logged), so fewer configs never
    pass unnoticed: a latest run that failed (its failure marker), a folder missing,
    damaged or holding another result than recorded, a folder comparison.csv omits."""
    reasons: dict[str, str] = {}
    failed = _failed_runs(root, set(chosen))
    if failed:
        log.warning("validation of %s leaves out %d config(s) whose latest run failed: %s; "
                    "fix them and rerun the sweep to include them", root, len(failed),
                    "; ".join(f"{name} ({why})" for name, why in failed.items()))
        reasons.update(failed)
    stale = sorted({name for name, _ in wanted} - set(chosen) - set(failed))
    if stale:
        log.warning("validation of %s leaves out %d config(s) whose folder is missing, "
                    "damaged or holds another result than recorded: %s; rerun the sweep "
                    "to bring them up to date", root, len(stale), ", ".join(stale))
        reasons.update((name, "its folder is missing, damaged or holds another result "
                        "than recorded") for name in stale)
    unlisted = sorted(set(folders) - {name for name, _ in wanted} - set(failed)) \
        if from_table else []
    if unlisted:
        log.warning("validation of %s leaves out %d result folder(s) %s does not list: "
                    "%s; rerun the sweep to rebuild %s if they belong to it", root,
                    len(unlisted), root.comparison.name, ", ".join(unlisted), root.comparison.name)
        reasons.update((name, f"{root.comparison.name} does not list it") for name in unlisted)
    return dict(sorted(reasons.items()))


def _failed_runs(root: SweepDir, chosen: set[str]) -> dict[str, str]:
    """name -> "its latest run failed (error line; ...)" for the sweep's failure markers
    of configs that are not validated."""
    failed = {}
    for name in root.failed_names():
        if name in chosen:
            continue
        try:
            report = str(read_json(root.failure(name)).get("report", ""))
        except (OSError, ValueError, AttributeError):
            report = ""
        lines = [line.strip() for line in report.splitlines() if line.strip()]
        error = next((line.removeprefix("error: ") for line in lines
                      if line.startswith("error: ")), lines[-1] if lines else "")
        detail = f"{error[:200]}; " if error else ""
        failed[name] = f"its latest run failed ({detail}traceback in errors.log)"
    return failed


class ValidationSummary(TypedDict, total=False):
    """``pbo.json`` (docs/semantics.md#validating-a-sweep) as it passes to the printed
    summary and the report; plain JSON on disk, so a value is what JSON gives back
    (lists, ``None`` for undefined numbers)."""

    pbo: float | None
    pbo_undefined_reason: str | None
    pbo_from_ties: float | None
    n_trials: int
    configs_left_out_of_pbo: list[str]
    configs_undefined_in_pbo: list[str]
    duplicate_configs_in_pbo: dict[str, str]
    n_combinations: int
    blocks: int
    n_configs: int
    lambdas: list[float]
    probability_of_loss: float | None
    degradation: dict[str, float | None]
    in_sample_sharpe: list[float | None]
    out_of_sample_sharpe: list[float | None]
    walk_forward: ReturnMetrics
    in_sample_best: ReturnMetrics
    in_sample_best_config: str
    windows: dict[str, Any]
    in_sample_best_next_bar: dict[str, Any]
    walk_forward_start: str
    walk_forward_end: str
    n_folds: int
    frequency: str
    periods_per_year: float
    configs_left_out: list[dict[str, str]]
    realism: dict[str, Any]
    period: dict[str, str]
    whole_period: dict[str, str]
    configs_not_covering_whole_period: list[dict[str, str]]
    built_from: dict[str, Any]
    sha256: dict[str, str]


@dataclass
class Validation:
    """What ``validation/`` holds: the stitched walk-forward series (index
    ``timestamp``; ``pnl``, ``config``), the folds table (bounds as timestamps when
    read back) and pbo.json's dict
    (``pbo``, ``lambdas``, ``in_sample_sharpe``/``out_of_sample_sharpe`` per
    combination, ``degradation``, ``walk_forward`` and ``in_sample_best`` metrics...)."""

    walk_forward: pd.DataFrame
    folds: pd.DataFrame
    summary: ValidationSummary


def _next_bar(folder: ResultDir) -> dict[str, Any]:
    """A result's whole-period Sharpe, its Sharpe one bar later and whether that makes it
    fragile (docs/semantics.md#next-bar); None values when it was saved before the
    next-bar pass existed."""
    metrics = read_json(folder.metrics)
    sharpe, later = metrics["total"].get("sharpe"), metrics.get("sharpe_next_bar")
    known = "sharpe_next_bar" in metrics
    return {"sharpe": sharpe, "sharpe_next_bar": later,
            "fragile": is_fragile(sharpe, later) if known else None}


DEFAULT_TRAIN, DEFAULT_TEST = "60D", "14D"


class Realism(NamedTuple):
    """The market setting validation judges at (docs/semantics.md#validating-a-sweep):
    the configs it keeps, the ones at other settings, and the setting itself."""

    identities: set[tuple[str, str]]
    excluded: set[tuple[str, str]]
    setting: dict[str, Any]
    n_settings: int


def _market_setting(description: dict[str, Any]) -> dict[str, Any]:
    """What a config assumes about the market rather than the alpha."""
    slippage = description.get("slippage_rate", 0.0) or 0.0
    level = (sum(slippage.values()) / len(slippage) if slippage else 0.0) if isinstance(
        slippage, dict) else float(slippage)
    # The book's impact per unit of sqrt(traded notional): Y * sqrt(capital); a bigger
    # book or a larger coefficient is the harsher market (docs/semantics.md#market-impact).
    impact = float(description.get("impact_coefficient", 0.0) or 0.0) * math.sqrt(
        float(description.get("capital", DEFAULT_CAPITAL) or DEFAULT_CAPITAL))
    return {"execution_delay": int(description.get("execution_delay", 0) or 0),
            "execution_lag": lag_text(description.get("execution_lag", 0) or 0),
            "trading_fee_rate": float(description.get("trading_fee_rate", 0.0)),
            "slippage_rate": level,
            "funding": description.get("funding_loader") is not None,
            "impact": impact}


def _sweep_folder(save_dir: str | os.PathLike) -> SweepDir:
    root = SweepDir.of(save_dir)
    if not root.root.is_dir():
        raise FileNotFoundError(f"save_dir {str(root)!r} is not a folder; pass the folder a "
                                "sweep wrote its results to")
    return root


def judged_realism(root: SweepDir, identities: set[tuple[str, str]] | None) -> Realism:
    """Keep the configs at the sweep's most pessimistic market setting: the longest
    execution delay, then the longest execution lag, then the highest fee plus
    slippage, then the largest impact (``impact_coefficient * sqrt(capital)``), then
    funding paid. Selecting
    over the market's own parameters would pick the friendliest market, not an alpha."""
    wanted = sweep_identities(root) if identities is None else identities
    settings: dict[tuple[str, str], dict[str, Any]] = {}
    for name, fingerprint in wanted:
        try:
            settings[(name, fingerprint)] = _market_setting(read_json(root.result(name).config))
        except (OSError, ValueError, TypeError, AttributeError):
            continue  # read_sweep_returns names what is wrong with it
    distinct = {tuple(v.values()): v for v in settings.values()}
    if not distinct:
        return Realism(set(wanted), set(), {}, 0)
    worst = max(distinct.values(), key=lambda v: (
        v["execution_delay"], pd.Timedelta(v["execution_lag"]),
        v["trading_fee_rate"] + v["slippage_rate"], v["impact"], v["funding"]))
    excluded = {key for key, v in settings.items() if v != worst}
    return Realism(set(wanted) - excluded, excluded, worst, len(distinct))


def choose_windows(params: ValidationParameters, span_ns: int, bar_ns: int
                   ) -> ValidationParameters:
    """``params`` with each window left None chosen for data spanning ``span_ns``: the
    default (60D train, 14D test), or at most half (train) and a quarter (test) of the
    span, in whole bars, so a short sweep still has folds to test."""
    def pick(default: str, share: int) -> str:
        return _format_span(min(_span("default", default), span_ns // share // bar_ns * bar_ns))

    return params._replace(
        train=params.train if params.train is not None else pick(DEFAULT_TRAIN, 2),
        test=params.test if params.test is not None else pick(DEFAULT_TEST, 4),
    )


def _format_span(ns: int) -> str:
    """'4D', '36h', '90min' or '30s': the largest unit that divides ``ns``."""
    for unit, size in (("D", NS_PER_DAY), ("h", 3_600 * 10**9), ("min", 60 * 10**9)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns // 10**9}s"


def _iso(ns: int, tz: Any) -> str:
    return pd.Timestamp(ns, tz="UTC").tz_convert(tz).isoformat() if tz is not None else \
        pd.Timestamp(ns).isoformat()


def validate_sweep(
    save_dir: str | os.PathLike,
    parameters: ValidationParameters | None = None,
    identities: set[tuple[str, str]] | None = None,
) -> Validation:
    """Walk-forward selection and PBO over the sweep's completed configs (those in
    ``identities``, default ``sweep_identities``) with ``parameters`` (default
    ``ValidationParameters()``); writes ``{save_dir}/validation/`` and returns it."""
    params = (parameters or ValidationParameters()).check()
    root = _sweep_folder(save_dir)
    realism = judged_realism(root, identities)
    chosen = identities if not realism.excluded else realism.identities
    data, period = _common_period(root, read_sweep_returns(root, chosen))
    ts = data.timestamps.asi8
    bar_ns = bar_nanos(data.periods_per_year)
    windows = choose_windows(params, int(ts[-1] - ts[0]), bar_ns)
    check_window_bars(windows, bar_ns, data.frequency)
    train_ns, test_ns = _span("train", windows.train), _span("test", windows.test)
    if ts[0] + train_ns > ts[-1]:
        common = ", the period all configs cover" if period[PARTIAL] else ""
        raise ParameterError(
            f"train={windows.train!r} is longer than the data ({data.timestamps[0]} to "
            f"{data.timestamps[-1]}, {len(ts)} bars{common}): no bar is left to test on; "
            "use a shorter train window"
        )
    wf = walk_forward(ts, data.pnl, train_ns, test_ns, params.anchored, params.metric,
                      data.periods_per_year)
    tz = data.timestamps.tz
    names = np.array(data.names, dtype=object)
    stitched = pd.DataFrame(
        {"pnl": wf.pnl, "config": names[wf.bar_config].astype(str)},
        index=data.timestamps[wf.bars],
    )
    folds = pd.DataFrame({
        "fold": np.arange(len(wf.bounds)),
        **{col: [_iso(v, tz) for v in wf.bounds[:, k]]
           for k, col in enumerate(FOLDS_COLUMNS[1:5])},
        "chosen": names[wf.chosen].astype(str),
        "train_metric": wf.train_metric, "test_metric": wf.test_metric,
        "best_test_metric": wf.best_test_metric,
    }, columns=list(FOLDS_COLUMNS))
    best = _in_sample_best(data.pnl, params.metric, data.periods_per_year)
    oos_bars = np.nan_to_num(data.pnl[wf.bars, best])
    summary = {
        **_pbo_summary(data, params.blocks),
        "walk_forward": return_metrics(wf.pnl, data.periods_per_year),
        "in_sample_best": return_metrics(oos_bars, data.periods_per_year),
        "in_sample_best_config": data.names[best],
        "windows": {"train": windows.train, "test": windows.test,
                    "chosen": params.train is None or params.test is None},
        "in_sample_best_next_bar": _next_bar(root.result(data.names[best])),
        "walk_forward_start": str(stitched.index[0]),
        "walk_forward_end": str(stitched.index[-1]),
        "n_folds": len(folds),
        "frequency": data.frequency,
        "periods_per_year": data.periods_per_year,
        "configs_left_out": [{"name": n, "reason": r} for n, r in data.left_out.items()],
        "realism": {"setting": realism.setting, "settings_in_sweep": realism.n_settings,
                    "configs_at_other_settings": sorted(n for n, _ in realism.excluded)},
        **period,
    }
    return _write(root.validation, stitched, folds, summary, params,
                  data.identities() | realism.excluded)


def _common_period(root: SweepDir, data: SweepReturns) -> tuple[SweepReturns, dict[str, Any]]:
    """The returns on the bars from the latest first bar to the earliest last bar of the
    configs (each compared on bars they all could have), and its record for pbo.json;
    no such bar is an error naming every config's period."""
    has_bar = ~np.isnan(data.pnl)
    stamps = data.timestamps
    spans = {}
    for j, name in enumerate(data.names):
        rows = np.flatnonzero(has_bar[:, j])
        spans[name] = (int(rows[0]), int(rows[-1])) if rows.size else None
    starts = [first for first, _ in filter(None, spans.values())]
    ends = [last for _, last in filter(None, spans.values())]
    lo, hi = (max(starts), min(ends)) if len(starts) == len(spans) else (1, 0)
    if lo > hi:
        listing = "; ".join(
            f"{name} {stamps[s[0]]} to {stamps[s[1]]}" if s else f"{name} has no bar"
            for name, s in list(spans.items())[:20])
        more = f"; ... and {len(spans) - 20} more" if len(spans) > 20 else ""
        raise ParameterError(
            f"the configs of {str(root)!r} have no period in common (validation compares "
            f"them on the bars from the latest first bar to the earliest last bar): "
            f"{listing}{more}; validate configs whose periods overlap (one sweep per "
            "period, or remove the others' folders)"
        )
    partial = [{"name": name, "start": str(stamps[s[0]]), "end": str(stamps[s[1]])}
               for name, s in spans.items() if s and (s[0] > 0 or s[1] < len(stamps) - 1)]
    record = {
        "period": {"start": str(stamps[lo]), "end": str(stamps[hi])},
        "whole_period": {"start": str(stamps[0]), "end": str(stamps[-1])},
        PARTIAL: partial,
    }
    if partial:
        log.warning("validation of %s uses the period %s to %s that all configs cover; "
                    "%d config(s) do not cover the whole period %s to %s: %s", root,
                    stamps[lo], stamps[hi], len(partial), stamps[0], stamps[-1],
                    ", ".join(c["name"] for c in partial))
    return data._replace(timestamps=stamps[lo:hi + 1], pnl=data.pnl[lo:hi + 1]), record


def _pbo_summary(data: SweepReturns, blocks: int) -> dict[str, Any]:
    """PBO's entries of pbo.json; ``pbo`` null with ``pbo_undefined_reason`` when it
    cannot be computed on these bars (the walk-forward is written all the same)."""
    try:
        check_blocks(blocks, len(data.timestamps))
        edges = block_edges(len(data.timestamps), blocks)
        bars = np.add.reduceat(~np.isnan(data.pnl), edges[:-1], axis=0)
        in_every = [bool(v) for v in np.all(bars > 0, axis=0)]
        if sum(in_every) < 2:
            missing = [n for n, ok in zip(data.names, in_every) if not ok]
            fix = "use fewer blocks, or " if blocks > 4 else ""
            raise ParameterError(
                f"PBO needs at least 2 configs with bars in every one of the {blocks} "
                f"blocks, got {sum(in_every)}; without bars in some block: "
                f"{', '.join(missing[:20])}; {fix}validate configs without gaps in their data"
            )
        cscv = probability_of_overfitting(data.pnl, blocks)
    except ParameterError as exc:
        log.warning("validation: PBO is not computed: %s", exc)
        return {"pbo": None, "pbo_undefined_reason": str(exc), "n_combinations": 0,
                "blocks": blocks, "n_configs": 0, "lambdas": [], "probability_of_loss": None,
                "degradation": {"slope": None, "intercept": None}, "in_sample_sharpe": [],
                "out_of_sample_sharpe": [], "configs_left_out_of_pbo": [], "n_trials": 0,
                "pbo_from_ties": None, "configs_undefined_in_pbo": [],
                "duplicate_configs_in_pbo": {}}
    slope, intercept = cscv.degradation()
    return {
        **_pbo_trials(cscv, data.names),
        "n_combinations": len(cscv.lambdas),
        "blocks": blocks,
        "n_configs": int(cscv.used.sum()),
        "lambdas": cscv.lambdas,
        "probability_of_loss": cscv.probability_of_loss,
        "degradation": {"slope": slope, "intercept": intercept},
        "in_sample_sharpe": cscv.is_sharpe,
        "out_of_sample_sharpe": cscv.oos_sharpe,
    }


def _pbo_trials(cscv: PBO, names: list[str]) -> dict[str, Any]:
    """PBO and the configs it ranks: distinct trials; those left out, undefined or
    collapsed into another config's trial by name."""
    return {
        "pbo": cscv.pbo,
        "pbo_undefined_reason": cscv.undefined_reason,
        "pbo_from_ties": cscv.pbo_from_ties,
        "n_trials": cscv.n_trials,
        "configs_left_out_of_pbo": [n for n, u in zip(names, cscv.used) if not u],
        "configs_undefined_in_pbo": [n for n, u, d in zip(names, cscv.used, cscv.defined)
                                     if u and not d],
        "duplicate_configs_in_pbo": {n: names[d] for n, d in zip(names, cscv.duplicate_of)
                                     if d >= 0},
    }


def _in_sample_best(pnl: npt.NDArray[np.float64], metric: str, ppy: float) -> int:
    """The config with the best whole-period metric (undefined lowest, ties by name)."""
    return best_in_window(metric, np.ascontiguousarray(np.nan_to_num(pnl.T)), ppy)[0]


def _built_from(params: ValidationParameters, identities: set[tuple[str, str]]) -> dict:
    return {"format": FORMAT, "parameters": params.record(),
            "configs": [list(pair) for pair in sorted(identities)]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(folder: ValidationDir, stitched: pd.DataFrame, folds: pd.DataFrame,
           summary: dict[str, Any], params: ValidationParameters,
           identities: set[tuple[str, str]]) -> Validation:
    folder.path.mkdir(parents=True, exist_ok=True)
    # Digests of the bytes this build wrote (not of what is on disk by pbo.json's turn,
    # which a concurrent build may have replaced): a mix of two builds then reads as damaged.
    digests = {}
    with atomic_write(folder.walk_forward) as tmp:
        stitched.rename_axis("timestamp").to_parquet(tmp)
        digests[folder.walk_forward.name] = _sha256(tmp)
    with atomic_write(folder.folds) as tmp:
        folds.to_csv(tmp, index=False)
        digests[folder.folds.name] = _sha256(tmp)
    record = {**json_safe(summary), "built_from": _built_from(params, identities),
              "sha256": digests}
    write_json(folder.pbo, record)
    return Validation(stitched.rename_axis("timestamp"), folds,
                      cast(ValidationSummary, record))  # the JSON edge


def _read_summary(folder: ValidationDir) -> ValidationSummary | None:
    try:
        summary = read_json(folder.pbo)
        digests = summary["sha256"]
        if any(_sha256(path) != digests[path.name]
               for path in (folder.walk_forward, folder.folds)):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return cast(ValidationSummary, summary) if isinstance(summary, dict) else None


def read_validation(save_dir: str | os.PathLike) -> Validation | None:
    """``{save_dir}/validation/`` as written by one build; None when it is missing,
    damaged or half rebuilt (its files are not the ones pbo.json records)."""
    folder = SweepDir.of(save_dir).validation
    summary = _read_summary(folder)
    if summary is None:
        return None
    try:
        stitched = pd.read_parquet(folder.walk_forward)
        folds = pd.read_csv(folder.folds, dtype={"chosen": str}, keep_default_na=False,
                            na_values={c: [""] for c in FOLDS_COLUMNS if c != "chosen"})
        for column in FOLDS_COLUMNS[1:5]:
            folds[column] = pd.to_datetime(folds[column], format="ISO8601")
    except (OSError, ValueError):
        return None
    return Validation(stitched, folds, summary)


def validation_is_current(
    save_dir: str | os.PathLike,
    parameters: ValidationParameters,
    identities: set[tuple[str, str]],
) -> bool:
    """Whether ``validation/`` is one whole build from exactly these results and
    parameters (else a rerun rebuilds it)."""
    summary = _read_summary(SweepDir.of(save_dir).validation)
    if summary is None:
        return False
    try:
        expected = json_safe(_built_from(parameters.check(), identities))
    except ParameterError:
        return False
    return bool(summary.get("built_from") == expected)
