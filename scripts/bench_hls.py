"""Benchmark the pq_accel HLS kernel's C simulation beside hls4ml; write JSON.

Usage: python scripts/bench_hls.py [-o build/bench/hls.json] [--no-hls4ml]

Measures (wall seconds on this machine):
- ours: g++ compile of the C-sim test bench and of the ctypes library (fresh, not cached);
  writing the vectors (synthetic + both digits models at INT8/6/4/2 via pyquant convert/golden);
  the C-sim bench over all of them (its PASS/FAIL line recorded); the digits MLP on the whole test
  split through the kernel (pyquant convert, then C-sim of every layer call; checked equal to
  pyquant.infer.infer_int; top-1 accuracy);
- the kernel's cycle estimate (docs/HARDWARE.md 4.x; from the kernel's own loop trip counts) per
  digits layer at batch 1, and per sample for the whole model, at 250 MHz;
- hls4ml (pinned, installed with pip into a throwaway venv under build/hls/, never the project venv):
  install, ONNX conversion (qonnx cleanup + Gemm->MatMul), compile (its g++ C-sim library) and
  C-simulation (predict) of the same digits MLP, with its top-1 accuracy at its default
  ap_fixed<16,6>. A failure at any step is recorded with the reason instead of numbers.
The JSON is written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "hls"))

import pqhls  # noqa: E402
from scripts import gen_hls_vectors as gv  # noqa: E402

HLS4ML_PINS = ["hls4ml==1.3.0", "qonnx==1.0.0"]
HLS4ML_VENV = ROOT / "build" / "hls" / "hls4ml_venv"
MHZ = 250.0

HLS4ML_SCRIPT = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
t0 = time.time()
import hls4ml
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
t_import = time.time() - t0
onnx_path, test_npz, out_dir = sys.argv[1:4]
t0 = time.time()
m = cleanup_model(ModelWrapper(onnx_path))
m = cleanup_model(m.transform(GemmToMatMul()))
cfg = hls4ml.utils.config_from_onnx_model(m, granularity="model", backend="Vitis",
                                          default_precision="fixed<16,6>")
hm = hls4ml.converters.convert_from_onnx_model(m, hls_config=cfg, output_dir=out_dir, backend="Vitis",
                                               io_type="io_parallel", part="xczu7ev-ffvc1156-2-e",
                                               clock_period=4)
t_convert = time.time() - t0
t0 = time.time(); hm.compile(); t_compile = time.time() - t0
d = np.load(test_npz)
X = np.ascontiguousarray(d["X"].astype(np.float32)); y = d["y"]
t0 = time.time(); p = hm.predict(X); t_predict = time.time() - t0
print("HLS4ML_JSON " + json.dumps({"import_s": t_import, "convert_s": t_convert, "compile_s": t_compile,
      "csim_predict_s": t_predict, "samples": int(len(y)), "accuracy": float((np.argmax(p, 1) == y).mean()),
      "precision": "ap_fixed<16,6>", "io_type": "io_parallel", "version": hls4ml.__version__}))
'''


def _timed(fn, *a, **k):
    t0 = time.perf_counter()
    r = fn(*a, **k)
    return r, time.perf_counter() - t0


def _compile_fresh(target: str, out_dir: Path) -> float:
    srcs, tflags, name = pqhls.TARGETS[target]
    cmd = [pqhls.CXX] + pqhls.CXXFLAGS + tflags + [str(pqhls.SRC / s) for s in srcs] + ["-o", str(out_dir / name)]
    _, dt = _timed(subprocess.run, cmd, check=True, capture_output=True)
    return dt


def bench_ours(work: Path) -> dict:
    """C-sim timings, the bench's verdict, the digits MLP through the kernel, cycle estimates."""
    res: dict = {}
    res["compile_tb_s"] = _compile_fresh("tb", work)
    res["compile_lib_s"] = _compile_fresh("lib", work)
    vec = work / "vectors"
    rc, res["vectors_s"] = _timed(gv.main, ["-o", str(vec), "--digits", "--samples", "16"])
    if rc != 0:
        raise RuntimeError("vector generation failed")
    idx = [str(vec / "synthetic" / "index.txt")] + sorted(str(p) for p in vec.glob("index_*.txt"))
    r, res["csim_bench_s"] = _timed(subprocess.run, [str(work / "tb_pq_accel")] + idx, capture_output=True,
                                    text=True)
    res["csim_bench_summary"] = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip()
    res["csim_bench_pass"] = r.returncode == 0

    from pyquant.cli import main as pyquant_main
    from pyquant.infer import infer_int, input_chw, in_scale_of, load_int_model, quantize_input

    kernel = pqhls.Kernel(pqhls.build("lib"))
    d = np.load(ROOT / "examples" / "digits_test.npz")
    xf, labels = d["X"], d["y"]
    models = {}
    for model in ("mlp", "cnn"):
        for var in ("int8", "int4", "int2"):
            mdir = work / f"{model}_{var}"
            argv = ["convert", str(ROOT / "examples" / f"digits_{model}.onnx"), "--calib",
                    str(ROOT / "examples" / "digits_calib.npy"), "-o", str(mdir), "-q"] + gv.DIGITS_VARIANTS[var]
            rc, t_conv = _timed(pyquant_main, argv)
            info, layers = load_int_model(str(mdir))
            x8 = quantize_input(xf, in_scale_of(info, layers), input_chw(info, layers))
            got, t_sim = _timed(pqhls.run_model, kernel, str(mdir), x8)
            exp = infer_int(str(mdir), x8)
            calls = []
            for ly in layers:
                m, k = ly.codes.shape
                p = int(ly.geom["out_h"] * ly.geom["out_w"]) if ly.kind == "conv" else 1
                cyc = kernel.cycle_estimate(int(ly.bits), m, k, p)
                calls.append({"name": ly.name, "bits": int(ly.bits), "M": m, "K": k, "N_per_sample": p,
                              "cycles_per_sample": cyc, "macs_per_sample": m * k * p,
                              "macs_per_cycle": round(m * k * p / cyc, 3)})
            total = sum(c["cycles_per_sample"] for c in calls)
            nb = int(len(labels))  # whole test split as one batch: weights loaded once per layer
            batched = sum(kernel.cycle_estimate(c["bits"], c["M"], c["K"], c["N_per_sample"] * nb) for c in calls)
            models[f"digits_{model}_{var}"] = {
                "convert_s": t_conv, "csim_s": t_sim, "samples": int(len(labels)),
                "bit_exact_vs_infer_int": bool(np.array_equal(got, exp)),
                "accuracy": float((np.argmax(got, 1) == labels).mean()),
                "calls": calls, "cycles_per_sample": total,
                "latency_us_per_sample_at_250MHz": round(total / MHZ, 3),
                "batch": nb, "cycles_per_sample_batched": round(batched / nb, 1),
                "throughput_samples_per_s_batched_at_250MHz": round(MHZ * 1e6 * nb / batched, 1),
            }
    res["models"] = models
    hdr = (pqhls.SRC / "pq_accel_capi.h").read_text()
    consts = {n: int(hdr.split(f"#define {n} ")[1].split()[0]) for n in ("PQ_CYC_CALL", "PQ_CYC_LOOP",
                                                                         "PQ_CYC_MAC_DEPTH")}
    res["cycle_model"] = {
        "formula": ("CALL + [!reuse]((LOOP + 2M) + (LOOP + ceil(M*row_bytes/4))) + sum_n(LOOP + "
                    "ceil(((n*K mod 4) + K)/4)) + (N1 + N2)*G*(LOOP + K + D + 2*LANES) + N*(LOOP + M); "
                    "G = ceil(M/(2*LANES)), N2 = floor(N/2) INT2 column pairs (else 0), N1 = N - 2*N2"),
        "CALL": consts["PQ_CYC_CALL"], "LOOP": consts["PQ_CYC_LOOP"], "D": consts["PQ_CYC_MAC_DEPTH"],
        "source": "pq_accel_cycle_estimate (hls/pq_accel/pq_accel_capi.cpp), docs/HARDWARE.md 4.x; equals the "
                  "C simulation's loop trip counts (hls/tests); CALL, LOOP and D are assumptions, not csynth numbers",
        "clock_mhz": MHZ,
    }
    res["kernel_config"] = {"MAX_ROWS": kernel.max_rows, "MAX_COLS": kernel.max_cols,
                            "WMEM_BYTES": kernel.wmem_bytes, "LANES": kernel.lanes}
    return res


