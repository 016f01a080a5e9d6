"""Model-level flow: executable conversion, precision plans and their evaluation.

Used by ``pyquant convert/analyze --calib/--target`` and ``pyquant evaluate``:

- :func:`load_splits` finds the calibration / held-out / test data (explicit files, or the
  ``pyquant.data.*`` metadata of the bundled examples, or halves of the calibration file);
- :func:`make_plans` builds the ``snr`` plan (the per-layer gate with the given criteria) and
  accuracy-aware plans (:mod:`pyquant.search`);
- :func:`convert_executable` writes an executable model directory for one plan;
- :func:`evaluate_plan` measures a plan on labelled data; :func:`evaluate_model` is the whole
  ``evaluate`` document (float vs integer accuracy per plan, uniform-width trade-off);
- :func:`target_plan` is the accuracy-aware plan ``analyze --target`` reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyquant.calibrate import PlanBuilder, load_data_file
from pyquant.errors import InputError
from pyquant.executable import ExecModel, data_file, load_executable
from pyquant.fileio import dumps_strict_json
from pyquant.infer import infer_float, infer_quantized
from pyquant.layerfiles import write_model_dir
from pyquant.search import (Split, Target, avg_bits, cycles, output_snr_db, search, split_calibration,
                            weight_bytes)


@dataclass
class Data:
    calib: np.ndarray
    heldout: Split
    calib_file: str
    heldout_file: str


def load_calib(model: ExecModel, calib: str | os.PathLike | None, holdout: str | os.PathLike | None = None) -> Data:
    """Calibration inputs and the held-out split (see module doc). InputError when none is found."""
    cpath = Path(calib) if calib else data_file(model, "calib")
    if cpath is None:
        raise InputError(f"{model.source}: integer conversion needs calibration inputs: --calib FILE.npy")
    x = load_data_file(cpath, model)
    hpath = Path(holdout) if holdout else data_file(model, "heldout")
    if hpath is not None:
        hx, hy = load_data_file(hpath, model, labels=True)
        hfile = str(hpath)
    else:
        if len(x) < 2:
            raise InputError(f"{cpath}: {len(x)} calibration sample(s): need at least 2 to hold half out "
                             "(or give --holdout FILE.npz)")
        x, hx = split_calibration(x)
        hy, hfile = None, f"{cpath} (odd samples)"
    return Data(calib=x, heldout=Split(hx, hy).bind(model), calib_file=str(cpath), heldout_file=hfile)


@dataclass
class Plan:
    name: str
    bits: list[int]
    budget: float | None = None
    target: str | None = None
    objective: str = "bytes"
    search: dict = field(default_factory=dict)


def make_plans(builder: PlanBuilder, data: Data, targets: list[Target], objective: str = "bytes",
               include_snr: bool = True) -> list[Plan]:
    """The ``snr`` plan (per-layer gate) and one searched plan per target."""
    plans = []
    if include_snr:
        plans.append(Plan("snr", builder.snr_bits()))
    calib = Split(data.calib).bind(builder.model)
    for t in targets:
        r = search(builder, t, calib, data.heldout, objective)
        plans.append(Plan(t.label if objective == "bytes" else f"{t.label};cycles", r.bits, t.budget,
                          "accuracy-drop" if t.accuracy_drop is not None else "output-snr", objective,
                          {"calibration": r.calib, "heldout": r.heldout, "budget_met_heldout": r.met,
                           "backed_off": r.backed_off, "steps": r.steps, "sensitivity": r.sensitivity,
                           "calib_file": data.calib_file, "heldout_file": data.heldout_file}))
    return plans


def plan_summary(builder: PlanBuilder, p: Plan) -> dict:
    return {"name": p.name, "budget": p.budget, "target": p.target, "objective": p.objective,
            "avg_bits": avg_bits(builder, p.bits), "weight_bytes": weight_bytes(builder, p.bits),
            "cycles_per_sample": cycles(builder, p.bits),
            "bits": {n: int(b) for n, b in zip(builder.names, p.bits)}}


def evaluate_plan(builder: PlanBuilder, p: Plan, x: np.ndarray, y: np.ndarray | None,
                  f: np.ndarray | None = None) -> dict:
    """Plan summary + integer accuracy and output SNR (vs float) on ``x`` (``y`` may be None)."""
    layers = builder.build(p.bits)
    q = infer_quantized(({"input": {"scale": builder.scales.input}}, layers), x)
    f = infer_float(builder.model, x) if f is None else f
    d = plan_summary(builder, p)
    d["integer_accuracy"] = float(np.mean(q.argmax(1) == y)) if y is not None else None
    d["agreement"] = float(np.mean(q.argmax(1) == f.argmax(1)))
    d["output_snr_db"] = output_snr_db(f, q)
    if p.search:
        d["search"] = {k: v for k, v in p.search.items() if k not in ("steps", "sensitivity")}
    return d


def convert_executable(model_path: str | os.PathLike, out_dir: str | os.PathLike, crit=None,
                       calib: str | None = None, targets: list[Target] | None = None,
                       objective: str = "bytes", holdout: str | None = None,
                       bits_override: dict[str, int] | None = None) -> tuple[list, dict, PlanBuilder, Plan]:
    """Write an executable model directory (``model.json`` execution fields, docs/FORMAT.md 7).

    Widths: the searched plan for ``targets`` when given, else the per-layer gate; then
    ``bits_override`` (per layer name) on top. Returns ``(layers, info, builder, plan)``.
    """
    model = load_executable(model_path)
    data = load_calib(model, calib, holdout)
    builder = PlanBuilder(model, data.calib, crit)
    if targets:
        plan = make_plans(builder, data, targets, objective, include_snr=False)[0]
    else:
        plan = Plan("snr", builder.snr_bits())
    bits = list(plan.bits)
    for name, b in (bits_override or {}).items():
        if name not in builder.names:
            raise InputError(f"{model_path}: bits override names unknown layer {name!r}")
        bits[builder.names.index(name)] = int(b)
    layers = builder.build(bits)
    info = builder.info(layers, criteria=builder.crit.as_dict(), plan=plan_summary(builder, Plan(
        plan.name, bits, plan.budget, plan.target, plan.objective)),
        calibration={"method": builder.scales.method, "samples": builder.scales.samples,
                     "file": os.path.basename(data.calib_file)})
    from pyquant.analysis import layer_row, summarize

    info["summary"] = summarize([layer_row(r) for r in layers])
    if plan.search:
        info["plan"]["search"] = {k: v for k, v in plan.search.items() if k not in ("steps", "sensitivity")}
    curve = tradeoff(builder, data, plan, bits)

    def extra(tmp: Path) -> None:
        (tmp / TRADEOFF_NAME).write_text(dumps_strict_json(curve))

    write_model_dir(out_dir, layers, info, extra=extra)
    return layers, info, builder, plan


TRADEOFF_NAME = "tradeoff.json"


def tradeoff(builder: PlanBuilder, data: Data, plan: Plan, bits: list[int]) -> dict:
    """Accuracy / bits trade-off points on the held-out split: uniform widths, the SNR-gate plan,
    the search's accepted steps and the chosen plan (``tradeoff.json`` in the model directory)."""
    from pyquant.search import measure

    split = data.heldout
    labels = split.y is not None
    pts = []

    def point(name: str, kind: str, b: list[int]) -> None:
        m = measure(builder, b, split, labels=True)
        pts.append({"name": name, "kind": kind, "bits": [int(v) for v in b],
                    "avg_bits": avg_bits(builder, b), "weight_bytes": weight_bytes(builder, b),
                    "accuracy": m.get("integer_accuracy"), "agreement": 1.0 - m["disagreement"],
                    "output_snr_db": m["output_snr_db"]})

    for w in sorted(builder.crit.bits, reverse=True):
        point(f"all-INT{w}", "uniform", [w] * len(bits))
    point("snr", "snr", builder.snr_bits())
    for i, st in enumerate(plan.search.get("steps", [])[1:], start=1):
        point(f"step {i}", "search", st["bits"])
    point(plan.name, "chosen", bits)
    fa = float(np.mean(split.f.argmax(1) == split.y)) if labels else None
    return {"split": data.heldout_file, "samples": int(len(split.x)), "labels": labels,
            "float_accuracy": fa, "names": builder.names, "points": pts,
            "budget": plan.budget, "target": plan.target}


