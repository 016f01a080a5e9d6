#!/usr/bin/env python3
"""Test vectors for the pq_accel HLS C-simulation bench (hls/pq_accel/tb_pq_accel.cpp).

Writes index files the bench reads, one accelerator call per line::

    name prec M K N flags WGT X Y        (paths relative to the index file; WGT "-" with reuse)

- ``-o DIR`` always writes ``DIR/synthetic/`` (``index.txt`` + ``.bin`` byte sequences): seeded
  random layers and worst-case operands for INT8/6/4/2, expected results from
  :func:`pyquant.intmath.layer_int` (see :func:`synthetic_calls`).
- ``--golden VEC`` (repeatable) writes ``DIR/index_<name>.txt`` pointing at the ``lNN_wgt.bin`` /
  ``lNN_x.bin`` / ``lNN_y.bin`` files of a ``pyquant golden`` directory (its ``manifest.json``).
- ``--digits`` converts ``examples/digits_{mlp,cnn}.onnx`` with ``pyquant convert`` and writes
  their golden vectors with ``pyquant golden`` under ``DIR/digits_*``, then indexes them.

Errors print one line naming the file and exit with status 2; DIR is written atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyquant.intmath import layer_int, quantize_multiplier
from pyquant.packing import pack, row_bytes

ROOT = Path(__file__).resolve().parents[1]
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
QMAX = {2: 1, 4: 7, 6: 31, 8: 127}


def _config_h(names: tuple[str, ...]) -> tuple[int, ...]:
    """The kernel's capacities as hls/pq_accel/config.h defines them (its one source of sizes)."""
    text = (ROOT / "hls" / "pq_accel" / "config.h").read_text()
    vals = []
    for n in names:
        m = re.search(rf"^#define {n} (\d+)", text, flags=re.M)
        if m is None:
            raise RuntimeError(f"{ROOT / 'hls' / 'pq_accel' / 'config.h'}: no #define {n}")
        vals.append(int(m.group(1)))
    return tuple(vals)


# Kernel capacities (hls/pq_accel/config.h; docs/HARDWARE.md section 2 documents the same defaults).
MAX_ROWS, MAX_COLS, WMEM_BYTES = _config_h(("MAX_ROWS", "MAX_COLS", "WMEM_BYTES"))


class VectorError(Exception):
    """A user-facing problem with an input (message names the file)."""


@dataclass
class Call:
    """One accelerator call: codes ``w[M,K]``, int8 ``x[N,K]``, constants, flags."""

    name: str
    bits: int
    w: np.ndarray
    x: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    relu: bool
    reuse: bool = False
    y: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.w = np.asarray(self.w, dtype=np.int64)
        self.x = np.asarray(self.x, dtype=np.int64).reshape(-1, self.w.shape[1])
        self.bias = np.asarray(self.bias, dtype=np.int64).reshape(-1)
        self.mult = np.asarray(self.mult, dtype=np.int64).reshape(-1)
        self.shift = np.asarray(self.shift, dtype=np.int64).reshape(-1)
        m, k = self.w.shape
        if not (1 <= m <= MAX_ROWS and 1 <= k <= MAX_COLS and m * row_bytes(k, self.bits) <= WMEM_BYTES):
            raise ValueError(f"{self.name}: M={m} K={k} INT{self.bits} exceeds the kernel capacity")
        self.y = layer_int(self.x, self.w, self.bias, self.mult, self.shift, self.relu)

    @property
    def flags(self) -> int:
        """The ``flags`` register: bit0 relu, bit1 reuse."""
        return int(self.relu) | (2 if self.reuse else 0)

    def wgt_bytes(self) -> bytes:
        """The ``wgt`` stream bytes: per row bias i32, mult u16, shift u8, 0; then packed codes."""
        rec = np.zeros(self.w.shape[0], dtype=np.dtype([("b", "<i4"), ("m", "<u2"), ("s", "u1"), ("z", "u1")]))
        rec["b"], rec["m"], rec["s"] = self.bias, self.mult, self.shift
        return rec.tobytes() + pack(self.w, self.bits)


