"""A notice is a notice: results are called synthetic only when their data are
(``Backtester(synthetic=True)`` or prices written by ``alphadev.synthetic``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from alphadev import Backtester, CSVDataLoader
from alphadev.report import build_report
from alphadev.report.html import build_tear_sheet
from alphadev.spec import spec_is_synthetic
from alphadev.store import read_synthetic
from alphadev.synthetic import SYNTHETIC_MARKER, data_are_synthetic, write_synthetic_market
from alphadev.validation import ParameterError
from tests.conftest import SYMBOLS, make_config, write_market

SAYS_SYNTHETIC = "Synthetic data: these results say nothing about a real market"


def _run(save_dir: Path, bt: Backtester, market: Path, capsys: pytest.CaptureFixture) -> str:
    for scale in (1.0, -1.0):
        bt.add_config(make_config(market, name=f"echo{scale}", alpha_kwargs={"scale": scale}))
    bt.run_all(verbose=True, save_dir=save_dir)
    return capsys.readouterr().out


def _verdict_and_footer(html: str) -> tuple[str, str]:
    return html.split("class='verdict'>")[1].split("</p>")[0], html.split("<footer>")[1]


def test_a_notice_alone_does_not_call_the_data_synthetic(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    market, save_dir = write_market(tmp_path / "data"), tmp_path / "runs"
    printed = _run(save_dir, Backtester(notice="Binance candles, 5 pairs"), market, capsys)
    assert "NOTE: Binance candles, 5 pairs" in printed and "synthetic" not in printed.lower()
    assert not read_synthetic(save_dir)
    html = build_report(save_dir, top=2).read_text(encoding="utf-8")
    assert "Binance candles, 5 pairs" in html.split("<h1>")[0]  # the banner
    verdict, footer = _verdict_and_footer(html)
    assert "synthetic" not in verdict.lower() and "synthetic" not in footer.lower()
    sheet = build_tear_sheet(save_dir / "echo1.0").read_text(encoding="utf-8")
    assert "synthetic" not in sheet.split("<footer>")[1].lower()


def test_synthetic_true_says_so_and_a_rerun_without_it_takes_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    market, save_dir = write_market(tmp_path / "data"), tmp_path / "runs"
    printed = _run(save_dir, Backtester(synthetic=True), market, capsys)
    assert "NOTE: The data are synthetic: these results say nothing about a real market." \
        in printed
    assert read_synthetic(save_dir) and Backtester.load(save_dir).synthetic
    html = build_report(save_dir, top=2).read_text(encoding="utf-8")
    assert "class='banner'" not in html  # no notice, so no banner
    verdict, footer = _verdict_and_footer(html)
    assert SAYS_SYNTHETIC in verdict and SAYS_SYNTHETIC in footer
    sheet = build_tear_sheet(save_dir / "echo1.0").read_text(encoding="utf-8")
    assert SAYS_SYNTHETIC in sheet.split("<footer>")[1]

    _run(save_dir, Backtester(), market, capsys)
    assert not (save_dir / "synthetic.txt").exists()
    verdict, footer = _verdict_and_footer(build_report(save_dir, top=2).read_text("utf-8"))
    assert "synthetic" not in verdict.lower() + footer.lower()


def _on_synthetic_prices(folder: Path, name: str, scale: float = 1.0):
    files = write_synthetic_market(folder, symbols=SYMBOLS, days=5)
    return make_config(folder, name=name, alpha_kwargs={"scale": scale},
                       end_date=dt.date(2024, 1, 4),
                       price_loader=CSVDataLoader(str(files["prices"]), "close"),
                       alpha_loaders=[CSVDataLoader(str(files["values"]), "value")],
                       beta_csv_path=str(files["beta"]))


def test_prices_from_the_synthetic_generator_are_recognised(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    planted = _on_synthetic_prices(tmp_path / "synthetic", "planted")
    assert (tmp_path / "synthetic" / SYNTHETIC_MARKER).is_file()
    real = make_config(write_market(tmp_path / "real"), name="real")
    assert data_are_synthetic([planted]) and data_are_synthetic([real, planted])
    assert not data_are_synthetic([real])
    bt = Backtester()
    bt.add_config(planted)
    bt.add_config(_on_synthetic_prices(tmp_path / "synthetic", "flipped", -1.0))
    bt.run_all(verbose=True, save_dir=tmp_path / "runs")
    assert "NOTE: The data are synthetic" in capsys.readouterr().out
    verdict, _ = _verdict_and_footer(build_report(tmp_path / "runs").read_text("utf-8"))
    assert SAYS_SYNTHETIC in verdict


SPEC = """
from pathlib import Path

from alphadev import Backtester, CSVDataLoader
from tests.conftest import make_config

backtester = Backtester(synthetic={flag})
backtester.add_config(make_config(Path({market!r}), name="one",
                                  price_loader=CSVDataLoader({prices!r}, "close")))
"""


def test_a_spec_on_synthetic_prices_is_synthetic(tmp_path: Path) -> None:
    synthetic = tmp_path / "synthetic"
    write_synthetic_market(synthetic, symbols=SYMBOLS, days=5)
    real = write_market(tmp_path / "real")
    for n, (prices, flag, expected) in enumerate(((real, False, False), (real, True, True),
                                                  (synthetic, False, True))):
        spec = tmp_path / f"spec{n}.py"
        spec.write_text(SPEC.format(flag=flag, market=str(real),
                                    prices=str(prices / "prices.csv")))
        assert spec_is_synthetic(str(spec)) is expected, (prices, flag)


def test_synthetic_must_be_a_bool() -> None:
    with pytest.raises(ParameterError, match=r"synthetic='yes' is invalid: it must be True"):
        Backtester(synthetic="yes")  # type: ignore[arg-type]
