"""ONNX -> :class:`pyquant.graph.Graph`: a registry of per-operator-family handlers.

:func:`import_onnx` reads the model (via :func:`pyquant.onnx_io.load_onnx`), folds every constant
subgraph (weights behind Transpose/Cast/arithmetic, and ``Shape``-derived reshape targets of a
dynamic batch), pins dynamic input dimensions (``input_shape``), then lets one handler per operator
family (:data:`HANDLERS`) emit graph ops. Activations are converted from ONNX NCHW to the internal
HWC layout: weights are permuted (conv OIHW -> OHWI, per-channel constants to channel-last) and a
layout op (``transpose``/``reshape``) is emitted only where a node really changes the layout.
The clean-up passes of :mod:`pyquant.importers.graph_passes` then fold bias adds and
BatchNormalization into the preceding conv/dense, fuse ReLU/ReLU6, and turn a Flatten feeding a
dense layer into a column permutation of that layer's weight.

A model with unsupported operators gets ONE :class:`InputError` listing every unsupported operator
type with its node names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pyquant.errors import InputError
from pyquant.graph import Graph, Op, Tensor, op_output_shapes
from pyquant.importers.graph_passes import optimize

BATCH = 7919    # stands in for the dynamic batch size in Shape-derived constants (a prime)
HWC = (1, 2, 0)  # internal axes of a per-sample ONNX (C, H, W) tensor


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def node_name(node, index: int) -> str:
    """The node's name, or ``<OpType>_<index + 1>`` as :mod:`pyquant.onnx_io` names layers."""
    return node.name or f"{node.op_type}_{index + 1}"


def _lay(rank: int) -> tuple[int, ...]:
    """Internal axis order of a per-sample ONNX tensor of ``rank`` (rank 3 = CHW -> HWC)."""
    return HWC if rank == 3 else tuple(range(rank))


