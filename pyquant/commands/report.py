"""``pyquant report DIR -o report.html``: one self-contained HTML page (plots embedded).

Per-layer weight SNR at each width, the chosen widths, memory saved (vs FP32 and all-INT8) and
the accuracy / bits trade-off curve (from DIR/tradeoff.json, written by ``convert --calib``, or
from an ``evaluate --json`` file given with ``--eval``).
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from pyquant.report import write_report

    p = write_report(args.model_dir, args.output, args.eval)
    if not args.quiet:
        print(f"wrote {p}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="self-contained HTML report of a converted model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", metavar="DIR", help="model directory written by pyquant convert")
    p.add_argument("-o", "--output", required=True, metavar="report.html", help="HTML page to write")
    p.add_argument("--eval", metavar="EVAL.json", help="trade-off curve from `pyquant evaluate --json`")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on stdout")
    p.set_defaults(func=run)
