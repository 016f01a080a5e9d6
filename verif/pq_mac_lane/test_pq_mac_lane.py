"""cocotb bench for ``pq_mac_lane`` (one packed DSP + its fabric accumulators).

Proves the packing bounds of docs/HARDWARE.md section 5 with worst-case operands: every
precision at its maximum accumulation depth gives exact sums, and one more accumulation than
the bound corrupts a field (the bound is tight). Expected sums are plain integer dot products
(``x @ w.T`` in int64, the definition layer_int uses before requantisation).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # verif/ (simrun)

# depth of one accumulation window per mode, as the core uses them (pq_core dmax + 1)
DEPTH = {8: 8, 6: 32, 4: 128, 2: 128}
# the largest depth that is still exact (the proof's bound); one more must fail
EXACT_MAX = {8: 8, 6: 33, 4: 146, 2: 1023}

if os.environ.get("COCOTB_TEST_MODULES"):
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, RisingEdge

    class TB:
        """Drives one pq_mac_lane cycle by cycle."""

        def __init__(self, dut) -> None:
            self.dut = dut
            Clock(dut.clk_i, 10, unit="ns").start()
            for s in ("outer_i", "clr_i", "valid_i", "first_i", "last_i", "w0_i", "w1_i", "x0_i", "x1_i"):
                getattr(dut, s).value = 0

        async def run(self, outer: bool, x0, x1, w0, w1, depth: int, gaps=None) -> list[int]:
            """Feed the K products with windows of ``depth``; return acc0..acc3 (signed).

            ``gaps[i]`` idle cycles (valid_i low, operands changed to junk) precede product i.
            """
            d = self.dut
            await FallingEdge(d.clk_i)
            d.outer_i.value = int(outer)
            d.clr_i.value = 1
            await FallingEdge(d.clk_i)
            d.clr_i.value = 0
            k = len(x0)
            for i in range(k):
                for _ in range(int(gaps[i]) if gaps is not None else 0):
                    d.valid_i.value = 0
                    d.first_i.value = 1          # must be ignored while valid_i is low
                    d.last_i.value = 1
                    for s in ("x0_i", "x1_i", "w0_i", "w1_i"):
                        getattr(d, s).value = 0x80
                    await FallingEdge(d.clk_i)
                d.valid_i.value = 1
                d.first_i.value = int(i % depth == 0)
                d.last_i.value = int(i % depth == depth - 1 or i == k - 1)
                for s, v in (("x0_i", x0[i]), ("x1_i", x1[i]), ("w0_i", w0[i]), ("w1_i", w1[i])):
                    getattr(d, s).value = int(v) & 0xFF
                await FallingEdge(d.clk_i)
            d.valid_i.value = 0
            for _ in range(3):
                await RisingEdge(d.clk_i)
            await FallingEdge(d.clk_i)
            return [d.acc0_o.value.to_signed(), d.acc1_o.value.to_signed(),
                    d.acc2_o.value.to_signed(), d.acc3_o.value.to_signed()]

    def expect(outer, x0, x1, w0, w1) -> list[int]:
        x = np.array([x0, x1], dtype=np.int64)
        w = np.array([w0, w1], dtype=np.int64)
        acc = x @ w.T                       # acc[col, row]
        if not outer:
            return [int(acc[0, 0]), int(acc[0, 1]), 0, 0]
        return [int(acc[0, 0]), int(acc[0, 1]), int(acc[1, 0]), int(acc[1, 1])]

    @cocotb.test(timeout_time=5, timeout_unit="ms")
    async def worst_case_bounds(dut):
        """All operands at the same-sign extremes, at the maximum depth of every mode: exact."""
        tb = TB(dut)
        for prec in (8, 6, 4, 2):
            qm = (1 << (prec - 1)) - 1
            for outer in ((False, True) if prec == 2 else (False,)):
                depth = 1 if outer else EXACT_MAX[prec]
                k = 2 * depth + 1 if outer else depth
                for xs, ws in ((-128, -qm), (-128, qm), (127, qm), (127, -qm)):
                    x0 = [xs] * k
                    x1 = [xs] * k
                    w0 = [ws] * k
                    w1 = [-ws] * k
                    got = await tb.run(outer, x0, x1, w0, w1, depth)
                    assert got == expect(outer, x0, x1, w0, w1), (prec, outer, xs, ws, got)

    @cocotb.test(timeout_time=5, timeout_unit="ms")
    async def bound_is_tight(dut):
        """One accumulation past the bound corrupts the fields (so the bound is the real limit)."""
        tb = TB(dut)
        for prec, outer, depth in ((8, False, EXACT_MAX[8] + 1), (2, True, 2), (6, False, EXACT_MAX[6] + 1)):
            qm = (1 << (prec - 1)) - 1
            k = depth
            x0 = [-128] * k
            w0 = [-qm] * k
            got = await tb.run(outer, x0, x0, w0, w0, depth)
            assert got != expect(outer, x0, x0, w0, w0), (prec, outer, depth, got)

    @cocotb.test(timeout_time=20, timeout_unit="ms")
    async def random_windows(dut):
        """Random operands, the core's window depths, every mode."""
        tb = TB(dut)
        rng = np.random.default_rng(int(os.environ.get("PQ_SEED", "3")))
        for prec in (8, 6, 4, 2):
            qm = (1 << (prec - 1)) - 1
            for outer in ((False, True) if prec == 2 else (False,)):
                for _ in range(3):
                    k = int(rng.integers(1, 3 * DEPTH[prec] // (4 if prec > 4 else 16) + 2))
                    x0, x1 = rng.integers(-128, 128, size=(2, k))
                    w0, w1 = rng.integers(-qm, qm + 1, size=(2, k))
                    depth = 1 if outer else DEPTH[prec]
                    got = await tb.run(outer, x0, x1, w0, w1, depth)
                    assert got == expect(outer, x0, x1, w0, w1), (prec, outer, k)
                    # the same with random idle cycles inside and between windows
                    gaps = rng.integers(0, 3, size=k) * (rng.random(k) < 0.3)
                    got = await tb.run(outer, x0, x1, w0, w1, depth, gaps)
                    assert got == expect(outer, x0, x1, w0, w1), (prec, outer, k, "gaps")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_pq_mac_lane(sim: str) -> None:
    """pq_mac_lane on each installed simulator."""
    from simrun import requested_sims, run_bench
    if sim not in requested_sims():
        pytest.skip(f"{sim} not requested/installed")
    run_bench(sim, "pq_mac_lane", "test_pq_mac_lane", Path(__file__).parent, {}, tag="lane")
