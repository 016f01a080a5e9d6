"""``pyquant analyze MODEL``: per-layer SNR / in-range at each width, chosen width, summary.

Streams the model layer by layer (no codes are kept), prints a rich table and a summary, and
optionally writes ``--json PATH`` (strict JSON: no NaN/Infinity, infinite SNR is ``null``) and
``--plot PATH.png``. Both files are written to a temporary name and renamed; neither may be
the model itself.
"""

from __future__ import annotations

import argparse

from pyquant.analysis import iter_analyze, layer_row, summarize
from pyquant.cliargs import add_integer_args, add_selection_args, criteria_from_args, targets_from_args
from pyquant.errors import InputError
from pyquant.fileio import atomic_write, check_input_paths, check_output_path, dumps_strict_json
from pyquant.onnx_io import iter_weights
from pyquant.tables import analysis_doc, plot_png, print_report


def run(args: argparse.Namespace) -> int:
    crit = criteria_from_args(args)
    inputs = [args.model, args.calib, args.holdout]
    check_input_paths(*inputs)
    jpath = check_output_path(args.json, inputs, "JSON report") if args.json else None
    ppath = check_output_path(args.plot, inputs, "plot") if args.plot else None
    if jpath and ppath and jpath.resolve() == ppath.resolve():
        raise InputError(f"{args.json}: --json and --plot name the same file")
    src = str(args.model)
    ov = plan = None
    targets = targets_from_args(args, single="analyze")
    if targets:      # accuracy-aware widths (pyquant.search)
        from pyquant.pipeline import target_plan

        ov, plan = target_plan(args.model, crit, targets[0], args.calib, args.holdout, args.objective)
    rows = [layer_row(r) for r in iter_analyze(iter_weights(args.model), crit, ov, keep_codes=False,
                                                  where=src)]
    summary = summarize(rows)
    if not args.quiet:
        print_report(rows, summary, crit, src)
        if plan:
            print(plan["message"])
    png = plot_png(None, rows, crit) if ppath else None      # render everything before writing
    if jpath:
        doc = analysis_doc(src, crit, rows, summary)
        if plan:
            doc["plan"] = plan
        atomic_write(jpath, dumps_strict_json(doc), "JSON report")
    if ppath:
        atomic_write(ppath, png, "plot")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="per-layer precision analysis (table, JSON, plot)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_selection_args(p)
    p.add_argument("--json", metavar="PATH", help="write the analysis as JSON")
    p.add_argument("--plot", metavar="PATH.png", help="write a PNG plot (SNR per layer per width)")
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    add_integer_args(p, command="analyze")
    p.set_defaults(func=run)
