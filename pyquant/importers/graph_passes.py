"""Exact clean-up passes on an imported :class:`pyquant.graph.Graph` (shared by the importers).

- redundant layout ops: reshape to the same shape, reshape of a reshape;
- a bias ``add``/``sub`` of a per-channel constant after ``conv2d``/``dense`` -> the layer's bias;
- ``affine`` (BatchNormalization) after ``conv2d``/``dense`` -> folded into weight and bias
  (``W' = a·W`` per output channel, ``b' = a·b + shift``); the BN node name goes to ``attrs['folded']``;
- ``relu`` / ``clip(0, 6)`` / ``clip(0, inf)`` after ``conv2d``/``dense``/``add``/``sub``/``mul``
  -> the op's ``act``;
- ``transpose(HWC -> CHW)`` + ``reshape`` to flat feeding only dense layers (an ONNX Flatten of a
  feature map) -> a flat reshape in HWC order, the dense columns permuted (``attrs['flatten_chw']``
  records the ONNX (C, H, W)).

Every pass only fires where the intermediate tensor has a single consumer and is not a graph output,
so the graph computes exactly the same function.
"""

from __future__ import annotations

import numpy as np

from pyquant.graph import Graph, Op, Tensor


class _Index:
    """Producer and consumer tables of a graph (rebuilt by each pass call; passes return right
    after changing the graph, so the tables never go stale)."""

    def __init__(self, g: Graph):
        self.prod = {o: op for op in g.ops for o in op.outputs}
        self.cons: dict[str, list[Op]] = {}
        for op in g.ops:
            for i in dict.fromkeys(op.inputs):
                self.cons.setdefault(i, []).append(op)
        self.outputs = set(g.outputs)

    def uses(self, name: str) -> list[Op]:
        return self.cons.get(name, [])

    def private(self, name: str) -> Op | None:
        """The single consumer of ``name`` if it has exactly one and is not a graph output."""
        if name in self.outputs:
            return None
        u = self.uses(name)
        return u[0] if len(u) == 1 else None


def _absorb(g: Graph, first: Op, second: Op) -> None:
    """Remove ``second`` (consumer of ``first``'s output); ``first`` now defines its output."""
    del g.tensors[first.outputs[0]]
    first.outputs = list(second.outputs)
    g.ops.remove(second)


def _new_const(g: Graph, base: str, value: np.ndarray) -> str:
    name, k = base, 1
    while name in g.tensors:
        k += 1
        name = f"{base}#{k}"
    g.tensors[name] = Tensor(name, tuple(value.shape), np.asarray(value, dtype=np.float64))
    return name


def _per_channel(g: Graph, name: str, m: int, out_shape: tuple) -> np.ndarray | None:
    """A constant broadcasting only along the last (channel) axis of ``out_shape`` -> [m] values."""
    c = g.const(name)
    if c is None or c.ndim > len(out_shape):
        return None
    if c.ndim and (c.shape[-1] not in (1, m) or any(d != 1 for d in c.shape[:-1])):
        return None
    return np.broadcast_to(c.reshape(-1), (m,)).astype(np.float64)


def _fold_layout(g: Graph) -> bool:
    ix = _Index(g)
    for op in list(g.ops):
        if op.kind != "reshape":
            continue
        x, y = op.inputs[0], op.outputs[0]
        if tuple(g.tensors[x].shape) == tuple(g.tensors[y].shape):
            prev = ix.prod.get(x)
            if prev is not None and ix.private(x) is op:
                _absorb(g, prev, op)
                return True
            if y not in g.outputs:
                for u in ix.uses(y):
                    u.inputs = [x if i == y else i for i in u.inputs]
                g.ops.remove(op)
                del g.tensors[y]
                return True
        prev = ix.prod.get(x)
        if prev is not None and prev.kind == "reshape" and ix.private(x) is op:
            op.inputs = [prev.inputs[0]]
            g.ops.remove(prev)
            del g.tensors[x]
            return True
    return False


