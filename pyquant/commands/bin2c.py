"""``pyquant bin2c``: C99 headers for firmware images and ROMs (docs/FORMAT.md section 8).

``pyquant bin2c FILE.bin -o FILE.h --name SYMBOL`` -> ``static const uint8_t SYMBOL[N]``.
``pyquant bin2c --model DIR -o weights.h [--name PREFIX]`` -> every layer, the metadata bytes
and a ``pq_layer_desc_t PREFIX_layers[]`` struct array. Output is written atomically and may not
be the input file or lie inside the model directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyquant.bin2c import bin_to_header, c_identifier, model_to_header, symbol_from
from pyquant.errors import InputError
from pyquant.fileio import atomic_write, check_output_path


def run(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.model is None):
        raise InputError("give exactly one of FILE.bin or --model DIR")
    out = check_output_path(args.output, [args.file], "C header", input_dirs=[args.model])
    if args.model is not None:
        prefix = c_identifier(args.name) if args.name else "pq_model"
        text = model_to_header(args.model, prefix, out.name)
    else:
        src = Path(args.file)
        try:
            data = src.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{src}: file not found") from None
        except OSError as e:
            raise InputError(f"{src}: cannot read: {e.strerror or e}") from None
        sym = c_identifier(args.name) if args.name else symbol_from(src.stem)
        text = bin_to_header(data, sym, out.name, str(src))
    atomic_write(out, text.encode("ascii"), "C header")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("bin2c", help="C99 header from a binary file or a whole model directory",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", help="binary file to embed")
    p.add_argument("--model", metavar="DIR", help="embed a converted model directory instead")
    p.add_argument("-o", "--output", required=True, metavar="FILE.h", help="header to write")
    p.add_argument("--name", metavar="SYMBOL", help="array name (FILE mode) or prefix (--model mode)")
    p.set_defaults(func=run)
