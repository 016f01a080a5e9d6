"""Weight extraction from ``.onnx`` and ``.npz`` models (docs/FORMAT.md section 2).

ONNX: every constant weight consumed by ``Conv``, ``ConvTranspose``, ``Gemm``, ``MatMul`` (the
constant operand), ``LSTM``/``GRU``/``RNN`` (``W`` and ``R``) is one layer, wherever the
exporter stored it: graph initializers, ``Constant`` nodes, behind chains of
``Identity``/``Cast``/``Reshape``/``Flatten``/``Transpose``/``Squeeze``/``Unsqueeze``/``Slice``/
``Concat``/``Gather``/``Split``/``DequantizeLinear`` and elementwise arithmetic on constants (any
other standard op with all-constant inputs, such as weight normalisation's ``ReduceL2``, is
evaluated with ``onnx.reference``), and
inside ``If``/``Loop``/``Scan`` subgraphs (recursively; names from enclosing scopes resolve) and
inside model-local functions (inlined first).
fp16, bf16, fp32 and fp64 storage are accepted, inline or as external data (read one tensor at a
time, so memory holds the graph plus one layer). The same constant consumed twice in the same way
(e.g. one LSTM weight used by both branches of an ``If``) is one layer.

Each weight is yielded as a :class:`~pyquant.analysis.WeightItem` with the canonical
``[out, in...]`` float matrix, one at a time (streaming).

npz: one array per layer, keyed by name, already ``[out, in, ...]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from pyquant.analysis import WeightItem
from pyquant.errors import InputError
from pyquant.fileio import iter_npz_arrays

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "RNN")
_FOLD_OPS = {"Identity", "Cast", "CastLike", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
             "Slice", "Concat", "Gather", "Split", "DequantizeLinear", "Mul", "Div", "Add", "Sub", "Neg"}
_FLOAT_NAMES = ("bfloat16", "float8")


def model_format(path: str | os.PathLike) -> str:
    """``"onnx"`` or ``"npz"`` from the file suffix; :class:`InputError` otherwise or if missing."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file")
    suf = p.suffix.lower()
    if suf not in (".onnx", ".npz"):
        raise InputError(f"{p}: unsupported model type {suf or '(no suffix)'!r}: expected .onnx or .npz")
    return suf[1:]


def to_float(a: np.ndarray, where: str) -> np.ndarray:
    """Return ``a`` as a float array (fp16/32/64 kept; bf16/fp8 widened to fp32).

    Raises :class:`InputError` for integer, bool, complex, string or object arrays.
    """
    if np.issubdtype(a.dtype, np.floating):
        return a
    if any(a.dtype.name.startswith(n) for n in _FLOAT_NAMES):
        return a.astype(np.float32)
    raise InputError(f"{where}: unsupported dtype {a.dtype} (expected a floating-point weight)")


# --------------------------------------------------------------------------- npz


def iter_npz(path: str | os.PathLike) -> Iterator[WeightItem]:
    """Yield each array of an ``.npz`` as a layer (kind from rank: 2-D dense, 4-D conv)."""
    p = Path(path)
    n = 0
    for key, a in iter_npz_arrays(p):             # headers checked and bounded before reading
        n += 1
        where = f"{p}: array {key!r}"
        a = to_float(a, where)
        if a.size < 2:
            raise InputError(f"{where}: {'empty' if a.size == 0 else '1-element'} tensor {a.shape} "
                             "is not a weight matrix")
        if a.ndim < 2:
            raise InputError(f"{where}: shape {a.shape} is not a weight [out, in, ...] (need >= 2 dims)")
        kind = "dense" if a.ndim == 2 else "conv" if a.ndim == 4 else "other"
        w = a.reshape(a.shape[0], -1)
        yield WeightItem(key, key, "npz", kind, w, tuple(int(x) for x in a.shape))
    if not n:
        raise InputError(f"{p}: the archive holds no arrays")


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:160]


# --------------------------------------------------------------------------- onnx


def load_onnx(path: str | os.PathLike):
    """Load an ONNX model (with external data next to it); :class:`InputError` if unreadable."""
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    try:
        # External data (the only storage for models > 2 GB) is read tensor by tensor while
        # iterating (:class:`_Folder`), never all at once.
        m = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError, TypeError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not a valid ONNX model ({_short(e)})") from None
    except Exception as e:  # protobuf/onnx raise assorted types for corrupt files
        raise InputError(f"{p}: not a valid ONNX model ({type(e).__name__}: {_short(e)})") from None
    if not m.HasField("graph") or (len(m.graph.node) == 0 and len(m.graph.initializer) == 0):
        raise InputError(f"{p}: not a valid ONNX model (no graph)")
    if len(m.functions):        # model-local functions (e.g. torch dynamo exports): inline them
        try:
            from onnx.inliner import inline_local_functions
            m = inline_local_functions(m)
        except Exception as e:
            raise InputError(f"{p}: cannot inline the model's local functions ({_short(e)})") from None
    return m


