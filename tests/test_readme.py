"""The README's Python blocks run as written, in order, from a fresh folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_verbatim(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2, "the README lost its Python example"
    script = tmp_path / "readme_example.py"
    script.write_text("\n".join(blocks))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Backtest mom__" in done.stdout  # print(bt.get_best_config("sharpe"))
    folders = [p for p in (tmp_path / "runs" / "mom").iterdir() if not p.name.startswith(".")]
    assert len([p for p in folders if p.is_dir() and p.name != "validation"]) == 6
    assert not (tmp_path / "runs" / "mom" / "errors.log").exists()
