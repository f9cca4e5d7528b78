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
from alphadev.analysis import write_ic_decay
from alphadev.comparison import read_comparison_table
from alphadev.report import build_report, grid_dimensions, load_sweep, result_dirs, sweep_table

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
    bt.save_results(save_dir)  # adds comparison.csv, which the report must ignore
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
    return {"configs": configs, "save_dir": save_dir, "html": out}


def test_every_config_is_in_the_report(sweep):
    text = sweep["html"].read_text(encoding="utf-8")
    for config in sweep["configs"]:
        assert config.name in text
    assert "not-a-result" not in text and ".tmp-half-written" not in text
    assert "DSR" in text and "break-even fee" in text


def test_report_is_self_contained(sweep):
    text = sweep["html"].read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*>", text)
    assert len(images) >= 6
    alts = " ".join(images)
    for figure in ("equity curves", "drawdown curves", "long and short leg", "rolling IC",
                   "IC decay", "quantile returns", "Sharpe heatmap", "turnover vs Sharpe"):
        assert figure in alts
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
        sweeps.run_config(config, save_dir)
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
        row = board.split(f"<span class='name'>{name}</span>")[1].split("</tr>")[0]
        assert f"{dsr:.3f}" in row
    assert "expected best Sharpe of 4 unskilled configs" in text

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


def test_report_renders_in_headless_chromium(sweep, tmp_path):
    browser = _browser()
    if browser is None:
        if ON_CI:
            pytest.fail("CI is set but no Chromium is installed (apt-get install -y chromium)")
        pytest.skip("no headless Chromium installed (apt-get install -y chromium)")
    from matplotlib.image import imread

    png = tmp_path / "report.png"
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}", "--window-size=1280,2000",
            sweep["html"].resolve().as_uri(),
        ],
        capture_output=True, timeout=120, check=True,
    )
    pixels = imread(png)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    # Not blank: many distinct colours, plenty of non-white pixels, real contrast.
    assert pixels.std() > 0.05
    assert (pixels.min(axis=2) < 0.9).mean() > 0.05
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50
