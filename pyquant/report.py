"""``pyquant report DIR``: one self-contained HTML page about a converted model.

Shows, from ``DIR/model.json`` (and ``DIR/tradeoff.json`` for executable models, or an
``evaluate --json`` file): per-layer weight SNR at each width with the chosen width marked,
the chosen widths, memory (packed bytes vs FP32 and all-INT8), and the accuracy / bits
trade-off curve (uniform widths, the per-layer SNR gate, the accuracy-aware search's steps).
Plots are matplotlib PNGs embedded as base64 ``data:`` URIs; the page loads nothing external
(no scripts, fonts, style sheets or images from elsewhere).
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from pyquant.errors import InputError
from pyquant.fileio import atomic_write, check_output_path, load_json
from pyquant.pipeline import TRADEOFF_NAME

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}td.chosen{background:#d7ecff;font-weight:bold}
td.fail{color:#999}.kpi{display:inline-block;margin:0 1.5em .5em 0}.kpi b{font-size:1.4em;display:block}
img{max-width:100%}.note{color:#666;font-size:.85em}
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _snr_plot(layers: list[dict]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(layers)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * n + 3), 3.8))
    widths = sorted({c["bits"] for ly in layers for c in ly.get("candidates", [])}, reverse=True)
    finite = [c["snr_db"] for ly in layers for c in ly.get("candidates", []) if c.get("snr_db") is not None]
    top = (max(finite) if finite else 40.0) + 5
    xs = list(range(n))
    for b in widths:
        ys = []
        for ly in layers:
            c = next((c for c in ly.get("candidates", []) if c["bits"] == b), None)
            ys.append(float("nan") if c is None else (top if c.get("snr_db") is None else c["snr_db"]))
        ax.plot(xs, ys, marker="o", label=f"INT{b}")
    ch = []
    for ly in layers:
        c = next((c for c in ly.get("candidates", []) if c["bits"] == ly["bits"]), None)
        ch.append(float("nan") if c is None else (top if c.get("snr_db") is None else c["snr_db"]))
    ax.plot(xs, ch, "s", ms=11, mfc="none", mec="k", label="chosen")
    ax.set_xticks(xs)
    ax.set_xticklabels([ly["name"][-20:] for ly in layers], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("weight SNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=5)
    fig.tight_layout()
    return _png(fig)


def _tradeoff_plot(curve: dict) -> str:
    """Accuracy (or agreement) versus average bits per weight. When some points sit far below
    the others (typically all-INT2), a second panel zooms on the top 6 points of the range."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = curve["points"]
    key = "accuracy" if curve.get("labels") else "agreement"
    vals = [100 * p[key] for p in pts if p.get(key) is not None]
    top = max(vals) if vals else 100.0
    zoom = bool(vals) and min(vals) < top - 8
    fig, axes = plt.subplots(1, 2 if zoom else 1, figsize=(11 if zoom else 7, 4), squeeze=False)
    styles = {"uniform": ("o-", "tab:gray"), "search": ("^", "tab:orange"), "snr": ("s", "tab:blue"),
              "chosen": ("*", "tab:red")}
    labels = {"uniform": "uniform width", "search": "search steps", "snr": "SNR-gate plan", "chosen": "chosen plan"}
    for j, ax in enumerate(axes[0]):
        for kind in ("uniform", "search", "snr", "chosen"):
            sel = [p for p in pts if p["kind"] == kind and p.get(key) is not None]
            if not sel:
                continue
            sel.sort(key=lambda p: p["avg_bits"])
            st, col = styles[kind]
            ax.plot([p["avg_bits"] for p in sel], [100 * p[key] for p in sel], st, color=col,
                    ms=12 if kind == "chosen" else 7, label=labels[kind])
            if kind == "uniform":
                for p in sel:
                    ax.annotate(p["name"].replace("all-", ""), (p["avg_bits"], 100 * p[key]), fontsize=7,
                                xytext=(3, -10), textcoords="offset points")
        if curve.get("float_accuracy") is not None and key == "accuracy":
            fa = 100 * curve["float_accuracy"]
            ax.axhline(fa, color="k", ls="--", lw=1, label="float")
            if curve.get("budget") is not None and curve.get("target") == "accuracy-drop":
                ax.axhline(fa - 100 * curve["budget"], color="tab:red", ls=":", lw=1, label="budget")
        ax.set_xlabel("average bits per weight")
        ax.set_ylabel(("accuracy" if key == "accuracy" else "agreement with float") + " (%)")
        ax.grid(alpha=0.3)
        if j == 1:
            ax.set_ylim(top - 6, top + 1)
            ax.set_title("zoom: top 6 points", fontsize=9)
        else:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _from_evaluate(doc: dict) -> dict:
    """Turn an ``evaluate --json`` document into a trade-off curve (measured on its test data)."""
    pts = [{"name": u["name"], "kind": "uniform", "avg_bits": u["avg_bits"], "weight_bytes": u["weight_bytes"],
            "accuracy": u["integer_accuracy"], "output_snr_db": u["output_snr_db"]} for u in doc.get("uniform", [])]
    for p in doc.get("plans", []):
        pts.append({"name": p["name"], "kind": "snr" if p["budget"] is None else "chosen",
                    "avg_bits": p["avg_bits"], "weight_bytes": p["weight_bytes"],
                    "accuracy": p["integer_accuracy"], "output_snr_db": p["output_snr_db"]})
    budget = next((p["budget"] for p in doc.get("plans", []) if p.get("target") == "accuracy-drop"), None)
    return {"split": doc.get("data"), "samples": doc.get("samples"), "labels": True,
            "float_accuracy": doc.get("float_accuracy"), "points": pts, "budget": budget,
            "target": "accuracy-drop" if budget is not None else None}


