"""The HTML sweep report: built from a real small sweep, checked as text and as pixels.

The screenshot test needs a headless Chromium.  It is skipped when none is installed,
unless the environment variable CI is set (to anything but "", "0", "false", "no"):
on CI a missing browser is a failure, not a silent skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from alphadev import sweep as sweeps
from alphadev.alpha import Alpha
from alphadev.comparison import read_comparison_table
from alphadev.orchestrator import run_config
from alphadev.out_of_sample.files import ValidationParameters, validate_sweep
from alphadev.report import (
    build_report,
    grid_dimensions,
    load_sweep,
    report_contents,
    result_dirs,
    sweep_table,
)
from alphadev.research import write_factor_sequences, write_ic_decay
from alphadev.store import write_notice

PER_CONFIG_PANELS = (
    "equity curves", "gross vs net equity", "cost waterfall", "drawdown curves",
    "long and short leg", "rolling Sharpe and volatility", "returns histogram", "rolling IC",
    "IC histogram", "IC decay", "quantile returns", "factor rank autocorrelation",
    "monthly returns heatmap", "monthly IC heatmap", "cumulative returns per alpha quantile",
    "equity against the benchmark and rolling beta", "equity with drawdowns shaded",
    "top minus bottom quantile spread", "quantile turnover", "PnL and IC by hour and weekday",
)
SWEEP_PANELS = PER_CONFIG_PANELS + (
    "Sharpe heatmap", "turnover vs Sharpe", "distribution of Sharpe ratios",
    "out-of-sample equity", "logit histogram with PBO", "degradation scatter",
)
ON_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

try:
    import matplotlib  # noqa: F401
except ImportError:  # the `report` / `test` extras install it
    if ON_CI:
        raise
    pytest.skip("matplotlib is not installed (pip install 'alphadev[report]')",
                allow_module_level=True)


class PlantedAlpha(Alpha):
    """``strength`` * (noisy view of the next return), ``delay`` bars late, plus noise."""

    def __init__(self, strength: float = 1.0, delay: int = 0):
        self.strength = strength
        self.delay = delay

    @property
    def lookback(self):
        return 120

    def reset(self):
        pass

    def compute(self, data):
        value = data["value"]
        if self.delay:
            value = value.groupby(level="symbol").shift(self.delay)
        return (self.strength * value + data["noise"]).to_frame("alpha")


class BrokenAlpha(PlantedAlpha):
    def compute(self, data):
        raise ValueError("planted failure")


def write_data(folder: Path, n_sym: int = 8, days: int = 10) -> list[str]:
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2024-01-01", periods=days * 24, freq="1h", tz="UTC")
    iso = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
    prices, alphas, symbols = [], [], []
    for k in range(n_sym):
        symbol = f"S{k:02d}USDT"
        steps = rng.normal(0.0, 0.01, len(stamps))
        next_return = np.append(np.exp(steps[1:]) - 1.0, 0.0)
        prices.append(pd.DataFrame(
            {"timestamp": iso, "symbol": symbol, "close": 50.0 * (k + 1) * np.exp(np.cumsum(steps))}
        ))
        alphas.append(pd.DataFrame({
            "timestamp": iso, "symbol": symbol, "value": next_return,
            "noise": rng.normal(0.0, 0.02, len(stamps)),
        }))
        symbols.append(symbol)
    pd.concat(prices).to_csv(folder / "prices.csv", index=False)
    pd.concat(alphas).to_csv(folder / "alphas.csv", index=False)
    return symbols


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """12 configs: strength x delay x fee; IC decay saved for all but one config."""
    folder = tmp_path_factory.mktemp("sweep")
    symbols = write_data(folder)
    base = BacktestConfig(
        name="planted",
        alpha_class=PlantedAlpha,
        alpha_kwargs={},
        start_date=date(2024, 1, 1),
        end_date=date(2024, 1, 10),
        symbols=symbols,
        price_loader=CSVDataLoader(str(folder / "prices.csv"), "close"),
        alpha_loaders=[
            CSVDataLoader(str(folder / "alphas.csv"), "value"),
            CSVDataLoader(str(folder / "alphas.csv"), "noise"),
        ],
        beta_csv_path=None,
        quantile=(0.25, 0.25),
    )
    bt = Backtester()
    configs = bt.add_multiple_configs(
        base, {"strength": [0.0, 0.5, 2.0], "delay": [0, 1]}, {"trading_fee_rate": [0.0, 4.5e-4]}
    )
    save_dir = folder / "runs"
    results = bt.run_all(verbose=False, save_dir=save_dir)
    assert all(r is not None for r in results)
    for config in configs[1:]:
        write_ic_decay(save_dir / config.name, config, max_lag=12)
        write_factor_sequences(save_dir / config.name, config)
    bt.save_results(save_dir)  # adds comparison.csv, which the report must ignore
    write_notice(save_dir, "SYNTHETIC DATA: planted next-bar signal.", synthetic=True)
    validation = validate_sweep(save_dir, ValidationParameters(train="3D", test="2D", blocks=4))
    (save_dir / "not-a-result").mkdir()  # no sequences/: skipped
    (save_dir / ".tmp-half-written" / "sequences").mkdir(parents=True)  # hidden: skipped

    out = folder / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "alphadev", "report", str(save_dir), "--top", "4",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    best = sweep_table(load_sweep(save_dir)).iloc[0]["name"]
    sheet = subprocess.run([sys.executable, "-m", "alphadev", "report", str(save_dir / best)],
                           capture_output=True, text=True, timeout=120)
    assert sheet.returncode == 0, sheet.stderr
    assert str(save_dir / best / "tear_sheet.html") in sheet.stdout
    return {"configs": configs, "save_dir": save_dir, "html": out, "validation": validation.summary,
            "best": best, "tear_sheet": save_dir / best / "tear_sheet.html"}


def test_every_config_is_in_the_report(sweep):
    text = sweep["html"].read_text(encoding="utf-8")
    for config in sweep["configs"]:
        assert config.name in text
    assert "not-a-result" not in text and ".tmp-half-written" not in text
    assert "DSR" in text and "break-even fee" in text
    assert "funding (sum)" in text and "costs / gross" in text  # what costs took, per config


def test_report_is_self_contained(sweep):
    text = sweep["html"].read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*>", text)
    assert len(images) >= 6
    alts = " ".join(images)
    for figure in SWEEP_PANELS:
        assert f"alt='{figure}" in alts, figure
    sources = re.findall(r"""\bsrc\s*=\s*['"]?([^'"\s>]*)""", text)
    assert len(sources) == len(images)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*['"]?//""", text)


def test_sweep_table_and_grid_dimensions(sweep):
    dirs = result_dirs(sweep["save_dir"])
    assert sorted(d.name for d in dirs) == sorted(c.name for c in sweep["configs"])
    table = sweep_table(load_sweep(sweep["save_dir"]))
    assert grid_dimensions(table) == ["alpha.strength", "alpha.delay", "trading_fee_rate"]
    assert list(table["rank"]) == list(range(1, 13))
    assert table["sharpe"].is_monotonic_decreasing
    assert table.attrs["n_trials"] == 12
    best = table.iloc[0]
    assert best["alpha.strength"] == 2.0 and best["alpha.delay"] == 0
    assert best["dsr"] <= best["psr"]


def test_report_shows_the_dsr_of_comparison_csv(tmp_path):
    """comparison.csv deflates over every config, the failed one included; the report
    shows those DSRs, not ones deflated over the folders on disk."""
    symbols = write_data(tmp_path, days=6)
    base = BacktestConfig(
        name="base", alpha_class=PlantedAlpha, alpha_kwargs={},
        start_date=date(2024, 1, 1), end_date=date(2024, 1, 6), symbols=symbols,
        price_loader=CSVDataLoader(str(tmp_path / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(tmp_path / "alphas.csv"), "value"),
                       CSVDataLoader(str(tmp_path / "alphas.csv"), "noise")],
        beta_csv_path=None, quantile=(0.25, 0.25),
    )
    configs = [base.replace(name=f"s{k}", alpha_kwargs={"strength": strength})
               for k, strength in enumerate([0.0, 0.5, 2.0])]
    configs.append(base.replace(name="broken", alpha_class=BrokenAlpha))
    save_dir = tmp_path / "runs"
    sweeps.prepare(save_dir)
    for config in configs:
        run_config(config, save_dir)
    assert sweeps.summarize(configs, save_dir).failed == ["broken"]
    written = pd.read_csv(save_dir / "comparison.csv").set_index("name")
    assert (written["n_trials"] == 4).all()

    table = sweep_table(load_sweep(save_dir),
                        read_comparison_table(save_dir / "comparison.csv"))
    assert table.attrs["n_trials"] == 4
    shown = table.set_index("name")["dsr"]
    assert shown.to_dict() == written["dsr"].to_dict()
    text = build_report(save_dir, top=2).read_text(encoding="utf-8")
    board = text.split("Leaderboard")[1].split("</table>")[0]
    for name, dsr in written["dsr"].items():
        row = board.split(f"title='{name}'")[1].split("</tr>")[0]
        assert f"{dsr:.3f}" in row
    assert "expected best Sharpe of 4 independent unskilled trials" in text
    # No notice.txt, no validation/: none of their panels.
    assert "class='banner'" not in text and "synthetic" not in text.lower()
    assert "Out-of-sample validation" not in text

    # Over the folders alone (3 trials) the DSRs differ: the report would disagree.
    alone = sweep_table(load_sweep(save_dir)).set_index("name")["dsr"]
    assert alone.index.size == 3 and not np.allclose(alone[written.index], written["dsr"])
    # A comparison.csv that is not the folders on disk is not used.
    written.drop(index="s0").reset_index().to_csv(save_dir / "comparison.csv", index=False)
    stale = sweep_table(load_sweep(save_dir), read_comparison_table(save_dir / "comparison.csv"))
    assert stale.attrs["n_trials"] == 3


def test_cli_errors(tmp_path):
    from alphadev.__main__ import main

    assert main(["report", str(tmp_path / "missing")]) == 2
    assert main(["report", str(tmp_path)]) == 2  # exists but holds no results
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--top", "0"])


def test_importing_alphadev_does_not_import_matplotlib():
    code = (
        "import sys, alphadev, alphadev.analysis, alphadev.stats, alphadev.report, "
        "alphadev.report.plots, alphadev.__main__; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.parametrize("page", ["report", "tear sheet"])
def test_report_renders_in_headless_chromium(sweep, tmp_path, page):
    browser = _browser()
    if browser is None:
        if ON_CI:
            pytest.fail("CI is set but no Chromium is installed (apt-get install -y chromium)")
        pytest.skip("no headless Chromium installed (apt-get install -y chromium)")
    from matplotlib.image import imread

    document = sweep["html"] if page == "report" else sweep["tear_sheet"]
    png = tmp_path / "report.png"
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
            f"--screenshot={png}", "--window-size=1400,3000",
            document.resolve().as_uri(),
        ],
        capture_output=True, timeout=120, check=True,
    )
    pixels = imread(png)[..., :3]
    assert pixels.shape[:2] == (3000, 1400)
    # Not blank: many distinct colours, plenty of non-white pixels, real contrast.
    assert pixels.std() > 0.05
    assert (pixels.min(axis=2) < 0.9).mean() > 0.03  # blank: none; figures are mostly white
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50
    # Nothing drawn in the rightmost 120 px at 1400 px: no content wider than the window.
    assert (pixels[:, -120:].min(axis=2) > 0.97).all()


