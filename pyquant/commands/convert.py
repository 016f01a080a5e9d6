"""``pyquant convert MODEL -o DIR``: choose widths, pack, write layer files atomically.

Writes ``layer_<NN>_<name>.bin`` (packed canonical codes), ``model.json`` and
``model.meta.bin`` (docs/FORMAT.md sections 5 and 7) into a temporary sibling of DIR and
renames it into place; on any error DIR is left as it was. With ``--calib`` / ``--target`` the
directory is an executable integer model (:func:`pyquant.pipeline.convert_executable`). DIR may
not be, hold or lie inside one of the inputs.
"""

from __future__ import annotations

import argparse

from pyquant.analysis import layer_row, summarize
from pyquant.cliargs import add_integer_args, add_selection_args, criteria_from_args, targets_from_args
from pyquant.convert import ConvertOptions, convert_model
from pyquant.fileio import check_output_path
from pyquant.tables import print_report

__all__ = ["ConvertOptions", "convert_model"]     # the library API, re-exported for old imports


def _run_executable(args: argparse.Namespace, crit) -> int:
    """``convert --calib/--target``: write an executable model directory."""
    from pyquant.pipeline import convert_executable

    ts = targets_from_args(args, single="convert")
    layers, info, _builder, plan = convert_executable(args.model, args.output, crit, args.calib, ts or None,
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


def run(args: argparse.Namespace) -> int:
    crit = criteria_from_args(args)
    check_output_path(args.output, [args.model, args.calib, args.holdout], "model directory", directory=True)
    if args.calib or args.target:   # executable model (pyquant.pipeline)
        return _run_executable(args, crit)
    recs = convert_model(args.model, args.output, ConvertOptions(criteria=crit, keep_codes=False))
    if not args.quiet:
        rows = [layer_row(r) for r in recs]
        print_report(rows, summarize(rows), crit, str(args.model))
        print(f"wrote {args.output}: {len(recs)} layer files, model.json, model.meta.bin")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="choose widths, pack weights, write layer files + metadata",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_selection_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory (replaced atomically)")
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    add_integer_args(p)
    p.set_defaults(func=run)
