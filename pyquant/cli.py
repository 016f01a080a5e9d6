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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