def _fold_into_layer(g: Graph) -> bool:
    ix = _Index(g)
    for op in g.ops:
        if op.kind not in ("conv2d", "dense") or op.attrs.get("act", "none") != "none":
            continue
        nxt = ix.private(op.outputs[0])
        if nxt is None:
            continue
        m = g.tensors[op.inputs[1]].shape[0]
        shape = g.tensors[op.outputs[0]].shape
        w, b = g.const(op.inputs[1]), g.const(op.inputs[2])
        if nxt.kind in ("add", "sub") and nxt.attrs.get("act", "none") == "none":
            other = [i for i in nxt.inputs if i != op.outputs[0]]
            if len(other) != 1 or (nxt.kind == "sub" and nxt.inputs[0] != op.outputs[0]):
                continue
            c = _per_channel(g, other[0], m, shape)
            if c is None:
                continue
            op.inputs[2] = _new_const(g, op.inputs[2], b + c if nxt.kind == "add" else b - c)
            _absorb(g, op, nxt)
            return True
        if nxt.kind == "affine":
            sc, sh = (_per_channel(g, i, m, shape) for i in nxt.inputs[1:3])
            if sc is None or sh is None:
                continue
            op.inputs[1] = _new_const(g, op.inputs[1], w * sc.reshape((m,) + (1,) * (w.ndim - 1)))
            op.inputs[2] = _new_const(g, op.inputs[2], sc * b + sh)
            op.attrs["folded"] = list(op.attrs.get("folded", [])) + [nxt.name]
            _absorb(g, op, nxt)
            return True
    return False


def _fuse_act(g: Graph) -> bool:
    ix = _Index(g)
    for op in g.ops:
        if op.kind not in ("conv2d", "dense", "add", "sub", "mul") or op.attrs.get("act", "none") != "none":
            continue
        nxt = ix.private(op.outputs[0])
        if nxt is None:
            continue
        act = None
        if nxt.kind == "relu":
            act = "relu"
        elif nxt.kind == "clip" and nxt.attrs.get("lo") == 0.0:
            hi = nxt.attrs.get("hi")
            act = "relu6" if hi == 6.0 else "relu" if hi == np.inf else None
        if act is None:
            continue
        op.attrs["act"] = act
        _absorb(g, op, nxt)
        return True
    return False


def _flatten_to_dense(g: Graph) -> bool:
    ix = _Index(g)
    for op in g.ops:
        if op.kind != "transpose" or tuple(op.attrs["perm"]) != (2, 0, 1):
            continue
        r = ix.private(op.outputs[0])
        if r is None or r.kind != "reshape" or len(g.tensors[r.outputs[0]].shape) != 1:
            continue
        users = ix.uses(r.outputs[0])
        if r.outputs[0] in g.outputs or not users or any(u.kind != "dense" or u.inputs[0] != r.outputs[0]
                                                       for u in users):
            continue
        h, w, c = g.tensors[op.inputs[0]].shape
        for u in users:
            wt = g.const(u.inputs[1])
            perm = wt.reshape(wt.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(wt.shape[0], -1)
            u.inputs[1] = _new_const(g, u.inputs[1], perm)
            u.attrs["flatten_chw"] = (c, h, w)
        r.inputs = [op.inputs[0]]
        g.ops.remove(op)
        del g.tensors[op.outputs[0]]
        return True
    return False


def _drop_unused_consts(g: Graph) -> None:
    used = {i for op in g.ops for i in op.inputs}
    for n in [n for n, t in g.tensors.items() if t.is_const and n not in used]:
        del g.tensors[n]


def optimize(g: Graph) -> Graph:
    """Apply every pass until none fires (in place; returns ``g``)."""
    while _fold_layout(g) or _flatten_to_dense(g) or _fold_into_layer(g):
        pass
    while _fuse_act(g):
        pass
    _drop_unused_consts(g)
    return g


__all__ = ["optimize"]
