"""The few lines ``python -m alphadev validate`` and ``pipelines.Validate`` print."""

from __future__ import annotations

import os
from typing import Any

from alphadev.out_of_sample.files import VALIDATION_DIR, Validation
from alphadev.store import read_notice

OVERFIT_PBO = 0.5
"""PBO at or above which the in-sample best is more often than not below the median
config out of sample: the selection is no better than picking at random."""
ROBUST_PBO = 0.1


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def verdict(summary: dict[str, Any]) -> str:
    """One sentence on what PBO and the walk-forward say about the sweep's selection."""
    pbo = summary["pbo"]
    oos = summary["walk_forward"].get("sharpe")
    if pbo is None:
        head = "no PBO (see above): only the walk-forward speaks for the selection"
    elif pbo >= OVERFIT_PBO:
        head = (f"likely overfit: the in-sample best ranks in the lower half out of sample "
                f"in {pbo:.0%} of splits; its leaderboard Sharpe is mostly luck")
    elif pbo >= ROBUST_PBO:
        head = (f"partly overfit: the in-sample best ranks in the lower half out of sample "
                f"in {pbo:.0%} of splits; expect less than the leaderboard promises")
    else:
        head = (f"the selection holds up: the in-sample best ranks in the upper half out of "
                f"sample in {1 - pbo:.0%} of splits")
    if oos is not None and oos <= 0:
        head += "; the walk-forward choice lost money out of sample"
    return head


def _left_out_lines(summary: dict[str, Any]) -> list[str]:
    """The configs of the sweep that were not validated, each with the reason."""
    left_out = summary.get("configs_left_out") or []
    if not left_out:
        return []
    return [f"left out: {len(left_out)} config(s) of the sweep are not validated:",
            *(f"  {c['name']}: {c['reason']}" for c in left_out)]


def _period_lines(summary: dict[str, Any]) -> list[str]:
    """The common period, when some config does not cover the whole one."""
    partial = summary.get("configs_not_covering_whole_period") or []
    if not partial:
        return []
    period, whole = summary["period"], summary["whole_period"]
    return [f"period: {period['start']} to {period['end']}, the bars all configs cover "
            f"(the whole period is {whole['start']} to {whole['end']}); "
            f"{len(partial)} config(s) do not cover it all:",
            *(f"  {c['name']}: {c['start']} to {c['end']}" for c in partial)]


def summary_text(validation: Validation, save_dir: str | os.PathLike) -> str:
    """Counts, the walk-forward against the in-sample choice, PBO, and the verdict."""
    s = validation.summary
    params = s["built_from"]["parameters"]
    wf, best = s["walk_forward"], s["in_sample_best"]
    slope, intercept = s["degradation"]["slope"], s["degradation"]["intercept"]
    anchored = ", anchored" if params["anchored"] else ""
    notice = read_notice(save_dir)  # e.g. synthetic data: said before any number
    return "\n".join([
        *(f"NOTE: {line}" for line in (notice or "").splitlines()),
        f"alphadev validate: {len(s['built_from']['configs'])} configs "
        f"({s['frequency']} bars), files in {os.path.join(save_dir, VALIDATION_DIR)}",
        *_left_out_lines(s),
        *_period_lines(s),
        f"walk-forward (train {params['train']}, test {params['test']}{anchored}, by "
        f"{params['metric']}): {s['n_folds']} folds, {s['walk_forward_start']} to "
        f"{s['walk_forward_end']}",
        f"  out of sample: Sharpe {_num(wf['sharpe'])}, return "
        f"{_num(wf['cumulative_return'], '{:.2%}')}, max drawdown "
        f"{_num(wf['max_drawdown'], '{:.2%}')}",
        f"  in-sample choice {s['in_sample_best_config']} on the same bars: Sharpe "
        f"{_num(best['sharpe'])}, return {_num(best['cumulative_return'], '{:.2%}')}, "
        f"max drawdown {_num(best['max_drawdown'], '{:.2%}')}",
        f"PBO not computed: {s.get('pbo_undefined_reason')}" if s["pbo"] is None else
        f"PBO {s['pbo']:.2f} over {s['n_combinations']} combinations of {s['blocks']} "
        f"blocks ({s['n_configs']} configs); probability of loss "
        f"{s['probability_of_loss']:.2f}; degradation: OOS Sharpe = {_num(slope, '{:.3g}')} "
        f"x IS Sharpe + {_num(intercept, '{:.3g}')} (per bar)",
        f"verdict: {verdict(s)}",
    ])
