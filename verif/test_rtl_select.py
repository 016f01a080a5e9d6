"""`make sim RTL=hls` selects the Vitis export instead of rtl/ (Vitis is absent here, so the
run itself is not possible; the selection and its error path are)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import simrun  # noqa: E402


def test_rtl_sources_default_is_rtl(monkeypatch):
    monkeypatch.delenv("RTL", raising=False)
    srcs = simrun.rtl_sources()
    assert srcs and all(p.parent == simrun.RTL for p in srcs)
    assert any(p.name == "pq_accel.v" for p in srcs)


def test_rtl_sources_hls_uses_the_export(monkeypatch, tmp_path):
    (tmp_path / "pq_accel.v").write_text("module pq_accel; endmodule\n")
    (tmp_path / "pq_accel_control_s_axi.v").write_text("module pq_accel_control_s_axi; endmodule\n")
    monkeypatch.setattr(simrun, "HLS_VERILOG", tmp_path)
    monkeypatch.setenv("RTL", "hls")
    assert [p.name for p in simrun.rtl_sources()] == ["pq_accel.v", "pq_accel_control_s_axi.v"]
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(simrun, "HLS_VERILOG", empty)
    with pytest.raises(FileNotFoundError, match="no Vitis HLS export"):
        simrun.rtl_sources()
    monkeypatch.setenv("RTL", "vhdl")
    with pytest.raises(ValueError, match="expected rtl or hls"):
        simrun.rtl_kind()


@pytest.mark.skipif(any(simrun.HLS_VERILOG.glob("*.v")), reason="a Vitis export exists here")
def test_make_sim_rtl_hls_without_export_is_a_clear_error():
    env = dict(os.environ)
    r = subprocess.run(["make", "--no-print-directory", "sim", "RTL=hls"], cwd=simrun.ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "no Vitis HLS export" in r.stderr
