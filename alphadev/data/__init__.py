"""Loaders and the reference data (betas) a backtest reads."""

from alphadev.data.beta import load_betas
from alphadev.data.files import clear_cache
from alphadev.data.loaders import (
    CompositeDataLoader,
    CSVDataLoader,
    DataLoader,
    ParquetDataLoader,
)

__all__ = [
    "CSVDataLoader",
    "CompositeDataLoader",
    "DataLoader",
    "ParquetDataLoader",
    "clear_cache",
    "load_betas",
]
