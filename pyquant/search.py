"""Accuracy-aware precision: per-layer widths under a model-level budget.

The per-layer SNR gate (docs/FORMAT.md section 1) judges each weight tensor alone; on real
models its 40 dB default keeps nearly everything at INT8. This module instead chooses the
widths by what they cost the *model*:

**Budget** (``--target``), checked on the *calibration* split while searching:

- ``accuracy-drop=X``: the fraction of calibration samples whose integer-pipeline prediction
  (argmax) differs from the float model's must be ``≤ X``. Disagreement needs no labels and
  bounds the true accuracy drop from above (a sample can only become wrong by disagreeing).
- ``output-snr=DB``: ``10·log10(Σ f² / Σ (f − q)²) ≥ DB`` between the float outputs ``f`` and the
  dequantized integer outputs ``q``.
Both may be given (both must hold).

**Objective** (``--objective``): ``bytes`` = packed weight bytes (row padding included);
``cycles`` = Σ over layers of MACs per sample / MACs per DSP per cycle at the layer's width
(:data:`MACS_PER_DSP`; the constant number of DSP lanes cancels). The other quantity breaks
ties (lexicographic objective), so steps that do not change the cycle count (8 → 6 → 4) still
happen when they save bytes on the way to INT2.

**Search** (sensitivity-guided greedy, deterministic):

1. Sensitivity: for every layer ``i`` and every lower width ``b``, the budget metric of the plan
   "layer ``i`` at ``b``, all others at the widest width" (one integer run each).
2. Start with every layer at the widest allowed width. A *move* lowers one layer to any lower
   allowed width. Candidate moves are ranked by objective saving divided by (sensitivity of
   the layer at the new width + a small epsilon); they are tried in that order and the first
   one whose whole plan still meets the budget on the calibration split is applied. When
   lowering layer ``i`` to ``b`` fails, widths ``≤ b`` are no longer tried for it. Repeat
   until no move is left; then, if moves were accepted since the failures were recorded, forget
   them and try again once more from the current plan (layers interact: a width that failed
   next to a wide neighbour can pass next to a narrower one). Stop after a pass that accepts
   nothing.
3. Held-out check: the plan is measured on the held-out split (true labels when present:
   accuracy drop = float accuracy − integer accuracy; otherwise disagreement). If it misses
   the budget there, the accepted moves are undone, last first, until it is met (the all-widest
   plan is the floor). The result records both splits and whether the budget is met.

The integer pipeline used for every measurement is :func:`pyquant.infer.infer_int` (bit-exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyquant.errors import InputError
from pyquant.executable import macs_per_sample
from pyquant.infer import infer_float, infer_quantized
from pyquant.packing import row_bytes

# MACs one DSP48E2 slice performs per cycle at each weight width with int8 activations, as
# ../shared/DESIGN.md derives and hls/pq_accel implements: two exact lanes (weights at offsets
# 0/18) for INT8, INT6 and INT4; INT2 as a 2x2 outer product (two activation columns) = 4.
# Used only to rank plans under --objective cycles.
MACS_PER_DSP = {8: 2, 6: 2, 4: 2, 2: 4}


@dataclass
class Target:
    """A model-level budget: max prediction disagreement and/or min output SNR (dB)."""

    accuracy_drop: float | None = None
    output_snr: float | None = None

    @property
    def label(self) -> str:
        parts = []
        if self.accuracy_drop is not None:
            parts.append(f"accuracy-drop={self.accuracy_drop:g}")
        if self.output_snr is not None:
            parts.append(f"output-snr={self.output_snr:g}")
        return ",".join(parts)

    @property
    def budget(self) -> float | None:
        """The JSON ``budget``: the accuracy-drop fraction, else the output-SNR dB."""
        return self.accuracy_drop if self.accuracy_drop is not None else self.output_snr


def parse_target(texts: list[str] | str | None) -> Target | None:
    """Parse ``accuracy-drop=X`` / ``output-snr=DB`` (repeatable or comma-separated)."""
    if not texts:
        return None
    if isinstance(texts, str):
        texts = [texts]
    t = Target()
    for text in texts:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            key, _, val = part.partition("=")
            try:
                v = float(val)
            except ValueError:
                raise InputError(f"--target: {part!r}: expected accuracy-drop=X or output-snr=DB") from None
            if key == "accuracy-drop":
                if not (0.0 <= v < 1.0):
                    raise InputError(f"--target: accuracy-drop must be a fraction in [0, 1), got {v}")
                t.accuracy_drop = v
            elif key == "output-snr":
                if not math.isfinite(v):
                    raise InputError("--target: output-snr must be finite")
                t.output_snr = v
            else:
                raise InputError(f"--target: unknown budget {key!r} (use accuracy-drop=X or output-snr=DB)")
    if t.accuracy_drop is None and t.output_snr is None:
        raise InputError("--target: no budget given")
    return t


def output_snr_db(f: np.ndarray, q: np.ndarray) -> float | None:
    """``10·log10(Σf²/Σ(f−q)²)``; ``None`` (JSON null) when exact."""
    err = float(np.sum((f - q) ** 2))
    sig = float(np.sum(f * f))
    if err == 0.0:
        return None
    if sig == 0.0:
        return -math.inf
    return 10.0 * math.log10(sig / err)


def weight_bytes(builder, bits: list[int]) -> int:
    return sum(ly.rows * row_bytes(ly.cols, b) for ly, b in zip(builder.model.layers, bits))


def avg_bits(builder, bits: list[int]) -> float:
    p = [ly.rows * ly.cols for ly in builder.model.layers]
    return sum(n * b for n, b in zip(p, bits)) / sum(p)


def cycles(builder, bits: list[int]) -> float:
    return sum(m / MACS_PER_DSP[b] for m, b in zip(macs_per_sample(builder.model), bits))


@dataclass
class Split:
    """A data split with its float reference outputs (and labels, if any)."""

    x: np.ndarray
    y: np.ndarray | None = None
    f: np.ndarray | None = None      # float outputs, filled by bind()

    def bind(self, model) -> Split:
        self.f = infer_float(model, self.x)
        return self


def measure(builder, bits: list[int], split: Split, labels: bool) -> dict:
    """Integer-pipeline metrics of a plan on a split: disagreement, accuracies, drop, output SNR."""
    layers = builder.build(list(bits))
    q = infer_quantized(({"input": {"scale": builder.scales.input}}, layers), split.x)
    pf, pq = split.f.argmax(1), q.argmax(1)
    r = {"disagreement": float(np.mean(pf != pq)), "output_snr_db": output_snr_db(split.f, q)}
    if labels and split.y is not None:
        fa, ia = float(np.mean(pf == split.y)), float(np.mean(pq == split.y))
        r.update(float_accuracy=fa, integer_accuracy=ia, drop=fa - ia)
    else:
        r["drop"] = r["disagreement"]
    return r


def meets(m: dict, t: Target) -> bool:
    ok = True
    if t.accuracy_drop is not None:
        ok &= m["drop"] <= t.accuracy_drop + 1e-12
    if t.output_snr is not None:
        s = m["output_snr_db"]
        ok &= s is None or s >= t.output_snr
    return bool(ok)


def _badness(m: dict, t: Target) -> float:
    """Sensitivity figure (larger = worse): drop and/or SNR shortfall, normalised by the budget."""
    v = 0.0
    if t.accuracy_drop is not None:
        v += m["drop"] / max(t.accuracy_drop, 1e-3)
    if t.output_snr is not None:
        s = m["output_snr_db"]
        v += 0.0 if s is None else max(0.0, 60.0 - s) / max(abs(t.output_snr), 1.0)
    return v


@dataclass
class SearchResult:
    bits: list[int]
    target: Target
    objective: str
    calib: dict
    heldout: dict
    met: bool
    steps: list[dict]
    sensitivity: dict
    backed_off: int = 0


def search(builder, target: Target, calib: Split, heldout: Split, objective: str = "bytes") -> SearchResult:
    """Sensitivity-guided greedy width search (module doc). Deterministic."""
    if objective not in ("bytes", "cycles"):
        raise InputError(f"--objective must be bytes or cycles, got {objective!r}")
    widths = sorted(builder.crit.bits, reverse=True)
    top = widths[0]
    n = len(builder.model.layers)
    byts, cyc = (lambda b: weight_bytes(builder, b)), (lambda b: cycles(builder, b))
    cost, cost2 = (byts, cyc) if objective == "bytes" else (cyc, byts)
    sens: dict[tuple[int, int], float] = {}
    for i in range(n):
        for b in widths[1:]:
            bits = [top] * n
            bits[i] = b
            sens[(i, b)] = _badness(measure(builder, bits, calib, labels=False), target)
    cur = [top] * n
    m_cur = measure(builder, cur, calib, labels=False)
    steps = [{"bits": list(cur), "cost": cost(cur), "avg_bits": avg_bits(builder, cur), **m_cur}]
    floor = [0] * n                     # per layer: the highest width that failed (lower ones are skipped)
    accepted: list[tuple[int, int]] = []
    pass_start = 0
    while True:
        moves = []
        for i in range(n):
            for nb in widths[widths.index(cur[i]) + 1:]:
                if nb <= floor[i]:
                    continue
                trial = list(cur)
                trial[i] = nb
                d = sens[(i, nb)] + 1e-3
                key = (-(cost(cur) - cost(trial)) / d, -(cost2(cur) - cost2(trial)) / d, i, -nb)
                moves.append((key, i, nb, trial))
        if not moves:
            if len(accepted) > pass_start and any(floor):   # second chance (see module doc)
                floor, pass_start = [0] * n, len(accepted)
                continue
            break
        moves.sort(key=lambda t: t[0])
        applied = False
        for _, i, nb, trial in moves:
            if nb <= floor[i]:
                continue
            m = measure(builder, trial, calib, labels=False)
            if meets(m, target):
                accepted.append((i, cur[i]))
                cur, m_cur = trial, m
                steps.append({"bits": list(cur), "cost": cost(cur), "avg_bits": avg_bits(builder, cur), **m})
                applied = True
                break
            floor[i] = max(floor[i], nb)
        if not applied:
            if len(accepted) > pass_start:      # the plan changed since the floors were set: retry them
                floor, pass_start = [0] * n, len(accepted)
                continue
            break
    m_hold = measure(builder, cur, heldout, labels=True)
    backed = 0
    while not meets(m_hold, target) and accepted:
        i, old = accepted.pop()
        cur = list(cur)
        cur[i] = old
        backed += 1
        m_hold = measure(builder, cur, heldout, labels=True)
    m_cal = measure(builder, cur, calib, labels=False)
    return SearchResult(bits=cur, target=target, objective=objective, calib=m_cal, heldout=m_hold,
                        met=meets(m_hold, target), steps=steps,
                        sensitivity={f"{builder.names[i]}@{b}": v for (i, b), v in sens.items()},
                        backed_off=backed)


def split_calibration(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic halves (even / odd samples) when no held-out file is given."""
    if len(x) < 2:
        raise InputError("calibration data needs at least 2 samples to hold one out")
    return x[0::2], x[1::2]
