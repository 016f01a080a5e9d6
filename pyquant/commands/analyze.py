"""``pyquant analyze MODEL``: per-layer SNR / in-range at each width, chosen width, summary.

Streams the model layer by layer (no codes are kept), prints a rich table and a summary, and
optionally writes ``--json PATH`` (strict JSON: no NaN/Infinity, infinite SNR is ``null``) and
``--plot PATH.png``. Both files are written to a temporary name and renamed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

from pyquant.analysis import SCALE_METHODS, Criteria, iter_analyze, layer_row, parse_bits, summarize
from pyquant.errors import InputError
from pyquant.onnx_io import iter_weights

DEFAULT_SCALE = "maxabs"


def add_selection_args(p: argparse.ArgumentParser) -> None:
    """The width-selection options shared by ``analyze`` and ``convert``."""
    p.add_argument("model", help="model file (.onnx or .npz)")
    p.add_argument("--snr-min", type=float, default=40.0, metavar="DB",
                   help="lowest acceptable weight SNR in dB (default 40)")
    p.add_argument("--in-range-min", type=float, default=0.99, metavar="F",
                   help="lowest acceptable fraction of unclipped weights (default 0.99)")
    p.add_argument("--bits", default="8,6,4,2", metavar="LIST",
                   help="candidate widths, comma-separated subset of 8,6,4,2 (default all)")
    p.add_argument("--granularity", default="tensor", choices=["tensor", "channel"],
                   help="one scale per tensor (default) or per output channel (canonical axis 0)")
    p.add_argument("--scale", default=DEFAULT_SCALE, choices=list(SCALE_METHODS),
                   help=f"scale calibration: maxabs = max|w|/qmax; mse = MSE-optimal clip search "
                        f"(docs/FORMAT.md 1.1; default {DEFAULT_SCALE})")


def criteria_from_args(args: argparse.Namespace) -> Criteria:
    """Build and validate :class:`Criteria` from parsed options (InputError when invalid)."""
    return Criteria(snr_min=args.snr_min, in_range_min=args.in_range_min, bits=parse_bits(args.bits),
                    granularity=args.granularity, scale=args.scale)


def check_output_path(path: str | os.PathLike, what: str) -> Path:
    """Fail early (InputError) when ``path``'s directory does not exist or is not writable."""
    p = Path(path)
    parent = p.absolute().parent
    if not parent.is_dir():
        raise InputError(f"{p}: cannot write {what}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{p}: cannot write {what}: directory {parent} is not writable")
    if p.is_dir():
        raise InputError(f"{p}: cannot write {what}: it is a directory")
    return p


