"""docs/semantics.md#validating-a-sweep: default windows fit short data."""

from __future__ import annotations

import json
import subprocess
import sys

from alphadev import Backtester
from alphadev.out_of_sample.files import ValidationParameters, choose_windows
from tests.conftest import make_config

HOUR = 3_600 * 10**9
DAY = 24 * HOUR


def test_defaults_on_a_long_sweep_are_60_and_14_days() -> None:
    chosen = choose_windows(ValidationParameters(), 365 * DAY, HOUR)
    assert (chosen.train, chosen.test) == ("60D", "14D")


def test_defaults_on_a_short_sweep_are_half_and_a_quarter_in_whole_bars() -> None:
    chosen = choose_windows(ValidationParameters(), 7 * DAY + 5 * HOUR, HOUR)
    assert (chosen.train, chosen.test) == ("86h", "43h")  # 173 bars // 2, // 4


def test_a_window_the_user_sets_is_kept() -> None:
    chosen = choose_windows(ValidationParameters(train="3D"), 7 * DAY, HOUR)
    assert (chosen.train, chosen.test) == ("3D", "42h")


def test_validate_without_windows_on_eight_days_says_what_it_chose(market, tmp_path) -> None:
    bt = Backtester()
    bt.add_multiple_configs(make_config(market), {}, {"quantile": [(0.2, 0.2), (0.4, 0.4)]})
    out = tmp_path / "out"
    bt.run_all(verbose=False, save_dir=out)
    run = subprocess.run([sys.executable, "-m", "alphadev", "validate", str(out),
                          "--blocks", "4"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("walk-forward")]
    saved = json.loads((out / "validation" / "pbo.json").read_text())
    windows = saved["windows"]
    assert windows["chosen"] is True
    assert f"train {windows['train']}, test {windows['test']}" in line
    assert "windows chosen for this sweep's span" in line
    assert saved["n_folds"] >= 2
    again = subprocess.run([sys.executable, "-m", "alphadev", "validate", str(out),
                            "--train", "2D", "--test", "1D", "--blocks", "4"],
                           capture_output=True, text=True, check=True)
    assert "windows chosen" not in again.stdout and "train 2D, test 1D" in again.stdout
