"""Float64 numpy reference executor of a :class:`pyquant.graph.Graph` (every op kind, vectorised).

Convolutions (grouped, depthwise, strided, dilated, padded) run as windowed einsums; pools honour
explicit padding, ceil-mode padding and ``count_include_pad``. Arrays are ``[N, *shape]`` in the
graph's internal layout (HWC); use ``Graph.to_internal`` / ``from_internal`` for user arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pyquant.errors import InputError
from pyquant.graph import Graph, Op


def windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int = 1, dw: int = 1) -> np.ndarray:
    """``[N, Hp, Wp, C]`` (already padded) -> strided views ``[N, OH, OW, C, KH, KW]``."""
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    v = sliding_window_view(xp, (ekh, ekw), axis=(1, 2))
    return v[:, ::sh, ::sw, :, ::dh, ::dw]


def _pad_hw(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    t, l_, b, r = (int(p) for p in pads)
    if not (t or l_ or b or r):
        return x
    return np.pad(x, ((0, 0), (t, b), (l_, r), (0, 0)), constant_values=value)


def apply_act(y: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(y, 0.0)
    if act == "relu6":
        return np.clip(y, 0.0, 6.0)
    return y


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict) -> np.ndarray:
    """NHWC conv with an OHWI weight ``[M, KH, KW, C/groups]`` (any groups, stride, dilation, pads)."""
    g = int(attrs.get("groups", 1))
    m, kh, kw, cg = w.shape
    (sh, sw), (dh, dw) = attrs["stride"], attrs.get("dilation", (1, 1))
    win = windows(_pad_hw(x, attrs["pads"]), kh, kw, sh, sw, dh, dw)   # [N, OH, OW, C, KH, KW]
    n, oh, ow = win.shape[:3]
    win = win.reshape(n, oh, ow, g, cg, kh, kw)
    wg = w.reshape(g, m // g, kh, kw, cg)
    y = np.einsum("nhwgcyx,gmyxc->nhwgm", win, wg, optimize=True).reshape(n, oh, ow, m)
    if b is not None:
        y = y + b
    return apply_act(y, attrs.get("act", "none"))


def pool(x: np.ndarray, kind: str, attrs: dict) -> np.ndarray:
    """Max or average pooling. An average divides by the number of window cells inside the input,
    or with ``count_include_pad`` inside the input padded by ``attrs['count_pads']`` (default
    ``pads``; the ONNX importer counts ceil-mode rows too, as onnxruntime does)."""
    (kh, kw), (sh, sw), pads = attrs["kernel"], attrs["stride"], attrs["pads"]
    if kind == "maxpool":
        return windows(_pad_hw(x, pads, -np.inf), kh, kw, sh, sw).max(axis=(-2, -1))
    s = windows(_pad_hw(x, pads), kh, kw, sh, sw).sum(axis=(-2, -1))
    t, l_, b, r = pads
    h, w = x.shape[1:3]
    mask = np.zeros((1, h + t + b, w + l_ + r, 1))
    if attrs.get("count_include_pad", False):
        ct, cl, cb, cr = attrs.get("count_pads", pads)
        mask[:, t - ct:t + h + cb, l_ - cl:l_ + w + cr] = 1.0
    else:
        mask[:, t:t + h, l_:l_ + w] = 1.0
    cnt = windows(mask, kh, kw, sh, sw).sum(axis=(-2, -1))
    return s / np.maximum(cnt, 1.0)


def _operand(graph: Graph, env: dict, name: str, rank: int) -> np.ndarray:
    """A value ready to broadcast against ``[N, *per-sample shape of rank ``rank``]``."""
    t = graph.tensors[name]
    if t.is_const:
        c = np.asarray(t.const, dtype=np.float64)
        return c.reshape((1,) * (rank + 1 - c.ndim) + c.shape)
    v = env[name]
    return v.reshape(v.shape[:1] + (1,) * (rank + 1 - v.ndim) + v.shape[1:])


def _elementwise(kind: str, x: np.ndarray, p: list, a: dict) -> np.ndarray:
    if kind == "relu":
        return np.maximum(x, 0.0)
    if kind == "clip":
        return np.clip(x, a.get("lo", -np.inf), a.get("hi", np.inf))
    if kind == "leaky_relu":
        return np.where(x >= 0, x, x * a["alpha"])
    if kind == "prelu":
        return np.where(x >= 0, x, x * p[0])
    if kind == "hardsigmoid":
        return np.clip(a["alpha"] * x + a["beta"], 0.0, 1.0)
    if kind == "hardswish":
        return x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)
    if kind == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "maximum":
        return np.maximum(x, p[0])
    if kind == "minimum":
        return np.minimum(x, p[0])
    if kind == "affine":
        return x * p[0] + p[1]
    raise InputError(f"graph_float: unknown elementwise op {kind!r}")


def _axis(ax: int) -> int:
    return ax + 1 if ax >= 0 else ax


def run_op(graph: Graph, op: Op, env: dict) -> np.ndarray:
    """Evaluate one op on the arrays in ``env`` (constants are read from the graph)."""
    k, a = op.kind, op.attrs
    out_rank = len(graph.tensors[op.outputs[0]].shape)

    def val(i: int) -> np.ndarray:
        return _operand(graph, env, op.inputs[i], len(graph.tensors[op.inputs[i]].shape))

    x = val(0)
    if k == "conv2d":
        b = graph.const(op.inputs[2]) if len(op.inputs) > 2 else None
        return conv2d(x, graph.const(op.inputs[1]), b, a)
    if k == "dense":
        w = graph.const(op.inputs[1])
        y = x.reshape(x.shape[0], -1) @ w.T
        if len(op.inputs) > 2:
            y = y + graph.const(op.inputs[2])
        return apply_act(y, a.get("act", "none"))
    if k in ("add", "sub", "mul"):
        u, v = (_operand(graph, env, i, out_rank) for i in op.inputs)
        y = u + v if k == "add" else u - v if k == "sub" else u * v
        return apply_act(y, a.get("act", "none"))
    if k in ("relu", "clip", "leaky_relu", "prelu", "hardsigmoid", "hardswish", "sigmoid", "tanh",
             "maximum", "minimum", "affine"):
        return _elementwise(k, x, [_operand(graph, env, i, out_rank) for i in op.inputs[1:]], a)
    if k == "concat":
        return np.concatenate([val(i) for i in range(len(op.inputs))], axis=_axis(int(a["axis"])))
    if k in ("maxpool", "avgpool"):
        return pool(x, k, a)
    if k == "global_avgpool":
        y = x.mean(axis=(1, 2), keepdims=True)
        return y if a.get("keepdims", True) else y.reshape(y.shape[0], -1)
    if k == "pad":
        return _pad_hw(x, a["pads"], float(a.get("value", 0.0)))
    if k == "reshape":
        return x.reshape((x.shape[0],) + tuple(int(d) for d in a["shape"]))
    if k == "transpose":
        return x.transpose((0,) + tuple(int(p) + 1 for p in a["perm"]))
    if k in ("softmax", "log_softmax"):
        ax = _axis(int(a.get("axis", -1)))
        z = x - x.max(axis=ax, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=ax, keepdims=True))
        return z - lse if k == "log_softmax" else np.exp(z - lse)
    raise InputError(f"graph_float: unknown op kind {k!r} ({op.source} {op.name!r})")


def run(graph: Graph, x_internal: np.ndarray, all_tensors: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on ``x_internal`` ``[N, *input shape]``; return the outputs (or every
    activation tensor with ``all_tensors``) by name."""
    x = np.asarray(x_internal, dtype=np.float64)
    env = {graph.inputs[0]: x}
    for op in graph.ops:
        env[op.outputs[0]] = run_op(graph, op, env)
    if all_tensors:
        return env
    return {o: env[o] for o in graph.outputs}


__all__ = ["run", "run_op", "conv2d", "pool", "windows", "apply_act"]