def _alts(text: str) -> list[str]:
    return re.findall(r"<img alt='([^']*)'", text)


def test_tear_sheet_of_one_config(sweep):
    best = sweep["best"]
    text = sweep["tear_sheet"].read_text(encoding="utf-8")
    assert set(PER_CONFIG_PANELS) <= set(_alts(text))
    assert "Worst drawdowns" in text and "Key metrics" in text
    assert best in text and "DSR" in text  # deflated over the sweep's comparison.csv
    assert text.index("class='banner'") < text.index("<h1>")
    assert "<script" not in text and "http" not in text


def test_report_sections_and_banner(sweep):
    text = sweep["html"].read_text(encoding="utf-8")
    body = text.split("<body>")[1]
    assert body.strip().startswith("<div class='banner'>SYNTHETIC DATA: planted")
    assert "synthetic data" in text.split("<footer>")[1].lower()
    for title in ("Top 4 configs: key metrics", "Worst drawdowns", "Out-of-sample validation",
                  "Walk-forward folds", "probability of backtest overfitting (PBO)"):
        assert title in text, title
    n_eff = pd.read_csv(sweep["save_dir"] / "comparison.csv")["n_effective_trials"].iloc[0]
    assert f"N<sub>eff</sub> = {n_eff} " in text
    # The strongest planted signal predicts the next bar only: flagged.
    assert "the edge may live inside one bar" in text
    assert report_contents(sweep["html"]) == {"top": 4, "detailed": 4, "ic-decay": 4,
                                              "factor": 4}


