"""Testbench driver for ``pq_accel``: AXI-Lite control and the three AXI-Streams (cocotbext-axi).

Expected values always come from pyquant (``layer_int``, ``pack``); this module only moves bytes.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamSink, AxiStreamSource

from pyquant.intmath import layer_int
from pyquant.packing import pack

A_CTRL, A_GIE, A_IER, A_ISR = 0x00, 0x04, 0x08, 0x0C
A_PREC, A_ROWS, A_COLS, A_NCOLS, A_FLAGS = 0x10, 0x18, 0x20, 0x28, 0x30


def wgt_bytes(w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, prec: int) -> bytes:
    """The wgt stream byte sequence of docs/HARDWARE.md section 3 (constants, then pack())."""
    out = bytearray()
    for b, m, s in zip(bias, mult, shift):
        out += int(b).to_bytes(4, "little", signed=True) + int(m).to_bytes(2, "little")
        out += bytes([int(s), 0])
    return bytes(out) + pack(w, prec)


def random_layer(rng: np.random.Generator, prec: int, m: int, k: int, n: int,
                 relu: bool | None = None) -> dict:
    """A random layer in contract range whose accumulators fit int32."""
    qm = (1 << (prec - 1)) - 1
    w = rng.integers(-qm, qm + 1, size=(m, k))
    x = rng.integers(-128, 128, size=(n, k))
    bias = rng.integers(-(1 << 14), 1 << 14, size=m)
    mult = rng.integers(0, 32768, size=m)
    # shifts that keep outputs mostly unsaturated for this K and width, plus random ones
    base = max(1, int(np.log2(max(1, k) * 128 * qm + 1)) + 15 - 7)
    shift = np.clip(base + rng.integers(-3, 3, size=m), 1, 47)
    return dict(x=x, w=w, bias=bias, mult=mult, shift=shift, prec=prec,
                relu=bool(rng.integers(0, 2)) if relu is None else relu)


class TB:
    """Clock, reset and bus models around a ``pq_accel`` instance."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.log = dut._log
        Clock(dut.ap_clk, 10, unit="ns").start()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk,
                                  dut.ap_rst_n, reset_active_level=False)
        self.wgt = AxiStreamSource(AxiStreamBus.from_prefix(dut, "wgt"), dut.ap_clk, dut.ap_rst_n,
                                   reset_active_level=False)
        self.act = AxiStreamSource(AxiStreamBus.from_prefix(dut, "act"), dut.ap_clk, dut.ap_rst_n,
                                   reset_active_level=False)
        self.res = AxiStreamSink(AxiStreamBus.from_prefix(dut, "res"), dut.ap_clk, dut.ap_rst_n,
                                 reset_active_level=False)
        for bus in (self.axil.write_if, self.axil.read_if, self.wgt, self.act, self.res):
            bus.log.setLevel(logging.WARNING)
        self.cycles: list[dict] = []
        self._prev: tuple | None = None

    async def reset(self, cycles: int = 5) -> None:
        self.dut.ap_rst_n.value = 0
        await ClockCycles(self.dut.ap_clk, cycles)
        self.dut.ap_rst_n.value = 1
        await ClockCycles(self.dut.ap_clk, 2)
        self._prev = None

    def set_backpressure(self, enable: bool, seed: int = 1) -> None:
        """Random idle cycles on both inputs and random backpressure on the result stream."""
        if not enable:
            for s in (self.wgt, self.act, self.res):
                s.clear_pause_generator()
                # clearing the generator leaves the last value it set: a paused sink would
                # hold TREADY low for ever
                s.pause = False
            return
        r = random.Random(seed)

        def gen(p: float):
            while True:
                yield r.random() < p
        self.wgt.set_pause_generator(gen(0.3))
        self.act.set_pause_generator(gen(0.4))
        self.res.set_pause_generator(gen(0.5))

    async def start_layer(self, L: dict, reuse: bool = False) -> None:
        """Program the arguments, set ap_start and queue the input streams."""
        w, x = L["w"], L["x"]
        m, k = w.shape
        n = x.shape[0]
        for a, v in ((A_PREC, L["prec"]), (A_ROWS, m), (A_COLS, k), (A_NCOLS, n),
                     (A_FLAGS, int(L["relu"]) | (2 if reuse else 0))):
            await self.axil.write_dword(a, int(v))
        await self.axil.write_dword(A_CTRL, 1)
        if not reuse:
            await self.wgt.send(wgt_bytes(w, L["bias"], L["mult"], L["shift"], L["prec"]))
        await self.act.send(x.astype(np.int8).tobytes())

    async def run_layer(self, L: dict, reuse: bool = False, name: str = "") -> np.ndarray:
        """Run one call; check the result bytes against ``layer_int``; return Y[N, M]."""
        w, x = L["w"], L["x"]
        m, n = w.shape[0], x.shape[0]
        expect = layer_int(x, w, L["bias"], L["mult"], L["shift"], L["relu"])
        t0 = self.now()
        await self.start_layer(L, reuse)
        limit = 2000 + 8 * (m * w.shape[1] * n + m * w.shape[1] + n * w.shape[1] + n * m)
        try:
            frame = await with_timeout(self.res.recv(), 10 * limit, "ns")
        except SimTimeoutError:
            c = self.dut.u_core
            state = {s: str(getattr(c, s).value) for s in ("st", "rs", "a_full", "claim", "h_busy", "k", "gb")}
            o = c.u_out
            state.update({f"out.{s}": str(getattr(o, s).value) for s in ("pend", "last", "cur", "col", "m", "fcnt", "ccnt", "rd_v", "rd_fin")})
            state["res_TREADY"] = str(self.dut.res_TREADY.value)
            raise AssertionError(f"{name} INT{L['prec']} M={m} K={w.shape[1]} N={n} reuse={reuse}: "
                                 f"no result after {limit} cycles; core {state}") from None
        # wait for ap_done (bit1, clear on read) and ap_idle
        while True:
            v = await self.axil.read_dword(A_CTRL)
            if v & 0x2:
                break
        t1 = self.now()
        data = bytes(frame.tdata)
        nbytes = n * m
        words = -(-nbytes // 4)
        assert len(data) == 4 * words, f"res: {len(data)} bytes, expected {4 * words}"
        assert all(b == 0 for b in data[nbytes:]), "res: padding bytes are not zero"
        got = np.frombuffer(data[:nbytes], dtype=np.int8).reshape(n, m)
        if not np.array_equal(got, expect):
            bad = np.argwhere(got != expect)
            i, j = bad[0]
            raise AssertionError(
                f"{name} INT{L['prec']} M={m} K={w.shape[1]} N={n}: {len(bad)} mismatches, first "
                f"Y[{i},{j}]={got[i, j]} expected {expect[i, j]}")
        self.cycles.append({"name": name, "precision": int(L["prec"]), "rows": int(m),
                            "cols": int(w.shape[1]), "columns": int(n), "reuse": bool(reuse),
                            "cycles": int(t1 - t0)})
        return got

    def now(self) -> int:
        from cocotb.utils import get_sim_time
        return int(get_sim_time("ns")) // 10

    def save_cycles(self, label: str) -> None:
        d = Path(os.environ.get("PQ_RUN_DIR", "."))
        p = d / f"cycles_{label}.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cycles, indent=1))
        tmp.replace(p)


async def settle(tb: TB, n: int = 2) -> None:
    for _ in range(n):
        await RisingEdge(tb.dut.ap_clk)
