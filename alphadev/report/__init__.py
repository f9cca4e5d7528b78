"""HTML sweep report: ``python -m alphadev report SAVE_DIR [--top K] [--out FILE]``.

Importing this package does not import matplotlib (the optional ``report`` extra);
the figures are drawn only when a report is rendered.
"""

from alphadev.report.html import (
    build_report,
    grid_dimensions,
    load_sweep,
    render_report,
    result_dirs,
    sweep_table,
)

__all__ = [
    "build_report",
    "grid_dimensions",
    "load_sweep",
    "render_report",
    "result_dirs",
    "sweep_table",
]