def _requant_for(acc_absmax: float, out_absmax: float = 100.0) -> tuple[int, int]:
    real = out_absmax / max(acc_absmax, 1.0)
    m, s = quantize_multiplier(real)
    return int(m[0]), int(s[0])


def random_call(name: str, bits: int, m: int, k: int, n: int, rng: np.random.Generator, relu: bool = False,
                x_extreme: bool = False, w_extreme: bool = False, saturate: bool = False) -> Call:
    """A random layer; ``*_extreme`` draws operands from {-128, 127} / {-qmax, qmax} only."""
    q = QMAX[bits]
    w = rng.choice([-q, q], size=(m, k)) if w_extreme else rng.integers(-q, q + 1, size=(m, k))
    x = rng.choice([-128, 127], size=(n, k)) if x_extreme else rng.integers(-128, 128, size=(n, k))
    acc_scale = 128.0 * q * np.sqrt(k) / 2.0
    bias = rng.integers(-int(acc_scale), int(acc_scale) + 1, size=m)
    if saturate:
        mult = rng.integers(16384, 32768, size=m)
        shift = rng.integers(1, 9, size=m)
    else:
        mu, sh = _requant_for(acc_scale * 2.0)
        mult = np.full(m, mu) + rng.integers(-50, 51, size=m).clip(-mu, 32767 - mu)
        shift = np.full(m, sh)
    return Call(name, bits, w, x, bias, mult, shift, relu)