def test_pbo_numbers_in_the_report(sweep):
    text = sweep["html"].read_text(encoding="utf-8")
    section = text.split("Out-of-sample validation")[1].split("</section>")[0]
    summary = sweep["validation"]
    assert f"{summary['pbo']:.1%}" in section
    assert f"{summary['probability_of_loss']:.1%}" in section
    assert f"{summary['n_combinations']} / 4 / {summary['n_trials']} / " \
           f"{summary['n_configs']}" in section
    assert f"{summary['walk_forward']['sharpe']:.2f} / " in section
    assert f"{summary['in_sample_best']['sharpe']:.2f} / " in section
    chosen = summary["in_sample_best_config"]
    assert f"In-sample choice: <span class='name' title='{chosen}'>" in section
    folds = pd.read_csv(sweep["save_dir"] / "validation" / "folds.csv")
    assert section.count("<tr>") >= len(folds) + 3


def test_report_is_deterministic(sweep):
    from alphadev.report import render_tear_sheet

    result = [r for r in load_sweep(sweep["save_dir"]) if r.name == sweep["best"]][0]
    assert render_tear_sheet(result) == render_tear_sheet(result)


def test_coupled_dimensions_collapse():
    table = pd.DataFrame({
        "alpha.window": [6, 6, 24, 24], "open_quantile": [0.1, 0.2, 0.1, 0.2],
        "close_quantile": [0.2, 0.3, 0.2, 0.3], "trading_fee_rate": [1e-4] * 4,
    })
    assert grid_dimensions(table) == ["alpha.window", "open_quantile"]
    from alphadev.report.html import couplings, dim_title, dim_value

    groups = couplings(table)
    assert groups == {"alpha.window": [], "open_quantile": ["close_quantile"]}
    assert dim_title("open_quantile", groups["open_quantile"]) == "open/close_quantile"
    assert dim_value(table.iloc[1], "open_quantile", ["close_quantile"]) == "0.2/0.3"
    # Not one-to-one: both stay.
    table.loc[3, "close_quantile"] = 0.25
    assert grid_dimensions(table) == ["alpha.window", "open_quantile", "close_quantile"]
    # A cost setting that varies is one dimension (listed once).
    table["execution_delay"] = [0, 1, 1, 0]
    assert grid_dimensions(table).count("execution_delay") == 1