def bench_hls4ml(work: Path) -> dict:
    """hls4ml in a throwaway venv: install (once), convert, compile, C-sim the digits MLP."""
    out: dict = {"pins": HLS4ML_PINS, "venv": str(HLS4ML_VENV.relative_to(ROOT))}
    py = HLS4ML_VENV / "bin" / "python"
    if not py.exists() or subprocess.run([str(py), "-c", "import hls4ml, qonnx"], capture_output=True).returncode:
        t0 = time.perf_counter()
        # a venv made from the project venv's interpreter is based on the system Python, not on the venv
        r = subprocess.run([sys.executable, "-m", "venv", "--clear", str(HLS4ML_VENV)], capture_output=True,
                           text=True)
        if r.returncode == 0:
            r = subprocess.run([str(py), "-m", "pip", "install", "-q"] + HLS4ML_PINS, capture_output=True, text=True)
        out["install_s"] = time.perf_counter() - t0
        if r.returncode != 0:
            out["status"] = "failed"
            out["reason"] = "pip install: " + ((r.stderr or r.stdout).strip().splitlines() or ["?"])[-1]
            return out
    else:
        out["install_s"] = None  # already installed
    script = work / "hls4ml_bench.py"
    script.write_text(HLS4ML_SCRIPT)
    t0 = time.perf_counter()
    r = subprocess.run([str(py), str(script), str(ROOT / "examples" / "digits_mlp.onnx"),
                        str(ROOT / "examples" / "digits_test.npz"), str(work / "hls4ml_prj")],
                       capture_output=True, text=True, timeout=1800)
    out["total_s"] = time.perf_counter() - t0
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("HLS4ML_JSON ")), None)
    if r.returncode != 0 or line is None:
        out["status"] = "failed"
        out["reason"] = ((r.stderr or r.stdout).strip().splitlines() or ["no output"])[-1][:300]
        return out
    out.update(json.loads(line[len("HLS4ML_JSON "):]))
    out["status"] = "ok"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default="build/bench/hls.json")
    ap.add_argument("--no-hls4ml", action="store_true", help="skip the hls4ml comparison")
    args = ap.parse_args(argv)
    outp = Path(args.output)
    (ROOT / "build" / "hls").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench_hls.", dir=ROOT / "build" / "hls"))
    res = {"bench": "hls", "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                                       "platform": platform.platform()}}
    try:
        res["pq_accel"] = bench_ours(work)
        res["hls4ml"] = {"status": "skipped"} if args.no_hls4ml else bench_hls4ml(work)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        shutil.rmtree(work, ignore_errors=True)
        print(f"bench_hls: error: {e}", file=sys.stderr)
        return 2
    h, o = res["hls4ml"], res["pq_accel"]
    mlp = o["models"]["digits_mlp_int8"]
    res["side_by_side_digits_mlp"] = {
        "pq_accel": {"convert_s": mlp["convert_s"], "compile_s": o["compile_lib_s"], "csim_s": mlp["csim_s"],
                     "accuracy": mlp["accuracy"], "arithmetic": "INT8 weights/activations (pyquant convert)",
                     "cycles_per_sample_model": mlp["cycles_per_sample"]},
        "hls4ml": ({"convert_s": h["convert_s"], "compile_s": h["compile_s"], "csim_s": h["csim_predict_s"],
                    "accuracy": h["accuracy"], "arithmetic": h["precision"]} if h.get("status") == "ok"
                   else {"status": h.get("status"), "reason": h.get("reason")}),
    }
    outp.parent.mkdir(parents=True, exist_ok=True)
    tmp = outp.with_name(f".{outp.name}.tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    os.replace(tmp, outp)
    shutil.rmtree(work, ignore_errors=True)
    s = res["side_by_side_digits_mlp"]
    print(f"wrote {outp}: C-sim bench {o['csim_bench_s']:.2f} s ({o['csim_bench_summary'][:4]}); digits MLP: "
          f"pq_accel compile {s['pq_accel']['compile_s']:.1f} s + C-sim {s['pq_accel']['csim_s']:.2f} s; "
          f"hls4ml " + (f"compile {h['compile_s']:.1f} s + C-sim {h['csim_predict_s']:.2f} s"
                        if h.get("status") == "ok" else f"{h.get('status')}: {h.get('reason')}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