def _is_reshape_transpose(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """True when transposing ``shape`` by ``perm`` keeps the order of the non-unit axes."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


class Ctx:
    """Import state: the ONNX constants, the graph under construction and the ONNX -> internal
    tensor map. Handlers call :meth:`act`, :meth:`const`, :meth:`emit` and :meth:`alias`."""

    def __init__(self, path: Path, model, consts: dict[str, np.ndarray], opset: int):
        self.path, self.where, self.model, self.consts, self.opset = path, str(path), model, consts, opset
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.internal: dict[str, str] = {}          # ONNX activation name -> internal tensor name
        self.oshape: dict[str, tuple[int, ...]] = {}  # ONNX activation name -> per-sample ONNX shape
        self.producer: dict[str, tuple[object, str]] = {}
        self.static_batch = BATCH                     # the input's static batch size, if any
        self.node = None
        self.name = ""
        self._n = 0

    # ----------------------------------------------------------------- naming / errors
    def fail(self, msg: str):
        raise InputError(f"{self.where}: {self.node.op_type} {self.name!r}: {msg}")

    def fresh(self, base: str) -> str:
        name = base
        while name in self.tensors:
            self._n += 1
            name = f"{base}#{self._n}"
        return name

    # ----------------------------------------------------------------- inputs
    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, name: str, what: str = "constant", numeric: bool = True) -> np.ndarray:
        """A constant input as float64, checked finite (:class:`InputError` otherwise)."""
        if name not in self.consts:
            self.fail(f"{what} {name!r} must be a constant")
        a = np.asarray(self.consts[name])
        if not numeric:
            return a
        if a.dtype.kind not in "fiub":
            self.fail(f"{what} {name!r} has unsupported dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            self.fail(f"{what} {name!r} contains NaN or Inf")
        return a

    def act(self, name: str) -> str:
        if name not in self.internal:
            if name in self.consts:
                self.fail(f"input {name!r} is a constant where an activation is expected")
            self.fail(f"input {name!r} is not computed by a supported node")
        return self.internal[name]

    def ishape(self, name: str) -> tuple[int, ...]:
        return self.tensors[self.act(name)].shape

    def add_const(self, base: str, value: np.ndarray) -> str:
        n = self.fresh(base)
        v = np.asarray(value, dtype=np.float64)
        self.tensors[n] = Tensor(n, tuple(int(d) for d in v.shape), v)
        return n

    def per_sample_const(self, value: np.ndarray, rank: int) -> np.ndarray:
        """An ONNX constant broadcast against ``[N, *per-sample rank]`` -> internal per-sample form."""
        v = np.asarray(value)
        if v.ndim > rank + 1 or (v.ndim == rank + 1 and v.shape[0] != 1):
            self.fail(f"constant of shape {v.shape} would broadcast over the batch dimension")
        if v.ndim == rank + 1:
            v = v.reshape(v.shape[1:])
        if v.ndim == 0 or rank != 3:
            return v
        v = v.reshape((1,) * (rank - v.ndim) + v.shape)
        return v.transpose(HWC)

    # ----------------------------------------------------------------- outputs
    def emit(self, kind: str, inputs: list[str], attrs: dict, out: str | None = None, base: str = "") -> str:
        """Append an op; ``out`` is the ONNX output it defines (None: an internal temporary)."""
        o = self.fresh(out if out is not None else f"{self.name}/{base or kind}")
        op = Op(kind, self.name, list(inputs), [o], dict(attrs), self.node.op_type)
        shapes = [self.tensors[i].shape for i in inputs]
        (shape,) = op_output_shapes(op, shapes, self.where)
        self.tensors[o] = Tensor(o, tuple(shape))
        self.ops.append(op)
        if out is not None:
            self.define(out, o)
        return o

    def define(self, onnx_name: str, internal: str) -> None:
        s = self.tensors[internal].shape
        if len(s) == 3:
            s = (s[2], s[0], s[1])
        self.internal[onnx_name] = internal
        self.oshape[onnx_name] = tuple(s)

    def alias(self, onnx_out: str, onnx_in: str) -> None:
        self.internal[onnx_out] = self.act(onnx_in)
        self.oshape[onnx_out] = self.oshape[onnx_in]

    def relayout(self, x_onnx: str, out_oshape: tuple[int, ...], out: str) -> None:
        """Emit the ops that turn ONNX tensor ``x_onnx`` into the row-major ONNX reshape
        ``out_oshape`` (per sample), both in their internal layouts."""
        cur = self.act(x_onnx)
        ins = self.oshape[x_onnx]
        if tuple(ins) == tuple(out_oshape):
            self.alias(out, x_onnx)
            return
        steps = []
        inv = tuple(int(i) for i in np.argsort(_lay(len(ins))))
        if inv != tuple(range(len(ins))):
            steps.append(("transpose", inv, self.tensors[cur].shape))
        steps.append(("reshape", tuple(out_oshape), None))
        lay = _lay(len(out_oshape))
        if lay != tuple(range(len(lay))):
            steps.append(("transpose", lay, tuple(out_oshape)))
        for i, (kind, arg, shape) in enumerate(steps):
            last = out if i == len(steps) - 1 else None
            if kind == "transpose" and _is_reshape_transpose(shape, arg):
                cur = self.emit("reshape", [cur], {"shape": tuple(shape[p] for p in arg)}, last)
            elif kind == "transpose":
                cur = self.emit("transpose", [cur], {"perm": arg}, last)
            else:
                cur = self.emit("reshape", [cur], {"shape": arg}, last)


# =========================================================================== handlers


def _auto_pads(a: dict, size: tuple[int, int], k: tuple[int, int], s: tuple[int, int],
               d: tuple[int, int], ctx: Ctx) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", "NOTSET") or "NOTSET"
    if auto == "NOTSET":
        p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        if len(p) != 4 or min(p) < 0:
            ctx.fail(f"pads {p} must be 4 values >= 0 (2-D only)")
        return (p[0], p[1], p[2], p[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        ctx.fail(f"unknown auto_pad {auto!r}")
    pads = []
    for n, kk, ss, dd in zip(size, k, s, d):
        tot = max(0, (-(-n // ss) - 1) * ss + dd * (kk - 1) + 1 - n)
        small, big = tot // 2, tot - tot // 2
        pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _pair(a: dict, key: str, default, ctx: Ctx, low: int = 1) -> tuple[int, int]:
    v = [int(x) for x in a.get(key, default)]
    if len(v) != 2 or min(v) < low:
        ctx.fail(f"{key} {v} must be two values >= {low} (2-D only)")
    return (v[0], v[1])


def h_conv(ctx: Ctx, node, a: dict) -> None:
    """Conv (2-D; any group incl. depthwise, stride, dilation, pads, auto_pad)."""
    x = ctx.act(node.input[0])
    xs = ctx.tensors[x].shape
    w = ctx.const(node.input[1], "weight") if len(node.input) > 1 else None
    if w is None or w.ndim != 4 or len(xs) != 3:
        ctx.fail("only 2-D convolutions (4-D input and constant 4-D weight) are supported")
    g = int(a.get("group", 1))
    if g < 1 or xs[2] != w.shape[1] * g or w.shape[0] % g:
        ctx.fail(f"weight {tuple(w.shape)} with group={g} does not fit {xs[2]} input channels")
    k = (int(w.shape[2]), int(w.shape[3]))
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != k:
        ctx.fail(f"kernel_shape {a['kernel_shape']} differs from the weight's {k}")
    s, d = _pair(a, "strides", [1, 1], ctx), _pair(a, "dilations", [1, 1], ctx)
    pads = _auto_pads(a, xs[:2], k, s, d, ctx)
    b = np.zeros(w.shape[0])
    if len(node.input) > 2 and node.input[2]:
        b = ctx.const(node.input[2], "bias").reshape(-1)
        if b.size != w.shape[0]:
            ctx.fail(f"bias has {b.size} entries for {w.shape[0]} output channels")
    wn = ctx.add_const(node.input[1], w.transpose(0, 2, 3, 1))
    bn = ctx.add_const(node.input[2] if len(node.input) > 2 and node.input[2] else f"{ctx.name}/bias", b)
    ctx.emit("conv2d", [x, wn, bn], {"stride": s, "pads": pads, "dilation": d, "groups": g, "act": "none",
                                     "weight_name": node.input[1], "weight_shape": tuple(w.shape)}, node.output[0])


def _dense_input(ctx: Ctx, name: str) -> str:
    x = ctx.act(name)
    if len(ctx.tensors[x].shape) != 1:
        p = ctx.producer.get(name)
        src = f" (from {p[0].op_type} {p[1]!r})" if p else ""
        ctx.fail(f"input must be 2-D [N, K], got [N, {', '.join(map(str, ctx.oshape[name]))}]{src}")
    return x


def h_dense(ctx: Ctx, node, a: dict) -> None:
    """Gemm (transA = 0; alpha, beta, transB) and MatMul with a constant right operand."""
    if node.op_type == "Gemm":
        if a.get("transA", 0):
            ctx.fail("transA=1 is not supported")
        bm = ctx.const(node.input[1], "weight")
        if bm.ndim != 2:
            ctx.fail(f"weight {node.input[1]!r} has shape {bm.shape}; need 2-D")
        w = (bm if a.get("transB", 0) else bm.T) * float(a.get("alpha", 1.0))
        b = np.zeros(w.shape[0])
        if len(node.input) > 2 and node.input[2]:
            c = ctx.const(node.input[2], "bias") * float(a.get("beta", 1.0))
            if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
                ctx.fail(f"bias of shape {c.shape} is not per output ({w.shape[0]})")
            b = np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy()
    else:
        if ctx.is_const(node.input[0]):
            ctx.fail("MatMul with a constant left operand is not supported")
        if not ctx.is_const(node.input[1]) or np.ndim(ctx.consts[node.input[1]]) != 2:
            ctx.fail("needs a constant 2-D [K, N] right operand")
        w = ctx.const(node.input[1], "weight").T.copy()
        b = np.zeros(w.shape[0])
    x = _dense_input(ctx, node.input[0])
    if ctx.tensors[x].shape[0] != w.shape[1]:
        ctx.fail(f"weight has {w.shape[1]} inputs, the activation has {ctx.tensors[x].shape[0]}")
    wn, bn = ctx.add_const(node.input[1], w), ctx.add_const(f"{ctx.name}/bias", b)
    ctx.emit("dense", [x, wn, bn], {"act": "none", "weight_name": node.input[1],
                                    "weight_shape": tuple(w.shape)}, node.output[0])


def _operand(ctx: Ctx, name: str, rank: int) -> str:
    if ctx.is_const(name):
        return ctx.add_const(name, ctx.per_sample_const(ctx.const(name), rank))
    return ctx.act(name)


def h_binary(ctx: Ctx, node, a: dict) -> None:
    """Add/Sub/Mul/Div (activation with activation, or with a constant), Max/Min with a constant."""
    ins = list(node.input)
    acts = [i for i in ins if not ctx.is_const(i)]
    if len(ins) != 2 or not acts:
        ctx.fail(f"needs two inputs, at least one an activation (has {len(ins)})")
    ranks = {len(ctx.oshape[i]) for i in acts if ctx.act(i)}
    if len(ranks) != 1:
        ctx.fail(f"activation operands have different ranks {[ctx.oshape[i] for i in acts]}")
    rank = ranks.pop()
    op = node.op_type
    if op in ("Max", "Min"):
        if len(acts) != 1:
            ctx.fail("only the maximum/minimum of an activation and a constant is supported")
        c = _operand(ctx, ins[0] if ins[0] != acts[0] else ins[1], rank)
        ctx.emit("maximum" if op == "Max" else "minimum", [ctx.act(acts[0]), c], {}, node.output[0])
        return
    if op == "Div":
        if ctx.is_const(ins[0]) or not ctx.is_const(ins[1]):
            ctx.fail("only division by a constant is supported")
        c = ctx.const(ins[1])
        if np.any(c == 0):
            ctx.fail("division by a constant containing 0")
        r = ctx.add_const(ins[1], ctx.per_sample_const(1.0 / c, rank))
        ctx.emit("mul", [ctx.act(ins[0]), r], {"act": "none"}, node.output[0])
        return
    ops = [_operand(ctx, i, rank) for i in ins]
    try:
        np.broadcast_shapes(*[ctx.tensors[o].shape for o in ops])
    except ValueError:
        shapes = [ctx.oshape[i] if i in ctx.oshape else np.shape(ctx.consts[i]) for i in ins]
        ctx.fail(f"operand shapes {shapes} do not broadcast")
    ctx.emit(op.lower(), ops, {"act": "none"}, node.output[0])


def h_concat(ctx: Ctx, node, a: dict) -> None:
    """Concat of activations along a non-batch axis (internal axis: channel = last)."""
    xs = [ctx.act(i) for i in node.input]
    rank = len(ctx.oshape[node.input[0]])
    ax = int(a.get("axis", 1))
    ax = ax + rank + 1 if ax < 0 else ax
    if ax < 1 or ax > rank:
        ctx.fail(f"axis {a.get('axis')} is the batch axis or out of range")
    ctx.emit("concat", xs, {"axis": _lay(rank).index(ax - 1)}, node.output[0])


def _ceil_extra(n: int, k: int, s: int, p0: int, p1: int) -> int:
    """Extra end padding that ceil_mode adds (no window may start in the end padding)."""
    out = -(-(n + p0 + p1 - k) // s) + 1
    if (out - 1) * s >= n + p0:
        out -= 1
    return max(0, (out - 1) * s + k - (n + p0 + p1))


def h_pool(ctx: Ctx, node, a: dict) -> None:
    """MaxPool/AveragePool (pads, auto_pad, strides, ceil_mode, count_include_pad),
    GlobalAveragePool, GlobalMaxPool."""
    x = ctx.act(node.input[0])
    xs = ctx.tensors[x].shape
    if len(xs) != 3:
        ctx.fail("only 2-D pooling of a 4-D [N, C, H, W] input is supported")
    if node.op_type == "GlobalAveragePool":
        ctx.emit("global_avgpool", [x], {"keepdims": True}, node.output[0])
        return
    if node.op_type == "GlobalMaxPool":
        ctx.emit("maxpool", [x], {"kernel": xs[:2], "stride": (1, 1), "pads": (0, 0, 0, 0)}, node.output[0])
        return
    if len([o for o in node.output if o]) > 1:
        ctx.fail("the Indices output is not supported")
    k = _pair(a, "kernel_shape", [], ctx)
    s = _pair(a, "strides", [1, 1], ctx)
    if _pair(a, "dilations", [1, 1], ctx) != (1, 1):
        ctx.fail(f"dilations {a['dilations']} are not supported")
    t, l_, b, r = _auto_pads(a, xs[:2], k, s, (1, 1), ctx)
    attrs = {"kernel": k, "stride": s, "pads": (t, l_, b, r)}
    if int(a.get("ceil_mode", 0)):
        eb, er = _ceil_extra(xs[0], k[0], s[0], t, b), _ceil_extra(xs[1], k[1], s[1], l_, r)
        attrs["pads"] = (t, l_, b + eb, r + er)
    if node.op_type == "AveragePool":
        attrs["count_include_pad"] = bool(int(a.get("count_include_pad", 0)))
        attrs["count_pads"] = attrs["pads"]     # onnxruntime divides by the whole kernel, ceil rows too
    ctx.emit("maxpool" if node.op_type == "MaxPool" else "avgpool", [x], attrs, node.output[0])


def h_activation(ctx: Ctx, node, a: dict) -> None:
    """Relu, Clip, LeakyRelu, PRelu, HardSigmoid, HardSwish, Sigmoid, Tanh."""
    op, x = node.op_type, ctx.act(node.input[0])
    rank = len(ctx.oshape[node.input[0]])
    if op == "Clip":
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(ctx.const(node.input[1], "min").reshape(()))
        if len(node.input) > 2 and node.input[2]:
            hi = float(ctx.const(node.input[2], "max").reshape(()))
        ctx.emit("clip", [x], {"lo": float(lo), "hi": float(hi)}, node.output[0])
    elif op == "PRelu":
        ctx.emit("prelu", [x, _operand(ctx, node.input[1], rank)], {}, node.output[0])
    elif op == "LeakyRelu":
        ctx.emit("leaky_relu", [x], {"alpha": float(a.get("alpha", 0.01))}, node.output[0])
    elif op == "HardSigmoid":
        ctx.emit("hardsigmoid", [x], {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))},
                 node.output[0])
    else:
        kind = {"Relu": "relu", "HardSwish": "hardswish", "Sigmoid": "sigmoid", "Tanh": "tanh"}[op]
        ctx.emit(kind, [x], {}, node.output[0])


def h_batchnorm(ctx: Ctx, node, a: dict) -> None:
    """BatchNormalization (inference) -> per-channel affine (folded later where possible)."""
    if len(node.input) < 5:
        ctx.fail("needs scale, bias, mean and var inputs")
    if len([o for o in node.output if o]) > 1:
        ctx.fail("training-mode outputs (running mean/var) are not supported")
    gam, bet, mean, var = (ctx.const(i, "parameter").reshape(-1) for i in node.input[1:5])
    oshape = ctx.oshape[node.input[0]]
    c = oshape[0] if oshape else 1
    eps = float(a.get("epsilon", 1e-5))
    if any(v.size != c for v in (gam, bet, mean, var)) or np.any(var + eps <= 0):
        ctx.fail(f"parameters must have {c} entries (one per channel) and var + epsilon > 0")
    sc = gam / np.sqrt(var + eps)
    sh = bet - mean * sc
    rank = len(oshape)
    shape = (c,) + (1,) * (rank - 1)
    s_n = ctx.add_const(f"{ctx.name}/scale", ctx.per_sample_const(sc.reshape(shape), rank))
    b_n = ctx.add_const(f"{ctx.name}/shift", ctx.per_sample_const(sh.reshape(shape), rank))
    ctx.emit("affine", [ctx.act(node.input[0]), s_n, b_n], {}, node.output[0])


def h_softmax(ctx: Ctx, node, a: dict) -> None:
    """Softmax / LogSoftmax (must end the graph)."""
    rank = len(ctx.oshape[node.input[0]])
    ax = int(a.get("axis", -1 if ctx.opset >= 13 else 1))
    ax = ax + rank + 1 if ax < 0 else ax
    if ax < 1 or ax > rank or (ctx.opset < 13 and ax != rank):
        ctx.fail(f"axis {a.get('axis')} is not supported (only a non-batch axis; the last one before opset 13)")
    kind = "softmax" if node.op_type == "Softmax" else "log_softmax"
    ctx.emit(kind, [ctx.act(node.input[0])], {"axis": _lay(rank).index(ax - 1)}, node.output[0])


def h_pad(ctx: Ctx, node, a: dict) -> None:
    """Pad (constant mode) of the spatial dims of a 4-D input."""
    if (a.get("mode", "constant") or "constant") != "constant":
        ctx.fail(f"mode {a.get('mode')!r} is not supported (constant only)")
    if len(node.input) > 1 and node.input[1]:
        pads = [int(v) for v in ctx.const(node.input[1], "pads").reshape(-1)]
    else:
        pads = [int(v) for v in a.get("pads", [])]
    value = float(a.get("value", 0.0))
    if len(node.input) > 2 and node.input[2]:
        value = float(ctx.const(node.input[2], "constant_value").reshape(()))
    if len(node.input) > 3 and node.input[3]:
        ctx.fail("the axes input is not supported")
    x = ctx.act(node.input[0])
    if len(ctx.tensors[x].shape) != 3 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        ctx.fail(f"pads {pads}: only non-negative H/W padding of a 4-D input is supported")
    ctx.emit("pad", [x], {"pads": (pads[2], pads[3], pads[6], pads[7]), "value": value}, node.output[0])


def _reshape_target(ctx: Ctx, full: tuple, tgt: list[int], allowzero: bool) -> tuple | None:
    """The full output shape of Reshape(full, tgt) with the batch first, or None if the batch mixes."""
    shape = [full[i] if v == 0 and not allowzero and i < len(full) else v for i, v in enumerate(tgt)]
    if not shape or shape[0] not in (-1, BATCH, ctx.static_batch) or shape.count(-1) > 1:
        return None
    rest, numel = shape[1:], int(np.prod(full[1:]))
    if -1 in rest:
        known = int(np.prod([v for v in rest if v != -1]))
        if known <= 0 or numel % known:
            return None
        rest = [numel // known if v == -1 else v for v in rest]
    if int(np.prod(rest)) != numel or min(rest, default=1) < 1:
        return None
    return (BATCH,) + tuple(rest)


def h_layout(ctx: Ctx, node, a: dict) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze, Transpose (layout-only: the batch axis stays first)."""
    op, src = node.op_type, node.input[0]
    ctx.act(src)
    ins = ctx.oshape[src]
    full = (BATCH,) + tuple(ins)
    if op == "Transpose":
        perm = [int(p) for p in a.get("perm", list(range(len(full)))[::-1])]
        if sorted(perm) != list(range(len(full))) or perm[0] != 0:
            ctx.fail(f"perm {perm} moves the batch axis")
        p = tuple(q - 1 for q in perm[1:])
        out = tuple(ins[q] for q in p)
        lay_in, lay_out = _lay(len(ins)), _lay(len(out))
        inv = np.argsort(lay_in)
        q = tuple(int(inv[p[j]]) for j in lay_out)      # internal_out = transpose(internal_in, q)
        x = ctx.act(src)
        if q == tuple(range(len(q))):
            ctx.alias(node.output[0], src)
        elif _is_reshape_transpose(ctx.tensors[x].shape, q):
            ctx.emit("reshape", [x], {"shape": tuple(ctx.tensors[x].shape[i] for i in q)}, node.output[0])
        else:
            ctx.emit("transpose", [x], {"perm": q}, node.output[0])
        return
    if op == "Reshape":
        tgt = [int(v) for v in ctx.const(node.input[1], "shape", numeric=False).reshape(-1)]
        out_full = _reshape_target(ctx, full, tgt, bool(int(a.get("allowzero", 0))))
    elif op == "Flatten":
        ax = int(a.get("axis", 1))
        ax = ax + len(full) if ax < 0 else ax
        out_full = (BATCH, int(np.prod(full[1:]))) if ax == 1 else None
    else:
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(v) for v in ctx.const(node.input[1], "axes", numeric=False).reshape(-1)]
        if op == "Squeeze":
            r = len(full)
            axes = [i for i, d in enumerate(full) if d == 1] if axes is None else [x % r for x in axes]
            if any(full[i] != 1 for i in axes):
                ctx.fail(f"axes {axes} are not of size 1")
            out_full = tuple(d for i, d in enumerate(full) if i not in axes)
        else:
            r = len(full) + len(axes or [])
            out_full = list(full)
            for ax in sorted(x % r for x in (axes or [])):
                out_full.insert(ax, 1)
            out_full = tuple(out_full)
    if out_full is None or out_full[0] != BATCH or any(d % BATCH == 0 for d in out_full[1:]):
        ctx.fail(f"reshapes the batch dimension ([N, {', '.join(map(str, ins))}] -> {list(out_full or [])}); "
                 "only layout changes of one sample are supported")
    ctx.relayout(src, tuple(int(d) for d in out_full[1:]), node.output[0])


