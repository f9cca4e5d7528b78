"""The few lines ``python -m alphadev validate`` and ``pipelines.Validate`` print."""

from __future__ import annotations

import os
from typing import Any

from alphadev.layout import SweepDir
from alphadev.out_of_sample.files import (
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    Validation,
    ValidationSummary,
)
from alphadev.store import read_notice

OVERFIT_PBO = 0.5
"""PBO at or above which the in-sample best is more often than not below the median
config out of sample: the selection is no better than picking at random."""
ROBUST_PBO = 0.1


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


LOSING = 0.5
"""Probability of loss at or above which the in-sample best more often than not loses
money out of sample: never a selection that "holds up"."""


def _band(pbo: float) -> int:
    return 2 if pbo >= OVERFIT_PBO else 1 if pbo >= ROBUST_PBO else 0


def verdict(summary: ValidationSummary) -> str:
    """One sentence on what PBO, the probability of loss and the walk-forward say about
    the sweep's selection.  Splits counted in PBO only because of a tie out of sample
    (``pbo_from_ties``) never make it "overfit"; an undefined PBO says why."""
    pbo = summary["pbo"]
    loss = summary["probability_of_loss"]
    oos = summary["walk_forward"].get("sharpe")
    losing = loss is not None and loss >= LOSING
    ties = summary.get("pbo_from_ties") or 0.0
    next_bar = summary.get("in_sample_best_next_bar") or {}
    fragile = next_bar.get("fragile") is True
    if pbo is None:
        head = f"PBO undefined: {summary['pbo_undefined_reason']}"
    elif _band(pbo) != _band(pbo - ties):
        head = (f"inconclusive: the in-sample best ranks in the lower half out of sample in "
                f"{pbo:.0%} of splits, {ties:.0%} of them only because it ties configs "
                "whose pnl is equal there")
    elif pbo >= OVERFIT_PBO:
        head = (f"likely overfit: the in-sample best ranks in the lower half out of sample "
                f"in {pbo:.0%} of splits; its leaderboard Sharpe is mostly luck")
    elif pbo >= ROBUST_PBO:
        head = (f"partly overfit: the in-sample best ranks in the lower half out of sample "
                f"in {pbo:.0%} of splits; expect less than the leaderboard promises")
    elif losing:
        head = (f"no edge to select: the in-sample best ranks in the upper half out of "
                f"sample in {1 - pbo:.0%} of splits")
    elif fragile:
        head = (f"the selection does not hold up: the in-sample best ranks in the upper "
                f"half out of sample in {1 - pbo:.0%} of splits, but it is fragile")
    else:
        head = (f"the selection holds up: the in-sample best ranks in the upper half out of "
                f"sample in {1 - pbo:.0%} of splits")
    if losing:
        head += f"; the in-sample best lost money out of sample in {loss:.0%} of splits"
    if fragile:
        later = _num(next_bar.get("sharpe_next_bar"))
        head += (f"; FRAGILE: the in-sample best {summary['in_sample_best_config']} has "
                 f"Sharpe {_num(next_bar.get('sharpe'))} but {later} one bar later "
                 "(execution_delay + 1): its edge does not survive one bar of delay and "
                 "cannot be traded as it is")
    elif next_bar.get("fragile") is None and "in_sample_best_next_bar" in summary:
        head += ("; the in-sample best was saved by an older alphadev: whether it survives "
                 "one bar of delay is unknown (rerun it)")
    if oos is not None and oos <= 0:
        head += "; the walk-forward choice lost money out of sample"
    return head


def _realism_lines(summary: ValidationSummary) -> list[str]:
    """The market setting the selection was judged at."""
    realism = summary.get("realism") or {}
    setting = realism.get("setting")
    if not setting:
        return []
    lag = setting.get("execution_lag", "0s")
    text = (f"execution_delay={setting['execution_delay']}"
            + (f", execution_lag={lag}" if lag != "0s" else "") + ", trading_fee_rate="
            f"{setting['trading_fee_rate']:g}, slippage_rate={setting['slippage_rate']:g}, "
            f"funding {'paid' if setting['funding'] else 'not modelled'}"
            + (f", impact_coefficient * sqrt(capital)={setting['impact']:.4g}"
               if setting.get("impact") else ""))
    others = realism.get("configs_at_other_settings") or []
    if not others:
        return [f"market setting: {text}"]
    return [f"judged at the most pessimistic of the sweep's {realism['settings_in_sweep']} "
            f"market settings: {text}; {len(others)} config(s) at other settings are not "
            "selected over (the market is not a parameter to choose)"]


