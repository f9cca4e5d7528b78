"""Effective number of independent trials in a sweep, for the deflated Sharpe ratio.

Configs that differ only in fee (or in any setting that barely moves the book) have
near-identical return series; counted as separate trials they inflate the expected
maximum Sharpe of unskilled trials and make the DSR useless.  Following López de
Prado ("A Data Science Solution to the Multiple-Testing Crisis in Financial Research",
2019, and the DSR paper's remark that N is the number of *independent* trials), the
configs are clustered on the correlation of their returns and each cluster counts as
one trial:

* returns on the union of the configs' bar grids, a missing bar counting as 0 (no
  position, no return); Pearson correlation ``rho`` over all bars;
* distance ``d = sqrt((1 - rho) / 2)`` (0 for identical series, 1 for opposite ones);
  a config with zero spread correlates with nothing (rho = 0, distance sqrt(1/2));
* complete-linkage agglomerative clustering, cut at ``d <= sqrt((1 - threshold) / 2)``:
  every pair of configs in one cluster has ``rho >= threshold`` (default
  ``NEAR_DUPLICATE_CORRELATION = 0.9``), so a chain of gradually different alphas is
  never merged into one trial;
* ``N_eff`` = the number of clusters.

Clustering runs the nearest-neighbour-chain algorithm (O(N^2) time and memory, exact
for complete linkage), compiled with numba; ties go to the lower index.  It works in one
N x N matrix (8 N^2 bytes), so above ``MAX_CLUSTERED_CONFIGS`` configs it is not run and
every config is its own trial: the conservative N_eff = N, which can only lower a DSR.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from alphadev.validation import check_scalar

__all__ = [
    "MAX_CLUSTERED_CONFIGS",
    "NEAR_DUPLICATE_CORRELATION",
    "TrialClusters",
    "cluster_trials",
    "correlation_matrix",
]

NEAR_DUPLICATE_CORRELATION = 0.9
"""Configs whose returns correlate at least this much (every pair) are one trial.

Fee variants of one alpha correlate above 0.99 on the bundled sweep; its different
lookback windows between 0.3 and 0.7."""

MAX_CLUSTERED_CONFIGS = 12_000
"""Above this many configs the clustering's N x N matrix (1.15 GB at this size) is not
built and N_eff = N.  A 30,000-config sweep would need 7.2 GB per matrix."""

logger = logging.getLogger(__name__)


class TrialClusters(NamedTuple):
    """``labels[i]``: the cluster of config i, numbered 0.. in order of first member;
    ``n_effective``: the number of clusters; ``threshold``: the correlation used."""

    labels: npt.NDArray[np.int64]
    n_effective: int
    threshold: float


def correlation_matrix(pnl: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Pearson correlation of the columns of ``pnl`` (bars x configs, NaN = no bar = 0).

    A column with zero spread (``metrics.STD_ZERO_RTOL``) correlates with nothing: its
    row and column are 0, the diagonal 1.
    """
    from alphadev.metrics import STD_ZERO_RTOL

    x = np.nan_to_num(np.asarray(pnl, dtype=np.float64), nan=0.0)
    if x.ndim != 2:
        raise ValueError(f"pnl must be bars x configs, got shape {x.shape}")
    scale = np.abs(x).max(axis=0) if x.shape[0] else np.zeros(x.shape[1])
    x = x - x.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", x, x))
    flat = norms <= STD_ZERO_RTOL * scale * np.sqrt(max(x.shape[0] - 1, 1))
    norms[flat] = 1.0
    x /= norms
    corr = x.T @ x
    corr[flat, :] = 0.0
    corr[:, flat] = 0.0
    np.clip(corr, -1.0, 1.0, out=corr)
    np.fill_diagonal(corr, 1.0)
    return corr


def cluster_trials(
    pnl: npt.ArrayLike,
    threshold: float = NEAR_DUPLICATE_CORRELATION,
    max_configs: int = MAX_CLUSTERED_CONFIGS,
) -> TrialClusters:
    """Cluster the configs (columns of ``pnl``) whose returns are near-duplicates.

    More than ``max_configs`` columns: no clustering, each config its own cluster."""
    threshold = check_scalar("threshold", threshold, low=-1.0, high=1.0,
                             hint="the correlation above which configs are one trial")
    max_configs = check_scalar("max_configs", max_configs, low=1, integer=True,
                               hint="the most configs clustered in one N x N matrix")
    n = np.shape(pnl)[1] if np.ndim(pnl) == 2 else 0
    if n > max_configs:
        logger.warning(
            "%d configs are more than the %d whose returns are clustered into trials; "
            "each config counts as its own trial (N_eff = N, the conservative DSR)",
            n, max_configs)
        return TrialClusters(np.arange(n, dtype=np.int64), n, threshold)
    distance = correlation_matrix(pnl)
    n = distance.shape[0]
    if n == 0:
        return TrialClusters(np.zeros(0, dtype=np.int64), 0, threshold)
    # d = sqrt(max((1 - rho) / 2, 0)), in place: the matrix is the memory bound.
    np.subtract(1.0, distance, out=distance)
    distance *= 0.5
    np.maximum(distance, 0.0, out=distance)
    np.sqrt(distance, out=distance)
    cut = np.sqrt(max(0.5 * (1.0 - threshold), 0.0))
    labels = _cut_complete_linkage(distance, cut * (1.0 + 1e-12))
    return TrialClusters(labels, int(labels.max()) + 1, threshold)


@njit(cache=True)
def _cut_complete_linkage(distance: np.ndarray, cut: float) -> np.ndarray:
    """Labels of the complete-linkage clusters whose merge heights are <= ``cut``.

    Nearest-neighbour chain: follow nearest neighbours until two clusters are each
    other's nearest, merge them (Lance-Williams: the new distance is the max), repeat.
    The merges at height <= cut, applied in any order, give the dendrogram's cut
    because complete linkage is reducible (heights never decrease up the tree).
    ``distance`` is overwritten (no copy: it is the clustering's memory bound).
    """
    n = distance.shape[0]
    d = distance
    active = np.ones(n, dtype=np.bool_)
    parent = np.arange(n)
    chain = np.empty(n, dtype=np.int64)
    size = 0
    remaining = n
    while remaining > 1:
        if size == 0:
            for i in range(n):
                if active[i]:
                    chain[0] = i
                    size = 1
                    break
        a = chain[size - 1]
        previous = chain[size - 2] if size >= 2 else -1
        best = -1
        best_d = np.inf
        if previous >= 0:
            best = previous
            best_d = d[a, previous]
        for k in range(n):
            if active[k] and k != a and d[a, k] < best_d:
                best_d = d[a, k]
                best = k
        if best == previous:
            size -= 2
            b = previous
            keep, gone = (a, b) if a < b else (b, a)
            for k in range(n):
                if active[k]:
                    merged = max(d[keep, k], d[gone, k])
                    d[keep, k] = merged
                    d[k, keep] = merged
            d[keep, keep] = 0.0
            active[gone] = False
            remaining -= 1
            if best_d <= cut:
                ra = keep
                while parent[ra] != ra:
                    ra = parent[ra]
                rb = gone
                while parent[rb] != rb:
                    rb = parent[rb]
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        else:
            chain[size] = best
            size += 1
    labels = np.empty(n, dtype=np.int64)
    number = np.full(n, -1, dtype=np.int64)
    count = 0
    for i in range(n):
        r = i
        while parent[r] != r:
            r = parent[r]
        if number[r] < 0:
            number[r] = count
            count += 1
        labels[i] = number[r]
    return labels
