"""Benchmark pyquant analyze/convert throughput and pack/unpack speed; write JSON.

Usage: python scripts/bench_pyquant.py [-o build/bench/pyquant.json] [--params 20000000]

Builds a synthetic ONNX model (Gemm + Conv layers, float32 weights in initializers, ~20M
weights by default), then measures:
- analyze: full per-layer analysis at 8/6/4/2 (metrics for every width, no codes kept),
  including reading the model; weights/s and seconds (target: 20M in < 5 s); also the whole
  ``pyquant analyze -q --json`` command in a fresh process (imports included);
- convert: analysis + codes + packing + writing the layer files and metadata;
- pack/unpack per width on 16M codes: MB/s of int8 codes in (pack) / out (unpack) and MB/s
  of packed bytes (target: > 100 MB/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyquant.analysis import Criteria, iter_analyze, layer_row, summarize  # noqa: E402
from pyquant.commands.convert import ConvertOptions, convert_model  # noqa: E402
from pyquant.onnx_io import iter_weights  # noqa: E402
from pyquant.packing import pack, unpack  # noqa: E402


def build_model(path: Path, params: int, seed: int = 0) -> int:
    """Synthetic ONNX model with ~``params`` weights: alternating Gemm and Conv layers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes, total, i = [], [], 0, 0
    while total < params:
        if i % 2 == 0:
            m, k = 1024, min(2048, max(1, (params - total) // 1024))
            w = (rng.standard_normal((m, k)) * 0.05).astype(np.float32)
            nodes.append(helper.make_node("Gemm", ["x", f"w{i}"], [f"y{i}"], name=f"fc{i}", transB=1))
        else:
            oc, ic = 256, 256
            w = (rng.standard_normal((oc, ic, 3, 3)) * 0.05).astype(np.float32)
            nodes.append(helper.make_node("Conv", ["x", f"w{i}"], [f"y{i}"], name=f"conv{i}"))
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        total += w.size
        i += 1
    g = helper.make_graph(nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info(f"y{j}", TensorProto.FLOAT, None) for j in range(i)],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return total


def bench_pack(n: int = 1 << 24, reps: int = 3) -> dict:
    rng = np.random.default_rng(1)
    res = {}
    for b in (2, 4, 6, 8):
        qm = (1 << (b - 1)) - 1
        codes = rng.integers(-qm, qm + 1, size=(4096, n // 4096)).astype(np.int8)
        tp = tu = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            data = pack(codes, b)
            tp = min(tp, time.perf_counter() - t)
            t = time.perf_counter()
            back = unpack(data, b, codes.shape)
            tu = min(tu, time.perf_counter() - t)
        assert np.array_equal(back, codes)
        res[f"int{b}"] = {"codes": int(codes.size), "packed_bytes": len(data),
                          "pack_MBps": codes.size / tp / 1e6, "unpack_MBps": codes.size / tu / 1e6,
                          "pack_packed_MBps": len(data) / tp / 1e6, "unpack_packed_MBps": len(data) / tu / 1e6,
                          "pack_s": tp, "unpack_s": tu}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default=str(ROOT / "build" / "bench" / "pyquant.json"))
    ap.add_argument("--params", type=int, default=20_000_000)
    ap.add_argument("--work", default=str(ROOT / "build" / "bench" / "pyquant_work"))
    a = ap.parse_args(argv)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "synthetic.onnx"
    try:
        n = build_model(model, a.params)
        crit = Criteria()
        t = time.perf_counter()
        rows = [layer_row(r) for r in iter_analyze(iter_weights(model), crit, keep_codes=False)]
        t_an = time.perf_counter() - t
        summ = summarize(rows)
        t = time.perf_counter()
        convert_model(model, work / "out", ConvertOptions(criteria=crit))
        t_cv = time.perf_counter() - t
        # the same analysis as a user runs it: a fresh `pyquant analyze` process (imports, table, JSON)
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pyquant", "analyze", str(model), "-q", "--json",
                            str(work / "analyze.json")], cwd=ROOT, capture_output=True, text=True)
        t_cli = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(f"pyquant analyze failed: {r.stderr.strip()}")
        crit_mse = Criteria(scale="mse")
        t = time.perf_counter()
        for _ in iter_analyze(iter_weights(model), crit_mse, keep_codes=False):
            pass
        t_mse = time.perf_counter() - t
        packing = bench_pack()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res = {
        "benchmark": "pyquant", "python": platform.python_version(), "numpy": np.__version__,
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "model": {"params": n, "layers": len(rows), "widths": [2, 4, 6, 8]},
        "analyze": {"seconds": t_an, "weights_per_s": n / t_an, "target_seconds": 5.0, "meets_target": t_an < 5.0,
                    "layers_per_width": summ["layers_per_width"]},
        "analyze_cli": {"seconds": t_cli, "weights_per_s": n / t_cli, "meets_target": t_cli < 5.0,
                        "what": "python -m pyquant analyze MODEL -q --json (process start to exit)"},
        "analyze_mse": {"seconds": t_mse, "weights_per_s": n / t_mse},
        "convert": {"seconds": t_cv, "weights_per_s": n / t_cv, "bytes": summ["bytes"]},
        "packing": packing,
        "packing_target_MBps": 100.0,
        "packing_meets_target": all(v["pack_MBps"] > 100 and v["unpack_MBps"] > 100 for v in packing.values()),
    }
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, out)
    print(f"analyze {n/1e6:.1f}M weights: {t_an:.2f} s ({n/t_an/1e6:.1f} M/s; CLI process {t_cli:.2f} s); "
          f"convert {t_cv:.2f} s; "
          f"mse analyze {t_mse:.2f} s; pack MB/s " +
          ", ".join(f"INT{b} {packing[f'int{b}']['pack_MBps']:.0f}/{packing[f'int{b}']['unpack_MBps']:.0f}"
                    for b in (8, 6, 4, 2)) + f" -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
