"""The report says what is true of these data: legends that are never clipped (measured
by Chromium's layout), short samples marked, one heatmap panel per alpha class, and a
tear sheet that names its config, its settings and its alpha's class."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.analysis import monthly_table
from alphadev.metrics import is_short_sample, sample_days
from alphadev.report import build_report, load_sweep, render_report
from alphadev.report.html import build_tear_sheet, class_name
from alphadev.report.layout import SHORT_MARK, figure, page
from alphadev.report.plots import equity_curves, legend_entries, monthly_heatmap
from tests.alphas import EchoAlpha, RollingMeanAlpha
from tests.conftest import make_config, write_market
from tests.report.test_report import ON_CI, _browser

pytest.importorskip("matplotlib")

PROBE = """<script>
var bad = [], n = 0;
document.querySelectorAll('figure').forEach(function (fig) {
  var box = fig.getBoundingClientRect();
  fig.querySelectorAll('figcaption .item, figcaption .caption').forEach(function (el) {
    var r = el.getBoundingClientRect();
    n += 1;
    if (el.scrollWidth > el.clientWidth + 1 || r.left < box.left - 1 || r.right > box.right + 1
        || r.right > document.documentElement.clientWidth)
      bad.push(el.textContent.slice(0, 40));
  });
});
document.title = n + '|' + bad.join(';');
</script>"""


def _layout(html: str, tmp_path: Path, width: int = 1400) -> tuple[int, str]:
    """(number of legend items and captions, the clipped ones) as Chromium lays them out."""
    browser = _browser()
    if browser is None:
        if ON_CI:
            pytest.fail("CI is set but no Chromium is installed (apt-get install -y chromium)")
        pytest.skip("no headless Chromium installed (apt-get install -y chromium)")
    copy = tmp_path / "probe.html"
    copy.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},1000",
         "--dump-dom", copy.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    count, clipped = re.search(r"<title>(\d+)\|([^<]*)</title>", dom).groups()
    return int(count), clipped


def _legend_of(html: str, alt: str) -> list[str]:
    """The legend labels written under the figure whose image has ``alt``."""
    found = re.search(rf"<img alt='{re.escape(alt)}'[^>]*>(<figcaption>.*?</figcaption>)?",
                      html)
    assert found is not None, alt
    return re.findall(r"<span class='item'><span class='key[^']*'[^>]*></span>([^<]*)</span>",
                      found.group(1) or "")


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory):
    """Two alpha classes, each over its own parameter and the fee (10 days: short)."""
    folder = tmp_path_factory.mktemp("two_classes")
    market = write_market(folder / "data")
    bt = Backtester()
    fees = {"trading_fee_rate": [0.0, 4.5e-4]}
    bt.add_multiple_configs(make_config(market, name="echo", alpha_class=EchoAlpha),
                            {"scale": [1.0, -1.0]}, fees)
    bt.add_multiple_configs(make_config(market, name="mean", alpha_class=RollingMeanAlpha),
                            {"window": [3, 6]}, fees)
    bt.run_all(verbose=False, save_dir=folder / "runs")
    return folder / "runs"


def test_every_legend_names_each_config_in_full_and_fits(two_classes, tmp_path):
    html = build_report(two_classes, top=4).read_text(encoding="utf-8")
    head = html.split("key metrics")[1].split("</thead>")[0]
    labels = re.findall(r"<th>([^<]*)</th>", head)[1:]  # the detailed configs, best first
    # Among these four, scale and window go with the class, so the class names them.
    assert labels == ["#1 alpha=EchoAlpha, fee=0", "#2 alpha=EchoAlpha, fee=0.00045",
                      "#3 alpha=RollingMeanAlpha, fee=0", "#4 alpha=RollingMeanAlpha, fee=0.00045"]
    assert "All 4 share" not in html  # scale and window differ, though each goes with a class
    board = html.split("class='board leader'")[1]
    assert "<td>EchoAlpha</td><td>1</td><td>None</td>" in board  # alpha, scale, window
    for alt in ("equity curves", "drawdown curves", "long and short leg",
                "rolling Sharpe and volatility", "returns histogram"):
        assert _legend_of(html, alt) == labels, alt
    assert _legend_of(html, "gross vs net equity")[:2] == [f"{labels[0]} (net)",
                                                            f"{labels[0]} (gross)"]
    assert "Colour and numbers: mean Sharpe" in html  # the colour bar's label, as text
    count, clipped = _layout(html, tmp_path)
    assert count >= 5 * 4 and clipped == ""


def test_a_very_long_label_wraps_inside_its_figure(tmp_path):
    stamps = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
    long = "#1 " + ", ".join(f"parameter_{k}=0.{k:04d}" for k in range(12))
    series = pd.Series(np.linspace(1.0, 1.1, 48), index=stamps)
    block = figure(equity_curves, {long: series, "#2 short": series * 0.99}, alt="equity")
    assert _legend_of(block, "equity") == [long, "#2 short"]
    count, clipped = _layout(page("probe", block), tmp_path, width=900)
    assert count == 2 and clipped == ""


def test_one_config_has_no_legend_and_artists_keep_their_colours():
    stamps = pd.date_range("2024-01-01", periods=10, freq="1h", tz="UTC")
    series = pd.Series(np.ones(10), index=stamps)
    assert "<figcaption>" not in figure(equity_curves, {"#1": series}, alt="equity")
    entries = legend_entries(equity_curves({"a": series, "b": series}))
    assert [(e.label, e.colour, e.mark) for e in entries] == [
        ("a", "#1f77b4", "line"), ("b", "#ff7f0e", "line"),
    ]


def test_short_samples_are_marked(two_classes):
    html = build_report(two_classes, top=2).read_text(encoding="utf-8")
    board = html.split("class='board leader'")[1].split("</table>")[0]
    assert board.count(SHORT_MARK) == 8  # every row's annualised return
    metrics = html.split("key metrics")[1].split("</table>")[0]
    rows = {r.split("</td>")[0]: r for r in metrics.split("<tr><td>")[1:]}
    assert SHORT_MARK in rows["annualised return"] and SHORT_MARK in rows["Calmar"]
    assert SHORT_MARK not in rows["Sharpe"] and SHORT_MARK not in rows["max drawdown"]
    assert "fewer than 60 days of data" in html

    results = load_sweep(two_classes)
    for result in results:  # the same results as if they spanned 90 days
        result.metrics["total"]["num_periods"] = 90 * 24
    longer = render_report(results, top=2)
    assert SHORT_MARK not in longer and "fewer than 60 days" not in longer


def test_short_sample_rule():
    assert sample_days(24 * 60, 8760) == pytest.approx(60.0)
    assert not is_short_sample(24 * 60, 8760) and is_short_sample(24 * 60 - 1, 8760)
    assert not is_short_sample(None, 8760) and not is_short_sample(100, None)
    assert not is_short_sample(100, float("nan"))


def test_a_single_month_is_one_column_and_years_keep_twelve():
    stamps = pd.date_range("2024-03-02", periods=24 * 10, freq="1h", tz="UTC")
    one = monthly_table(pd.Series(0.001, index=stamps))
    labels = [t.get_text() for t in monthly_heatmap(one, "m", True).axes[0].get_xticklabels()]
    assert labels == ["Mar"]
    stamps = pd.date_range("2024-02-20", periods=24 * 20, freq="1h", tz="UTC")
    two = monthly_table(pd.Series(0.001, index=stamps))
    labels = [t.get_text() for t in monthly_heatmap(two, "m", True).axes[0].get_xticklabels()]
    assert labels == ["Feb", "Mar"]
    stamps = pd.date_range("2023-12-20", periods=24 * 20, freq="1h", tz="UTC")
    years = monthly_table(pd.Series(0.001, index=stamps))
    assert len(monthly_heatmap(years, "m", True).axes[0].get_xticklabels()) == 12


def test_heatmaps_of_two_alpha_classes_are_one_panel_each(two_classes):
    html = build_report(two_classes, top=2).read_text(encoding="utf-8")
    stability = html.split("Parameter stability")[1]
    heatmaps = re.findall(r"<img alt='(Sharpe heatmap [^']*)'", stability)
    assert heatmaps == ["Sharpe heatmap fee x scale", "Sharpe heatmap fee x window"]
    assert stability.index("EchoAlpha (4 configs)") < stability.index(heatmaps[0]) \
        < stability.index("RollingMeanAlpha (4 configs)") < stability.index(heatmaps[1])


def test_tear_sheet_names_its_config_settings_and_class(two_classes):
    folder = next(p for p in sorted(two_classes.iterdir()) if p.name.startswith("echo"))
    html = build_tear_sheet(folder).read_text(encoding="utf-8")
    assert _legend_of(html, "gross vs net equity") == [f"{folder.name} (net)",
                                                       f"{folder.name} (gross)"]
    settings = html.split("<th>settings</th><td>")[1].split("</td>")[0]
    assert "execution_delay=0" in settings and "slippage_rate=0" in settings
    assert "quantile=" in settings
    alpha = html.split("<th>alpha</th><td>")[1].split("</td>")[0]
    assert alpha.startswith("EchoAlpha(") and "tests.alphas" not in alpha
    assert class_name("alphadev_spec_spec_real:Reversal") == "Reversal"
    assert class_name("pkg.mod:Outer.Inner") == "Outer.Inner"
