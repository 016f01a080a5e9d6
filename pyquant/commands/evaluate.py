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
from pathlib import Path

from pyquant.errors import InputError


def add_integer_args(p: argparse.ArgumentParser, evaluate: bool = False, command: str = "convert") -> None:
    """Options of the integer pipeline shared by convert / analyze / evaluate."""
    calib = {"convert": "calibration inputs [N, ...] (float, .npy or .npz with X): convert writes an "
                        "executable integer model (activation scales, int32 bias, mult/shift)",
             "analyze": "calibration inputs [N, ...] for --target (default: the model's metadata)"}
    p.add_argument("--calib", metavar="FILE.npy",
                   help=calib.get("evaluate" if evaluate else command,
                                  "calibration inputs [N, ...]: activation scales and the --target search "
                                  "(default: the model's metadata, as for the bundled examples)"))
    p.add_argument("--holdout", metavar="FILE.npz",
                   help="held-out split (X[, y]) checking the --target budget (default: the model's "
                        "metadata, else the odd samples of --calib)")
    p.add_argument("--target", action="append", metavar="BUDGET",
                   help="accuracy-aware widths: accuracy-drop=X (fraction, e.g. 0.01 = 1 point) and/or "
                        "output-snr=DB, searched on the calibration split, checked on the held-out split"
                        + (" (repeatable: one plan each; default accuracy-drop=0.01)" if evaluate else
                           "; needs an executable (sequential) model"))
    p.add_argument("--objective", default="bytes", choices=["bytes", "cycles"],
                   help="what the --target search minimises (default bytes)")


def _targets(args) -> list:
    from pyquant.search import parse_target

    if not args.target:
        return []
    return [parse_target(t) for t in args.target]


def run_convert_executable(args: argparse.Namespace) -> int:
    """``convert --calib/--target``: write an executable model directory."""
    from pyquant.analysis import layer_row, summarize
    from pyquant.commands.analyze import criteria_from_args, print_report
    from pyquant.pipeline import convert_executable

    crit = criteria_from_args(args)
    ts = _targets(args)
    if len(ts) > 1:
        raise InputError("convert: give one --target (combine budgets with a comma)")
    layers, info, builder, plan = convert_executable(args.model, args.output, crit, args.calib, ts or None,
                                                     args.objective, args.holdout)
    if not args.quiet:
        rows = [layer_row(r) for r in layers]
        print_report(rows, summarize(rows), crit, str(args.model))
        s = plan.search
        extra = ""
        if s:
            h = s["heldout"]
            extra = (f"; held-out drop {h['drop']:.4f} (budget {plan.budget}) "
                     f"{'met' if s['budget_met_heldout'] else 'NOT met'}")
        bits = ", ".join(f"{r.name}: INT{r.bits}" for r in layers)
        print(f"plan {plan.name}: {bits}{extra}")
        print(f"wrote {args.output}: executable, {len(layers)} layer files, model.json, model.meta.bin "
              f"(input scale {info['input']['scale']:.6g})")
    return 0


def digits_file(name: str) -> Path | None:
    """``examples/digits_<name>`` of the bundled digits data set (None when not shipped)."""
    f = Path(__file__).resolve().parents[2] / "examples" / f"digits_{name}"
    return f if f.exists() else None


def resolve_data(model, data: str | None) -> Path:
    """The labelled evaluation data: FILE.npz, ``digits`` or the model's ``pyquant.data.test``."""
    from pyquant.executable import data_file

    if data and data != "digits":
        return Path(data)
    f = data_file(model, "test")
    if f is None and data == "digits":
        f = digits_file("test.npz")
    if f is None:
        raise InputError(f"{model.source}: no evaluation data: give --data FILE.npz (X, y)")
    return f


