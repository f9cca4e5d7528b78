"""Command line: ``python -m alphadev report SAVE_DIR[/NAME] [--top K] [--out FILE]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m alphadev", description="alphadev command line tools"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="write a self-contained HTML report of a sweep's results (or one config's "
        "tear sheet)",
        description="Write one self-contained HTML file (figures embedded) summarising "
        "every result folder in SAVE_DIR: leaderboard with deflated Sharpe, top configs' "
        "key metrics, curves, costs and IC, parameter heatmaps, out-of-sample validation. "
        "Given one config's folder (SAVE_DIR/NAME, holding config.json), write its tear "
        "sheet instead.",
    )
    report.add_argument("save_dir", metavar="SAVE_DIR",
                        help="the sweep's results directory, or one config's folder in it")
    report.add_argument(
        "--top", type=_positive_int, default=5, metavar="K",
        help="number of best configs (by Sharpe) to plot in detail (default 5)",
    )
    report.add_argument(
        "--out", default=None, metavar="FILE",
        help="output HTML file (default SAVE_DIR/report.html; for a config folder "
        "SAVE_DIR/NAME/tear_sheet.html)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "error: the report needs matplotlib; install it with "
                "pip install 'alphadev[report]'",
                file=sys.stderr,
            )
            return 2
        from alphadev.report import build_report

        try:
            path = build_report(args.save_dir, top=args.top, out=args.out)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"report written to {path}")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
