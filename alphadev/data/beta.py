"""Per-symbol betas for beta-neutral leg sizing (docs/semantics.md#data-conventions)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from alphadev.data.files import FileStat, stat_file
from alphadev.errors import DataError

_CACHE: dict[FileStat, BetaFile] = {}


class BetaFile(NamedTuple):
    """A parsed beta file: the usable betas, and every symbol it names (any status)."""

    betas: dict[str, float]
    symbols: list[str]


def beta_stat(path: str | os.PathLike) -> FileStat:
    return stat_file(os.fspath(path), "beta_csv_path")


def load_betas(path: str | os.PathLike | None, symbols: Sequence[str]) -> np.ndarray:
    """Beta per symbol; 1.0 where the file has no ``ok`` row with a finite beta."""
    if path is None:
        return np.ones(len(symbols))
    betas = read_beta_file(path).betas
    return np.array([betas.get(s, 1.0) for s in symbols], dtype=np.float64)


def read_beta_file(path: str | os.PathLike) -> BetaFile:
    """The parsed file, from the cache while it is unchanged."""
    stat = beta_stat(path)
    if stat not in _CACHE:
        _CACHE[stat] = _parse(stat.path)
    return _CACHE[stat]


def _parse(path: str) -> BetaFile:
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"beta_csv_path: cannot read {path!r}: {exc}") from exc
    # ``symbol, beta, status`` headers and `` BTCUSDT`` cells mean what they say
    frame.columns = [c.strip() if isinstance(c, str) else c for c in frame.columns]
    missing = [c for c in ("symbol", "beta", "status") if c not in frame.columns]
    if missing:
        raise DataError(
            f"beta_csv_path: file {path!r} has no column {missing[0]!r} (it has "
            f"{list(frame.columns)}); a beta file needs columns symbol, beta, status"
        )
    frame["symbol"] = frame["symbol"].astype(str).str.strip()
    status = frame["status"].astype(str).str.strip().str.lower()
    beta = pd.to_numeric(frame["beta"], errors="coerce")
    usable = frame[(status == "ok") & np.isfinite(beta)]
    dup = usable["symbol"].astype(str).duplicated()
    if dup.any():
        raise DataError(
            f"beta_csv_path: file {path!r} has more than one usable row for symbol "
            f"{usable['symbol'][dup].iloc[0]!r}; keep one row with status 'ok' per symbol"
        )
    return BetaFile(
        betas=dict(zip(usable["symbol"].astype(str), beta[usable.index].astype(float))),
        symbols=sorted(set(frame["symbol"].astype(str))),
    )