def test_delay_sibling_and_edge_warnings(sweep):
    from alphadev.report.html import _delayed_sharpe
    from alphadev.report.tearsheet import cost_breakdown, edge_warnings, load_view

    table = pd.DataFrame({
        "name": ["a0", "a1", "b0", "b1"], "alpha.w": [1, 1, 2, 2],
        "execution_delay": [0, 1, 0, 1], "sharpe": [5.0, 0.5, 3.0, 2.9],
    })
    groups = {"alpha.w": [], "execution_delay": []}
    assert _delayed_sharpe(table, table.iloc[0], groups) == 0.5
    assert _delayed_sharpe(table, table.iloc[2], groups) == 2.9
    assert _delayed_sharpe(table, table.iloc[1], groups) is None  # already delayed

    result = load_sweep(sweep["save_dir"])[0]
    view = load_view(result, "#1")
    view.decay = None
    view.result.metrics["total"]["sharpe"] = 4.0
    assert edge_warnings(view, None) == []
    assert edge_warnings(view, 3.0) == []
    (warning,) = edge_warnings(view, 1.0)
    assert "falls to 1.00" in warning
    view.decay = pd.DataFrame({"lag": [1, 2], "ic": [0.04, 0.03]})
    assert edge_warnings(view) == []
    view.decay = pd.DataFrame({"lag": [1, 2], "ic": [0.04, 0.01]})
    assert "IC at horizon 2 (0.0100)" in edge_warnings(view)[0]

    # Results written before slippage/funding existed: those count as 0.
    assert view.returns["slippage"].eq(0).all() and view.returns["funding"].eq(0).all()
    parts = cost_breakdown(view)
    assert parts["gross"] == pytest.approx(view.returns["gross"].sum())
    assert parts["fees"] == pytest.approx(view.returns["fees"].sum())
    # Newer results: metrics.json's cost_breakdown wins.
    view.result.metrics["cost_breakdown"] = {"gross": 0.5, "fees": 0.1, "slippage": 0.05,
                                             "funding": -0.01}
    # (saved before impact existed: its impact is summed from returns.parquet, 0 there)
    assert cost_breakdown(view) == {"gross": 0.5, "fees": 0.1, "slippage": 0.05,
                                    "impact": 0.0, "funding": -0.01}