def h_passthrough(ctx: Ctx, node, a: dict) -> None:
    """Identity, Dropout (inference), Cast to a float type: no-ops."""
    if node.op_type == "Cast":
        from onnx import helper

        if np.dtype(helper.tensor_dtype_to_np_dtype(int(a["to"]))).kind != "f":
            ctx.fail("casts an activation to a non-float type")
    if node.op_type == "Dropout" and len([o for o in node.output if o]) > 1:
        ctx.fail("the mask output is not supported")
    ctx.alias(node.output[0], node.input[0])


def h_shape(ctx: Ctx, node, a: dict) -> None:
    """Shape of an activation: a constant (the batch dimension stands for :data:`BATCH`)."""
    ctx.act(node.input[0])
    full = np.array((BATCH,) + tuple(ctx.oshape[node.input[0]]), dtype=np.int64)
    ctx.consts[node.output[0]] = full[a.get("start", 0):a.get("end", len(full))]


HANDLERS: dict[str, Callable] = {
    "Conv": h_conv,
    "Gemm": h_dense, "MatMul": h_dense,
    "Add": h_binary, "Sub": h_binary, "Mul": h_binary, "Div": h_binary, "Max": h_binary, "Min": h_binary,
    "Concat": h_concat,
    "MaxPool": h_pool, "AveragePool": h_pool, "GlobalAveragePool": h_pool, "GlobalMaxPool": h_pool,
    "Relu": h_activation, "Clip": h_activation, "LeakyRelu": h_activation, "PRelu": h_activation,
    "HardSigmoid": h_activation, "HardSwish": h_activation, "Sigmoid": h_activation, "Tanh": h_activation,
    "BatchNormalization": h_batchnorm,
    "Softmax": h_softmax, "LogSoftmax": h_softmax,
    "Pad": h_pad,
    "Reshape": h_layout, "Flatten": h_layout, "Squeeze": h_layout, "Unsqueeze": h_layout, "Transpose": h_layout,
    "Identity": h_passthrough, "Dropout": h_passthrough, "Cast": h_passthrough,
    "Shape": h_shape,
}


