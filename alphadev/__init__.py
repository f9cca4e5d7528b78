"""alphadev: backtest cross-sectional long/short alphas and sweep their parameters."""

from alphadev.alpha import Alpha
from alphadev.analysis import SignalAnalysis
from alphadev.backtester import Backtester, load_sweep
from alphadev.config import BacktestConfig
from alphadev.data import CompositeDataLoader, CSVDataLoader, DataLoader, ParquetDataLoader
from alphadev.errors import AlphaError, BacktestError, DataError, SpecError
from alphadev.research import signal_analysis
from alphadev.results import BacktestResult
from alphadev.version import __version__

__all__ = [
    "Alpha",
    "AlphaError",
    "BacktestError",
    "BacktestConfig",
    "BacktestResult",
    "Backtester",
    "CSVDataLoader",
    "CompositeDataLoader",
    "DataError",
    "DataLoader",
    "ParquetDataLoader",
    "SignalAnalysis",
    "SpecError",
    "__version__",
    "load_sweep",
    "signal_analysis",
]
