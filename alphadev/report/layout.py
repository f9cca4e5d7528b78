"""HTML building blocks shared by the sweep report and the tear sheet.

Inline CSS only, no scripts, no external links: figures are base64 PNG ``data:``
URIs, so a page can be mailed or archived as one file.  Numbers are formatted in one
place so the whole report uses one unit per kind of quantity (returns and drawdowns in
percent, ratios as plain numbers).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def figure(plot: Callable[..., Any], *args: Any, alt: str, caption: str = "") -> str:
    """A figure function's output as an inline ``<img>`` (``alt`` names the panel), its
    legend (two or more labelled artists) and ``caption`` (HTML) as text under it."""
    from alphadev.report.plots import legend_entries, to_png

    drawn = plot(*args)
    data = base64.b64encode(to_png(drawn)).decode("ascii")
    entries = legend_entries(drawn)
    items = "".join(
        f"<span class='item'><span class='key {e.mark}' style='--c:{e.colour}'></span>"
        f"{html.escape(e.label)}</span>"
        for e in entries
    ) if len(entries) > 1 else ""
    below = (f"<div class='legend'>{items}</div>" if items else "") + (
        f"<div class='caption'>{caption}</div>" if caption else "")
    return (f"<figure><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"
            + (f"<figcaption>{below}</figcaption>" if below else "") + "</figure>")


def section(title: str, body: str, anchor: str = "") -> str:
    ident = f" id='{html.escape(anchor)}'" if anchor else ""
    return f"<section{ident}><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def table(head: Sequence[str] | None, rows: Sequence[Sequence[str]], css: str = "board") -> str:
    """A plain table (no header row when ``head`` is None); cells are HTML (escape text
    before passing it)."""
    lines = [f"<table class='{css}'>"]
    if head is not None:
        lines += ["<thead><tr>", *(f"<th>{h}</th>" for h in head), "</tr></thead>"]
    lines.append("<tbody>")
    for row in rows:
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def name(text: str) -> str:
    """A config name in monospace that may wrap after each ``__`` separator."""
    escaped = html.escape(text)
    return f"<span class='name' title='{escaped}'>{escaped.replace('__', '__<wbr>')}</span>"


def note(text: str) -> str:
    return f"<p class='note'>{text}</p>"


def banner(text: str) -> str:
    """The sweep's notice (``notice.txt``), shown above everything else."""
    return f"<div class='banner'>{html.escape(text.strip())}</div>"


STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px;
       color: #1d2330; background: #ffffff; max-width: 1240px; }
h1 { font-size: 26px; margin: 0 0 12px 0; }
h2 { font-size: 19px; border-bottom: 2px solid #d0d7e2; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 20px 0 6px 0; }
table { border-collapse: collapse; font-size: 13px; }
table.summary th { text-align: left; padding: 2px 16px 2px 0; color: #55607a; font-weight: 600; }
table.summary td { padding: 2px 0; }
.verdict { font-size: 15px; background: #f2f5fa; border-left: 4px solid #4a76c9;
           padding: 8px 12px; }
.banner { font-size: 15px; background: #fff4e0; border: 1px solid #e8a33d;
          border-left: 6px solid #e8a33d; padding: 10px 14px; margin: 0 0 16px 0;
          white-space: pre-wrap; }
.warning { background: #fdecea; border-left: 4px solid #c9302c; padding: 6px 12px;
           margin: 6px 0; font-size: 13px; }
.scroll { overflow: auto; max-height: 640px;
          border: 1px solid #d0d7e2; }
table.board th { position: sticky; top: 0; background: #e8edf5; padding: 4px 6px;
                 text-align: right; vertical-align: bottom; }
table.board td { padding: 3px 6px; text-align: right; border-top: 1px solid #eef1f6;
                 white-space: nowrap; }
table.board td:first-child, table.board th:first-child { text-align: left; }
table.leader td:nth-child(2), table.leader th:nth-child(2) { text-align: left;
                 white-space: normal; max-width: 260px; }
table.board tr.top td { background: #fff7dc; }
table.folds td:nth-child(-n+4), table.folds th:nth-child(-n+4) { text-align: left; }
table.metrics td:first-child { color: #55607a; font-weight: 600; }
.name { font-family: Menlo, Consolas, monospace; font-size: 11px; }
.good { color: #17803d; }
.bad { color: #c9302c; }
.note { color: #55607a; font-size: 13px; }
.short { color: #b06000; }
footer { margin-top: 40px; border-top: 1px solid #d0d7e2; padding-top: 8px; color: #55607a;
         font-size: 12px; }
figure { margin: 16px 0; max-width: 1002px; }
figcaption { font-size: 12px; margin: 2px 8px 0 8px; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 16px; }
.legend .item { display: inline-flex; align-items: center; gap: 6px; overflow-wrap: anywhere;
                min-width: 0; }
.legend .key { flex: none; width: 22px; height: 0; border-top: 2px solid var(--c); }
.legend .key.dashed { border-top-style: dashed; }
.legend .key.dotted { border-top-style: dotted; }
.legend .key.box { height: 10px; border: none; background: var(--c); width: 14px; }
.caption { color: #55607a; margin-top: 2px; }
img { max-width: 100%; height: auto; border: 1px solid #eef1f6; }
code { background: #f2f5fa; padding: 1px 4px; }
"""


def page(title: str, body: str, meta: dict[str, str] | None = None) -> str:
    """The whole document; ``meta`` becomes ``<meta name content>`` tags (machine-readable
    facts about the contents, e.g. what the Luigi ``Report`` task checks)."""
    tags = "".join(
        f"<meta name='{html.escape(k)}' content='{html.escape(v)}'>\n"
        for k, v in sorted((meta or {}).items())
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"{tags}<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------- formatting
def finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    ) and finite(value)


def num(value: Any, digits: int) -> str:
    return f"{float(value):,.{digits}f}" if finite(value) else "&ndash;"


PCT_CAP = 1e5
"""Percentages beyond +-100,000% are shown as "> +100,000%" (the exact value in the
cell's tooltip): annualising a short, very profitable sample gives numbers that only
widen the table."""


def pct(value: Any, digits: int = 2) -> str:
    """A return as a percentage with thousands separators (never scientific notation)."""
    if not finite(value):
        return "&ndash;"
    value = float(value) * 100
    if abs(value) >= PCT_CAP:
        bound = "&gt; +" if value > 0 else "&lt; -"
        return f"<span title='{value:+.3g}%'>{bound}{PCT_CAP:,.0f}%</span>"
    digits = digits if abs(value) < 1000 else 0
    return f"{round(value, digits) + 0.0:+,.{digits}f}%"  # + 0.0: no "-0.00%"


SHORT_MARK = "<sup class='short'>&dagger;</sup>"


def short_sample_note(days: float) -> str:
    """What ``SHORT_MARK`` means, under a table that uses it."""
    return note(f"{SHORT_MARK} fewer than {days:.0f} days of data: an annualised return or "
                "Calmar ratio extrapolates a few weeks to a year and says little about one.")


def stamp(value: Any) -> str:
    """A timestamp as ``2024-03-01 14:00``, escaped for HTML."""
    import pandas as pd

    return html.escape(pd.Timestamp(value).strftime("%Y-%m-%d %H:%M"))


def plain(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and finite(value):
        return f"{float(value):g}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    return str(value)