# =========================================================================== driver


def onnx_constants(graph, path: Path, opsets: dict[str, int]) -> dict[str, np.ndarray]:
    """Every constant tensor of the graph: initializers, ``Constant`` nodes and the outputs of
    nodes whose inputs are all constant, folded as :mod:`pyquant.onnx_io` folds weights."""
    from onnx import numpy_helper

    from pyquant.onnx_io import _Folder, _Scope

    consts: dict[str, np.ndarray] = {}
    for t in graph.initializer:
        try:
            consts[t.name] = numpy_helper.to_array(t, base_dir=str(path.parent))
        except Exception as e:  # noqa: BLE001 - bad raw_data, missing external file
            raise InputError(f"{path}: tensor {t.name!r} cannot be read ({type(e).__name__})") from None
    folder, scope = _Folder(path, opsets), _Scope(graph, None)
    for n in graph.node:
        outs = [o for o in n.output if o]
        if not outs or any(a.type in (5, 10) for a in n.attribute):
            continue
        vals = [folder.resolve(o, scope) for o in outs]
        if all(v is not None for v in vals):
            consts.update({o: np.asarray(v[0]) for o, v in zip(outs, vals)})
    return consts


_NO_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
            "Bernoulli", "If", "Loop", "Scan", "Dropout"}