class _Scope:
    """Name tables of one graph, chained to the enclosing graph's scope."""

    def __init__(self, graph, parent: _Scope | None):
        self.parent = parent
        self.inits = {t.name: t for t in graph.initializer}
        self.producer: dict[str, tuple] = {}
        for n in graph.node:
            for i, o in enumerate(n.output):
                if o:
                    self.producer[o] = (n, i)
        self.inputs = {i.name for i in graph.input} - set(self.inits)
        self.nonconst: set[str] = set()     # names of this graph known not to be constant (memo)

    def find(self, name: str):
        s = self
        while s is not None:
            if name in s.inits:
                return "init", s.inits[name], s
            if name in s.producer:
                return "node", s.producer[name], s
            if name in s.inputs:
                return "input", None, s
            s = s.parent
        return None, None, None


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _const_node_value(node):
    from onnx import numpy_helper

    a = _attrs(node)
    if "value" in a:
        return numpy_helper.to_array(a["value"])
    if "value_float" in a:
        return np.array(a["value_float"], dtype=np.float32)
    if "value_floats" in a:
        return np.array(a["value_floats"], dtype=np.float32)
    if "value_int" in a:
        return np.array(a["value_int"], dtype=np.int64)
    if "value_ints" in a:
        return np.array(a["value_ints"], dtype=np.int64)
    return None


# Never evaluated as constants (non-deterministic, or they carry subgraphs / need a session).
_NO_EVAL = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
            "Bernoulli", "If", "Loop", "Scan", "SequenceMap", "Dropout"}
_EVAL_MAX_ELEMENTS = 1 << 26        # a generic constant fold reads at most this many input values


class _Folder:
    """Resolves a tensor name to a constant ndarray (and a recipe string naming its roots).

    The common weight-path ops (:data:`_FOLD_OPS`) are folded in numpy; any other standard-domain
    op whose inputs are all constant (e.g. the ``ReduceL2``/``Sqrt``/``Pow`` of weight
    normalisation) is evaluated with ``onnx.reference`` at the model's opset.
    """

    def __init__(self, path: Path, opsets: dict[str, int] | None = None):
        self.path = path
        self.opsets = dict(opsets or {})

    def _evaluate(self, node, xs: list, out_idx: int) -> np.ndarray | None:
        from onnx.reference import ReferenceEvaluator

        if sum(int(np.asarray(x).size) for x in xs if x is not None) > _EVAL_MAX_ELEMENTS:
            return None
        feeds = {nm: x for nm, x in zip(node.input, xs) if nm}
        kw = {"opsets": {"": self.opsets[""]}} if "" in self.opsets else {}
        res = ReferenceEvaluator(node, **kw).run(None, feeds)
        return np.asarray(res[out_idx]) if out_idx < len(res) else None

    def resolve(self, name: str, scope: _Scope, depth: int = 0):
        """``(value, roots, recipe)`` when ``name`` is constant in ``scope``, else ``None``.

        Non-constant results are memoised per defining graph, so walking back from activations
        (e.g. a MatMul of two activations) visits each node once, not once per path.
        """
        if not name or depth > 64:
            return None
        kind, obj, sc = scope.find(name)
        if sc is not None and name in sc.nonconst:
            return None
        r = self._resolve(name, kind, obj, sc, depth)
        if r is None and sc is not None:
            sc.nonconst.add(name)
        return r

    def _resolve(self, name: str, kind, obj, sc, depth: int):
        import onnx
        from onnx import external_data_helper, numpy_helper

        if kind == "init":
            try:
                if external_data_helper.uses_external_data(obj):
                    # read into a copy so the loaded model never keeps the weight bytes
                    t = onnx.TensorProto()
                    t.CopyFrom(obj)
                    obj = t
                v = numpy_helper.to_array(obj, base_dir=str(self.path.parent))
            except Exception as e:  # external data missing, bad raw_data size, ...
                raise InputError(f"{self.path}: tensor {name!r} cannot be read ({_short(e)})") from None
            return _leaf(v, name)
        if kind != "node":
            return None
        node, out_idx = obj
        op = node.op_type
        if op == "Constant":
            try:
                v = _const_node_value(node)
            except Exception as e:
                raise InputError(f"{self.path}: Constant {name!r} cannot be read ({_short(e)})") from None
            return _leaf(v, name) if v is not None else None
        generic = op not in _FOLD_OPS
        if node.domain not in ("", "ai.onnx") or (generic and (
                op in _NO_EVAL or not node.input or any(a.type in (5, 10) for a in node.attribute))):
            return None
        ins = []
        for i, nm in enumerate(node.input):
            if not nm:
                ins.append(None)
                continue
            r = self.resolve(nm, sc, depth + 1)
            if r is None:
                return None
            ins.append(r)
        if not ins or ins[0] is None:
            return None
        try:
            xs = [None if r is None else r[0] for r in ins]
            v = self._evaluate(node, xs, out_idx) if generic else _fold(op, _attrs(node), xs, out_idx,
                                                                        len(node.output))
        except InputError:
            raise
        except Exception:
            return None
        if v is None:
            return None
        roots = [x for r in ins if r is not None for x in r[1]]
        a = _attrs(node)
        recipe = f"{op}{sorted((k, str(v2)) for k, v2 in a.items())}[{out_idx}](" + \
            ",".join("" if r is None else r[2] for r in ins) + ")"
        return v, roots, recipe


