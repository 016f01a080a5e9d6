"""``pyquant evaluate MODEL [--data digits|FILE.npz] --json PATH``: model-level accuracy per plan.

Runs the float model and the bit-exact integer pipeline (pyquant.infer.infer_int) on labelled
data and reports, per precision plan, the integer accuracy, the output SNR against float, the
average bits per weight and the packed weight bytes. Plans: ``snr`` (the per-layer SNR gate
with the selection options, default 40 dB) and one accuracy-aware plan per ``--target``
(default ``accuracy-drop=0.01``), searched on the calibration split and checked on the
held-out split (pyquant.search).

For the bundled examples every data file defaults from the model's metadata
(``examples/digits_{calib.npy,heldout.npz,test.npz}``); ``--data digits`` names that test split
(and, for a model without that metadata, the shipped calibration and held-out splits too).
"""

from __future__ import annotations

import argparse
import sys

from pyquant.cliargs import add_integer_args, add_selection_args, criteria_from_args, targets_from_args
from pyquant.fileio import atomic_write, check_input_paths, check_output_path, dumps_strict_json


def run(args: argparse.Namespace) -> int:
    from pyquant.pipeline import evaluate_model

    inputs = [args.model, args.calib, args.holdout, None if args.data == "digits" else args.data]
    check_input_paths(*inputs)
    jpath = check_output_path(args.json, inputs, "JSON report") if args.json else None
    doc = evaluate_model(args.model, args.data, args.calib, args.holdout, targets_from_args(args),
                         args.objective, criteria_from_args(args))
    if jpath:
        atomic_write(jpath, dumps_strict_json(doc), "JSON report")
    if not args.quiet:
        print_evaluation(doc)
    return 0


def print_evaluation(doc: dict, file=None) -> None:
    out = file or sys.stdout
    print(f"{doc['model']}: {doc['samples']} test samples ({doc['data']})", file=out)
    print(f"  float accuracy            {100 * doc['float_accuracy']:6.2f} %", file=out)
    for p in doc["plans"]:
        snr = "exact" if p["output_snr_db"] is None else f"{p['output_snr_db']:.1f} dB"
        bud = "" if p["budget"] is None else f" (budget {p['budget']:g}"
        if p.get("search"):
            bud += ", held-out drop {:.4f} {}".format(p["search"]["heldout"]["drop"],
                                                      "met" if p["search"]["budget_met_heldout"] else "NOT met")
        if bud:
            bud += ")"
        bits = " ".join(f"{n}:{b}" for n, b in p["bits"].items())
        print(f"  plan {p['name']:<22s} integer accuracy {100 * p['integer_accuracy']:6.2f} %, output SNR {snr}, "
              f"{p['avg_bits']:.2f} bits/weight, {p['weight_bytes']} bytes{bud}  [{bits}]", file=out)


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="float vs integer accuracy per precision plan (snr, accuracy-aware)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_selection_args(p)
    p.add_argument("--data", metavar="digits|FILE.npz",
                   help="labelled test data (X, y); default: the model's own (bundled examples)")
    add_integer_args(p, evaluate=True)
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (strict: no NaN/Infinity)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on stdout")
    p.set_defaults(func=run)