def worst_case_calls(bits: int) -> list[Call]:
    """Longest K at full magnitude, same sign everywhere (and alternating lanes), with biases that put
    the int32 accumulator exactly at its extremes and at small values read back exactly."""
    q = QMAX[bits]
    k = MAX_COLS
    calls = []
    n = 3  # odd: INT2 runs one 2x2 pair and one single column
    for xv, wv in ((-128, -q), (127, q), (-128, q), (127, -q)):
        s = xv * wv * k  # every row's dot product
        # rows: acc at INT32 extreme (pos. or neg.), acc = 37, acc = -100, acc = 0, acc = s (bias 0)
        extreme = INT32_MAX if s > 0 else INT32_MIN
        bias = np.array([extreme - s, 37 - s, -100 - s, -s, 0, 1 - s], dtype=np.int64)
        mult = np.array([32767, 16384, 16384, 16384, 1, 32767])
        shift = np.array([47, 14, 14, 14, 1, 1])
        m = bias.size
        w = np.full((m, k), wv)
        x = np.full((n, k), xv)
        tag = f"x{xv:+d}_w{wv:+d}".replace("+", "p").replace("-", "m")
        calls.append(Call(f"wc_int{bits}_{tag}", bits, w, x, bias, mult, shift, relu=False))
    # Alternating signs across the two lanes of every DSP (and the 2x2 outer product columns).
    m = 8
    w = np.tile(np.array([[q], [-q]]), (m // 2, k))
    x = np.stack([np.full(k, -128), np.full(k, 127), np.full(k, -128)])
    sums = x @ w.T
    bias = np.array([37 - sums[0, r] for r in range(m)], dtype=np.int64)
    calls.append(Call(f"wc_int{bits}_alt_lanes", bits, w, x, bias, np.full(m, 16384), np.full(m, 14), False))
    return calls


def synthetic_calls(seed: int = 5) -> list[Call]:
    """Every precision: random shapes (N = 1, odd N, odd M, K not a multiple of a group, M = MAX_ROWS,
    K = MAX_COLS), extreme operands, saturation both ways, relu, mult 0 / shift 47, and a reuse
    sequence; plus :func:`worst_case_calls`."""
    rng = np.random.default_rng(seed)
    calls: list[Call] = []
    shapes = [(1, 1, 1), (2, 3, 2), (3, 5, 3), (7, 13, 5), (16, 64, 4), (MAX_ROWS, 16, 2), (33, 100, 1),
              (5, MAX_COLS, 3), (9, 37, 6)]
    for bits in (8, 6, 4, 2):
        for i, (m, k, n) in enumerate(shapes):
            calls.append(random_call(f"rand_int{bits}_{m}x{k}x{n}", bits, m, k, n, rng, relu=bool(i % 2)))
        calls.append(random_call(f"extreme_int{bits}", bits, 12, 301, 5, rng, x_extreme=True, w_extreme=True))
        calls.append(random_call(f"sat_int{bits}", bits, 10, 50, 7, rng, saturate=True))
        calls.append(random_call(f"sat_relu_int{bits}", bits, 10, 50, 7, rng, saturate=True, relu=True))
        c = random_call(f"mult0_shift47_int{bits}", bits, 6, 20, 2, rng)
        c.mult[:3] = 0
        c.shift[3:] = 47
        calls.append(Call(c.name, bits, c.w, c.x, c.bias, c.mult, c.shift, c.relu))
        base = random_call(f"reuse_int{bits}_load", bits, 9, 37, 2, rng)
        calls.append(base)
        for j, n in enumerate((5, 1)):
            x = rng.integers(-128, 128, size=(n, 37))
            calls.append(Call(f"reuse_int{bits}_{j}", bits, base.w, x, base.bias, base.mult, base.shift,
                              relu=bool(j), reuse=True))
        calls.extend(worst_case_calls(bits))
    return calls


def write_synthetic(out: Path, calls: list[Call]) -> Path:
    """Write ``out/index.txt`` and the byte files of ``calls``; returns the index path."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# name prec M K N flags WGT X Y  (scripts/gen_hls_vectors.py)"]
    for i, c in enumerate(calls):
        stem = f"c{i:03d}"
        wname = "-"
        if not c.reuse:
            wname = f"{stem}_wgt.bin"
            (out / wname).write_bytes(c.wgt_bytes())
        (out / f"{stem}_x.bin").write_bytes(c.x.astype(np.int8).tobytes())
        (out / f"{stem}_y.bin").write_bytes(c.y.astype(np.int8).tobytes())
        m, k = c.w.shape
        lines.append(f"{c.name} {c.bits} {m} {k} {c.x.shape[0]} {c.flags} {wname} {stem}_x.bin {stem}_y.bin")
    idx = out / "index.txt"
    idx.write_text("\n".join(lines) + "\n")
    return idx


def golden_index_lines(vec: Path, rel_to: Path) -> list[str]:
    """Index lines for every call of a ``pyquant golden`` directory (paths relative to ``rel_to``)."""
    man_path = vec / "manifest.json"
    try:
        man = json.loads(man_path.read_text())
        calls = man["calls"]
    except FileNotFoundError:
        raise VectorError(f"{man_path}: not found (is {vec} a pyquant golden directory?)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise VectorError(f"{man_path}: not a pyquant golden manifest ({type(e).__name__}: {e})") from None
    lines = [f"# pyquant golden {vec}"]
    for c in calls:
        try:
            files = [vec / c[key]["bin"] for key in ("wgt", "x", "y")]
            fields = (int(c["bits"]), int(c["M"]), int(c["K"]), int(c["N"]), int(bool(c["relu"])))
        except (KeyError, TypeError, ValueError) as e:
            raise VectorError(f"{man_path}: call entry lacks {e}") from None
        for f in files:
            if not f.is_file():
                raise VectorError(f"{f}: missing (listed in {man_path})")
        rel = [os.path.relpath(f, rel_to) for f in files]
        label = vec.parent.name if vec.name == "golden" else vec.name
        name = f"{label}.l{int(c.get('index', 0)):02d}_{c.get('name', 'layer')}".replace(" ", "_")
        lines.append(f"{name} {' '.join(str(v) for v in fields)} {' '.join(rel)}")
    return lines


# Conversion options per variant: the seed's gate (INT8 on these models) and lowered gates that
# select INT6 / INT4 / INT2 for every layer, so each width runs on real model data too.
DIGITS_VARIANTS = {
    "int8": [],
    "int6": ["--snr-min", "25"],
    "int4": ["--snr-min", "15"],
    "int2": ["--snr-min", "0", "--in-range-min", "0"],
}


def make_digits(out: Path, samples: int, variants: list[str] | None = None) -> list[Path]:
    """Convert the bundled digits models (each variant of :data:`DIGITS_VARIANTS`) and write their
    ``pyquant golden`` vectors under ``out/digits_<model>_<variant>/``; returns the golden dirs."""
    from pyquant.cli import main as pyquant_main

    vecs = []
    calib = ROOT / "examples" / "digits_calib.npy"
    for model in ("mlp", "cnn"):
        onnx = ROOT / "examples" / f"digits_{model}.onnx"
        for var in variants or list(DIGITS_VARIANTS):
            base = out / f"digits_{model}_{var}"
            mdir, gdir = base / "model", base / "golden"
            for argv in (["convert", str(onnx), "--calib", str(calib), "-o", str(mdir), "-q"] + DIGITS_VARIANTS[var],
                         ["golden", str(mdir), "--input", str(calib), "-n", str(samples), "-o", str(gdir), "-q"]):
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    try:
                        rc = pyquant_main(argv)
                    except SystemExit as e:  # argparse errors
                        rc = e.code if isinstance(e.code, int) else 2
                if rc != 0:
                    msg = (err.getvalue().strip().splitlines() or ["(no message)"])[-1]
                    raise VectorError(f"{onnx}: `pyquant {argv[0]}` failed: {msg}")
            vecs.append(gdir)
    return vecs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True, metavar="DIR")
    ap.add_argument("--golden", action="append", default=[], metavar="VEC", help="pyquant golden directory")
    ap.add_argument("--digits", action="store_true", help="convert + golden the bundled digits examples")
    ap.add_argument("--samples", type=int, default=8, help="digits samples per model (default 8)")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args(argv)
    out = Path(args.output)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "synthetic" / "index.txt").exists())):
        print(f"gen_hls_vectors: error: {out}: exists and is not a vector directory; refusing to replace it",
              file=sys.stderr)
        return 2
    try:
        out.absolute().parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.absolute().parent))
    except OSError as e:
        print(f"gen_hls_vectors: error: {out}: cannot create: {e.strerror or e}", file=sys.stderr)
        return 2
    try:
        n_syn = len(synthetic_calls(args.seed))
        write_synthetic(tmp / "synthetic", synthetic_calls(args.seed))
        golden = [Path(g) for g in args.golden]
        if args.digits:
            golden += make_digits(tmp, args.samples)
        for g in golden:
            # digits vectors are made inside tmp and move with it; others stay where they are
            inside = tmp.absolute() in g.absolute().parents
            lines = golden_index_lines(g, tmp.absolute() if inside else out.absolute())
            label = "_".join(g.absolute().relative_to(tmp.absolute()).parts) if inside else g.name
            lines[0] = f"# pyquant golden {out / g.relative_to(tmp) if inside else g}"
            (tmp / f"index_{label}.txt").write_text("\n".join(lines) + "\n")
        # swap in under a lock: two concurrent runs on one DIR must not interleave their renames
        with open(out.absolute().parent / f".{out.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if out.exists():
                old = tmp.with_name(tmp.name + ".old")
                os.rename(out, old)
                os.rename(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, out)
    except (VectorError, ValueError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"gen_hls_vectors: error: {e}", file=sys.stderr)
        return 2
    idx = sorted(str(p) for p in out.glob("index_*.txt"))
    print(f"wrote {out}: {n_syn} synthetic calls; golden indexes: {len(idx)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
