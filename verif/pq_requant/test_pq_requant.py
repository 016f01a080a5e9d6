"""cocotb bench for ``pq_requant`` (the shared-DSP requantiser), against pyquant.intmath.requantize."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # verif/ (simrun)

if os.environ.get("COCOTB_TEST_MODULES"):
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge

    from pyquant.intmath import requantize

    class TB:
        """Streams items into pq_requant (valid/ready) and collects (tag, y)."""

        def __init__(self, dut) -> None:
            self.dut = dut
            Clock(dut.clk_i, 10, unit="ns").start()
            dut.valid_i.value = 0
            self.out: dict[int, int] = {}

        async def reset(self) -> None:
            self.dut.rst_ni.value = 0
            await ClockCycles(self.dut.clk_i, 3)
            self.dut.rst_ni.value = 1

        async def monitor(self) -> None:
            d = self.dut
            while True:
                await RisingEdge(d.clk_i)
                if d.valid_o.value == 1:
                    self.out[int(d.tag_o.value)] = d.y_o.value.to_signed()

        async def run(self, acc, bias, mult, shift, relu: bool, gaps) -> list[int]:
            d = self.dut
            self.out = {}
            cocotb.start_soon(self.monitor())
            d.relu_i.value = int(relu)
            i = 0
            while i < len(acc):
                d.valid_i.value = 1
                d.acc_i.value = int(acc[i]) & 0xFFFFFFFF
                d.bias_i.value = int(bias[i]) & 0xFFFFFFFF
                d.mult_i.value = int(mult[i])
                d.shift_i.value = int(shift[i])
                d.tag_i.value = i
                await RisingEdge(d.clk_i)
                if d.ready_o.value == 1:
                    i += 1
                    if gaps[i - 1]:
                        d.valid_i.value = 0
                        await ClockCycles(d.clk_i, int(gaps[i - 1]))
            d.valid_i.value = 0
            await ClockCycles(d.clk_i, 8)
            return [self.out.get(j, 999) for j in range(len(acc))]

    @cocotb.test(timeout_time=20, timeout_unit="ms")
    async def requant_vs_pyquant(dut):
        """Random and extreme accumulators, multipliers and shifts, with and without ReLU."""
        tb = TB(dut)
        await tb.reset()
        rng = np.random.default_rng(int(os.environ.get("PQ_SEED", "5")))
        n = 300
        s = rng.integers(-(2**31), 2**31, size=n)
        bias = rng.integers(-(2**20), 2**20, size=n)
        # keep acc + bias inside int32 (the contract) by clipping the sum, then split it
        tot = np.clip(s + bias, -(2**31), 2**31 - 1)
        acc = tot - bias
        mult = rng.integers(0, 32768, size=n)
        shift = rng.integers(1, 48, size=n)
        # extremes
        acc[:8] = [2**31 - 1, -(2**31), 0, -1, 1, 2**31 - 1, -(2**31), 12345]
        bias[:8] = 0
        mult[:8] = [32767, 32767, 32767, 32767, 1, 0, 1, 16384]
        shift[:8] = [47, 47, 1, 1, 1, 5, 1, 15]
        for relu in (False, True):
            gaps = rng.integers(0, 3, size=n) * (rng.random(n) < 0.3)
            got = await tb.run(acc, bias, mult, shift, relu, gaps)
            exp = requantize((acc + bias).astype(np.int64), mult, shift, relu).astype(int).tolist()
            assert got == exp, [(i, g, e) for i, (g, e) in enumerate(zip(got, exp)) if g != e][:5]


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_pq_requant(sim: str) -> None:
    """pq_requant on each installed simulator."""
    from simrun import requested_sims, run_bench
    if sim not in requested_sims():
        pytest.skip(f"{sim} not requested/installed")
    run_bench(sim, "pq_requant", "test_pq_requant", Path(__file__).parent, {"TW": 10}, tag="rq")
