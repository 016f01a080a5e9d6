"""Presentation of a per-layer analysis: the rich table, the PNG plot and the JSON document.

Shared by ``pyquant analyze`` and ``pyquant convert`` (which print the same table). Rows and
the summary come from :func:`pyquant.analysis.layer_row` / :func:`pyquant.analysis.summarize`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyquant.analysis import Criteria
from pyquant.fileio import atomic_write


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
    """The ``analyze --json`` document (docs/FORMAT.md)."""
    return {"version": 1, "source": source, "criteria": crit.as_dict(), "layers": rows, "summary": summary}
