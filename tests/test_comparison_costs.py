"""The comparison table's cost columns: settings, totals and the share of gross eaten."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester, CSVDataLoader
from alphadev.comparison import SETTING_COLUMNS, comparison_table, cost_share, result_row
from alphadev.results import load_result
from tests.conftest import SYMBOLS, make_config, write_market


def _funding_file(folder):
    lines = ["timestamp,symbol,rate"] + [
        f"2024-01-0{day}T{hour:02d}:00:00Z,{symbol},{1e-4 * (k + 1)}"
        for day in range(2, 10) for hour in (0, 8, 16) for k, symbol in enumerate(SYMBOLS)
    ]
    (folder / "funding.csv").write_text("\n".join(lines) + "\n")
    return CSVDataLoader(str(folder / "funding.csv"), "rate")


def test_cost_columns(tmp_path) -> None:
    market = write_market(tmp_path / "data")
    per_symbol = {s: 1e-4 * (k + 1) for k, s in enumerate(SYMBOLS)}
    bt = Backtester()
    bt.add_config(make_config(market, name="plain"))
    bt.add_config(make_config(market, name="costly", execution_delay=1,
                              slippage_rate=per_symbol, funding_loader=_funding_file(market)))
    plain, costly = bt.run_all(verbose=False, num_processes=1, save_dir=tmp_path / "out")
    assert {"execution_delay", "slippage_rate"} <= set(SETTING_COLUMNS)

    row = result_row(plain)
    assert row["execution_delay"] == 0 and row["slippage_rate"] == 0.0
    assert row["total_slippage"] == 0.0 and row["total_funding"] == 0.0
    assert "cost_breakdown" not in row

    row = result_row(load_result(tmp_path / "out" / "costly"))
    assert row["execution_delay"] == 1
    assert row["slippage_rate"] == "AAAUSDT:0.0001, BBBUSDT:0.0002, CCCUSDT:0.0003, " \
                                   "DDDUSDT:0.0004, EEEUSDT:0.0005"
    breakdown = costly.metrics["cost_breakdown"]
    assert row["total_slippage"] == breakdown["slippage"] == costly.slippage.sum() > 0
    assert row["total_funding"] == breakdown["funding"] == costly.funding.sum() != 0
    assert breakdown["gross"] == pytest.approx(costly.gross.sum(), abs=1e-15)
    expected = (
        (breakdown["fees"] + breakdown["slippage"] - breakdown["funding"]) / breakdown["gross"]
        if breakdown["gross"] > 0 else None
    )
    assert row["cost_share"] == expected

    table = comparison_table([plain, costly])
    assert {"total_slippage", "total_funding", "cost_share"} <= set(table.columns)


def test_cost_share() -> None:
    assert cost_share({"gross": 0.2, "fees": 0.05, "slippage": 0.03, "funding": -0.02}) \
        == pytest.approx(0.5)
    assert cost_share({"gross": 0.1, "fees": 0.01, "slippage": 0.0, "funding": 0.03}) \
        == pytest.approx(-0.2)  # funding received exceeds what trading cost
    assert cost_share({"gross": -0.1, "fees": 0.01, "slippage": 0.0, "funding": 0.0}) is None
    assert cost_share({"gross": 0.0, "fees": 0.01, "slippage": 0.0, "funding": 0.0}) is None
    assert cost_share(None) is None  # saved before the breakdown existed
    # a gross so small that the share overflows: no inf in comparison.csv
    assert cost_share({"gross": 5e-324, "fees": 0.01, "slippage": 0.0, "funding": 0.0}) is None


def test_breakeven_fee_counts_slippage_and_funding(tmp_path) -> None:
    """The break-even fee is the fee at which the book, paying its slippage and funding
    too, makes nothing: prod(1 + gross - slippage + funding - f * 2 * turnover) = 1."""
    market = write_market(tmp_path / "data")
    bt = Backtester()
    bt.add_config(make_config(market, name="plain", trading_fee_rate=0.0))
    bt.add_config(make_config(market, name="slipped", trading_fee_rate=0.0, slippage_rate=2e-4,
                              funding_loader=_funding_file(market)))
    plain, slipped = bt.run_all(verbose=False, save_dir=tmp_path / "out")
    table = comparison_table([plain, slipped]).set_index("name")
    for result in (plain, slipped):
        fee = table.loc[result.name, "breakeven_fee"]
        if pd.isna(fee):
            continue
        factors = 1 + result.gross - result.slippage + result.funding - fee * 2 * result.turnover
        assert np.prod(factors.to_numpy()) == pytest.approx(1.0, abs=1e-9)
    if not pd.isna(table.loc["plain", "breakeven_fee"]):
        assert not table.loc["slipped", "breakeven_fee"] == table.loc["plain", "breakeven_fee"]


def test_the_terminal_leaderboard_shows_funding_and_cost_share(tmp_path) -> None:
    from alphadev.comparison import leaderboard

    market = write_market(tmp_path / "data")
    bt = Backtester()
    bt.add_config(make_config(market, name="costly", slippage_rate=2e-4,
                              funding_loader=_funding_file(market)))
    (costly,) = bt.run_all(verbose=False)
    header = leaderboard(comparison_table([costly])).splitlines()[0].split()
    assert header[0] == "name" and header[1] == "sharpe"  # net Sharpe stays the headline
    assert {"total_funding", "cost_share"} <= set(header)


def test_the_terminal_leaderboard_prints_undefined_values_empty() -> None:
    """docs: an undefined cost_share (no gross return) is empty, never 'NaN'."""
    from alphadev.comparison import leaderboard

    table = pd.DataFrame({"name": ["a", "b"], "sharpe": [1.5, 0.5],
                          "cost_share": [0.25, float("nan")]})
    text = leaderboard(table)
    assert "NaN" not in text and "nan" not in text
    assert text.splitlines()[2].split() == ["b", "0.5"]
