"""``pyquant golden DIR --input X.npy -o VEC/``: per-call golden vectors for the test benches.

DIR is an executable model directory (``pyquant convert MODEL --calib FILE.npy -o DIR``).
X.npy holds float model inputs (quantized with the model's input scale, HWC) or, with
``--int8`` or an int8 array, already-quantized HWC int8 inputs ``[B, H·W·C]``.
Writes ``.npy``, ``.hex`` (one byte per line), ``.bin`` (little-endian stream bytes) and
``.w32.hex`` (32-bit stream words) per call, plus ``manifest.json`` (docs/FORMAT.md section 9.1).
"""

from __future__ import annotations

import argparse

from pyquant.errors import InputError
from pyquant.fileio import check_output_path


def run(args: argparse.Namespace) -> int:
    from pyquant.golden import load_input, write_golden
    from pyquant.infer import check_executable, load_int_model

    check_output_path(args.output, [args.input], "golden vectors", directory=True, input_dirs=[args.model_dir])
    info, layers = load_int_model(args.model_dir)
    check_executable(layers, str(args.model_dir))
    x = load_input(args.input, info, layers, raw_int8=args.int8)
    if args.samples is not None:
        if args.samples < 1:
            raise InputError("--samples must be >= 1")
        x = x[:args.samples]
    man = write_golden((info, layers), x, args.output, source=str(args.model_dir))
    if not args.quiet:
        calls = ", ".join(f"{c['name']} {c['M']}x{c['K']}x{c['N']} INT{c['bits']}" for c in man["calls"])
        print(f"wrote {args.output}: {man['samples']} sample(s), {len(man['calls'])} calls ({calls})")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("golden", help="write per-layer golden vectors (npy, hex, bin) for test benches",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", metavar="DIR", help="executable model directory (convert --calib output)")
    p.add_argument("--input", required=True, metavar="X.npy", help="model inputs: float [N, ...] (.npy, or .npz with X), or int8 HWC")
    p.add_argument("-o", "--output", required=True, metavar="VEC", help="output directory (replaced atomically)")
    p.add_argument("--int8", action="store_true", help="X.npy is already-quantized int8 HWC")
    p.add_argument("-n", "--samples", type=int, default=None, help="use only the first N samples")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on stdout")
    p.set_defaults(func=run)
