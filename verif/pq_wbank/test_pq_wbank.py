"""cocotb bench for ``pq_wbank`` (one weight bank and its sequential unpacker).

Rows packed by ``pyquant.packing.pack`` are written byte by byte into word-aligned row slots;
the unpacker must return exactly ``pyquant.packing.unpack``'s codes, with random stalls of
``take``, for every width and ragged row lengths.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # verif/ (simrun)

WORDS, AW = 64, 6

if os.environ.get("COCOTB_TEST_MODULES"):
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, FallingEdge

    from pyquant.packing import pack, row_bytes, unpack

    class TB:
        """Writes packed rows into the bank and reads them back through the unpacker."""

        def __init__(self, dut) -> None:
            self.dut = dut
            Clock(dut.clk_i, 10, unit="ns").start()
            for s in ("we_i", "waddr_i", "wbyte_i", "start_i", "base_i", "bits_i", "take_i"):
                getattr(dut, s).value = 0

        async def reset(self) -> None:
            self.dut.rst_ni.value = 0
            await ClockCycles(self.dut.clk_i, 3)
            self.dut.rst_ni.value = 1

        async def write_row(self, base: int, data: bytes) -> None:
            d = self.dut
            for pos, b in enumerate(data):
                await FallingEdge(d.clk_i)
                lane = pos % 4
                d.we_i.value = 1 << lane
                d.waddr_i.value = (base + pos // 4) << (AW * lane)
                d.wbyte_i.value = b << (8 * lane)
            await FallingEdge(d.clk_i)
            d.we_i.value = 0

        async def read_row(self, base: int, bits: int, k: int, rng) -> list[int]:
            d = self.dut
            await FallingEdge(d.clk_i)
            d.bits_i.value = bits
            d.base_i.value = base
            d.start_i.value = 1
            await FallingEdge(d.clk_i)
            d.start_i.value = 0
            while d.ready_o.value != 1:
                await FallingEdge(d.clk_i)
            got: list[int] = []
            while len(got) < k:
                take = bool(rng.random() < 0.7)
                d.take_i.value = int(take)
                if take:
                    got.append(d.code_o.value.to_signed())
                await FallingEdge(d.clk_i)
            d.take_i.value = 0
            return got

    @cocotb.test(timeout_time=20, timeout_unit="ms")
    async def unpack_rows(dut):
        """Every width, ragged K, several rows per bank, random stalls: codes == unpack()."""
        tb = TB(dut)
        await tb.reset()
        rng = np.random.default_rng(int(os.environ.get("PQ_SEED", "9")))
        for bits in (8, 6, 4, 2, 6, 2):
            qm = (1 << (bits - 1)) - 1
            k = int(rng.integers(1, 41))
            rw = -(-row_bytes(k, bits) // 4)
            rows = [rng.integers(-qm, qm + 1, size=k) for _ in range(3)]
            if bits == 6:
                rows[0][:] = -qm        # extremes straddling byte boundaries
            for r, codes in enumerate(rows):
                await tb.write_row(r * rw, pack(codes, bits))
            for r, codes in enumerate(rows):
                exp = unpack(pack(codes, bits), bits, (k,)).astype(int).tolist()
                got = await tb.read_row(r * rw, bits, k, rng)
                assert got == exp, (bits, k, r, got, exp)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_pq_wbank(sim: str) -> None:
    """pq_wbank on each installed simulator."""
    from simrun import requested_sims, run_bench
    if sim not in requested_sims():
        pytest.skip(f"{sim} not requested/installed")
    run_bench(sim, "pq_wbank", "test_pq_wbank", Path(__file__).parent, {"WORDS": WORDS, "AW": AW},
              tag="wbank")