def _const_ish(graph, consts: dict) -> set[str]:
    """Names that are constant, or become constant once ``Shape`` of activations is known."""
    names = set(consts)
    for n in graph.node:
        ins = [i for i in n.input if i]
        if n.op_type == "Shape" or (ins and n.op_type not in _NO_FOLD and all(i in names for i in ins)):
            names.update(o for o in n.output if o)
    return names


def unsupported_error(path: Path, graph, consts: dict) -> InputError | None:
    """ONE error listing every unsupported operator type with its node names, or None."""
    cish = _const_ish(graph, consts)
    bad: dict[str, list[str]] = {}
    for i, n in enumerate(graph.node):
        outs = [o for o in n.output if o]
        if outs and all(o in cish for o in outs):
            continue
        if n.op_type not in HANDLERS or n.domain not in ("", "ai.onnx"):
            bad.setdefault(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}",
                           []).append(node_name(n, i))
    if not bad:
        return None
    listed = ", ".join(f"{op} ({', '.join('node ' + nm for nm in names)})" for op, names in sorted(bad.items()))
    return InputError(f"{path}: unsupported operators: {listed}")


def _input_shape(path: Path, graph, consts: dict, pin: Sequence[int] | None) -> tuple[str, tuple[int, ...]]:
    ins = [i for i in graph.input if i.name not in consts]
    if len(ins) != 1:
        raise InputError(f"{path}: graph has {len(ins)} non-constant inputs "
                         f"({', '.join(repr(i.name) for i in ins)}); exactly 1 is supported")
    vi = ins[0]
    if vi.type.tensor_type.elem_type not in (1, 10, 11, 16):
        raise InputError(f"{path}: input {vi.name!r} is not a float tensor")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in vi.type.tensor_type.shape.dim]
    if pin is not None:
        pin = [int(v) for v in pin]
        if len(pin) != len(dims) or min(pin) < 1:
            raise InputError(f"{path}: input_shape {pin} does not match input {vi.name!r} of rank {len(dims)}")
        for i, (d, p) in enumerate(zip(dims, pin)):
            if i and d is not None and d != p:
                raise InputError(f"{path}: input_shape {pin} contradicts the static dimension {i} = {d} "
                                 f"of input {vi.name!r}")
        dims = [dims[0]] + pin[1:]
    if len(dims) < 2:
        raise InputError(f"{path}: input {vi.name!r} needs a batch and at least one more dimension, got {dims}")
    if any(d is None for d in dims[1:]):
        shown = ["?" if d is None else str(d) for d in dims]
        raise InputError(f"{path}: input {vi.name!r} has dynamic dimensions [{', '.join(shown)}]; "
                         "pin them with --input-shape (input_shape=)")
    return vi.name, tuple(int(d) for d in dims[1:])


