"""Module-level alphas for tests (importable, so configs using them pickle)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alphadev.alpha import Alpha


class EchoAlpha(Alpha):
    """The alpha is the 'value' column as given."""

    lookback = 60

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return (data[["value"]] * self.scale).rename(columns={"value": "alpha"})


class RollingMeanAlpha(Alpha):
    """Mean of 'value' over the last ``window`` rows of each symbol (within lookback)."""

    def __init__(self, window: int = 6) -> None:
        self.window = window

    @property
    def lookback(self) -> int:
        return self.window * 60

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        rolled = data["value"].groupby(level="symbol").rolling(self.window).mean()
        rolled.index = rolled.index.droplevel(0)
        return rolled.rename("alpha").to_frame().reindex(data.index)


class CountingAlpha(EchoAlpha):
    """Appends one line per compute() call to the file named by ``log_path``."""

    def __init__(self, log_path: str, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.log_path = log_path

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        with open(self.log_path, "a") as fh:
            fh.write(f"{os.getpid()} scale={self.scale}\n")
        return super().compute(data)


class FailingAlpha(EchoAlpha):
    """Raises inside compute: a config that fails at run time."""

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("planted failure in FailingAlpha.compute")


class SelfKillingAlpha(EchoAlpha):
    """Kills its own process with SIGKILL, as the OOM killer would."""

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


class WaitForFileAlpha(EchoAlpha):
    """Blocks until ``marker`` exists (or ``timeout`` s pass), then behaves like Echo."""

    def __init__(self, marker: str, timeout: float = 60.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.marker = marker
        self.timeout = timeout

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        deadline = time.monotonic() + self.timeout
        while not Path(self.marker).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"marker {self.marker} never appeared")
            time.sleep(0.01)
        return super().compute(data)


class IdleAlpha(EchoAlpha):
    """No signal (NaN alpha): the config never trades, its pnl is 0 on every bar."""

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return (data[["value"]] * float("nan")).rename(columns={"value": "alpha"})


class PlantedOptimumAlpha(Alpha):
    """A planted optimum for searches: the 'value' signal weighted by how close
    (``a``, ``b``) lie to (0.7, 0.3), plus fixed pseudo-noise, so the Sharpe peaks
    there.  With ``log_path`` each compute() appends ``a b`` to that file."""

    lookback = 60
    OPTIMUM = (0.7, 0.3)

    def __init__(self, a: float = 0.5, b: float = 0.5, log_path: str | None = None) -> None:
        self.a, self.b, self.log_path = a, b, log_path

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        if self.log_path is not None:
            with open(self.log_path, "a") as fh:
                fh.write(f"{self.a!r} {self.b!r}\n")
        distance2 = (self.a - self.OPTIMUM[0]) ** 2 + (self.b - self.OPTIMUM[1]) ** 2
        weight = float(np.exp(-distance2 / 0.02))
        stamps = data.index.get_level_values("timestamp").asi8 / 3.6e12
        codes = pd.factorize(data.index.get_level_values("symbol"), sort=True)[0]
        noise = np.modf(np.abs(np.sin(stamps * 12.9898 + codes * 78.233)) * 43758.5453)[0]
        scale = float(np.nanstd(data["value"].to_numpy())) or 1.0
        alpha = weight * data["value"] + (1 - weight) * (noise - 0.5) * 3 * scale
        return alpha.rename("alpha").to_frame()
