"""Command-line options that several ``pyquant`` commands share, and their conversion to library types.

The commands (:mod:`pyquant.commands`) never import each other; the width-selection options
(``analyze``, ``convert``, ``evaluate``) and the integer-pipeline options (``--calib``,
``--holdout``, ``--target``, ``--objective``) live here instead.
"""

from __future__ import annotations

import argparse

from pyquant.analysis import SCALE_METHODS, Criteria, parse_bits
from pyquant.errors import InputError

DEFAULT_SCALE = "maxabs"


def add_selection_args(p: argparse.ArgumentParser) -> None:
    """The width-selection options shared by ``analyze``, ``convert`` and ``evaluate``."""
    p.add_argument("model", help="model file (.onnx or .npz)")
    p.add_argument("--snr-min", type=float, default=40.0, metavar="DB",
                   help="lowest acceptable weight SNR in dB (default 40)")
    p.add_argument("--in-range-min", type=float, default=0.99, metavar="F",
                   help="lowest acceptable fraction of unclipped weights (default 0.99)")
    p.add_argument("--bits", default="8,6,4,2", metavar="LIST",
                   help="candidate widths, comma-separated subset of 8,6,4,2 (default all)")
    p.add_argument("--granularity", default="tensor", choices=["tensor", "channel"],
                   help="one scale per tensor (default) or per output channel (canonical axis 0)")
    p.add_argument("--scale", default=DEFAULT_SCALE, choices=list(SCALE_METHODS),
                   help=f"scale calibration: maxabs = max|w|/qmax; mse = MSE-optimal clip search "
                        f"(docs/FORMAT.md 1.1; default {DEFAULT_SCALE})")


def criteria_from_args(args: argparse.Namespace) -> Criteria:
    """Build and validate :class:`Criteria` from parsed options (InputError when invalid)."""
    return Criteria(snr_min=args.snr_min, in_range_min=args.in_range_min, bits=parse_bits(args.bits),
                    granularity=args.granularity, scale=args.scale)


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


def targets_from_args(args: argparse.Namespace, single: str | None = None) -> list:
    """The parsed ``--target`` budgets; with ``single`` (the command name) at most one."""
    from pyquant.search import parse_target

    ts = [parse_target(t) for t in (getattr(args, "target", None) or [])]
    if single and len(ts) > 1:
        raise InputError(f"{single}: give one --target (combine budgets with a comma)")
    return ts
