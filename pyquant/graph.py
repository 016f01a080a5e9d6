"""Graph IR: a DAG of tensors and ops with static shapes, shared by the model importers.

Owns the data model only (no importer, no executor): :class:`Tensor`, :class:`Op`, :class:`Graph`,
the per-op-kind shape rules (:func:`op_output_shapes`) and the user <-> internal layout conversion.

Semantics (float64, numpy):

- Shapes are per sample, WITHOUT the batch dimension; at run time every array is ``[N, *shape]``.
- Canonical internal layout: rank-3 tensors are HWC, rank-1 tensors are ``(C,)``.
  ``Graph.input_layout`` is the user's layout of the (single) input (``"NCHW"``: 4-D ONNX input,
  ``"NHWC"``: TFLite, ``"NC"``: flat); ``Graph.output_layouts`` likewise per output.
- Ops are stored in topological order; constants (weights, biases, scalars) are :class:`Tensor`
  objects with ``const`` set, referenced by name in ``Op.inputs``.

Op kinds and attributes:

- ``conv2d`` [x, w, b]: w OHWI ``[M, KH, KW, C/groups]``; ``stride (sh, sw)``,
  ``pads (t, l, b, r)``, ``dilation (dh, dw)``, ``groups``, ``act`` ("none" | "relu" | "relu6").
- ``dense`` [x, w, b]: w ``[M, K]`` (K in the input's row-major internal order); ``act``.
- ``add`` / ``sub`` / ``mul`` [a, b]: numpy broadcasting in the internal layout; ``act``.
- ``concat``: ``axis`` (per-sample axis; channel = last).
- ``maxpool`` / ``avgpool``: ``kernel (kh, kw)``, ``stride``, ``pads (t, l, b, r)`` (ceil_mode is
  already extra bottom/right padding), ``count_include_pad`` (avg). ``global_avgpool``: ``keepdims``
  (True -> (1, 1, C), False -> (C,)).
- ``pad``: ``pads (t, l, b, r)``, ``value``.
- elementwise: ``relu``, ``clip`` (``lo``, ``hi``), ``leaky_relu`` (``alpha``), ``prelu`` [x, slope],
  ``hardsigmoid`` (``alpha``, ``beta``), ``hardswish``, ``sigmoid``, ``tanh``,
  ``maximum`` / ``minimum`` [x, const], ``affine`` [x, scale, shift] (per channel).
- layout: ``reshape`` (``shape``: per-sample target), ``transpose`` (``perm``: per-sample axes).
- ``softmax`` / ``log_softmax`` (``axis``): only as the last op(s) of the graph.

Importers may add extra attributes; consumers ignore unknown ones. The ONNX importer sets
``weight_name`` / ``weight_shape`` (source weight tensor and its original shape) on conv2d/dense,
``folded`` (names of BatchNormalization nodes folded in), ``flatten_chw`` on a dense layer whose
columns were permuted from an ONNX CHW flatten to HWC, and ``count_pads`` on avgpool (the padding
``count_include_pad`` counts; default ``pads``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyquant.errors import InputError

ELEMENTWISE = {"relu", "clip", "leaky_relu", "prelu", "hardsigmoid", "hardswish", "sigmoid", "tanh",
               "maximum", "minimum", "affine"}
BINARY = {"add", "sub", "mul"}
POOLS = {"maxpool", "avgpool"}
WEIGHT_KINDS = {"conv2d", "dense"}
FINAL_KINDS = {"softmax", "log_softmax"}
OP_KINDS = ELEMENTWISE | BINARY | POOLS | WEIGHT_KINDS | FINAL_KINDS | {
    "concat", "global_avgpool", "pad", "reshape", "transpose"}
ACTS = ("none", "relu", "relu6")


@dataclass
class Tensor:
    """A named tensor: per-sample ``shape``; ``const`` is the float64 value of a constant."""

    name: str
    shape: tuple[int, ...]
    const: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not None


@dataclass
class Op:
    """One operation. ``name`` is the source node/op name, ``source`` the source op type."""

    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    source: str = ""


def _pool_out(size: int, k: int, s: int, p0: int, p1: int, d: int = 1) -> int:
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _broadcast(a: tuple, b: tuple, where: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(a, b))
    except ValueError:
        raise InputError(f"{where}: operand shapes {a} and {b} do not broadcast") from None


def op_output_shapes(op: Op, shapes: list[tuple[int, ...]], where: str = "") -> list[tuple[int, ...]]:
    """Per-sample output shapes of ``op`` given its input shapes (:class:`InputError` on mismatch)."""
    k, a = op.kind, op.attrs
    here = f"{where}: {op.source or op.kind} {op.name!r}" if where else f"{op.source or op.kind} {op.name!r}"
    x = shapes[0] if shapes else ()
    if k == "conv2d":
        w = shapes[1]
        if len(x) != 3 or len(w) != 4:
            raise InputError(f"{here}: conv2d needs an HWC input and an OHWI weight, got {x} and {w}")
        g = int(a.get("groups", 1))
        if x[2] != w[3] * g or w[0] % g:
            raise InputError(f"{here}: input has {x[2]} channels, weight {w} with groups={g} expects {w[3] * g}")
        (sh, sw), (t, l_, b, r), (dh, dw) = a["stride"], a["pads"], a.get("dilation", (1, 1))
        oh, ow = _pool_out(x[0], w[1], sh, t, b, dh), _pool_out(x[1], w[2], sw, l_, r, dw)
        if oh < 1 or ow < 1:
            raise InputError(f"{here}: output would be empty (input {x}, kernel {w[1]}x{w[2]})")
        return [(oh, ow, w[0])]
    if k == "dense":
        w = shapes[1]
        if len(w) != 2 or int(np.prod(x)) != w[1] or len(x) != 1:
            raise InputError(f"{here}: input {x} does not match a [M, K] weight {w}")
        return [(w[0],)]
    if k in BINARY:
        return [_broadcast(shapes[0], shapes[1], here)]
    if k in ELEMENTWISE:
        for s in shapes[1:]:
            if _broadcast(x, s, here) != tuple(x):
                raise InputError(f"{here}: parameter shape {s} does not broadcast to {x}")
        return [tuple(x)]
    if k == "concat":
        ax = int(a["axis"]) % len(x)
        for s in shapes[1:]:
            if len(s) != len(x) or any(d != e for i, (d, e) in enumerate(zip(s, x)) if i != ax):
                raise InputError(f"{here}: cannot concatenate {shapes} on axis {ax}")
        return [tuple(sum(s[ax] for s in shapes) if i == ax else d for i, d in enumerate(x))]
    if k in POOLS:
        if len(x) != 3:
            raise InputError(f"{here}: pooling needs an HWC input, got {x}")
        (kh, kw), (sh, sw), (t, l_, b, r) = a["kernel"], a["stride"], a["pads"]
        oh, ow = _pool_out(x[0], kh, sh, t, b), _pool_out(x[1], kw, sw, l_, r)
        if oh < 1 or ow < 1:
            raise InputError(f"{here}: output would be empty (input {x}, kernel {kh}x{kw})")
        return [(oh, ow, x[2])]
    if k == "global_avgpool":
        if len(x) != 3:
            raise InputError(f"{here}: global pooling needs an HWC input, got {x}")
        return [(1, 1, x[2]) if a.get("keepdims", True) else (x[2],)]
    if k == "pad":
        if len(x) != 3:
            raise InputError(f"{here}: pad needs an HWC input, got {x}")
        t, l_, b, r = a["pads"]
        return [(x[0] + t + b, x[1] + l_ + r, x[2])]
    if k == "reshape":
        tgt = tuple(int(d) for d in a["shape"])
        if int(np.prod(tgt)) != int(np.prod(x)):
            raise InputError(f"{here}: cannot reshape {x} to {tgt}")
        return [tgt]
    if k == "transpose":
        perm = tuple(int(p) for p in a["perm"])
        if sorted(perm) != list(range(len(x))):
            raise InputError(f"{here}: perm {perm} does not fit shape {x}")
        return [tuple(x[p] for p in perm)]
    if k in FINAL_KINDS:
        return [tuple(x)]
    raise InputError(f"{here}: unknown op kind {k!r}")


@dataclass
class Graph:
    """A topologically ordered DAG; see the module doc for the layout conventions."""

    name: str
    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    input_layout: str = "NC"
    output_layouts: list[str] = field(default_factory=list)
    source_path: str = ""
    metadata: dict = field(default_factory=dict)   # source model metadata (key -> value strings)

    # ------------------------------------------------------------------ queries
    def producer(self, tensor: str) -> Op | None:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def weight_ops(self) -> list[Op]:
        """Ops that carry a weight matrix (``conv2d``, ``dense``), in execution order."""
        return [op for op in self.ops if op.kind in WEIGHT_KINDS]

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.tensors[tensor].shape

    def const(self, tensor: str) -> np.ndarray | None:
        t = self.tensors.get(tensor)
        return None if t is None else t.const

    # ------------------------------------------------------------------ checks
    def infer_shapes(self) -> None:
        """Recompute every non-constant tensor's shape from the input shapes (in op order)."""
        where = self.source_path or self.name
        for op in self.ops:
            shapes = [self.tensors[i].shape for i in op.inputs]
            outs = op_output_shapes(op, shapes, where)
            for o, s in zip(op.outputs, outs):
                if o in self.tensors:
                    self.tensors[o].shape = tuple(s)
                else:
                    self.tensors[o] = Tensor(o, tuple(s))

    def validate(self) -> None:
        """Check definitions before use, single producers, static shapes that match the shape rules,
        and that softmax/log_softmax only end the graph; :class:`InputError` otherwise."""
        where = self.source_path or self.name
        defined = {n for n, t in self.tensors.items() if t.is_const} | set(self.inputs)
        for n in self.inputs:
            if n not in self.tensors or self.tensors[n].is_const:
                raise InputError(f"{where}: graph input {n!r} is not a declared activation tensor")
        for t in self.tensors.values():
            if not t.is_const and any(not isinstance(d, (int, np.integer)) or d < 1 for d in t.shape):
                raise InputError(f"{where}: tensor {t.name!r} has a non-static shape {t.shape}")
        for op in self.ops:
            if op.kind not in OP_KINDS:
                raise InputError(f"{where}: {op.source} {op.name!r}: unknown op kind {op.kind!r}")
            for i in op.inputs:
                if i not in defined:
                    raise InputError(f"{where}: {op.source} {op.name!r} uses {i!r} before it is defined")
            outs = op_output_shapes(op, [self.tensors[i].shape for i in op.inputs], where)
            for o, s in zip(op.outputs, outs):
                if o in defined:
                    raise InputError(f"{where}: tensor {o!r} has more than one producer")
                if o not in self.tensors or tuple(self.tensors[o].shape) != tuple(s):
                    got = self.tensors[o].shape if o in self.tensors else None
                    raise InputError(f"{where}: {op.source} {op.name!r} output {o!r} has shape {got}, "
                                     f"the shape rules give {tuple(s)}")
                defined.add(o)
            if op.kind in FINAL_KINDS:
                for c in self.consumers(op.outputs[0]):
                    if c.kind not in FINAL_KINDS and c.kind not in ("reshape", "transpose"):
                        raise InputError(f"{where}: {op.source} {op.name!r} must be the last op "
                                         f"(it feeds {c.source} {c.name!r})")
        for o in self.outputs:
            if o not in defined:
                raise InputError(f"{where}: graph output {o!r} is never computed")

    # ------------------------------------------------------------------ layouts
    def to_internal(self, x: np.ndarray) -> np.ndarray:
        """User array ``[N, ...]`` in ``input_layout`` -> internal ``[N, *shape]`` (float64)."""
        x = np.asarray(x, dtype=np.float64)
        if self.input_layout == "NCHW" and x.ndim == 4:
            x = x.transpose(0, 2, 3, 1)
        want = self.tensors[self.inputs[0]].shape
        if tuple(x.shape[1:]) != tuple(want):
            raise InputError(f"{self.source_path or self.name}: input has shape {tuple(x.shape)}, "
                             f"the model expects [N, {', '.join(map(str, want))}] internally "
                             f"({self.input_layout})")
        return x

    def from_internal(self, y: np.ndarray, index: int = 0) -> np.ndarray:
        """Internal output ``[N, *shape]`` -> the user's layout of output ``index``."""
        lay = self.output_layouts[index] if index < len(self.output_layouts) else "NC"
        if lay == "NCHW" and y.ndim == 4:
            return y.transpose(0, 3, 1, 2)
        return y


__all__ = ["Tensor", "Op", "Graph", "op_output_shapes", "OP_KINDS", "ELEMENTWISE", "BINARY", "POOLS",
           "WEIGHT_KINDS", "FINAL_KINDS", "ACTS"]
