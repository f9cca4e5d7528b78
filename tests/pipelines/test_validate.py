"""``luigi --module pipelines Validate`` in real luigi processes: bad windows end the
command with one ``alphadev:`` line before any config runs."""

from __future__ import annotations

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
