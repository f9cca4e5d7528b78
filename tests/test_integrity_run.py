"""Settings that cannot give a number, numpy values in grids, error logs, silent no-trade runs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import Alpha, Backtester
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha, FailingAlpha
from tests.conftest import make_config


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "field, value",
    [
        ("gross_exposure", float("inf")),
        ("gross_exposure", float("nan")),
        ("trading_fee_rate", float("inf")),
        ("trading_fee_rate", float("nan")),
        ("trading_fee_rate", 2.0),
        ("quantile", (0.2, float("nan"))),
        ("quantile", (float("inf"), 0.2)),
    ],
)
def test_settings_must_be_finite(market: Path, field: str, value) -> None:
    with pytest.raises(ValueError) as info:
        make_config(market, **{field: value})
    message = str(info.value)
    assert "'base'" in message and field in message and ("nan" in message or "inf" in message
                                                          or "2.0" in message)


def test_numpy_scalars_are_plain_settings(market: Path) -> None:
    config = make_config(
        market, quantile=(np.float64(0.2), np.float32(0.3)), gross_exposure=np.float32(1.5),
        trading_fee_rate=np.float64(1e-4), max_fill_bars=np.int64(2),
        mode="streaming", chunk_days=np.int32(2),
    )
    assert config.quantile == (0.2, 0.3)
    assert config.gross_exposure == 1.5 and type(config.gross_exposure) is float
    assert config.max_fill_bars == 2 and type(config.max_fill_bars) is int
    assert config.chunk_days == 2 and type(config.chunk_days) is int
    json.dumps(config.to_dict())


@pytest.mark.parametrize("value", [np.bool_(True), True, 1.5, "2"])
def test_integer_settings_reject_non_integers(market: Path, value) -> None:
    with pytest.raises((TypeError, ValueError), match="max_fill_bars"):
        make_config(market, max_fill_bars=value)


# --------------------------------------------------------------------------- grids
def test_numpy_arrays_and_scalars_in_grids(market: Path) -> None:
    bt = Backtester()
    configs = bt.add_multiple_configs(
        make_config(market),
        param_grid={"scale": np.arange(1, 3)},
        setting_grid={
            "trading_fee_rate": list(np.linspace(1e-4, 2e-4, 2)),
            "quantile": [(0.2, np.float32(0.3))],
        },
    )
    names = [c.name for c in configs]
    assert names[0] == "base__quantile=0.2,0.3__scale=1__trading_fee_rate=0.0001"
    assert not any("np." in n or "float" in n for n in names), names
    assert {type(c.alpha_kwargs["scale"]) for c in configs} == {int}
    assert {c.trading_fee_rate for c in configs} == {1e-4, 2e-4}


@pytest.mark.parametrize("values", [[], np.array([]), "abc", {"a": 1}])
def test_grid_values_must_be_a_non_empty_sequence(market: Path, values) -> None:
    with pytest.raises(ValueError, match="scale"):
        Backtester().add_multiple_configs(make_config(market), param_grid={"scale": values})


# --------------------------------------------------------------------------- error logs
def _two_failures(market: Path) -> Backtester:
    bt = Backtester()
    bt.add_config(make_config(market, name="good"))
    bt.add_config(make_config(market, name="bad1", alpha_class=FailingAlpha))
    bt.add_config(make_config(market, name="bad2", alpha_class=FailingAlpha))
    return bt


def test_err_path_in_a_folder_that_does_not_exist_yet(market: Path, tmp_path: Path) -> None:
    err = tmp_path / "runs" / "mom" / "errors.log"
    bt = Backtester()  # the first config fails before anything created the folder
    bt.add_config(make_config(market, name="bad1", beta_csv_path=str(market / "nope.csv")))
    bt.add_config(make_config(market, name="good"))
    bt.add_config(make_config(market, name="bad2", alpha_class=FailingAlpha))
    results = bt.run_all(verbose=False, save_dir=tmp_path / "runs" / "mom", err_path=err)
    assert [r is None for r in results] == [True, False, True]
    text = err.read_text()
    assert "'bad1'" in text and "nope.csv" in text
    assert "'bad2'" in text and "planted failure" in text


def test_unwritable_error_log_does_not_abort_the_run(market, tmp_path, caplog) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the log's folder should be")
    caplog.set_level(logging.WARNING)
    results = _two_failures(market).run_all(verbose=False, err_path=blocker / "errors.log")
    assert results[0] is not None and results[1] is None and results[2] is None
    unwritable = [r for r in caplog.records if "cannot write the error log" in r.getMessage()]
    assert len(unwritable) == 1, "said once, not once per failure"
    failed = " ".join(r.getMessage() for r in caplog.records)
    assert "'bad1' failed" in failed and "'bad2' failed" in failed
    assert "planted failure" in failed  # the report goes to the log instead


def test_quiet_run_without_err_path_names_each_failure(market, caplog) -> None:
    caplog.set_level(logging.WARNING)
    _two_failures(market).run_all(verbose=False)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("'bad1' failed" in m for m in messages)
    assert any("'bad2' failed" in m for m in messages)


def test_pool_with_err_path_in_a_new_folder(market: Path, tmp_path: Path) -> None:
    err = tmp_path / "fresh" / "errors.log"
    results = _two_failures(market).run_all(verbose=False, num_processes=2, err_path=err)
    assert [r is None for r in results] == [False, True, True]
    assert "'bad2'" in err.read_text()


# --------------------------------------------------------------------------- no trades
class NaNAlpha(Alpha):
    lookback = 60

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"alpha": np.nan}, index=data.index)


@pytest.mark.parametrize(
    "changes",
    [{"alpha_class": NaNAlpha}, {"symbols": ["AAAUSDT"]}],
    ids=["all-nan-alpha", "single-symbol"],
)
def test_a_run_that_trades_nothing_warns(market, tmp_path, caplog, changes) -> None:
    caplog.set_level(logging.WARNING)
    config = make_config(market, **changes)
    result = run_backtest(config)
    assert result.metrics["avg_turnover"] == 0.0
    (warning,) = result.metadata["warnings"]
    assert "traded nothing" in warning and "'base'" in warning
    assert sum("traded nothing" in r.getMessage() for r in caplog.records) == 1

    bt = Backtester()
    bt.add_config(config)
    bt.run_all(verbose=False, save_dir=tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "base" / "metadata.json").read_text())
    assert saved["warnings"] == [warning]


def test_a_run_that_trades_has_no_warning(market) -> None:
    result = run_backtest(make_config(market, alpha_class=EchoAlpha))
    # The test market's planted edge is in-bar: only the next-bar warning may appear.
    assert [w for w in result.metadata["warnings"] if " is fragile: " not in w] == []
