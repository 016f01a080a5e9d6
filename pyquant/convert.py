"""Weight conversion to a model directory: choose widths, pack, write layer files atomically.

:func:`convert_model` analyses a model (``.onnx`` or ``.npz``), writes ``layer_<NN>_<name>.bin``
(packed canonical codes), ``model.json`` and ``model.meta.bin`` (docs/FORMAT.md sections 5 and 7)
into a temporary sibling of the output directory and renames it into place; on any error the
output directory is left as it was. Executable (integer-pipeline) models are written by
:func:`pyquant.pipeline.convert_executable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pyquant import __version__
from pyquant.analysis import Criteria, iter_analyze, layer_row, summarize
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
        w.info["summary"] = summarize([layer_row(r) for r in records])
        w.commit(opts.extra)
    return records