def _fold_node(ctx: Ctx, node) -> bool:
    """Evaluate a node whose inputs are all constant (e.g. shape arithmetic); True if done."""
    from onnx.reference import ReferenceEvaluator

    ins = [i for i in node.input if i]
    if not ins or node.op_type in _NO_FOLD or not all(i in ctx.consts for i in ins):
        return False
    try:
        res = ReferenceEvaluator(node, opsets={"": ctx.opset}).run(None, {i: ctx.consts[i] for i in ins})
    except Exception as e:  # noqa: BLE001 - a constant subgraph that does not evaluate
        ctx.fail(f"constant evaluation failed ({type(e).__name__})")
    ctx.consts.update({o: np.asarray(r) for o, r in zip(node.output, res) if o})
    return True


def import_onnx(path: str | os.PathLike, input_shape: Sequence[int] | None = None) -> Graph:
    """Import an ONNX model as a validated :class:`Graph` (see the module doc).

    ``input_shape`` is the full input shape (batch entry ignored) pinning dynamic dimensions.
    """
    from pyquant.onnx_io import load_onnx

    p = Path(path)
    model = load_onnx(p)
    g = model.graph
    opsets = {o.domain if o.domain != "ai.onnx" else "": int(o.version) for o in model.opset_import}
    consts = onnx_constants(g, p, opsets)
    err = unsupported_error(p, g, consts)
    if err is not None:
        raise err
    in_name, in_shape = _input_shape(p, g, consts, input_shape)
    ctx = Ctx(p, model, consts, opsets.get("", 13))
    bdim = g.input[[i.name for i in g.input].index(in_name)].type.tensor_type.shape.dim[0]
    if bdim.HasField("dim_value") and bdim.dim_value > 0:
        ctx.static_batch = int(bdim.dim_value)
    internal_in = tuple(in_shape[i] for i in _lay(len(in_shape)))
    ctx.tensors[in_name] = Tensor(in_name, internal_in)
    ctx.internal[in_name], ctx.oshape[in_name] = in_name, in_shape
    for i, node in enumerate(g.node):
        outs = [o for o in node.output if o]
        if outs and all(o in ctx.consts for o in outs):
            continue
        ctx.node, ctx.name = node, node_name(node, i)
        if _fold_node(ctx, node):
            continue
        try:
            HANDLERS[node.op_type](ctx, node, _attrs(node))
        except (ValueError, IndexError, KeyError, TypeError) as e:     # malformed attributes/inputs
            ctx.fail(f"cannot import ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        for o in outs:
            ctx.producer[o] = (node, ctx.name)
    outputs, layouts = [], []
    for o in g.output:
        if o.name in ctx.consts:
            raise InputError(f"{p}: graph output {o.name!r} is a constant")
        if o.name not in ctx.internal:
            raise InputError(f"{p}: graph output {o.name!r} is not computed")
        rank = len(ctx.oshape[o.name])
        outputs.append(ctx.internal[o.name])
        layouts.append("NCHW" if rank == 3 else "NC" if rank == 1 else f"N+{rank}D")
    if len(set(outputs)) != len(outputs) or in_name in outputs:
        raise InputError(f"{p}: graph outputs alias each other or the input")
    graph = Graph(g.name or p.stem, ctx.tensors, ctx.ops, [in_name], outputs,
                  "NCHW" if len(in_shape) == 3 else "NC" if len(in_shape) == 1 else f"N+{len(in_shape)}D",
                  layouts, str(p), {e.key: e.value for e in model.metadata_props})
    graph = optimize(graph)
    graph.validate()
    return graph


__all__ = ["import_onnx", "HANDLERS", "Ctx", "onnx_constants", "unsupported_error", "node_name"]
