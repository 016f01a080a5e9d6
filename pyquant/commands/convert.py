"""``pyquant convert MODEL -o DIR``: choose widths, pack, write layer files atomically.

Writes ``layer_<NN>_<name>.bin`` (packed canonical codes), ``model.json`` and
``model.meta.bin`` (docs/FORMAT.md sections 5 and 7) into a temporary sibling of DIR and
renames it into place; on any error DIR is left as it was.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pyquant import __version__
from pyquant.analysis import Criteria, iter_analyze, layer_row, summarize
from pyquant.commands.analyze import add_selection_args, criteria_from_args, print_report
from pyquant.layerfiles import LayerRecord, ModelWriter
from pyquant.onnx_io import iter_weights


@dataclass
class ConvertOptions:
    """What :func:`convert_model` needs besides the paths.

    ``bits_override`` forces widths per layer name; ``info`` is merged into model.json's
    ``info``; ``transform(records) -> records`` (e.g. executable-model preparation) runs on the
    analysed records before they are written; ``extra(tmp_dir)`` adds files before the rename.
    """

    criteria: Criteria = field(default_factory=Criteria)
    bits_override: dict[str, int] | None = None
    info: dict = field(default_factory=dict)
    transform: Callable[[list[LayerRecord]], list[LayerRecord]] | None = None
    extra: Callable[[Path], None] | None = None
    quiet: bool = True
    keep_codes: bool = True     # False: returned records carry no codes (streaming, bounded memory)


def convert_model(model_path: str | Path, out_dir: str | Path, opts: ConvertOptions | None = None
                  ) -> list[LayerRecord]:
    """Analyse ``model_path``, write ``out_dir`` atomically, return the written LayerRecords.

    Without ``opts.transform`` layers are streamed: each is packed and written as soon as it
    is analysed; its int8 codes stay in memory for the returned records unless
    ``opts.keep_codes`` is False (then memory holds about one layer at a time, as the CLI runs).
    Raises :class:`~pyquant.errors.InputError` on bad input; ``out_dir`` is then untouched.
    """
    opts = opts or ConvertOptions()
    crit = opts.criteria
    info = {"source": str(model_path), "tool": f"pyquant {__version__}", "criteria": crit.as_dict(),
            "executable": False, "input": None, "out_size": 0}
    info.update(opts.info)
    records: list[LayerRecord] = []
    with ModelWriter(out_dir, info) as w:
        stream = iter_analyze(iter_weights(model_path), crit, opts.bits_override, where=str(model_path))
        if opts.transform is None:
            for rec in stream:
                w.add(rec)
                if not opts.keep_codes:
                    rec.codes = np.zeros((rec.rows, 0), np.int8)      # written; layer_row still works
                records.append(rec)
        else:
            records = list(opts.transform(list(stream)))
            for rec in records:
                w.add(rec)
        rows = [layer_row(r) for r in records]
        w.info["summary"] = summarize(rows)
        w.commit(opts.extra)
    if not opts.quiet:
        print_report(rows, summarize(rows), crit, str(model_path))
        print(f"wrote {out_dir}: {len(records)} layer files, model.json, model.meta.bin")
    return records


def run(args: argparse.Namespace) -> int:
    if getattr(args, "calib", None) or getattr(args, "target", None):   # executable model (pyquant.pipeline)
        from pyquant.commands.evaluate import run_convert_executable
        return run_convert_executable(args)
    opts = ConvertOptions(criteria=criteria_from_args(args), quiet=args.quiet, keep_codes=False)
    convert_model(args.model, args.output, opts)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="choose widths, pack weights, write layer files + metadata",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_selection_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory (replaced atomically)")
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    from pyquant.commands.evaluate import add_integer_args
    add_integer_args(p)
    p.set_defaults(func=run)
