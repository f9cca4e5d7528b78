"""Exception types; each message names the config, field or file and the fix."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or loader output that cannot be used as it is."""


class AlphaError(ValueError):
    """An alpha whose output breaks the ``compute`` contract."""


class BacktestError(RuntimeError):
    """A config failed inside ``run_all(stop_on_error=True)``."""


class SpecError(ValueError):
    """A spec that does not exist, fails to import, or defines no configs."""
