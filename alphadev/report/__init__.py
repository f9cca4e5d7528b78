"""HTML sweep report and tear sheet: ``python -m alphadev report SAVE_DIR[/NAME]``.

Importing this package does not import matplotlib (the optional ``report`` extra);
the figures are drawn only when a report is rendered.
"""

from alphadev.report.html import (
    build_report,
    build_tear_sheet,
    grid_dimensions,
    load_sweep,
    read_sweep,
    render_report,
    render_tear_sheet,
    report_contents,
    result_dirs,
    sweep_table,
)

__all__ = [
    "build_report",
    "build_tear_sheet",
    "grid_dimensions",
    "load_sweep",
    "read_sweep",
    "render_report",
    "render_tear_sheet",
    "report_contents",
    "result_dirs",
    "sweep_table",
]
