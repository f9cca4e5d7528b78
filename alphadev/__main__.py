"""Command line: ``python -m alphadev report SAVE_DIR[/NAME] [--top K] [--out FILE]`` and
``python -m alphadev validate SAVE_DIR [--train 60D --test 14D --anchored --metric
sharpe --blocks 16]``."""

from __future__ import annotations

import argparse
import re
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
    _add_validate(commands)
    return parser


def _add_validate(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser(
        "validate",
        help="walk-forward selection and probability of backtest overfitting of a sweep",
        description="Validate the selection of a sweep's best config out of sample, from "
        "the saved returns of its completed configs (nothing is re-run); writes "
        "SAVE_DIR/validation/ and prints a summary.",
    )
    validate.add_argument("save_dir", metavar="SAVE_DIR", help="the sweep's results directory")
    validate.add_argument("--train", default=None,
                          help="train window, a time span with its unit (default 60D, or "
                          "half the sweep's span when that is shorter)")
    validate.add_argument("--test", default=None,
                          help="test window, a time span with its unit (default 14D, or "
                          "a quarter of the sweep's span when that is shorter)")
    validate.add_argument("--anchored", action="store_true",
                          help="train windows all start at the first bar")
    validate.add_argument("--metric", default="sharpe",
                          help="metric the best config is chosen by (default sharpe)")
    validate.add_argument("--blocks", type=int, default=16,
                          help="PBO blocks, even and >= 4 (default 16)")


def _validate(args: argparse.Namespace) -> int:
    from alphadev.out_of_sample.files import ValidationParameters, validate_sweep
    from alphadev.out_of_sample.summary import summary_text

    params = ValidationParameters(args.train, args.test, args.anchored, args.metric,
                                  args.blocks)
    try:
        validation = validate_sweep(args.save_dir, params)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_text(validation, args.save_dir))
    return 0


SPAN_OPTIONS = ("--train", "--test")


def _join_negative_spans(argv: Sequence[str]) -> list[str]:
    """``--test -1D`` as ``--test=-1D``: argparse takes '-1D' for an option and would
    stop with "expected one argument" instead of saying the span must be positive."""
    out: list[str] = []
    k = 0
    while k < len(argv):
        if argv[k] in SPAN_OPTIONS and k + 1 < len(argv) and re.match(r"-[\d.]", argv[k + 1]):
            out.append(f"{argv[k]}={argv[k + 1]}")
            k += 2
        else:
            out.append(argv[k])
            k += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_join_negative_spans(sys.argv[1:] if argv is None else argv))
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
    if args.command == "validate":
        return _validate(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
