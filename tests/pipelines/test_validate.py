"""``luigi --module pipelines Validate`` in real luigi processes: bad windows end the
command with one ``alphadev:`` line before any config runs; a config that keeps
failing is named, with what to do, by the sweep and by ``python -m alphadev validate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipelines.test_sweep import calls, luigi, write_spec


def _validate_args(spec: Path, save_dir: Path, *extra: str) -> list[str]:
    return ["Validate", "--spec", str(spec), "--save-dir", str(save_dir), "--local-scheduler",
            *extra]


@pytest.mark.parametrize(("args", "message"), [
    (["--train", "10"], "train='10' has no unit (pandas would read it as 10 nanoseconds); "
                        "write the unit, e.g. '60D'"),
    (["--test=-1D"], "test='-1D' is not a positive time span; write one such as '60D'"),
    (["--train", "1h"], "train='1h' is shorter than 2 bars of the sweep's 1h bars"),
])
def test_bad_windows_end_the_command_with_one_line(tmp_path: Path, args: list[str],
                                                   message: str) -> None:
    spec = write_spec(tmp_path, {"scales": [1, 2, 3]})
    save_dir = tmp_path / "out"
    result = luigi(_validate_args(spec, save_dir, *args), tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"alphadev: Validate: {message}"), last
    assert not calls(tmp_path) and not save_dir.exists()


def test_a_failing_config_is_named_by_the_sweep_and_left_out_by_validate(
    tmp_path: Path,
) -> None:
    """Validate waits while cfg1 keeps failing: the sweep's summary says so and how to
    validate the others; the command line names cfg1 and why it is left out."""
    spec = write_spec(tmp_path, {"scales": [1, 2, 3], "fail": [1]})
    save_dir = tmp_path / "out"
    windows = ["--train", "1D", "--test", "12h", "--blocks", "4"]
    result = luigi(_validate_args(spec, save_dir, *windows), tmp_path)
    assert result.returncode == 30, result.stderr[-3000:]
    assert not (save_dir / "validation").exists()
    assert ("Validate and Report wait for every config: they run once cfg1 is done; to "
            f"validate the 2 completed configs now, run python -m alphadev validate "
            f"{save_dir}") in result.stdout
    done = subprocess.run([sys.executable, "-m", "alphadev", "validate", str(save_dir),
                           *windows], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ("left out: 1 config(s) of the sweep are not validated:\n  cfg1: its latest run "
            "failed (ValueError: planted failure for scale=2; traceback in errors.log)"
            ) in done.stdout
    assert "leaves out 1 config(s) whose latest run failed: cfg1" in done.stderr
    summary = json.loads((save_dir / "validation" / "pbo.json").read_text())
    assert summary["configs_left_out"] == [{
        "name": "cfg1",
        "reason": "its latest run failed (ValueError: planted failure for scale=2; "
                  "traceback in errors.log)"}]
    assert [name for name, _ in summary["built_from"]["configs"]] == ["cfg0", "cfg2"]
