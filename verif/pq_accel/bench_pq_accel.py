"""cocotb module run by scripts/bench_accel.py: the layers listed in $PQ_BENCH_SPEC (JSON), each
checked against pyquant.intmath.layer_int and timed in cycles (start write to ap_done)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from tb_accel import TB, random_layer


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def bench(dut):
    """Run every layer of the spec twice: with its weight stream, then with flags.reuse."""
    spec = json.loads(Path(os.environ["PQ_BENCH_SPEC"]).read_text())
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(2026)
    out = []
    for s in spec:
        L = random_layer(rng, s["precision"], s["rows"], s["cols"], s["columns"], relu=True)
        await tb.run_layer(L, name=s["shape"])
        await tb.run_layer(L, reuse=True, name=s["shape"] + "_reuse")
        out.append(dict(s, cycles=tb.cycles[-2]["cycles"], cycles_reuse=tb.cycles[-1]["cycles"]))
    p = Path(os.environ["PQ_BENCH_OUT"])
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(p)
