"""Bad execution and cost settings: one clear error naming the field and the value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alphadev import CSVDataLoader
from alphadev.validation import ParameterError
from tests.conftest import SYMBOLS, make_config


@pytest.mark.parametrize("delay", [-1, 1.5, "1", True, None])
def test_bad_execution_delay(market, delay):
    with pytest.raises(ParameterError, match=rf"execution_delay={delay!r}.*integer >= 0"):
        make_config(market, execution_delay=delay)


def test_delay_reaching_before_1900_is_a_clear_error(market):
    """Not an OutOfBoundsTimedelta from pandas deep inside the panel."""
    with pytest.raises(ParameterError, match=r"execution_delay=10000000 .* <= 1086984 .*1900"):
        make_config(market, execution_delay=10**7)
    assert make_config(market, execution_delay=1086984).execution_delay == 1086984


def test_numpy_integer_delay_is_welcome(market):
    config = make_config(market, execution_delay=np.int64(2))
    assert config.execution_delay == 2 and type(config.execution_delay) is int


@pytest.mark.parametrize("rate", [-1e-4, math.nan, math.inf, 2.0, "0.001"])
def test_bad_slippage_rate(market, rate):
    with pytest.raises(ParameterError, match=r"slippage_rate="):
        make_config(market, slippage_rate=rate)


def test_bad_rate_in_a_slippage_mapping_names_the_symbol(market):
    rates = {s: 1e-4 for s in SYMBOLS} | {"CCCUSDT": math.nan}
    with pytest.raises(ParameterError, match=r"slippage_rate\['CCCUSDT'\]=nan"):
        make_config(market, slippage_rate=rates)


def test_slippage_mapping_must_cover_every_symbol(market):
    rates = {s: 1e-4 for s in SYMBOLS if s != "DDDUSDT"}
    with pytest.raises(ValueError, match=r"no rate for symbol 'DDDUSDT'"):
        make_config(market, slippage_rate=rates)


def test_slippage_mapping_is_kept_in_symbol_order(market):
    rates = {s: 1e-4 * k for k, s in enumerate(reversed(SYMBOLS))}
    config = make_config(market, slippage_rate={**rates, "ZZZUSDT": 1e-3})
    # unconfigured symbols stay out of the description (and so of the fingerprint)
    assert list(config.to_dict()["slippage_rate"]) == sorted(SYMBOLS)
    assert config.fingerprint() == make_config(market, slippage_rate=rates).fingerprint()
    assert config.slippage_rates(["EEEUSDT"]) == [0.0]


def test_beta_loader_and_beta_csv_path_exclude_each_other(market):
    betas = CSVDataLoader(str(market / "values.csv"), "value")
    with pytest.raises(ValueError, match=r"both beta_loader=.* and beta_csv_path="):
        make_config(market, beta_loader=betas)
    assert make_config(market, beta_loader=betas, beta_csv_path=None).beta_loader == betas


@pytest.mark.parametrize("field", ["funding_loader", "beta_loader"])
def test_cost_loaders_must_be_loaders(market, field):
    with pytest.raises(TypeError, match=rf"{field}='funding.csv' must be a DataLoader"):
        make_config(market, beta_csv_path=None, **{field: "funding.csv"})


def test_a_delay_longer_than_the_data_is_named_in_the_warning(market):
    """Every bar's delayed alpha lies before the data: the run says why it traded nothing."""
    from alphadev.runner import run_backtest

    result = run_backtest(make_config(market, execution_delay=24 * 30))
    assert result.sequences["turnover"].sum() == 0
    assert "execution_delay=720 bars is shorter than the data" in result.metadata["warnings"][0]


def test_a_wider_slippage_table_serves_a_copy_with_more_symbols(market):
    """The table is not cut down to the first symbols: a grid over symbols still finds
    the rates of the symbols it adds."""
    table = {s: 1e-4 * (k + 1) for k, s in enumerate(SYMBOLS)}
    few = make_config(market, symbols=SYMBOLS[:3], slippage_rate=table)
    assert list(few.to_dict()["slippage_rate"]) == SYMBOLS[:3]
    assert few.fingerprint() == make_config(
        market, symbols=SYMBOLS[:3], slippage_rate={s: table[s] for s in SYMBOLS[:3]}
    ).fingerprint()
    more = few.replace(symbols=SYMBOLS)
    assert more.slippage_rates(SYMBOLS) == [table[s] for s in SYMBOLS]
