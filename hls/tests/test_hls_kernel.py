"""The HLS kernel's C simulation (g++, via ctypes) against pyquant.intmath.layer_int.

Covers every precision, random shapes (N = 1, odd N, odd M, ragged K), worst-case operands at
MAX_COLS with the int32 accumulator at its extremes, saturation both ways, relu, the reuse flag,
the stream framing errors, the C-sim test bench's PASS/FAIL behaviour, that the worst-case
vectors catch an accumulation depth one past the exact bound, and the documented cycle model
against the simulated loop trip counts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parents[2]))

import pqhls  # noqa: E402
from pyquant.intmath import layer_int  # noqa: E402
from pyquant.packing import row_bytes  # noqa: E402
from scripts import gen_hls_vectors as gv  # noqa: E402

pytestmark = pytest.mark.skipif(not pqhls.have_cxx(), reason="g++ not available")
BITS = (8, 6, 4, 2)


@pytest.fixture(scope="module")
def kernel() -> pqhls.Kernel:
    return pqhls.Kernel(pqhls.build("lib"))


@pytest.mark.parametrize("bits", BITS)
def test_random_layers_match_layer_int(kernel: pqhls.Kernel, bits: int) -> None:
    rng = np.random.default_rng(1000 + bits)
    q = gv.QMAX[bits]
    for trial in range(40):
        m = int(rng.integers(1, 40)) if trial % 5 else int(rng.integers(200, 257))
        k = int(rng.integers(1, 300))
        while m * row_bytes(k, bits) > kernel.wmem_bytes:  # stay inside the weight store
            k //= 2
        n = int(rng.integers(1, 8))
        w = rng.integers(-q, q + 1, size=(m, k))
        x = rng.integers(-128, 128, size=(n, k))
        bias = rng.integers(-(2**20), 2**20, size=m)
        mult = rng.integers(0, 32768, size=m)
        shift = rng.integers(1, 48, size=m)
        relu = bool(trial % 2)
        got = kernel.layer(x, w, bias, mult, shift, relu, bits)
        exp = layer_int(x, w, bias, mult, shift, relu)
        assert np.array_equal(got, exp), f"INT{bits} M={m} K={k} N={n} trial {trial}"


def test_synthetic_vectors_match(kernel: pqhls.Kernel) -> None:
    """Every synthetic call of the bench (worst cases, saturation, mult 0, reuse chains), in order."""
    calls = gv.synthetic_calls()
    assert {c.bits for c in calls} == set(BITS)
    for c in calls:
        got = kernel.layer(c.x, c.w, c.bias, c.mult, c.shift, c.relu, c.bits, reuse=c.reuse)
        assert np.array_equal(got, c.y), c.name
        # the expectation is independent of the kernel and not degenerate
        assert np.array_equal(c.y, layer_int(c.x, c.w, c.bias, c.mult, c.shift, c.relu))


@pytest.mark.parametrize("bits", BITS)
def test_worst_case_accumulator_is_exact(kernel: pqhls.Kernel, bits: int) -> None:
    """K = MAX_COLS at +-128 x +-qmax: rows read the accumulator back exactly (acc = 37, -100, 0)."""
    for c in gv.worst_case_calls(bits):
        got = kernel.layer(c.x, c.w, c.bias, c.mult, c.shift, c.relu, c.bits)
        assert np.array_equal(got, c.y), c.name
    c = gv.worst_case_calls(bits)[0]
    assert c.w.shape[1] == kernel.max_cols
    assert list(c.y[0, 1:4]) == [37, -100, 0]  # mult 16384 >> 14 reads acc back exactly


def test_saturation_and_relu_both_ways(kernel: pqhls.Kernel) -> None:
    rng = np.random.default_rng(7)
    for bits in BITS:
        c = gv.random_call("sat", bits, 16, 64, 9, rng, saturate=True)
        got = kernel.layer(c.x, c.w, c.bias, c.mult, c.shift, False, bits)
        assert (got == 127).any() and (got == -128).any()
        assert np.array_equal(got, layer_int(c.x, c.w, c.bias, c.mult, c.shift, False))
        got_r = kernel.layer(c.x, c.w, c.bias, c.mult, c.shift, True, bits)
        assert got_r.min() == 0 and (got_r == 127).any()
        assert np.array_equal(got_r, layer_int(c.x, c.w, c.bias, c.mult, c.shift, True))


def test_reuse_flag_keeps_weights(kernel: pqhls.Kernel) -> None:
    rng = np.random.default_rng(11)
    for bits in BITS:
        a = gv.random_call("a", bits, 11, 29, 3, rng)
        kernel.layer(a.x, a.w, a.bias, a.mult, a.shift, False, bits)
        for n in (1, 2, 5):
            x = rng.integers(-128, 128, size=(n, 29))
            got = kernel.layer(x, a.w, a.bias, a.mult, a.shift, True, bits, reuse=True)
            assert np.array_equal(got, layer_int(x, a.w, a.bias, a.mult, a.shift, True))


def test_contract_violations_are_reported(kernel: pqhls.Kernel) -> None:
    w = np.ones((4, 8), dtype=np.int64)
    c = dict(bias=np.zeros(4), mult=np.full(4, 100), shift=np.full(4, 8))
    wgt = pqhls.wgt_bytes(w, 8, **c)
    x = bytes(8 * 2)
    kernel.call_raw(8, 4, 8, 2, 0, wgt, x, 8)
    with pytest.raises(pqhls.KernelError) as e:
        kernel.call_raw(8, 4, 8, 2, 0, wgt[:-1], x, 8)
    assert e.value.name == "WGT_LEN"
    with pytest.raises(pqhls.KernelError) as e:
        kernel.call_raw(8, 4, 9, 2, 2, b"", bytes(18), 8)  # reuse with different cols
    assert e.value.name == "REUSE"
    bad = bytearray(wgt)
    bad[6] = 48  # shift of row 0
    with pytest.raises(pqhls.KernelError) as e:
        kernel.call_raw(8, 4, 8, 2, 0, bytes(bad), x, 8)
    assert e.value.name == "CONST"
    for args in ((3, 4, 8, 2), (8, 0, 8, 2), (8, 257, 8, 2), (8, 4, 1025, 2), (8, 4, 8, 0), (8, 64, 1024, 1)):
        with pytest.raises(pqhls.KernelError) as e:
            kernel.call_raw(*args, 0, wgt, x, 8)
        assert e.value.name == "ARGS", args
    with pytest.raises(pqhls.KernelError) as e:
        kernel.call_raw(8, 4, 8, 2, 0, wgt, x[:-1], 8)
    assert e.value.name == "ACT_LEN"


@pytest.mark.parametrize("define,bits,exact", [("DEPTH_INT8=9", 8, False), ("DEPTH_INT6=33", 6, True),
                                               ("DEPTH_INT6=34", 6, False), ("DEPTH_INT2_2X2=4", 2, False)])
def test_worst_case_vectors_catch_too_deep_accumulation(define: str, bits: int, exact: bool) -> None:
    """The worst-case vectors pin the exact bound from both sides: the largest exact depth passes
    them (INT6 33 here; INT8 8 and INT2 2x2 3 are the configured defaults, tested above) and one
    accumulation more breaks them (INT8 9, INT6 34, INT2 2x2 4)."""
    name, val = define.split("=")
    mutant = pqhls.Kernel(pqhls.build("lib", {name: val}))
    bad = 0
    for c in gv.worst_case_calls(bits):
        got = mutant.layer(c.x, c.w, c.bias, c.mult, c.shift, c.relu, c.bits)
        bad += int(not np.array_equal(got, c.y))
    assert (bad == 0) if exact else (bad > 0)


def test_configured_depths_are_the_rtl_ones() -> None:
    """config.h accumulates the same windows as the RTL (docs/HARDWARE.md section 5 table)."""
    import re

    cfg = (pqhls.SRC / "config.h").read_text()
    doc = (gv.ROOT / "docs" / "HARDWARE.md").read_text()
    for w in (8, 6, 4, 2):
        row = re.search(rf"^\| INT{w} \| [^|]+\| [^|]+\| (\d+) \|", doc, flags=re.M)
        name = f"DEPTH_INT{w}" if w != 2 else "DEPTH_INT2_1COL"
        assert row and int(re.search(rf"#define {name} (\d+)", cfg).group(1)) == int(row.group(1)), w


def test_cycle_model_matches_loop_structure(kernel: pqhls.Kernel) -> None:
    """The documented estimate = CALL + simulated loop iterations + LOOP per loop entry + MAC drain."""
    hdr = (pqhls.SRC / "pq_accel_capi.h").read_text()
    const = {n: int(hdr.split(f"#define {n} ")[1].split()[0]) for n in ("PQ_CYC_CALL", "PQ_CYC_LOOP",
                                                                          "PQ_CYC_MAC_DEPTH")}
    rng = np.random.default_rng(3)
    for bits, m, k, n in ((8, 5, 17, 3), (2, 7, 33, 5), (2, 4, 8, 1), (6, 256, 16, 2), (4, 1, 1, 1)):
        c = gv.random_call("cyc", bits, m, k, n, rng)
        for reuse in (False, True):
            kernel.layer(c.x, c.w, c.bias, c.mult, c.shift, False, bits, reuse=reuse)
            iters, entries, macs = kernel.sim_stats()
            model = (const["PQ_CYC_CALL"] + iters + const["PQ_CYC_LOOP"] * entries
                     + const["PQ_CYC_MAC_DEPTH"] * macs)
            assert kernel.cycle_estimate(bits, m, k, n, 2 if reuse else 0) == model, (bits, m, k, n, reuse)
    # INT2 with N >= 2 runs the 2x2 outer product: about half the MAC cycles of INT4
    assert kernel.cycle_estimate(2, 64, 512, 16) < 0.6 * kernel.cycle_estimate(4, 64, 512, 16)


def test_csim_bench_pass_and_fail(tmp_path: Path) -> None:
    tb = pqhls.build("tb")
    assert gv.main(["-o", str(tmp_path / "vec")]) == 0
    idx = tmp_path / "vec" / "synthetic" / "index.txt"
    r = subprocess.run([str(tb), str(idx)], capture_output=True, text=True, timeout=120)
    last = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0 and last.startswith("PASS:") and " 0 mismatches" in last, r.stdout[-500:]
    # corrupt one expected byte: the bench must fail, naming the call
    ybin = sorted((tmp_path / "vec" / "synthetic").glob("c01*_y.bin"))[0]
    data = bytearray(ybin.read_bytes())
    data[0] ^= 0x01
    ybin.write_bytes(bytes(data))
    r = subprocess.run([str(tb), str(idx)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stdout.strip().splitlines()[-1].startswith("FAIL:") and "1 mismatches" in r.stdout
    # a missing vector file is an error, not a pass
    ybin.unlink()
    r = subprocess.run([str(tb), str(idx)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "cannot read" in r.stdout


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_digits_models_through_kernel_equal_infer_int(kernel: pqhls.Kernel, model: str, tmp_path: Path) -> None:
    """Both bundled digits models, at every width (gates per gen_hls_vectors.DIGITS_VARIANTS), run
    with each layer call on the kernel: outputs equal pyquant.infer.infer_int byte for byte."""
    from pyquant.cli import main as pyquant_main
    from pyquant.infer import infer_int, input_chw, in_scale_of, load_int_model, quantize_input

    onnx = gv.ROOT / "examples" / f"digits_{model}.onnx"
    calib = gv.ROOT / "examples" / "digits_calib.npy"
    xf = np.load(gv.ROOT / "examples" / "digits_test.npz")["X"][:24]
    seen_bits = set()
    for var, opts in gv.DIGITS_VARIANTS.items():
        d = tmp_path / var
        assert pyquant_main(["convert", str(onnx), "--calib", str(calib), "-o", str(d), "-q"] + opts) == 0
        info, layers = load_int_model(str(d))
        seen_bits |= {int(ly.bits) for ly in layers}
        x8 = quantize_input(xf, in_scale_of(info, layers), input_chw(info, layers))
        got = pqhls.run_model(kernel, str(d), x8)
        exp = infer_int(str(d), x8)
        assert got.dtype == np.int8 and np.array_equal(got, exp), f"{model} {var}"
        assert len(np.unique(exp)) > 3  # not a degenerate all-saturated output
    assert seen_bits == set(BITS)


def test_csim_bench_on_digits_golden(tmp_path: Path) -> None:
    """The bench reads `pyquant golden` directories (both digits models, all widths) and passes."""
    tb = pqhls.build("tb")
    out = tmp_path / "vec"
    assert gv.main(["-o", str(out), "--digits", "--samples", "4"]) == 0
    idx = sorted(out.glob("index_*.txt"))
    assert len(idx) == 2 * len(gv.DIGITS_VARIANTS)
    r = subprocess.run([str(tb)] + [str(p) for p in idx], capture_output=True, text=True, timeout=120)
    last = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0 and last.startswith("PASS:") and f"from {len(idx)} index files" in last, r.stdout


def test_bad_golden_dir_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notgolden"
    bad.mkdir()
    out = tmp_path / "vec"
    assert gv.main(["-o", str(out), "--golden", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.json" in err[0] and str(bad) in err[0]
    assert not out.exists()  # nothing half-written
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("x")
    assert gv.main(["-o", str(precious)]) == 2  # never replaces a directory it did not write
    assert (precious / "keep.txt").exists() and "refusing" in capsys.readouterr().err
    (bad / "manifest.json").write_text("{not json")
    assert gv.main(["-o", str(out), "--golden", str(bad)]) == 2
    assert "not a pyquant golden manifest" in capsys.readouterr().err


def test_same_source_bit_exact_with_xilinx_ap_types(tmp_path: Path) -> None:
    """The unchanged kernel source compiled against Xilinx's own ap_int.h / hls_stream.h (fetched
    once from the pinned, hash-checked hls4ml wheel by pqhls.xilinx_ap_types; never skipped) is
    bit-exact on the synthetic vectors too, and the bench says which types it used."""
    tb = pqhls.build("tb", extra=pqhls.xilinx_types_flags())
    assert (pqhls.AP_TYPES_DIR / "ap_int.h").read_text().count("Xilinx") > 0  # the real header, not the shim
    assert gv.main(["-o", str(tmp_path / "vec")]) == 0
    idx = tmp_path / "vec" / "synthetic" / "index.txt"
    r = subprocess.run([str(tb), str(idx)], capture_output=True, text=True, timeout=300)
    last = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0 and last.startswith("PASS: pq_accel C-sim (Xilinx ap_int.h)"), r.stdout[-400:]
    # the same bench with Xilinx's types still fails on a corrupted expectation
    ybin = sorted((tmp_path / "vec" / "synthetic").glob("c00*_y.bin"))[-1]
    ybin.write_bytes(bytes(b ^ 0x80 for b in ybin.read_bytes()))
    r = subprocess.run([str(tb), str(idx)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stdout.strip().splitlines()[-1].startswith("FAIL:"), r.stdout[-400:]


def test_pqhls_cli_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert pqhls._main(["bogus"]) == 2
    assert capsys.readouterr().err.strip() == "usage: pqhls.py ap-types | build lib|tb|tb-xilinx"
    assert pqhls._main(["build", "tb"]) == 0
    assert capsys.readouterr().out.strip() == str(pqhls.build("tb"))


@pytest.mark.parametrize("lanes", [2, 3])
def test_more_lanes_same_results(lanes: int) -> None:
    """LANES (DSPs in parallel, 2 rows each) changes banking and row grouping, never the bytes;
    the cycle model still equals the loop trip counts."""
    k = pqhls.Kernel(pqhls.build("lib", {"LANES": lanes}))
    assert k.lanes == lanes
    for c in gv.synthetic_calls():
        got = k.layer(c.x, c.w, c.bias, c.mult, c.shift, c.relu, c.bits, reuse=c.reuse)
        assert np.array_equal(got, c.y), c.name
    hdr = (pqhls.SRC / "pq_accel_capi.h").read_text()
    cc, lp, md = (int(hdr.split(f"#define {n} ")[1].split()[0]) for n in ("PQ_CYC_CALL", "PQ_CYC_LOOP",
                                                                           "PQ_CYC_MAC_DEPTH"))
    c = gv.random_call("cyc", 2, 13, 40, 5, np.random.default_rng(0))
    k.layer(c.x, c.w, c.bias, c.mult, c.shift, False, 2)
    iters, entries, macs = k.sim_stats()
    assert k.cycle_estimate(2, 13, 40, 5) == cc + iters + lp * entries + md * macs


def test_csim_bench_clean_under_asan_ubsan(tmp_path: Path) -> None:
    """The kernel and bench run the synthetic vectors without memory errors or undefined behaviour
    (the weight store's sub-bank reads at row ends, shifts of negative values in the shim)."""
    tb = pqhls.build("tb", extra=["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
    assert gv.main(["-o", str(tmp_path / "vec")]) == 0
    r = subprocess.run([str(tb), str(tmp_path / "vec" / "synthetic" / "index.txt")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "runtime error" not in r.stderr and "AddressSanitizer" not in r.stderr, r.stderr[-800:]
    assert r.stdout.strip().splitlines()[-1].startswith("PASS:")


def test_ports_registers_and_capacities_follow_hardware_md(kernel: pqhls.Kernel) -> None:
    """The top function's s_axilite offsets, stream names and config.h capacities are the ones
    docs/HARDWARE.md sections 1-2 document for both implementations."""
    import re

    doc = (gv.ROOT / "docs" / "HARDWARE.md").read_text()
    top = (pqhls.SRC / "pq_accel.cpp").read_text()
    regs = dict(re.findall(r"^\| (0x[0-9A-F]{2}) \| (prec|rows|cols|ncols|flags) \|", doc, flags=re.M))
    assert set(regs.values()) == {"prec", "rows", "cols", "ncols", "flags"}
    for off, name in regs.items():
        assert re.search(rf"#pragma HLS INTERFACE s_axilite port={name} offset={off.lower()} bundle=control", top), name
    assert "#pragma HLS INTERFACE s_axilite port=return bundle=control" in top
    for s in ("wgt", "act", "res"):
        assert f"#pragma HLS INTERFACE axis port={s}" in top and f"`{s}_TDATA[31:0]`" in doc
    sig = re.search(r"void pq_accel\(([^)]*)\)", top).group(1)
    assert [a.split()[-1].lstrip("&") for a in sig.split(",")] == ["wgt", "act", "res", "prec", "rows", "cols",
                                                                  "ncols", "flags"]
    caps = dict(re.findall(r"`(MAX_ROWS|MAX_COLS|WMEM_BYTES) = (\d+)`", doc))
    assert (kernel.max_rows, kernel.max_cols, kernel.wmem_bytes) == (
        int(caps["MAX_ROWS"]), int(caps["MAX_COLS"]), int(caps["WMEM_BYTES"]))
    # the vector generator reads the same config.h (one source of sizes)
    assert (gv.MAX_ROWS, gv.MAX_COLS, gv.WMEM_BYTES) == (kernel.max_rows, kernel.max_cols, kernel.wmem_bytes)


def test_kernel_source_is_synthesisable_shape() -> None:
    """What a Vitis HLS reviewer checks by eye, checked on every run: the top function opens with
    interface pragmas only; every loop is labelled; both MAC loops carry PIPELINE II=1; every packed
    product is an explicit ap_int<27> x ap_int<18> -> ap_int<45> bound to a DSP; pragma arguments
    are literals or const ints (no expressions); no dynamic memory / STL / I/O in the kernel."""
    import re

    top = (pqhls.SRC / "pq_accel.cpp").read_text()
    comp = (pqhls.SRC / "pq_compute.h").read_text()
    body = top[top.index("{", top.index("void pq_accel(")) + 1:].strip().splitlines()
    first_code = next(i for i, ln in enumerate(body) if not ln.strip().startswith("#pragma HLS INTERFACE"))
    assert first_code >= 10  # 3 axis + 5 args + return (s_axilite, ap_ctrl_hs)
    assert "#pragma HLS INTERFACE ap_ctrl_hs port=return" in top
    for name, src in (("pq_accel.cpp", top), ("pq_compute.h", comp)):
        lines = src.splitlines()
        for i, ln in enumerate(lines):
            if re.match(r"\s*(for|while)\s*\(", ln):
                assert re.match(r"\s*[A-Za-z_]\w*:\s*$", lines[i - 1]), f"{name}:{i + 1}: unlabelled loop"
        code = re.sub(r"//.*", "", src)
        for bad in ("new ", "malloc", "free(", "std::", "printf", "#include <vector>", "#include <deque>"):
            assert bad not in code, f"{name}: {bad!r} in synthesisable source"
        for arg in re.findall(r"#pragma HLS \w+ [^\n]*?(?:max|min|factor|II)=(\S+)", src):
            assert re.fullmatch(r"\d+|[A-Za-z_]\w*", arg), f"{name}: pragma argument {arg!r} is an expression"
    for loop in ("mac_k", "mac_k2"):
        after = comp[comp.index(f"{loop}:"):].splitlines()
        assert after[2].strip() == "#pragma HLS PIPELINE II=1", loop
    binds = [m.start() for m in re.finditer(r"#pragma HLS BIND_OP variable=prod op=mul impl=dsp", comp)]
    assert len(binds) == 2
    for pos, loop in zip(binds, ("mac_k:", "mac_k2:")):
        block = comp[comp.rindex(loop, 0, pos):pos]  # the MAC loop body up to the BIND_OP
        assert re.search(r"ap_int<27> a = ", block) and re.search(r"ap_int<18> b = ", block), loop
        assert re.search(r"ap_int<45> prod = a \* b;", block), loop
    # the shim can only ever be compiled outside synthesis
    assert "#error" in (pqhls.SRC / "pq_shim.h").read_text().split("#endif")[0]


def test_bench_hls_json(tmp_path: Path) -> None:
    """`make bench-hls` (hls4ml left out here: it installs a 350 MB venv) writes the C-sim wall
    time, the bench's PASS line, bit-exact digits runs and the documented cycle model."""
    import json

    from scripts import bench_hls

    out = tmp_path / "hls.json"
    assert bench_hls.main(["-o", str(out), "--no-hls4ml"]) == 0
    d = json.loads(out.read_text())
    o = d["pq_accel"]
    assert o["csim_bench_pass"] and o["csim_bench_summary"].startswith("PASS:") and o["csim_bench_s"] > 0
    assert set(o["cycle_model"]) >= {"formula", "CALL", "LOOP", "D", "source"}
    assert len(o["models"]) == 6 and all(m["bit_exact_vs_infer_int"] for m in o["models"].values())
    mlp = o["models"]["digits_mlp_int8"]
    assert mlp["accuracy"] > 0.85
    assert mlp["cycles_per_sample"] == sum(c["cycles_per_sample"] for c in mlp["calls"])
    assert d["hls4ml"] == {"status": "skipped"} and d["side_by_side_digits_mlp"]["hls4ml"]["status"] == "skipped"


TCL_STUB = r"""
set ::pqlog {}
foreach cmd {open_project set_top add_files open_solution set_part create_clock csim_design cosim_design export_design} {
    proc $cmd {args} "lappend ::pqlog \[concat $cmd \$args\]"
}
proc csynth_design {args} {
    lappend ::pqlog csynth_design
    file mkdir [file join [pwd] pq_accel_prj sol syn verilog]
    set f [open [file join [pwd] pq_accel_prj sol syn verilog pq_accel.v] w]; puts $f "module pq_accel;"; close $f
}
rename exit real_exit
proc exit {{code 0}} { foreach l $::pqlog { puts "LOG $l" }; real_exit $code }
set ::argv $pqargs
source [lindex $::argv0_script 0]
"""


def _run_tcl(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run a copy of run_hls.tcl (under tmp_path/hls/pq_accel) with the Vitis commands stubbed."""
    import os
    import shutil

    if shutil.which("tclsh") is None:
        pytest.skip("tclsh not installed")
    here = tmp_path / "hls" / "pq_accel"
    here.mkdir(parents=True, exist_ok=True)
    shutil.copy(pqhls.SRC / "run_hls.tcl", here / "run_hls.tcl")
    (tmp_path / "build" / "hls" / "vectors" / "synthetic").mkdir(parents=True, exist_ok=True)
    (tmp_path / "build" / "hls" / "vectors" / "synthetic" / "index.txt").write_text("#\n")
    (tmp_path / "build" / "hls" / "vectors" / "index_a.txt").write_text("#\n")
    stub = tmp_path / "stub.tcl"
    tcl_list = " ".join("{" + a + "}" for a in args)
    stub.write_text(f"set pqargs [list {tcl_list}]\nset ::argv0_script [list {{{here / 'run_hls.tcl'}}}]\n" + TCL_STUB)
    e = {k: v for k, v in os.environ.items() if not k.startswith("PQ_HLS_")}
    e.update(env or {})
    r = subprocess.run(["tclsh", str(stub)], capture_output=True, text=True, timeout=60, env=e)
    return r.returncode, r.stdout.splitlines()


def test_run_hls_tcl_switches(tmp_path: Path) -> None:
    """run_hls.tcl (Vitis commands stubbed): default steps csim + csynth on xczu7ev-ffvc1156-2-e at
    250 MHz with the make-hls vectors; part/clock/steps settable by switch or environment; csynth
    copies the Verilog to hls/build/pq_accel/verilog; cosim/export add their commands; a bad switch
    is exit 2."""
    rc, out = _run_tcl(tmp_path / "a", [])
    log = [ln[4:] for ln in out if ln.startswith("LOG ")]
    assert rc == 0, out
    assert "set_part xczu7ev-ffvc1156-2-e" in log and "create_clock -period 4.0 -name default" in log
    assert "set_top pq_accel" in log and any(ln.startswith("open_solution") and "vivado" in ln for ln in log)
    csim = next(ln for ln in log if ln.startswith("csim_design"))
    assert "synthetic/index.txt" in csim and "index_a.txt" in csim
    assert "csynth_design" in log and not any(ln.startswith(("cosim_design", "export_design")) for ln in log)
    assert (tmp_path / "a" / "hls" / "build" / "pq_accel" / "verilog" / "pq_accel.v").is_file()

    rc, out = _run_tcl(tmp_path / "b", ["csynth", "cosim", "export", "part=xcvu9p-flga2104-2L-e", "mhz=300"])
    log = [ln[4:] for ln in out if ln.startswith("LOG ")]
    assert rc == 0 and "set_part xcvu9p-flga2104-2L-e" in log, out
    period = next(ln for ln in log if ln.startswith("create_clock")).split()[2]
    assert abs(float(period) - 1000 / 300) < 1e-6
    assert not any(ln.startswith("csim_design") for ln in log)
    assert [ln.split()[0] for ln in log if ln.split()[0] in ("csynth_design", "cosim_design", "export_design")] == \
        ["csynth_design", "cosim_design", "export_design"]
    assert any("ip_catalog" in ln for ln in log if ln.startswith("export_design"))

    rc, out = _run_tcl(tmp_path / "c", [], env={"PQ_HLS_STEPS": "csynth", "PQ_HLS_PART": "xck26-sfvc784-2LV-c",
                                                "PQ_HLS_MHZ": "200"})
    log = [ln[4:] for ln in out if ln.startswith("LOG ")]
    assert rc == 0 and "set_part xck26-sfvc784-2LV-c" in log and "create_clock -period 5.0 -name default" in log
    assert not any(ln.startswith("csim_design") for ln in log)

    rc, out = _run_tcl(tmp_path / "d", ["bogus"])
    assert rc == 2 and any("unknown switch 'bogus'" in ln for ln in out)


def test_make_hls_reports_csim_then_vitis(tmp_path: Path) -> None:
    """`make hls`: C-sim PASS lines (shim, then Xilinx's ap_int.h) and, without Vitis, one last line
    saying so; with a `vitis_hls` on PATH (a stand-in that logs its arguments) it runs run_hls.tcl
    with csynth + export instead."""
    import os
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make not installed")
    root = gv.ROOT
    stamp = str(root / ".venv" / ".stamp")  # never re-run setup from a test
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    path = ":".join(p for p in env.get("PATH", "").split(":")
                    if not (Path(p) / "vitis_hls").exists() and not (Path(p) / "vitis-run").exists())
    out = f"HLS_OUT={tmp_path / 'out'}"  # vectors and binaries per test, not the shared build/hls
    r = subprocess.run(["make", "--no-print-directory", "-o", stamp, "hls", out], cwd=root, capture_output=True,
                       text=True, timeout=600, env={**env, "PATH": path})
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0, (r.stdout + r.stderr)[-1500:]
    passes = [ln for ln in lines if ln.startswith(("PASS:", "FAIL:"))]
    assert len(passes) == 2 and all(ln.startswith("PASS:") and " 0 mismatches, 0 errors" in ln for ln in passes)
    assert "(pq_shim.h)" in passes[0] and "(Xilinx ap_int.h)" in passes[1]
    assert lines[-1].startswith("hls: Vitis HLS not found") and sum("Vitis HLS not found" in ln for ln in lines) == 1
    assert (tmp_path / "out" / "vectors" / "synthetic" / "index.txt").is_file()
    assert len(list((tmp_path / "out" / "vectors").glob("index_*.txt"))) == 2 * len(gv.DIGITS_VARIANTS)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "vitis_hls").write_text('#!/bin/sh\necho "FAKE vitis_hls $*"\n')
    (fake / "vitis_hls").chmod(0o755)
    r = subprocess.run(["make", "--no-print-directory", "-o", stamp, "hls", out], cwd=root, capture_output=True,
                       text=True, timeout=600, env={**env, "PATH": f"{fake}:{path}"})
    assert r.returncode == 0, (r.stdout + r.stderr)[-1500:]
    assert f"FAKE vitis_hls -f {root}/hls/pq_accel/run_hls.tcl -tclargs csynth export" in r.stdout
    assert "Vitis HLS not found" not in r.stdout and "hls: Verilog in hls/build/pq_accel/verilog" in r.stdout