_KINDS = ("uniform", "search", "snr", "chosen")


def _is_num(v, none: bool = False) -> bool:
    if v is None:
        return none
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_curve(curve, where: str) -> None:
    """The fields of a trade-off curve the page reads, with their types (InputError otherwise)."""
    if not isinstance(curve, dict):
        raise InputError(f"{where}: expected an object")
    if not isinstance(curve.get("points", []), list):
        raise InputError(f"{where}: 'points' must be a list")
    for k in ("float_accuracy", "budget", "samples"):
        if not _is_num(curve.get(k), none=True):
            raise InputError(f"{where}: {k!r} must be a number or null")
    for i, p in enumerate(curve.get("points") or []):
        if not isinstance(p, dict):
            raise InputError(f"{where}: point {i} must be an object")
        if not isinstance(p.get("name"), str) or p.get("kind") not in _KINDS:
            raise InputError(f"{where}: point {i} needs a string 'name' and a 'kind' in {', '.join(_KINDS)}")
        if not _is_num(p.get("avg_bits")) or not isinstance(p.get("weight_bytes"), int):
            raise InputError(f"{where}: point {i} needs numeric 'avg_bits' and integer 'weight_bytes'")
        for k in ("accuracy", "agreement", "output_snr_db"):
            if not _is_num(p.get(k), none=True):
                raise InputError(f"{where}: point {i}: {k!r} must be a number or null")


def _fmt(v, nd: int = 1, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.{nd}f} %" if pct else f"{v:.{nd}f}"


