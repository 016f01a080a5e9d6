"""The virtual board: launcher CLI, the Verilated RTL backend (sw/platform/verilated) under the
real firmware and host tool, and the `make deploy-sim` flow.

The Verilated model is built once per RTL content (cached in build/verilated/, under a lock).
Every expectation comes from pyquant.infer.infer_int / the golden vectors of `pyquant golden`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from pqmodels import make_cnn, make_mlp, random_input
from pyquant.infer import infer_int
from scripts import pqproto as pq
from scripts.vboard import VBoard, build_firmware, deploy_sim

ROOT = Path(__file__).resolve().parent.parent
HAVE_RTL = (ROOT / "rtl" / "pq_accel.v").exists()
needs_rtl = pytest.mark.skipif(not HAVE_RTL, reason="rtl/pq_accel.v not present")


def test_vboard_cli_serves_and_stops() -> None:
    p = subprocess.Popen([sys.executable, "-m", "scripts.vboard", "--backend", "cref", "--log", os.devnull],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = p.stdout.readline().strip()
        assert line.startswith("PTY /dev/"), line + p.stderr.read()
        with serial.Serial(line.split()[1], 115200, timeout=0.05) as s:
            h = pq.Client(pq.Link(s, name="vboard")).hello()
        assert h.proto_version == 1 and h.accel_kind == 0
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0


@needs_rtl
def test_verilated_build_is_cached() -> None:
    b1 = build_firmware("verilated")
    t = time.monotonic()
    b2 = build_firmware("verilated")
    assert b1 == b2 and b2.exists() and time.monotonic() - t < 30  # no rebuild (that takes minutes)
    assert any((ROOT / "build" / "verilated").glob("pq_accel-*/.complete"))


def _deploy(vb_path: str, mdir: Path, xp: Path, outp: Path, js: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.deploy", "--no-progress", "--port", vb_path, "--model",
                           str(mdir), "--input", str(xp), "--output", str(outp), "--json", str(js),
                           "--run-timeout", "40", "--retries", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)


CASES = {
    # (builder, samples): every width, rows that are / are not a multiple of the lane count,
    # conv + max/avg pooling, and a layer the firmware must tile (rows > MAX_ROWS, > WMEM_BYTES)
    "int8_m10": (lambda p: make_mlp(p, seed=1, dims=(32, 10), bits=(8,)), 4),
    "int6_m10": (lambda p: make_mlp(p, seed=2, dims=(32, 10), bits=(6,)), 4),
    "int4_m10": (lambda p: make_mlp(p, seed=3, dims=(32, 10), bits=(4,)), 4),
    "int2_m10": (lambda p: make_mlp(p, seed=4, dims=(32, 10), bits=(2,)), 4),
    "mlp_8_6_2": (lambda p: make_mlp(p, seed=5, dims=(64, 48, 32, 10), bits=(8, 6, 2)), 6),
    "mlp_4_odd": (lambda p: make_mlp(p, seed=6, dims=(37, 23, 7), bits=(4, 4)), 5),
    "cnn": (lambda p: make_cnn(p, seed=7, samples=3), 3),
    "tiled": (lambda p: make_mlp(p, seed=8, dims=(160, 300, 10), bits=(8, 8)), 2),
}


@needs_rtl
@pytest.mark.parametrize("case", sorted(CASES))
def test_verilated_rtl_matches_golden(tmp_path: Path, case: str) -> None:
    builder, n = CASES[case]
    mdir = builder(tmp_path / case)
    x = random_input(mdir, n, seed=9)
    np.save(tmp_path / "x.npy", x)
    with VBoard("verilated", log=tmp_path / "fw.log") as vb:
        r = _deploy(vb.path, mdir, tmp_path / "x.npy", tmp_path / "y.npy", tmp_path / "r.json")
    assert r.returncode == 0, f"{case}: {r.stderr.strip()} (firmware log: {(tmp_path / 'fw.log').read_text()[-300:]})"
    assert np.array_equal(np.load(tmp_path / "y.npy"), infer_int(mdir, x))
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["hello"]["accel"] == "RTL" and all(c > 0 for c in doc["layer_cycles"])


@needs_rtl
def test_deploy_sim_digits_on_verilated_rtl(tmp_path: Path, capsys) -> None:
    """`make deploy-sim`: convert both digits examples, golden vectors, upload over the pty with
    the real host tool, run on the Verilated RTL, compare."""
    rc = deploy_sim("verilated", ("digits_mlp", "digits_cnn"), samples=16, out=tmp_path)
    out = capsys.readouterr().out
    assert rc == 0, out[-2000:]
    assert "match the golden vectors" in out.splitlines()[-1]
    for name in ("digits_mlp", "digits_cnn"):
        doc = json.loads((tmp_path / f"{name}-deploy.json").read_text())
        assert doc["match"] is True and doc["samples"] == 16
        y = np.load(tmp_path / f"{name}-golden" / "output.npy")
        assert np.array_equal(y, infer_int(tmp_path / name, np.load(tmp_path / f"{name}-golden" / "input.npy")))


def test_deploy_sim_digits_on_cref(tmp_path: Path, capsys) -> None:
    """The same flow on the C reference backend (fast path; independent of the RTL's state)."""
    rc = deploy_sim("cref", ("digits_mlp", "digits_cnn"), samples=16, out=tmp_path)
    out = capsys.readouterr().out
    assert rc == 0, out[-2000:]
    assert "match the golden vectors" in out.splitlines()[-1]


@needs_rtl
def test_deploy_sim_through_one_percent_faults(tmp_path: Path, capsys) -> None:
    """The deploy-sim flow on the RTL behind a link corrupting 1% of the bytes both ways:
    exact outputs or a clear error, never a wrong result reported as a success."""
    from scripts.faultlink import FaultConfig

    rc = deploy_sim("verilated", ("digits_mlp",), samples=16, out=tmp_path,
                    fault=FaultConfig(rate=0.01, seed=21), extra=("--timeout", "0.2"))
    cap = capsys.readouterr()
    if rc == 0:
        doc = json.loads((tmp_path / "digits_mlp-deploy.json").read_text())
        assert doc["match"] is True and doc["link"]["retries"] > 0
        assert "match the golden vectors" in cap.out.splitlines()[-1]
    else:
        assert rc == 2 and "PASS" not in cap.out
        errs = [ln for ln in cap.err.splitlines() if ln.startswith("pyquant-deploy: error: ")]
        assert len(errs) == 1


def test_deploy_sim_exits_non_zero_on_a_corrupted_golden(tmp_path: Path, capsys, monkeypatch) -> None:
    """`make deploy-sim` (vboard --deploy-sim) with one golden output byte changed: the board's
    exact outputs no longer match, so no match line is printed and the exit status is 1."""
    from scripts import vboard

    real_prepare, real_sim = vboard.prepare_example, vboard.deploy_sim

    def corrupted(name: str, out: Path, samples: int) -> tuple[Path, Path]:
        mdir, gdir = real_prepare(name, out, samples)
        y = np.load(gdir / "output.npy")
        y[1, 3] = np.int8(y[1, 3] ^ 0x01)
        np.save(gdir / "output.npy", y)
        return mdir, gdir

    monkeypatch.setattr(vboard, "prepare_example", corrupted)
    monkeypatch.setattr(vboard, "deploy_sim", lambda *a, **k: real_sim(*a, out=tmp_path, **k))
    rc = vboard.main(["--deploy-sim", "--backend", "cref", "--models", "digits_mlp", "--samples", "4"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "match the golden vectors" not in cap.out
    assert "FAILED (exit 1)" in cap.err and "differ from the golden vectors in 1 of 4 samples" in cap.err
    assert json.loads((tmp_path / "digits_mlp-deploy.json").read_text())["match"] is False