def test_leaderboard_fits_at_1400_px(sweep, tmp_path):
    """Measured by Chromium's layout: a probe script (in a copy; the report has none)
    writes the leaderboard's scroll and client widths into the title."""
    browser = _browser()
    if browser is None:
        if ON_CI:
            pytest.fail("CI is set but no Chromium is installed (apt-get install -y chromium)")
        pytest.skip("no headless Chromium installed (apt-get install -y chromium)")
    probe = ("<script>var s = document.querySelector('.scroll'); document.title = "
             "[s.scrollWidth, s.clientWidth].join(',');</script>")
    copy = tmp_path / "probe.html"
    copy.write_text(sweep["html"].read_text(encoding="utf-8").replace("</body>", probe + "</body>"),
                    encoding="utf-8")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000", "--dump-dom",
         copy.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    scroll_width, client_width = map(int, re.search(r"<title>(\d+),(\d+)</title>", dom).groups())
    assert 1000 < client_width and scroll_width <= client_width


@pytest.mark.parametrize("page", ["html", "tear_sheet"])
def test_legends_and_captions_fit_at_1400_px(sweep, tmp_path, page):
    """Chromium's layout: every legend item and caption lies inside its figure."""
    from tests.report.test_what_the_report_says import _layout

    count, clipped = _layout(sweep[page].read_text(encoding="utf-8"), tmp_path)
    assert count >= 10 and clipped == ""


def test_percent_format_one_unit():
    from alphadev.report.layout import pct

    assert pct(0.5) == "+50.00%" and pct(-0.0625) == "-6.25%"
    assert pct(-1e-9) == "+0.00%"  # no "-0.00%"
    assert pct(12.3456) == "+1,235%"  # thousands separators, no scientific notation
    assert pct(3.9e24) == "<span title='+3.9e+26%'>&gt; +100,000%</span>"
    assert pct(None) == pct(float("nan")) == "&ndash;"


def test_a_stale_validation_is_left_out(sweep, tmp_path):
    """validation/ built before a config was recomputed describes other results."""
    save_dir = tmp_path / "runs"
    shutil.copytree(sweep["save_dir"], save_dir)
    assert "Out-of-sample validation" in build_report(save_dir, top=2).read_text(encoding="utf-8")
    table = pd.read_csv(save_dir / "comparison.csv")
    table.loc[0, "fingerprint"] = "recomputed-since"
    table.to_csv(save_dir / "comparison.csv", index=False)
    text = build_report(save_dir, top=2).read_text(encoding="utf-8")
    assert "Out-of-sample validation" not in text


def test_a_damaged_folder_is_skipped_and_listed(sweep, tmp_path, caplog):
    """One truncated results file must not cost the whole report (load and validate skip it)."""
    save_dir = tmp_path / "runs"
    shutil.copytree(sweep["save_dir"], save_dir)
    victim = sorted(p for p in save_dir.iterdir() if (p / "sequences").is_dir())[-1]
    returns = victim / "sequences" / "returns.parquet"
    returns.write_bytes(returns.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        text = build_report(save_dir, top=2).read_text(encoding="utf-8")
    assert "damaged folders skipped (1)" in text
    assert victim.name in text.split("damaged folders skipped")[1].split("</tr>")[0]
    assert any(victim.name in r.getMessage() and "skipped" in r.getMessage()
               for r in caplog.records)
    whole = len(sweep_table(load_sweep(sweep["save_dir"])))
    assert len(sweep_table(load_sweep(save_dir))) == whole - 1
