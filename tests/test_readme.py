"""The README's Python blocks run as written, in order, from a fresh folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_verbatim(tmp_path: Path) -> None:
    """Each block in a fresh process of its own, in order, in one folder (a block may
    read files an earlier one wrote, never its variables or imports)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2, "the README lost its Python example"
    printed = []
    for k, block in enumerate(blocks, start=1):
        script = tmp_path / f"readme_block_{k}.py"
        script.write_text(block)
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"README block {k}:\n{block}\n{done.stderr[-3000:]}"
        printed.append(done.stdout)
    assert "Backtest mom__" in "".join(printed)  # print(bt.get_best_config("sharpe"))
    folders = [p for p in (tmp_path / "runs" / "mom").iterdir() if not p.name.startswith(".")]
    assert len([p for p in folders if p.is_dir() and p.name != "validation"]) == 6
    assert not (tmp_path / "runs" / "mom" / "errors.log").exists()