def atomic_write(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to a temp file next to ``path`` and rename it; InputError on failure."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.absolute().parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise InputError(f"{path}: cannot write {what}: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _fmt_snr(c: dict | None) -> str:
    if c is None:
        return "-"
    v = c["snr_db"]
    s = "inf" if v is None else f"{v:.1f}"
    return s if c["pass"] else f"[dim]{s}[/dim]"


def print_report(rows: list[dict], summary: dict, crit: Criteria, source: str, file=None) -> None:
    """Rich table (layer, op, shape, params, SNR per width, bits, status, bytes) + summary."""
    from rich.console import Console
    from rich.table import Table

    out = file or sys.stdout
    console = Console(file=out, width=None if out.isatty() else 200, highlight=False)
    t = Table(title=f"pyquant analyze {source}  (SNR >= {crit.snr_min:g} dB, in_range >= "
                    f"{crit.in_range_min:g}, {crit.granularity}, {crit.scale})")
    t.add_column("#", justify="right")
    t.add_column("layer", overflow="fold", max_width=48)
    t.add_column("op")
    t.add_column("shape")
    t.add_column("params", justify="right")
    widths = sorted(crit.bits, reverse=True)
    for b in widths:
        t.add_column(f"SNR@{b}", justify="right")
    t.add_column("bits", justify="right")
    t.add_column("status")
    t.add_column("bytes", justify="right")
    for i, r in enumerate(rows):
        cands = {c["bits"]: c for c in r["candidates"]}
        st = r["status"] if r["status"] == "ok" else f"[yellow]{r['status']}[/yellow]"
        t.add_row(str(i), r["name"], r["op"], "x".join(str(s) for s in r["shape"]), f"{r['params']:,}",
                  *[_fmt_snr(cands.get(b)) for b in widths], f"INT{r['bits']}", st, f"{r['bytes']:,}")
    console.print(t)
    s = summary
    if not s["layers"]:
        console.print("no weight layers found")
        return
    per = ", ".join(f"INT{b}: {s['layers_per_width'][str(b)]}" for b in (8, 6, 4, 2))
    console.print(
        f"{s['layers']} layers, {s['params']:,} weights -> {s['bytes']:,} bytes packed "
        f"(FP32 {s['fp32_bytes']:,} = {s['ratio_vs_fp32']:.2f}x smaller; all-INT8 {s['int8_bytes']:,} = "
        f"{s['ratio_vs_int8']:.2f}x smaller); average {s['avg_bits']:.2f} bits/weight "
        f"({s['bits_per_weight_packed']:.2f} with row padding); {per}; "
        f"{s['fallback_layers']} layer(s) fell back to INT8", soft_wrap=True)


def plot_png(path: Path | None, rows: list[dict], crit: Criteria) -> bytes:
    """SNR per layer per width (infinite plotted at the top, marked), chosen widths below.

    Returns the PNG bytes; also writes them atomically to ``path`` unless it is None."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6.0, 0.35 * n + 3) + 1.5, 7), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1]})
    finite = [c["snr_db"] for r in rows for c in r["candidates"] if c["snr_db"] is not None]
    top = (max(finite) if finite else crit.snr_min) + 10
    xs = list(range(n))
    for b in sorted(crit.bits, reverse=True):
        ys, inf_x = [], []
        for i, r in enumerate(rows):
            c = next((c for c in r["candidates"] if c["bits"] == b), None)
            v = None if c is None else c["snr_db"]
            ys.append(top if v is None else v)
            if v is None:
                inf_x.append(i)
        line, = a1.plot(xs, ys, marker="o", ms=3, label=f"INT{b}")
        if inf_x:
            a1.plot(inf_x, [top] * len(inf_x), "^", color=line.get_color(), ms=7)
    cx, cy = [], []
    for i, r in enumerate(rows):
        c = next((c for c in r["candidates"] if c["bits"] == r["bits"]), None)
        if c is not None:
            cx.append(i)
            cy.append(top if c["snr_db"] is None else c["snr_db"])
    a1.plot(cx, cy, "o", ms=11, mfc="none", mec="k", mew=1.5, label="chosen")
    a1.axhline(crit.snr_min, color="k", ls="--", lw=1, label=f"SNR min {crit.snr_min:g} dB")
    a1.set_title(f"weight SNR per layer ({crit.granularity}, {crit.scale}; gate {crit.snr_min:g} dB, "
                 f"in_range >= {crit.in_range_min:g})", fontsize=9)
    a1.set_ylabel("weight SNR (dB)  (^ = exact)")
    a1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    a1.grid(alpha=0.3)
    colors = ["tab:red" if r["status"] == "fallback" else "tab:blue" for r in rows]
    a2.bar(xs, [r["bits"] for r in rows], color=colors)
    from matplotlib.patches import Patch
    a2.legend(handles=[Patch(color="tab:blue", label="ok"), Patch(color="tab:red", label="fallback (INT8)")],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    a2.set_yticks([2, 4, 6, 8])
    a2.set_ylabel("chosen bits")
    a2.set_xticks(xs)
    a2.set_xticklabels([f"{i} {r['name'][-24:]}" for i, r in enumerate(rows)], rotation=90, fontsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    if path is not None:
        atomic_write(path, buf.getvalue(), "plot")
    return buf.getvalue()


def analysis_doc(source: str, crit: Criteria, rows: list[dict], summary: dict) -> dict:
    return {"version": 1, "source": source, "criteria": crit.as_dict(), "layers": rows, "summary": summary}


def to_json_bytes(doc: dict) -> bytes:
    """Strict JSON (``allow_nan=False``); non-finite floats become null."""
    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        if isinstance(o, float) and not math.isfinite(o):
            return None
        return o
    return (json.dumps(clean(doc), indent=1, allow_nan=False) + "\n").encode()


def run(args: argparse.Namespace) -> int:
    crit = criteria_from_args(args)
    jpath = check_output_path(args.json, "JSON report") if args.json else None
    ppath = check_output_path(args.plot, "plot") if args.plot else None
    src = str(args.model)
    ov = plan = None
    if getattr(args, "target", None):      # accuracy-aware widths (pyquant.search)
        from pyquant.commands.evaluate import target_plan
        ov, plan = target_plan(args, crit)
    rows = [layer_row(r) for r in iter_analyze(iter_weights(args.model), crit, ov, keep_codes=False,
                                                  where=src)]
    summary = summarize(rows)
    if not args.quiet:
        print_report(rows, summary, crit, src)
        if plan:
            print(plan["message"])
    png = plot_png(None, rows, crit) if ppath else None      # render everything before writing
    if jpath:
        doc = analysis_doc(src, crit, rows, summary)
        if plan:
            doc["plan"] = plan
        atomic_write(jpath, to_json_bytes(doc), "JSON report")
    if ppath:
        atomic_write(ppath, png, "plot")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="per-layer precision analysis (table, JSON, plot)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_selection_args(p)
    p.add_argument("--json", metavar="PATH", help="write the analysis as JSON")
    p.add_argument("--plot", metavar="PATH.png", help="write a PNG plot (SNR per layer per width)")
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    from pyquant.commands.evaluate import add_integer_args
    add_integer_args(p, command="analyze")
    p.set_defaults(func=run)
