"""The user-facing alpha contract."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod

import pandas as pd


class Alpha(ABC):
    """A score per symbol per bar; higher means "go long".

    Subclasses take their parameters as constructor keyword arguments (the config's
    ``alpha_kwargs``).  The fingerprint follows the code ``compute`` reaches in user
    modules (``alphadev.identity``); an optional class attribute ``version`` is part of
    it too: bump it when something it cannot see changes (a library, a file read
    outside the loaders) so saved results are recomputed.
    """

    version: str | int = 0

    @property
    @abstractmethod
    def lookback(self) -> int | dt.timedelta | pd.Timedelta:
        """History needed before each bar: minutes (int) or a timedelta."""

    @abstractmethod
    def reset(self) -> None:
        """Forget internal state; called before every run and every stream."""

    @abstractmethod
    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        """Return a frame on a (timestamp, symbol) index with a column ``alpha``."""


def lookback_timedelta(alpha: Alpha) -> pd.Timedelta:
    """The alpha's lookback as a non-negative Timedelta (an int means minutes)."""
    value = alpha.lookback
    if isinstance(value, bool):
        raise TypeError(f"{type(alpha).__name__}.lookback must be minutes or a timedelta, got bool")
    if isinstance(value, int):
        delta = pd.Timedelta(minutes=value)
    elif isinstance(value, (dt.timedelta, pd.Timedelta)):
        delta = pd.Timedelta(value)
    else:
        raise TypeError(
            f"{type(alpha).__name__}.lookback must be an int (minutes) or a timedelta, "
            f"got {value!r}"
        )
    if delta < pd.Timedelta(0):
        raise ValueError(f"{type(alpha).__name__}.lookback must be >= 0, got {value!r}")
    return delta