def evaluate_model(model_path, data=None, calib=None, holdout=None, targets=None, objective="bytes",
                   crit=None) -> dict:
    """The ``evaluate`` JSON document (module doc)."""
    import numpy as np

    from pyquant.calibrate import PlanBuilder, load_data_file
    from pyquant.executable import data_file, load_executable
    from pyquant.infer import infer_float
    from pyquant.pipeline import evaluate_plan, load_calib, make_plans
    from pyquant.search import Target

    model = load_executable(model_path)
    dpath = resolve_data(model, data)
    x, y = load_data_file(dpath, model, labels=True)
    if y is None:
        raise InputError(f"{dpath}: evaluation data needs labels 'y'")
    if data == "digits" and calib is None and data_file(model, "calib") is None:
        # a model of the user's own trained on digits: the shipped calibration / held-out splits
        calib = digits_file("calib.npy")
        holdout = holdout or digits_file("heldout.npz")
    d = load_calib(model, calib, holdout)
    builder = PlanBuilder(model, d.calib, crit)
    ts = targets if targets else [Target(accuracy_drop=0.01)]
    plans = make_plans(builder, d, ts, objective)
    f = infer_float(model, x)
    doc = {
        "model": str(model_path), "data": str(dpath), "samples": int(len(y)),
        "calibration": d.calib_file, "heldout": d.heldout_file,
        "float_accuracy": float(np.mean(f.argmax(1) == y)),
        "plans": [evaluate_plan(builder, p, x, y, f) for p in plans],
    }
    # the accuracy / bits trade-off: uniform widths, measured on the same data
    doc["uniform"] = []
    for b in sorted(builder.crit.bits, reverse=True):
        from pyquant.pipeline import Plan

        e = evaluate_plan(builder, Plan(f"all-INT{b}", [b] * len(builder.names)), x, y, f)
        doc["uniform"].append({k: e[k] for k in ("name", "avg_bits", "weight_bytes", "integer_accuracy",
                                                  "output_snr_db")})
    return doc


def run(args: argparse.Namespace) -> int:
    from pyquant.commands.analyze import atomic_write, check_output_path, criteria_from_args, to_json_bytes

    jpath = check_output_path(args.json, "JSON report") if args.json else None
    doc = evaluate_model(args.model, args.data, args.calib, args.holdout, _targets(args), args.objective,
                         criteria_from_args(args))
    if jpath:
        atomic_write(jpath, to_json_bytes(doc), "JSON report")
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
    from pyquant.commands.analyze import add_selection_args

    p = sub.add_parser("evaluate", help="float vs integer accuracy per precision plan (snr, accuracy-aware)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_selection_args(p)
    p.add_argument("--data", metavar="digits|FILE.npz",
                   help="labelled test data (X, y); default: the model's own (bundled examples)")
    add_integer_args(p, evaluate=True)
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (strict: no NaN/Infinity)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on stdout")
    p.set_defaults(func=run)


def target_plan(args: argparse.Namespace, crit) -> tuple[dict[str, int], dict]:
    """``analyze --target``: search the widths; return (bits per layer name, plan JSON)."""
    from pyquant.calibrate import PlanBuilder
    from pyquant.executable import load_executable
    from pyquant.pipeline import load_calib, make_plans, plan_summary

    ts = _targets(args)
    if len(ts) > 1:
        raise InputError("analyze: give one --target (combine budgets with a comma)")
    model = load_executable(args.model)
    d = load_calib(model, args.calib, args.holdout)
    builder = PlanBuilder(model, d.calib, crit)
    plan = make_plans(builder, d, ts, args.objective, include_snr=False)[0]
    doc = plan_summary(builder, plan)
    doc["search"] = plan.search
    h = plan.search["heldout"]
    doc["message"] = (f"accuracy-aware plan {plan.name} (objective {plan.objective}): "
                      + ", ".join(f"{n}: INT{b}" for n, b in doc["bits"].items())
                      + f"; {doc['avg_bits']:.2f} bits/weight, {doc['weight_bytes']} bytes; held-out drop "
                      f"{h['drop']:.4f}, output SNR "
                      + ("exact" if h["output_snr_db"] is None else f"{h['output_snr_db']:.1f} dB")
                      + (" (budget met)" if plan.search["budget_met_heldout"] else " (budget NOT met)"))
    return doc["bits"], doc
