"""Small notebook displays shared by configs, results and the Backtester (a leaf module)."""

from __future__ import annotations

import html
from collections.abc import Sequence


def html_table(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """A two-column HTML table with a caption; every text is escaped (names are user text)."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(label))}</th>"
        f"<td style='text-align:left'>{html.escape(str(value))}</td></tr>"
        for label, value in rows
    )
    return f"<table><caption>{html.escape(title)}</caption>{body}</table>"