def digits_file(name: str) -> Path | None:
    """``examples/digits_<name>`` of the bundled digits data set (None when not shipped)."""
    f = Path(__file__).resolve().parents[1] / "examples" / f"digits_{name}"
    return f if f.exists() else None


def resolve_data(model, data: str | None) -> Path:
    """The labelled evaluation data: FILE.npz, ``digits`` or the model's ``pyquant.data.test``."""
    if data and data != "digits":
        return Path(data)
    f = data_file(model, "test")
    if f is None and data == "digits":
        f = digits_file("test.npz")
    if f is None:
        raise InputError(f"{model.source}: no evaluation data: give --data FILE.npz (X, y)")
    return f


def evaluate_model(model_path, data=None, calib=None, holdout=None, targets=None, objective="bytes",
                   crit=None) -> dict:
    """The ``pyquant evaluate`` JSON document: float accuracy, and per plan (``snr`` and one per
    target, default ``accuracy-drop=0.01``) the integer accuracy, output SNR, bits and bytes;
    plus the uniform-width trade-off, all measured on the labelled test data."""
    model = load_executable(model_path)
    dpath = resolve_data(model, data)
    x, y = load_data_file(dpath, model, labels=True)
    if y is None:
        raise InputError(f"{dpath}: evaluation data needs labels 'y'")
    if data == "digits" and calib is None and data_file(model, "calib") is None:
        # a model of the user's own trained on digits: the shipped calibration / held-out splits
        calib = digits_file("calib.npy")
        holdout = holdout or digits_file("heldout.npz")
    d = load_calib(model, calib, holdout)
    builder = PlanBuilder(model, d.calib, crit)
    ts = targets if targets else [Target(accuracy_drop=0.01)]
    plans = make_plans(builder, d, ts, objective)
    f = infer_float(model, x)
    doc = {
        "model": str(model_path), "data": str(dpath), "samples": int(len(y)),
        "calibration": d.calib_file, "heldout": d.heldout_file,
        "float_accuracy": float(np.mean(f.argmax(1) == y)),
        "plans": [evaluate_plan(builder, p, x, y, f) for p in plans],
    }
    # the accuracy / bits trade-off: uniform widths, measured on the same data
    doc["uniform"] = []
    for b in sorted(builder.crit.bits, reverse=True):
        e = evaluate_plan(builder, Plan(f"all-INT{b}", [b] * len(builder.names)), x, y, f)
        doc["uniform"].append({k: e[k] for k in ("name", "avg_bits", "weight_bytes", "integer_accuracy",
                                                  "output_snr_db")})
    return doc


def target_plan(model_path, crit, target: Target, calib=None, holdout=None, objective: str = "bytes"
                ) -> tuple[dict[str, int], dict]:
    """``analyze --target``: search the widths; return (bits per layer name, plan JSON with ``message``)."""
    model = load_executable(model_path)
    d = load_calib(model, calib, holdout)
    builder = PlanBuilder(model, d.calib, crit)
    plan = make_plans(builder, d, [target], objective, include_snr=False)[0]
    doc = plan_summary(builder, plan)
    doc["search"] = plan.search
    h = plan.search["heldout"]
    doc["message"] = (f"accuracy-aware plan {plan.name} (objective {plan.objective}): "
                      + ", ".join(f"{n}: INT{b}" for n, b in doc["bits"].items())
                      + f"; {doc['avg_bits']:.2f} bits/weight, {doc['weight_bytes']} bytes; held-out drop "
                      f"{h['drop']:.4f}, output SNR "
                      + ("exact" if h["output_snr_db"] is None else f"{h['output_snr_db']:.1f} dB")
                      + (" (budget met)" if plan.search["budget_met_heldout"] else " (budget NOT met)"))
    return doc["bits"], doc
