"""Conventions users type: exchange-style bar lengths, int lookbacks, exported errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import alphadev
from alphadev.alpha import Alpha
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha
from tests.conftest import make_config


@pytest.mark.parametrize(
    "typed, stored", [("15m", "15min"), ("1H", "1h"), ("4H", "4h"), ("5T", "5min")]
)
def test_exchange_spellings_of_a_bar_length(market: Path, typed: str, stored: str) -> None:
    config = make_config(market, frequency=typed)
    assert config.frequency == stored
    assert config.bar_nanos == make_config(market, frequency=stored).bar_nanos
    assert config.fingerprint() == make_config(market, frequency=stored).fingerprint()


def test_spellings_that_worked_keep_their_description(market: Path) -> None:
    for frequency in ("1h", "15min", "1D"):
        assert make_config(market, frequency=frequency).to_dict()["frequency"] == frequency


def test_an_unknown_bar_length_says_what_to_write(market: Path) -> None:
    with pytest.raises(ValueError) as info:
        make_config(market, frequency="15x")
    message = str(info.value)
    assert "'15x'" in message and "'15min'" in message and "'15m'" in message


class ShortLookback(EchoAlpha):
    lookback = 24  # minutes, though the author probably meant 24 hourly bars


def test_an_int_lookback_shorter_than_a_bar_warns_once(market: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    run_backtest(make_config(market, alpha_class=ShortLookback))
    run_backtest(make_config(market, alpha_class=ShortLookback, name="again"))
    said = [r.getMessage() for r in caplog.records if "lookback is 24" in r.getMessage()]
    assert len(said) == 1
    assert "24 minutes" in said[0] and "pandas.Timedelta('1h') * 24" in said[0]


def test_a_lookback_of_a_bar_or_a_timedelta_is_quiet(market: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    run_backtest(make_config(market, alpha_class=EchoAlpha))  # 60 minutes = one bar
    assert not [r for r in caplog.records if "lookback is" in r.getMessage()]


def test_errors_are_exported() -> None:
    for name in ("DataError", "AlphaError", "SpecError", "BacktestError"):
        assert issubclass(getattr(alphadev, name), Exception)
        assert name in alphadev.__all__
    assert issubclass(alphadev.DataError, ValueError)
    assert Alpha is alphadev.Alpha