def render(model_dir: str | os.PathLike, evaluation: str | os.PathLike | None = None) -> str:
    """Build the HTML page for ``model_dir`` (raises InputError for a missing/invalid directory)."""
    from pyquant.layerfiles import read_model_dir

    d = Path(model_dir)
    doc, _ = read_model_dir(d)            # validates the whole directory
    layers = doc["layers"]
    info = doc.get("info") or {}
    curve = None
    if evaluation:
        ep = Path(evaluation)
        edoc = load_json(ep)
        try:
            curve = _from_evaluate(edoc)
        except (KeyError, TypeError, AttributeError, ValueError) as ex:
            raise InputError(f"{ep}: not an evaluate --json document ({type(ex).__name__}: {ex})") from None
        _check_curve(curve, f"{ep}: not an evaluate --json document")
    elif (d / TRADEOFF_NAME).exists():
        curve = load_json(d / TRADEOFF_NAME)
        _check_curve(curve, f"{d / TRADEOFF_NAME}: malformed trade-off curve")
    e = html.escape
    params = sum(ly["rows"] * ly["cols"] for ly in layers)
    packed = sum(ly["bytes"] for ly in layers)
    int8 = sum(ly["rows"] * ly["cols"] for ly in layers)
    fp32 = 4 * params
    avg = sum(ly["bits"] * ly["rows"] * ly["cols"] for ly in layers) / params if params else 0.0
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>pyquant report: {e(str(info.get('source') or d.name))}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>pyquant report — {e(str(info.get('source') or d.name))}</h1>",
           f"<p class='note'>model directory {e(str(d))}; format version {e(str(doc.get('version')))}; "
           f"{'executable (integer pipeline)' if info.get('executable') else 'analysis only'}"
           + (f"; plan <b>{e(str(info['plan']['name']))}</b>" if info.get("plan") else "") + "</p>",
           "<h2>Memory</h2>",
           f"<div class='kpi'><b>{packed:,} B</b>packed weights</div>",
           f"<div class='kpi'><b>{fp32 / packed if packed else 0:.2f}×</b>smaller than FP32 ({fp32:,} B)</div>",
           f"<div class='kpi'><b>{100 * (1 - packed / int8) if int8 else 0:.1f} %</b>saved vs all-INT8 "
           f"({int8:,} B)</div>",
           f"<div class='kpi'><b>{avg:.2f}</b>bits per weight</div>",
           "<h2>Chosen widths and per-layer weight SNR</h2>"]
    widths = sorted({c["bits"] for ly in layers for c in ly.get("candidates", [])}, reverse=True)
    out.append("<table><tr><th>#</th><th class='l'>layer</th><th class='l'>op</th><th>M×K</th><th>params</th>"
               + "".join(f"<th>SNR@{b} (dB)</th>" for b in widths)
               + "<th>bits</th><th class='l'>status</th><th>bytes</th><th>INT8 bytes</th></tr>")
    for ly in layers:
        cands = {c["bits"]: c for c in ly.get("candidates", [])}
        cells = []
        for b in widths:
            c = cands.get(b)
            cls = "chosen" if b == ly["bits"] else ("" if c and c.get("pass") else "fail")
            v = "—" if c is None else ("∞" if c.get("snr_db") is None else f"{c['snr_db']:.1f}")
            cells.append(f"<td class='{cls}'>{v}</td>")
        out.append(f"<tr><td>{ly['index']}</td><td class='l'>{e(ly['name'])}</td><td class='l'>{e(ly['op'])}</td>"
                   f"<td>{ly['rows']}×{ly['cols']}</td><td>{ly['rows'] * ly['cols']:,}</td>{''.join(cells)}"
                   f"<td>INT{ly['bits']}</td><td class='l'>{e(ly['status'])}</td><td>{ly['bytes']:,}</td>"
                   f"<td>{ly['rows'] * ly['cols']:,}</td></tr>")
    out.append("</table><p class='note'>Highlighted: the chosen width. Grey: fails the per-layer gate "
               "(SNR/in-range criteria in model.json). ∞: exact.</p>")
    if layers and any(ly.get("candidates") for ly in layers):
        out.append(f"<img alt='weight SNR per layer and width' src='{_snr_plot(layers)}'>")
    if info.get("executable"):
        plan = info.get("plan") or {}
        out.append("<h2>Integer execution</h2>")
        inp = info.get("input") or {}
        line = (f"<p>Input {inp.get('h')}×{inp.get('w')}×{inp.get('c')} (HWC), scale {inp.get('scale', 0):.6g}; "
                f"{len(layers)} accelerator calls per sample")
        srch = plan.get("search") or {}
        if srch:
            h = srch.get("heldout") or {}
            line += (f"; plan <b>{e(str(plan.get('name')))}</b>: held-out accuracy drop {h.get('drop', 0):.4f} "
                     f"({'meets' if srch.get('budget_met_heldout') else 'MISSES'} the budget {plan.get('budget')})")
        out.append(line + ".</p>")
        out.append("<table><tr><th class='l'>layer</th><th class='l'>kind</th><th>in scale</th><th>out scale</th>"
                   "<th class='l'>relu</th><th class='l'>pool</th><th class='l'>geometry (in → out)</th>"
                   "<th>mult range</th><th>shift range</th></tr>")
        for ly in layers:
            g = ly.get("geom")
            geo = (f"{g['in_h']}×{g['in_w']}×{g['in_c']} k{g['kh']}×{g['kw']} s{g['stride_h']} → "
                   f"{g['out_h']}×{g['out_w']}×{ly['rows']}") if g else f"{ly['cols']} → {ly['rows']}"
            pool = "—" if ly.get("pool", "none") == "none" else f"{ly['pool']} {ly['pool_k']}/{ly['pool_stride']}"
            m, sh = ly.get("mult") or [0], ly.get("shift") or [0]
            out.append(f"<tr><td class='l'>{e(ly['name'])}</td><td class='l'>{e(ly['kind'])}</td>"
                       f"<td>{ly['in_scale']:.4g}</td><td>{ly['out_scale']:.4g}</td>"
                       f"<td class='l'>{'yes' if ly.get('relu') else 'no'}</td><td class='l'>{e(pool)}</td>"
                       f"<td class='l'>{e(geo)}</td><td>{min(m)}–{max(m)}</td><td>{min(sh)}–{max(sh)}</td></tr>")
        out.append("</table>")
    out.append("<h2>Accuracy / bits trade-off</h2>")
    if curve and curve.get("points"):
        key = "accuracy" if curve.get("labels") else "agreement"
        out.append(f"<p class='note'>Measured with the bit-exact integer pipeline on {e(str(curve.get('split')))} "
                   f"({curve.get('samples')} samples)"
                   + (f"; float accuracy {_fmt(curve.get('float_accuracy'), 2, True)}"
                      if curve.get("float_accuracy") is not None else "") + ".</p>")
        out.append(f"<img alt='accuracy versus bits per weight' src='{_tradeoff_plot(curve)}'>")
        out.append(f"<table><tr><th class='l'>plan</th><th class='l'>kind</th><th>bits/weight</th><th>bytes</th>"
                   f"<th>{key}</th><th>output SNR (dB)</th></tr>")
        for p in curve["points"]:
            out.append(f"<tr><td class='l'>{e(p['name'])}</td><td class='l'>{e(p['kind'])}</td>"
                       f"<td>{p['avg_bits']:.2f}</td><td>{p['weight_bytes']:,}</td>"
                       f"<td>{_fmt(p.get(key), 2, True)}</td><td>{_fmt(p.get('output_snr_db'))}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>Not available: convert with <code>--calib FILE.npy</code> (executable model) or pass "
                   "<code>--eval</code> an <code>evaluate --json</code> file.</p>")
    out.append("<p class='note'>Generated by pyquant report; self-contained (no external resources).</p>")
    out.append("</body></html>\n")
    return "\n".join(out)


def write_report(model_dir, out_path, evaluation=None) -> Path:
    """Render and write the page atomically; return its path. The page may not overwrite an
    input (the model directory's files, the evaluation file)."""
    p = check_output_path(out_path, [evaluation], "HTML report", input_dirs=[model_dir])
    atomic_write(p, render(model_dir, evaluation).encode("utf-8"), "HTML report")
    return p
