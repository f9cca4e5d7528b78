"""Content-addressed cache of aligned panels: load the data and run each alpha once.

A panel (prices, alpha, universe on the bar grid) depends on the data files, the
loaders, the alpha class with its parameters and code (the fingerprint's code identity,
``alphadev.identity``: inherited methods, helpers and constants too), the dates, the
frequency, ``max_fill_bars`` and ``execution_delay`` (and, when set, ``funding_loader``,
``beta_loader``, and ``volume_loader`` with ``impact_window``) -- not on quantiles, fees,
slippage, impact coefficient, capital or gross exposure.  Its key hashes exactly those,
so the configs of a setting grid share one panel, and any change to a data file (size or
mtime) or to the alpha gives a new key.

Two levels: the last few panels in memory (per process), and with a cache folder
(``{save_dir}/.cache/panels``) ``.npz`` files that every process and machine sharing
the folder reuses.  A file is written atomically (``alphadev.store``); a per-key
lock makes concurrent workers wait for the one computing the panel instead of
computing it again.  Streaming runs bypass the cache: their point is bounded memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from alphadev._jsonable import jsonable
from alphadev.alpha import Alpha
from alphadev.config import NO_LAG, BacktestConfig
from alphadev.identity import code_digest
from alphadev.layout import panel_file
from alphadev.panel import Panel, build_panel
from alphadev.store import atomic_write, name_lock
from alphadev.version import RESULTS_VERSION

MEMORY_SLOTS = 2
_MEMORY: OrderedDict[str, Panel] = OrderedDict()
STATS = {"memory_hits": 0, "disk_hits": 0, "computed": 0}  # per process, read by tests
_FIELDS = ("bars", "prices", "alpha", "universe", "observed")
# Stored only when not None.
_OPTIONAL_FIELDS = ("alpha_before", "funding", "betas", "volume", "impact_scale",
                   "trade_prices")


def panel_key(config: BacktestConfig, start: pd.Timestamp, end: pd.Timestamp) -> str:
    """Hash of everything the panel of [start, end) depends on."""
    described = config.identity_dict()
    payload = {
        "loaders": [described["price_loader"], described["alpha_loaders"],
                    described["universe_loader"]],
        "symbols": sorted(config.symbols),
        "frequency_ns": config.bar_nanos,
        "max_fill_bars": config.max_fill_bars,
        "window": [start.isoformat(), end.isoformat()],
        "alpha": [
            described["alpha_class"],
            described["alpha_kwargs"],
            jsonable(getattr(config.alpha_class, "version", 0), "version"),
            code_digest(config.alpha_class),
        ],
        "files": config.data_files(),
        "results_version": RESULTS_VERSION,
    }
    # Panels hold the d + 1 alpha rows before their first bar (docs/semantics.md#next-bar);
    # the count is in the key, so a panel cached before it held the extra row is not read.
    payload["alpha_rows_before"] = config.execution_delay + 1
    for field in ("funding_loader", "beta_loader", "volume_loader"):
        if field in described:
            payload[field] = described[field]
    if config.volume_loader is not None:
        payload["impact_window_bars"] = config.impact_window_bars
    if config.execution_lag != NO_LAG:  # the traded prices and the funding intervals move
        payload["execution_lag_ns"] = pd.Timedelta(config.execution_lag).value
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def cached_panel(
    config: BacktestConfig,
    alpha: Alpha,
    start: pd.Timestamp,
    end: pd.Timestamp,
    progress: Callable[[str], None] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Panel:
    """``build_panel`` through the memory and disk caches."""
    key = panel_key(config, start, end)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        STATS["memory_hits"] += 1
        return _MEMORY[key]
    if cache_dir is None:
        panel = build_panel(config, alpha, start, end, progress)
        STATS["computed"] += 1
    else:
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = panel_file(folder, key)
        with name_lock(folder, key):
            stored = _read(path)
            if stored is None:
                panel = build_panel(config, alpha, start, end, progress)
                STATS["computed"] += 1
                _write(path, panel)
            else:
                panel = stored
                STATS["disk_hits"] += 1
    _MEMORY[key] = panel
    while len(_MEMORY) > MEMORY_SLOTS:
        _MEMORY.popitem(last=False)
    return panel


def clear_memory() -> None:
    _MEMORY.clear()


def _read(path: Path) -> Panel | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            optional = {name: data[name] for name in _OPTIONAL_FIELDS if name in data}
            return Panel(**{name: data[name] for name in _FIELDS}, **optional)
    except (OSError, ValueError, KeyError):
        return None  # absent, or unreadable: recompute and overwrite


def _write(path: Path, panel: Panel) -> None:
    # A file object: given a path, np.savez would append ".npz" to the temporary name.
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        arrays = {name: getattr(panel, name) for name in _FIELDS + _OPTIONAL_FIELDS}
        np.savez(fh, **{name: value for name, value in arrays.items() if value is not None})