def _leaf(v: np.ndarray, name: str):
    """(value, roots, recipe) of a stored constant: small integer constants (indices, shapes)
    are described by value, so equal derivations in different subgraphs compare equal, and
    only weight-like (non-integer) constants count as roots."""
    if v.dtype.kind in "iub" and v.size <= 64:
        return v, [], "v" + repr(v.tolist())
    return v, [name], name


def _fold(op: str, a: dict, x: list, out_idx: int, n_out: int):
    """Evaluate one constant-foldable ONNX op on numpy inputs."""
    from onnx import helper

    v = x[0]
    if op == "Identity":
        return v
    if op == "Cast":
        return v.astype(helper.tensor_dtype_to_np_dtype(a["to"]))
    if op == "CastLike":
        return v.astype(x[1].dtype)
    if op == "Reshape":
        shape = [int(s) for s in (x[1] if len(x) > 1 else a.get("shape"))]
        if not a.get("allowzero", 0):
            shape = [v.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return v.reshape(shape)
    if op == "Flatten":
        ax = a.get("axis", 1)
        ax = ax + v.ndim if ax < 0 else ax
        return v.reshape(int(np.prod(v.shape[:ax])), -1)
    if op == "Transpose":
        return np.transpose(v, a.get("perm"))
    if op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes")
        if axes is None and len(x) > 1 and x[1] is not None:
            axes = [int(i) for i in x[1]]
        if op == "Squeeze":
            return np.squeeze(v, axis=tuple(axes)) if axes is not None else np.squeeze(v)
        rank = v.ndim + len(axes)
        for ax in sorted(i + rank if i < 0 else i for i in axes):
            v = np.expand_dims(v, ax)
        return v
    if op == "Slice":
        if len(x) > 1:
            starts, ends = x[1], x[2]
            axes = x[3] if len(x) > 3 and x[3] is not None else range(len(starts))
            steps = x[4] if len(x) > 4 and x[4] is not None else [1] * len(starts)
        else:
            starts, ends = a["starts"], a["ends"]
            axes = a.get("axes", range(len(starts)))
            steps = [1] * len(starts)
        sl = [slice(None)] * v.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(s), int(e), int(st))
        return v[tuple(sl)]
    if op == "Concat":
        return np.concatenate(x, axis=a["axis"])
    if op == "Gather":
        return np.take(v, x[1], axis=a.get("axis", 0))
    if op == "Split":
        ax = a.get("axis", 0)
        split = a.get("split")
        if split is None and len(x) > 1 and x[1] is not None:
            split = [int(i) for i in x[1]]
        if split is None:                       # equal parts; opset 18 num_outputs: last one smaller
            k = int(a.get("num_outputs", n_out))
            chunk = -(-v.shape[ax] // k)
            split = [chunk] * (k - 1) + [v.shape[ax] - chunk * (k - 1)]
        return np.split(v, np.cumsum(split)[:-1], axis=ax)[out_idx]
    if op == "DequantizeLinear":
        scale = x[1].astype(np.float32)
        zp = x[2] if len(x) > 2 and x[2] is not None else np.zeros((), dtype=np.int32)
        ax = a.get("axis", 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * v.ndim
            shape[ax] = -1
            scale = scale.reshape(shape)
            zp = np.asarray(zp).reshape(shape) if np.asarray(zp).size > 1 else zp
        return (v.astype(np.float32) - np.asarray(zp).astype(np.float32)) * scale
    if op == "Neg":
        return -v
    fn = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}[op]
    return fn(v, x[1])


def _canonical(op: str, attrs: dict, w: np.ndarray, slot: int) -> tuple[np.ndarray, str]:
    """Return (canonical [out, in...] 2-D weight, kind) for weight input ``slot`` of ``op``."""
    if op == "Conv":
        return w.reshape(w.shape[0], -1), "conv"
    if op == "ConvTranspose":
        g = int(attrs.get("group", 1))
        ci, co_g = w.shape[0], w.shape[1]
        if g < 1 or ci % g:
            raise ValueError(f"group={g} does not divide the {ci} input channels")
        r = w.reshape((g, ci // g, co_g) + w.shape[2:])
        r = np.swapaxes(r, 1, 2)
        return r.reshape(g * co_g, -1), "other"
    if op == "Gemm":
        if slot == 1:
            m = w if attrs.get("transB", 0) else w.T
        else:
            m = w.T if attrs.get("transA", 0) else w
        return m, "dense"
    if op == "MatMul":
        if slot == 1:
            if w.ndim == 1:
                return w.reshape(1, -1), "dense"
            m = np.swapaxes(w, -1, -2)
            return m.reshape(-1, m.shape[-1]), "dense"
        return w.reshape(-1, w.shape[-1]) if w.ndim > 1 else w.reshape(1, -1), "dense"
    # LSTM / GRU / RNN: [dirs, gates*hidden, in]
    return w.reshape(-1, w.shape[-1]), "other"


def _weight_slots(node, const) -> list[tuple[int, str]]:
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        return [(1, "")]
    if op in ("Gemm", "MatMul"):
        if len(node.input) > 1 and const(node.input[1]):
            return [(1, "")]
        if const(node.input[0]):
            return [(0, "")]
        return []
    return [(1, ".W"), (2, ".R")]


def iter_onnx(path: str | os.PathLike, model=None) -> Iterator[WeightItem]:
    """Yield every constant weight of an ONNX model as a canonical :class:`WeightItem`.

    Raises :class:`InputError` (naming the file and tensor) for unreadable tensors and
    unsupported dtypes; non-finite values are checked by the analysis.
    """
    p = Path(path)
    m = model if model is not None else load_onnx(p)
    folder = _Folder(p, {o.domain if o.domain not in ("ai.onnx",) else "": int(o.version) for o in m.opset_import})
    seen_keys: set[str] = set()
    used_names: set[str] = set()
    counter = [0]

    def walk(graph, parent: _Scope | None, prefix: str) -> Iterator[WeightItem]:
        scope = _Scope(graph, parent)
        for node in graph.node:
            counter[0] += 1
            if node.op_type in WEIGHT_OPS and node.domain in ("", "ai.onnx"):
                cache: dict[str, tuple | None] = {}

                def const(nm: str) -> bool:
                    if nm not in cache:
                        cache[nm] = folder.resolve(nm, scope)
                    return cache[nm] is not None

                attrs = _attrs(node)
                for slot, suffix in _weight_slots(node, const):
                    if len(node.input) <= slot or not const(node.input[slot]):
                        continue
                    arr, roots, recipe = cache.pop(node.input[slot])
                    key = f"{node.op_type}{attrs.get('transA', 0)}{attrs.get('transB', 0)}" \
                          f"{attrs.get('group', 1)}:{slot}:{recipe}"
                    if key in seen_keys:
                        continue          # the same constant consumed the same way: one layer
                    seen_keys.add(key)
                    tname = roots[0] if len(set(roots)) == 1 else node.input[slot]
                    where = f"{p}: tensor {tname!r} ({node.op_type} {node.name or node.output[0]!r})"
                    arr = to_float(np.asarray(arr), where)
                    if arr.size < 2:
                        raise InputError(f"{where}: {'empty' if arr.size == 0 else '1-element'} weight tensor")
                    if arr.ndim < 1:
                        raise InputError(f"{where}: scalar weight")
                    try:
                        w, kind = _canonical(node.op_type, attrs, arr, slot)
                    except (ValueError, IndexError) as e:
                        raise InputError(f"{where}: unexpected weight shape {arr.shape} ({e})") from None
                    base = (node.name or f"{prefix}{node.op_type}_{counter[0]}") + suffix
                    name, k = base, 2
                    while name in used_names:
                        name, k = f"{base}#{k}", k + 1
                    used_names.add(name)
                    yield WeightItem(name, tname, node.op_type, kind, w, tuple(int(s) for s in arr.shape))
            for a in node.attribute:
                if a.type in (5, 10):      # AttributeProto.GRAPH / GRAPHS (If, Loop, Scan, ...)
                    sub_prefix = f"{prefix}{node.name or node.op_type}/{a.name}/"
                    if a.HasField("g"):
                        yield from walk(a.g, scope, sub_prefix)
                    for j, g in enumerate(a.graphs):
                        yield from walk(g, scope, f"{sub_prefix}{j}/")

    yield from walk(m.graph, None, "")


def iter_weights(path: str | os.PathLike) -> Iterator[WeightItem]:
    """Yield the layers of a ``.onnx`` or ``.npz`` model, one at a time."""
    fmt = model_format(path)
    if fmt == "npz":
        yield from iter_npz(path)
    else:
        yield from iter_onnx(path)
