"""Slow, literal implementations of docs/semantics.md#validating-a-sweep:
plain Python loops over timestamps, configs, folds and combinations, written from the
text and nothing else, to check the fast array versions against.

Each config's returns are a dict {timestamp: pnl} holding only its own bars; configs
are a list in name order.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from alphadev.metrics import sample_std


def walk_forward(times, returns, names, train, test, anchored, metric_fn, ppy):
    """Folds as dicts and the stitched [(timestamp, name, pnl)]."""
    first = times[0]
    folds, stitched = [], []
    end = first + train
    while True:
        test_bars = [t for t in times if end <= t < end + test]
        if not test_bars:
            break
        start = first if anchored else end - train
        train_bars = [t for t in times if start <= t < end]
        best_name, best_value = None, None
        test_values = {}
        for name in names:
            train_pnl = np.array([returns[name].get(t, 0.0) for t in train_bars])
            value = metric_fn(train_pnl, ppy)
            if best_name is None or (
                value is not None and (best_value is None or value > best_value)
            ):
                best_name, best_value = name, value
            test_values[name] = metric_fn(
                np.array([returns[name].get(t, 0.0) for t in test_bars]), ppy
            )
        defined = [v for v in test_values.values() if v is not None]
        folds.append({
            "train_start": start, "train_end": end, "test_start": end, "test_end": end + test,
            "chosen": best_name, "train_metric": best_value,
            "test_metric": test_values[best_name],
            "best_test_metric": max(defined) if defined else None,
        })
        for t in test_bars:
            stitched.append((t, best_name, returns[best_name].get(t, 0.0)))
        end = end + test
    return folds, stitched


def _sharpe(values):
    """Per-bar mean / std (ddof=1), None when undefined."""
    x = np.array(values, dtype=float)
    std = sample_std(x)
    if not std:
        return None
    return float(np.mean(x)) / std


def pbo(times, returns, names, blocks):
    """({"rows": [(n*, is_sharpe, oos_sharpe, omega, lambda, tie_decides)] per
    combination in itertools.combinations order, "left_out", "undefined",
    "duplicates": {name: first name}, "trials", "pbo"}).  omega, lambda and pbo are None
    with fewer than 3 trials; n* is None with none."""
    size, extra = len(times) // blocks, len(times) % blocks
    block_bars, start = [], 0
    for b in range(blocks):
        n = size + (1 if b < extra else 0)
        block_bars.append(times[start:start + n])
        start += n
    # A config without a bar in some block is not ranked.
    covering = [
        name for name in names
        if all(any(t in returns[name] for t in block_bars[b]) for b in range(blocks))
    ]
    left_out = [name for name in names if name not in covering]
    # Never trades: no Sharpe over all its bars; not ranked.
    undefined = [name for name in covering
                 if _sharpe([returns[name][t] for t in times if t in returns[name]]) is None]
    # Exact duplicates (same bars, equal pnl) are one trial: the first by name.
    trials, duplicates = [], {}
    for name in covering:
        if name in undefined:
            continue
        first = next((f for f in trials if returns[f] == returns[name]), None)
        if first is None:
            trials.append(name)
        else:
            duplicates[name] = first
    n_trials = len(trials)
    rows = []
    for in_sample in itertools.combinations(range(blocks), blocks // 2):
        out_of_sample = [b for b in range(blocks) if b not in in_sample]

        def sharpe(name, which):
            return _sharpe([returns[name][t] for b in which for t in block_bars[b]
                            if t in returns[name]])

        best, best_is = None, None
        for name in trials:
            value = sharpe(name, in_sample)
            if best is None or (value is not None and (best_is is None or value > best_is)):
                best, best_is = name, value
        if best is None:
            rows.append((None, None, None, None, None, False))
            continue
        oos = {name: sharpe(name, out_of_sample) for name in trials}
        key = {name: (-math.inf if v is None else v) for name, v in oos.items()}
        order = sorted(trials, key=lambda n: key[n])  # rank 1 = worst
        positions = [i + 1 for i, n in enumerate(order) if key[n] == key[best]]
        rank = sum(positions) / len(positions)
        if n_trials < 3:
            rows.append((best, best_is, oos[best], None, None, False))
            continue
        omega = rank / (n_trials + 1)
        # In the lower half only because of the tie: at the top of its tie, upper half.
        tie_decides = omega <= 0.5 < max(positions) / (n_trials + 1)
        rows.append((best, best_is, oos[best], omega, math.log(omega / (1 - omega)),
                     tie_decides))
    value = None if n_trials < 3 else sum(r[4] <= 0 for r in rows) / len(rows)
    return {"rows": rows, "left_out": left_out, "undefined": undefined,
            "duplicates": duplicates, "trials": trials, "pbo": value}


def complete_linkage(distance, cut):
    """Clusters (sets of indices) by merging the two closest clusters (max pairwise
    distance) while that distance is <= cut; ties to the lowest pair."""
    clusters = [{i} for i in range(len(distance))]
    while len(clusters) > 1:
        best = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                d = max(distance[i][j] for i in clusters[a] for j in clusters[b])
                if best is None or d < best[0]:
                    best = (d, a, b)
        if best[0] > cut:
            break
        _, a, b = best
        clusters[a] |= clusters.pop(b)
    return clusters