def _left_out_lines(summary: ValidationSummary) -> list[str]:
    """The configs of the sweep that were not validated, each with the reason."""
    left_out = summary.get("configs_left_out") or []
    if not left_out:
        return []
    return [f"left out: {len(left_out)} config(s) of the sweep are not validated:",
            *(f"  {c['name']}: {c['reason']}" for c in left_out)]


def _period_lines(summary: ValidationSummary) -> list[str]:
    """The common period, when some config does not cover the whole one."""
    partial = summary.get("configs_not_covering_whole_period") or []
    if not partial:
        return []
    period, whole = summary["period"], summary["whole_period"]
    return [f"period: {period['start']} to {period['end']}, the bars all configs cover "
            f"(the whole period is {whole['start']} to {whole['end']}); "
            f"{len(partial)} config(s) do not cover it all:",
            *(f"  {c['name']}: {c['start']} to {c['end']}" for c in partial)]


def _trials(summary: ValidationSummary) -> str:
    """How many distinct trials PBO ranked, and which configs it did not."""
    n = summary["n_trials"]
    parts = [f"{n} distinct trial{'' if n == 1 else 's'} of {summary['n_configs']} configs"]
    undefined = summary["configs_undefined_in_pbo"]
    if undefined:
        parts.append(f"{len(undefined)} never trade: {', '.join(undefined)}")
    duplicates = summary["duplicate_configs_in_pbo"]
    if duplicates:
        parts.append(f"{len(duplicates)} duplicate another: "
                     + ", ".join(f"{a} = {b}" for a, b in duplicates.items()))
    return "; ".join(parts)


def summary_text(validation: Validation, save_dir: str | os.PathLike) -> str:
    """Counts, the walk-forward against the in-sample choice, PBO, and the verdict."""
    s = validation.summary
    params = s["built_from"]["parameters"]
    wf, best = s["walk_forward"], s["in_sample_best"]
    slope, intercept = s["degradation"]["slope"], s["degradation"]["intercept"]
    anchored = ", anchored" if params["anchored"] else ""
    windows = s.get("windows") or params
    if windows.get("chosen"):
        anchored += (f"; windows chosen for this sweep's span: {DEFAULT_TRAIN} train and "
                     f"{DEFAULT_TEST} test, or at most half and a quarter of the span; "
                     "set --train and --test to choose")
    notice = read_notice(save_dir)  # e.g. synthetic data: said before any number
    return "\n".join([
        *(f"NOTE: {line}" for line in (notice or "").splitlines()),
        f"alphadev validate: {len(s['built_from']['configs'])} configs "
        f"({s['frequency']} bars), files in {SweepDir.of(save_dir).validation.path}",
        *_left_out_lines(s),
        *_realism_lines(s),
        *_period_lines(s),
        f"walk-forward (train {windows['train']}, test {windows['test']}{anchored}, by "
        f"{params['metric']}): {s['n_folds']} folds, {s['walk_forward_start']} to "
        f"{s['walk_forward_end']}",
        f"  out of sample: Sharpe {_num(wf['sharpe'])}, return "
        f"{_num(wf['cumulative_return'], '{:.2%}')}, max drawdown "
        f"{_num(wf['max_drawdown'], '{:.2%}')}",
        f"  in-sample choice {s['in_sample_best_config']} on the same bars: Sharpe "
        f"{_num(best['sharpe'])}, return {_num(best['cumulative_return'], '{:.2%}')}, "
        f"max drawdown {_num(best['max_drawdown'], '{:.2%}')}",
        f"PBO not computed: {s.get('pbo_undefined_reason')}" if not s["n_combinations"] else
        f"PBO {_num(s['pbo'])} over {s['n_combinations']} combinations of {s['blocks']} "
        f"blocks ({_trials(s)}); probability of loss "
        f"{_num(s['probability_of_loss'])}; degradation: OOS Sharpe = "
        f"{_num(slope, '{:.3g}')} x IS Sharpe + {_num(intercept, '{:.3g}')} (per bar)",
        f"verdict: {verdict(s)}",
    ])
