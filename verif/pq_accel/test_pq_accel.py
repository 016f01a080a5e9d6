"""cocotb benches for the top level ``pq_accel`` and their pytest driver (both simulators).

Expected values come from ``pyquant.intmath.layer_int`` / ``pyquant.packing.pack`` only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # verif/ (simrun)

try:
    import cocotb
    from cocotb.triggers import ClockCycles
except ImportError:  # pragma: no cover - cocotb is a dev dependency
    cocotb = None

if cocotb is not None and os.environ.get("COCOTB_TEST_MODULES"):
    from tb_accel import TB, random_layer

    SEED = int(os.environ.get("PQ_SEED", "1"))
    LANES = int(os.environ.get("PQ_LANES", "8"))

    @cocotb.test(timeout_time=20, timeout_unit="ms")
    async def directed(dut):
        """One small INT8 layer with hand-picked values."""
        tb = TB(dut)
        await tb.reset()
        rng = np.random.default_rng(SEED)
        L = random_layer(rng, 8, 5, 7, 3)
        await tb.run_layer(L, name="directed")
        tb.save_cycles("directed")

    @cocotb.test(timeout_time=200, timeout_unit="ms")
    async def random_layers(dut):
        """Random layers at every width, back to back without reset, with and without stalls."""
        tb = TB(dut)
        await tb.reset()
        rng = np.random.default_rng(SEED + 10)
        nb = 2 * LANES
        for it in range(int(os.environ.get("PQ_ITERS", "2"))):
            tb.set_backpressure(it % 2 == 1, seed=SEED + it)
            for prec in (8, 2, 6, 4):
                m = int(rng.integers(1, 2 * nb + 3))
                k = int(rng.integers(1, 40))
                n = int(rng.integers(1, 6))
                L = random_layer(rng, prec, m, k, n)
                await tb.run_layer(L, name=f"rand{it}")
                # reuse: same weights and constants, new activations
                L2 = dict(L, x=rng.integers(-128, 128, size=(int(rng.integers(1, 4)), k)))
                await tb.run_layer(L2, reuse=True, name=f"rand{it}_reuse")
        tb.save_cycles("random")

    @cocotb.test(timeout_time=200, timeout_unit="ms")
    async def worst_case(dut):
        """Extreme operands of one sign at and past the maximum accumulation depth."""
        tb = TB(dut)
        await tb.reset()
        nb = 2 * LANES
        for prec, k in ((8, 17), (6, 65), (4, 257), (2, 259), (2, 3)):
            qm = (1 << (prec - 1)) - 1
            for si, (xs, ws) in enumerate(((-128, -qm), (-128, qm), (127, qm), (127, -qm))):
                # idle cycles on wgt/act and backpressure on res for half of the sign cases
                tb.set_backpressure(si % 2 == 1, seed=SEED + 20 + si)
                m = nb + 1
                n = 3 if prec == 2 else 1
                w = np.full((m, k), ws)
                w[1::3] = -ws            # mix signs across lanes too
                x = np.full((n, k), xs)
                bias = np.zeros(m, dtype=np.int64)
                mult = np.full(m, 1 << 14)
                # shifts so the exact accumulator shows in the unsaturated output
                peak = k * 128 * qm
                sh = int(np.ceil(np.log2(peak * (1 << 14) / 100.0)))
                shift = np.clip(np.arange(m) % 3 + sh, 1, 47)
                L = dict(x=x, w=w, bias=bias, mult=mult, shift=shift, prec=prec, relu=False)
                await tb.run_layer(L, name=f"worst{prec}")
        tb.save_cycles("worst")

    @cocotb.test(timeout_time=100, timeout_unit="ms")
    async def cycle_model(dut):
        """Measured cycles per call (first argument write to ap_done read, no stalls) match the
        cycle model of docs/HARDWARE.md section 6 (scripts.bench_accel.model_cycles): never
        below it, and at most 1 % + 40 cycles above (the AXI-Lite writes and ap_done polling)."""
        from scripts.bench_accel import model_cycles
        tb = TB(dut)
        await tb.reset()
        rng = np.random.default_rng(SEED + 12)
        nb = 2 * LANES
        report = []
        for prec in (8, 6, 4, 2):
            for m, k, n in ((3 * nb + 1, 96, 3), (nb, 200, 4), (2 * nb, 64, 5)):
                L = random_layer(rng, prec, m, k, n)
                for reuse in (False, True):
                    await tb.run_layer(L, reuse=reuse, name="model")
                    got = tb.cycles[-1]["cycles"]
                    mod = model_cycles(prec, m, k, n, lanes=LANES, reuse=reuse)
                    report.append((prec, m, k, n, reuse, got, mod))
        tb.save_cycles("model")
        bad = [r for r in report if not 0 <= r[5] - r[6] <= 40 + r[6] // 100]
        dut._log.info("cycles vs model (prec, M, K, N, reuse, measured, model): %s", report)
        assert not bad, f"measured cycles not within [model, model + 1 % + 40]: {bad}"

    @cocotb.test(timeout_time=200, timeout_unit="ms")
    async def capacity(dut):
        """Layers at the configured limits: K = MAX_COLS, rows*row_bytes = WMEM_BYTES, M = MAX_ROWS."""
        from pyquant.packing import row_bytes
        tb = TB(dut)
        await tb.reset()
        rng = np.random.default_rng(SEED + 11)
        max_rows = int(os.environ.get("PQ_MAX_ROWS", "64"))
        max_cols = int(os.environ.get("PQ_MAX_COLS", "512"))
        wmem = int(os.environ.get("PQ_WMEM", "4096"))
        for prec in (8, 6, 4, 2):
            k = max_cols
            m = min(max_rows, wmem // row_bytes(k, prec))
            await tb.run_layer(random_layer(rng, prec, m, k, 3), name=f"cap{prec}_k")
            k2 = max(1, wmem // max_rows // row_bytes(4, prec) * 4)
            k2 = min(k2, max_cols)
            while max_rows * row_bytes(k2, prec) > wmem:
                k2 -= 1
            await tb.run_layer(random_layer(rng, prec, max_rows, k2, 2), name=f"cap{prec}_m")
        tb.save_cycles("capacity")

    @cocotb.test(timeout_time=20, timeout_unit="ms")
    async def control_regs(dut):
        """ap_ctrl_hs: idle/done/ready bits, GIE/IER/ISR toggle-on-write, interrupt, args readback."""
        tb = TB(dut)
        await tb.reset()
        ax = tb.axil
        assert (await ax.read_dword(0x00)) & 0x4, "ap_idle after reset"
        for a, v in ((0x10, 4), (0x18, 3), (0x20, 9), (0x28, 2), (0x30, 1)):
            await ax.write_dword(a, v)
            assert await ax.read_dword(a) == v
        for a in (0x14, 0x1C, 0x24, 0x2C, 0x34, 0x3C):
            assert await ax.read_dword(a) == 0
        await ax.write_dword(0x04, 1)
        await ax.write_dword(0x08, 3)
        assert await ax.read_dword(0x08) == 3
        rng = np.random.default_rng(SEED + 5)
        L = random_layer(rng, 4, 3, 9, 2)
        assert int(dut.interrupt.value) == 0
        await tb.run_layer(L, name="ctrl")
        await ClockCycles(dut.ap_clk, 2)
        assert (await ax.read_dword(0x0C)) == 3, "ISR done+ready"
        assert int(dut.interrupt.value) == 1
        await ax.write_dword(0x0C, 1)              # toggle done off
        assert (await ax.read_dword(0x0C)) == 2
        assert int(dut.interrupt.value) == 1
        await ax.write_dword(0x0C, 2)
        assert (await ax.read_dword(0x0C)) == 0
        assert int(dut.interrupt.value) == 0
        await ax.write_dword(0x0C, 1)              # toggle on write sets it again
        assert (await ax.read_dword(0x0C)) == 1
        assert int(dut.interrupt.value) == 1
        await ax.write_dword(0x04, 0)
        await ClockCycles(dut.ap_clk, 1)
        assert int(dut.interrupt.value) == 0, "GIE masks the interrupt"
        v = await ax.read_dword(0x00)
        assert v & 0x4 and not v & 0x1, f"idle, start cleared: {v:#x}"

    @cocotb.test(timeout_time=50, timeout_unit="ms")
    async def reset_mid_layer(dut):
        """Reset in the middle of a layer, then run fresh layers correctly."""
        tb = TB(dut)
        await tb.reset()
        rng = np.random.default_rng(SEED + 7)
        # cut points inside the constant/weight load, the compute and the output phases
        cuts = ((8, 8), (8, 30), (4, 150), (2, 120), (6, 230), (8, 60), (2, 200), (4, 260))
        for i, (prec, cut) in enumerate(cuts):
            # the last three cuts with idle input cycles and result backpressure (before and after)
            tb.set_backpressure(i >= 5, seed=SEED + 30 + i)
            L = random_layer(rng, prec, 2 * LANES + 2, 24, 4)
            await tb.start_layer(L)
            await ClockCycles(dut.ap_clk, cut)
            assert int(dut.u_core.st.value) != 0, f"cut {cut}: the layer had already finished"
            await tb.reset()
            for bus in (tb.wgt, tb.act, tb.res):
                bus.clear()
            await ClockCycles(dut.ap_clk, 3)
            await tb.run_layer(random_layer(rng, prec, 5, 11, 3), name="after_reset")
        tb.save_cycles("reset")

    @cocotb.test(timeout_time=500, timeout_unit="ms")
    async def digits_models(dut):
        """Whole digits MLP and CNN: every layer call through the RTL (im2col and pooling by
        pyquant.infer), final outputs equal to the `pyquant golden` vectors of real test images."""
        import json
        from pathlib import Path

        from pyquant.infer import call_input, call_output, load_int_model
        from tb_accel import wgt_bytes

        models = json.loads(os.environ.get("PQ_MODELS", "[]"))
        assert models, "PQ_MODELS lists no model"
        tb = TB(dut)
        await tb.reset()
        tb.set_backpressure(True, seed=SEED + 3)
        for mdl in models:
            vec = Path(mdl["golden"])
            man = json.loads((vec / "manifest.json").read_text())
            _, layers = load_int_model(mdl["dir"])
            a = np.load(vec / man["input"]["npy"]).astype(np.int8)
            n = a.shape[0]
            for ly, call in zip(layers, man["calls"]):
                xm = call_input(ly, a)
                L = dict(x=xm, w=ly.codes, bias=ly.bias_int, mult=ly.mult, shift=ly.shift,
                         prec=int(ly.bits), relu=bool(ly.relu))
                # the stream this bench sends is byte for byte the golden wgt stream
                assert wgt_bytes(ly.codes, ly.bias_int, ly.mult, ly.shift, int(ly.bits)) == \
                    (vec / call["wgt"]["bin"]).read_bytes(), f"{ly.name}: wgt stream differs from golden"
                y = await tb.run_layer(L, name=f"{mdl['name']}:{ly.name}")
                assert np.array_equal(y, np.load(vec / call["y"]["npy"])), f"{ly.name}: y != golden"
                a = call_output(ly, y, n)
            gold = np.load(vec / man["output"]["npy"])
            assert np.array_equal(a, gold), f"{mdl['name']}: final output != golden"
            assert len(np.unique(gold)) > 3, "degenerate golden output"
        tb.save_cycles("digits")


# ----------------------------------------------------------------------------- pytest driver
def _sims() -> list[str]:
    from simrun import requested_sims
    return requested_sims()


_NO_DIGITS = ["directed", "control_regs", "random_layers", "worst_case", "reset_mid_layer",
              "cycle_model"]


# digits example variants: (name, model, convert options); widths forced so every one is used
DIGITS = [
    ("mlp_int8", "mlp", ["--bits", "8"]),
    ("mlp_int4", "mlp", ["--bits", "4", "--snr-min", "0", "--in-range-min", "0"]),
    ("cnn_int6", "cnn", ["--bits", "6", "--snr-min", "0", "--in-range-min", "0"]),
    ("cnn_int2", "cnn", ["--bits", "2", "--snr-min", "0", "--in-range-min", "0"]),
]
N_IMAGES = 6
# Icarus is ~10x slower: the same four models on 2 real images
DIGITS_SMALL = (DIGITS, 2)

CASES = [
    # (simulator, lanes, testcases, digits (variants, images) or None):
    # heavier sweeps and the full whole-model set only under Verilator
    ("icarus", 2, _NO_DIGITS, None),
    ("icarus", 3, ["random_layers", "worst_case", "cycle_model"], None),
    ("icarus", 8, ["directed", "control_regs", "digits_models"], DIGITS_SMALL),
    ("verilator", 2, None, (DIGITS, N_IMAGES)),
    ("verilator", 8, None, (DIGITS, N_IMAGES)),
    ("verilator", 3, ["random_layers", "worst_case", "capacity", "cycle_model"], None),
]


def _digits_models(root: Path, variants: list = DIGITS, n_images: int = N_IMAGES) -> str:
    """Convert the digits examples and write `pyquant golden` vectors; return PQ_MODELS JSON."""
    import json

    from pyquant.cli import main as pyquant_main
    ex = Path(__file__).resolve().parents[2] / "examples"
    x = np.load(ex / "digits_test.npz")["X"][:n_images]
    xp = root / "x.npy"
    np.save(xp, x)
    out = []
    for name, model, opts in variants:
        d, v = root / name, root / f"{name}_vec"
        assert pyquant_main(["convert", str(ex / f"digits_{model}.onnx"), "--calib",
                             str(ex / "digits_calib.npy"), "-o", str(d), "-q"] + opts) == 0
        assert pyquant_main(["golden", str(d), "--input", str(xp), "-o", str(v), "-q"]) == 0
        out.append({"name": name, "dir": str(d), "golden": str(v)})
    return json.dumps(out)


@pytest.mark.parametrize("sim,lanes,cases,digits", CASES,
                         ids=[f"{c[0]}-L{c[1]}-{'all' if c[2] is None else len(c[2])}" for c in CASES])
def test_pq_accel(sim: str, lanes: int, cases: list[str] | None, digits: tuple | None,
                  tmp_path: Path) -> None:
    """Build pq_accel with LANES=lanes and run the cocotb benches on ``sim``."""
    from simrun import run_bench
    if sim not in _sims():
        pytest.skip(f"{sim} not requested or not installed")
    env = {"PQ_LANES": str(lanes), "PQ_MAX_ROWS": "64", "PQ_MAX_COLS": "512", "PQ_WMEM": "4096"}
    if cases is None or "digits_models" in cases:
        assert digits is not None, "a case running digits_models names its models"
        env["PQ_MODELS"] = _digits_models(tmp_path, *digits)
    run_bench(sim, "pq_accel", "test_pq_accel", Path(__file__).parent,
              {"LANES": lanes, "MAX_ROWS": 64, "MAX_COLS": 512, "WMEM_BYTES": 4096},
              testcase=cases, extra_env=env, tag=f"L{lanes}")
