"""`pyquant` command line: thin subcommands, one module each in :mod:`pyquant.commands`.

Each module ``pyquant.commands.<name>`` defines ``add_parser(subparsers)`` which registers
its subparser and sets ``func(args) -> int``. Errors derived from
:class:`pyquant.errors.PyquantError` print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pyquant import __version__
from pyquant.errors import PyquantError

# Subcommands, in help order. A module listed here must exist.
COMMANDS = ["analyze", "convert", "bin2c", "golden", "evaluate", "report"]

EXAMPLES = {
    "analyze": "examples:\n"
               "  pyquant analyze examples/digits_cnn.onnx --json a.json --plot a.png\n"
               "  pyquant analyze model.onnx --granularity channel --scale mse --snr-min 30 --bits 8,4\n"
               "  pyquant analyze examples/digits_mlp.onnx --target accuracy-drop=0.01",
    "convert": "examples:\n"
               "  pyquant convert model.onnx -o out/model                       (weights only)\n"
               "  pyquant convert examples/digits_cnn.onnx --calib examples/digits_calib.npy -o out/cnn\n"
               "  pyquant convert examples/digits_cnn.onnx --calib examples/digits_calib.npy \\\n"
               "      --target accuracy-drop=0.01 -o out/cnn_acc",
    "bin2c": "examples:\n"
             "  pyquant bin2c out/cnn/layer_00_conv1.bin -o conv1.h --name conv1_w\n"
             "  pyquant bin2c --model out/cnn -o weights.h --name cnn",
    "golden": "examples:\n"
              "  pyquant golden out/cnn --input examples/digits_calib.npy -n 4 -o out/cnn_vec",
    "evaluate": "examples:\n"
                "  pyquant evaluate examples/digits_mlp.onnx --json out.json\n"
                "  pyquant evaluate examples/digits_cnn.onnx --target accuracy-drop=0.02 "
                "--target output-snr=25 --objective cycles",
    "report": "examples:\n"
              "  pyquant report out/cnn_acc -o report.html\n"
              "  pyquant report out/cnn -o report.html --eval out.json",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too (``pyquant CMD: error: ...``, exit code 2), like input errors."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pyquant",
        description="Mixed-precision (INT8/6/4/2) quantization and packing for the pq_accel FPGA accelerator.",
    )
    p.add_argument("--version", action="version", version=f"pyquant {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"pyquant.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"pyquant.commands.{name}":
                continue  # not implemented yet
            raise
        mod.add_parser(sub)
        sp = sub.choices.get(name)
        if sp is not None:          # module docstrings are reST: drop the ``literal`` markup
            sp.description = (sp.description or "").replace("``", "")
            sp.epilog = EXAMPLES.get(name)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PyquantError as e:
        print(f"pyquant {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("pyquant: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
