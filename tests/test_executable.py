"""Executable-model import: float inference equals onnxruntime; BN folding; clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyquant.cli import main
from pyquant.errors import InputError
from pyquant.executable import load_executable
from pyquant.infer import infer_float

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


def _ort(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.astype(np.float32)})[0]


def _save(tmp_path, name, nodes, inits, in_shape, out_shape):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    p = tmp_path / f"{name}.onnx"
    onnx.save(m, str(p))
    return p


@pytest.mark.parametrize("name,shape", [("digits_mlp", (-1, 64)), ("digits_cnn", (-1, 1, 8, 8))])
def test_digits_float_matches_onnxruntime(name, shape):
    x = np.load(EX / "digits_calib.npy")
    model = load_executable(EX / f"{name}.onnx")
    ref = _ort(EX / f"{name}.onnx", x.reshape(shape))
    got = infer_float(model, x)                       # flat [N, 64] accepted for the CNN too
    assert np.allclose(got, ref, atol=1e-4, rtol=1e-4)
    assert np.allclose(infer_float(model, x.reshape(shape)), got)


def test_digits_cnn_bn_is_folded():
    m = load_executable(EX / "digits_cnn.onnx")
    assert [ly.name for ly in m.layers] == ["conv1", "conv2", "fc"]
    assert m.layers[0].folded == ["bn1"] and m.layers[0].relu and m.layers[0].pool == "max"
    raw = numpy_helper.to_array(next(t for t in onnx.load(str(EX / "digits_cnn.onnx")).graph.initializer
                                     if t.name == "conv1.weight"))
    assert not np.allclose(m.layers[0].w, raw.reshape(8, -1))  # folding changed the weight
    assert m.layers[2].flatten_chw == (16, 2, 2)


def test_synthetic_ops_match_onnxruntime(tmp_path):
    """Conv stride 2 + SAME_UPPER + BN + Relu + AveragePool, Reshape, MatMul+Add, Gemm(transB=0, alpha, beta)."""
    rng = np.random.default_rng(0)
    inits = {
        "cw": rng.normal(size=(4, 3, 3, 3)), "cb": rng.normal(size=4),
        "g": rng.uniform(0.5, 2, 4), "b": rng.normal(size=4), "mu": rng.normal(size=4), "var": rng.uniform(0.5, 2, 4),
        "shape": np.array([0, -1]),
        "mw": rng.normal(size=(16, 7)), "mb": rng.normal(size=7),
        "gw": rng.normal(size=(7, 5)), "gb": rng.normal(size=5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv", strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Dropout", ["p"], ["d"]),
        helper.make_node("Reshape", ["d", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "mw"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "mb"], ["a"]),
        helper.make_node("Relu", ["a"], ["r2"]),
        helper.make_node("Identity", ["r2"], ["i"]),
        helper.make_node("Gemm", ["i", "gw", "gb"], ["y"], name="gemm", alpha=0.5, beta=2.0),
    ]
    inits["shape"] = inits["shape"].astype(np.int64)
    g = helper.make_graph(nodes, "syn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 9, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
                          [numpy_helper.from_array(v.astype(np.int64 if k == "shape" else np.float32), k)
                           for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / "syn.onnx"
    onnx.save(m, str(p))
    x = rng.normal(size=(3, 3, 9, 8))
    model = load_executable(p)
    assert [ly.kind for ly in model.layers] == ["conv", "dense", "dense"]
    assert model.layers[0].geom["out_h"] == 5 and model.layers[0].geom["out_w"] == 4
    assert np.allclose(infer_float(model, x), _ort(p, x), atol=1e-4)


def test_unsupported_operators_listed(tmp_path, capsys):
    rng = np.random.default_rng(1)
    p = _save(tmp_path, "bad", [
        helper.make_node("Gemm", ["x", "w"], ["h"], transB=1),
        helper.make_node("Sigmoid", ["h"], ["s"]),
        helper.make_node("Softmax", ["s"], ["y"]),
    ], {"w": rng.normal(size=(4, 6))}, ["N", 6], ["N", 4])
    with pytest.raises(InputError, match="Sigmoid, Softmax"):
        load_executable(p)
    np.save(tmp_path / "c.npy", rng.normal(size=(5, 6)))
    rc = main(["convert", str(p), "--calib", str(tmp_path / "c.npy"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "bad.onnx" in err and "Sigmoid" in err and "Softmax" in err
    assert not (tmp_path / "out").exists()
    # analysis still works on the same graph
    assert main(["analyze", str(p), "-q"]) == 0


def test_non_sequential_and_grouped_rejected(tmp_path):
    rng = np.random.default_rng(2)
    p = _save(tmp_path, "branch", [
        helper.make_node("Gemm", ["x", "w1"], ["a"], transB=1),
        helper.make_node("Gemm", ["x", "w2"], ["b"], transB=1),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ], {"w1": rng.normal(size=(4, 6)), "w2": rng.normal(size=(4, 6))}, ["N", 6], ["N", 4])
    with pytest.raises(InputError, match="branch.onnx"):
        load_executable(p)
    p = _save(tmp_path, "grouped", [
        helper.make_node("Conv", ["x", "w"], ["c"], group=2, kernel_shape=[3, 3]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ], {"w": rng.normal(size=(4, 1, 3, 3)), "w2": rng.normal(size=(3, 4 * 2 * 2))}, ["N", 2, 4, 4], ["N", 3])
    with pytest.raises(InputError, match="group=2"):
        load_executable(p)


def test_npz_mlp(tmp_path):
    rng = np.random.default_rng(3)
    w1, b1, w2 = rng.normal(size=(5, 4)), rng.normal(size=5), rng.normal(size=(3, 5))
    np.savez(tmp_path / "m.npz", **{"l1.weight": w1, "l1.bias": b1, "l2.weight": w2})
    m = load_executable(tmp_path / "m.npz")
    x = rng.normal(size=(6, 4))
    assert np.allclose(infer_float(m, x), np.maximum(x @ w1.T + b1, 0) @ w2.T)
    np.savez(tmp_path / "bad.npz", **{"l1.weight": w1, "l2.weight": rng.normal(size=(3, 7))})
    with pytest.raises(InputError, match="bad.npz"):
        load_executable(tmp_path / "bad.npz")


def test_examples_data_splits_are_reproducible_and_disjoint():
    """scripts/train_digits.py's split reproduces the shipped files; splits are disjoint and complete."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "scripts" / "train_digits.py")
    td = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(td)
    sp = td.load_splits()
    assert np.array_equal(sp["calib"][0], np.load(EX / "digits_calib.npy"))
    for k in ("heldout", "test"):
        z = np.load(EX / f"digits_{k}.npz")
        assert np.array_equal(sp[k][0], z["X"]) and np.array_equal(sp[k][1], z["y"])
    assert sum(len(v[1]) for v in sp.values()) == 1797
    rows = {k: {r.tobytes() for r in v[0]} for k, v in sp.items()}
    # digits has a few duplicate images; the splits share at most those
    assert len(rows["test"] & rows["calib"]) + len(rows["test"] & rows["heldout"]) <= 3
    for name in ("digits_mlp", "digits_cnn"):
        meta = {e.key: e.value for e in onnx.load(str(EX / f"{name}.onnx")).metadata_props}
        assert meta["pyquant.data.calib"] == "digits_calib.npy"


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("strides", [None, [1, 1], [2, 2]])
def test_pool_default_strides_match_onnxruntime(tmp_path, op, strides):
    """ONNX pools default to stride 1 (not the kernel size); overlapping windows must match ORT,
    in float and through the integer pipeline (pool_int)."""
    from pyquant.calibrate import PlanBuilder
    from pyquant.infer import infer_quantized

    rng = np.random.default_rng(5)
    kw = {"kernel_shape": [2, 2]} | ({"strides": strides} if strides else {})
    s = (strides or [1, 1])[0]
    o = (6 - 2) // s + 1
    p = _save(tmp_path, f"pool_{op}_{s}_{strides is None}", [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node(op, ["r"], ["p"], **kw),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ], {"w": rng.normal(size=(2, 1, 3, 3)), "w2": rng.normal(size=(3, 2 * o * o))}, ["N", 1, 6, 6], ["N", 3])
    x = rng.normal(size=(16, 1, 6, 6))
    model = load_executable(p)
    assert (model.layers[0].pool_k, model.layers[0].pool_stride) == (2, s)
    ref = _ort(p, x)
    assert np.allclose(infer_float(model, x), ref, atol=1e-4)
    pb = PlanBuilder(model, x)
    q = infer_quantized(({"input": {"scale": pb.scales.input}}, pb.build([8, 8])), x)
    assert 10 * np.log10((ref**2).sum() / ((ref - q) ** 2).sum()) > 25


def test_padded_pool_rejected(tmp_path):
    rng = np.random.default_rng(6)
    p = _save(tmp_path, "samepool", [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ], {"w": rng.normal(size=(2, 1, 3, 3)), "w2": rng.normal(size=(3, 2 * 4 * 4))}, ["N", 1, 6, 6], ["N", 3])
    with pytest.raises(InputError, match="samepool.onnx.*no padding"):
        load_executable(p)


def test_bias_as_separate_add_after_conv_and_gemm(tmp_path):
    """Exporters that emit the bias as an Add (Conv + Add[1,C,1,1], Gemm + Add[1,M]) are folded;
    an Add that would broadcast along the wrong axis (Conv + Add[C]) is rejected."""
    rng = np.random.default_rng(8)
    inits = {"w": rng.normal(size=(3, 1, 3, 3)), "cb": rng.normal(size=(1, 3, 1, 1)),
             "w2": rng.normal(size=(4, 3 * 2 * 2)), "gb": rng.normal(size=(1, 4)), "s": np.array(0.5)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Add", ["c", "cb"], ["cbias"]),
             helper.make_node("Relu", ["cbias"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w2"], ["g"], transB=1),
             helper.make_node("Add", ["gb", "g"], ["gbias"]),
             helper.make_node("Add", ["gbias", "s"], ["y"])]
    p = _save(tmp_path, "addbias", nodes, inits, ["N", 1, 6, 6], ["N", 4])
    x = rng.normal(size=(5, 1, 6, 6))
    model = load_executable(p)
    assert len(model.layers) == 2
    np.testing.assert_allclose(model.layers[1].b, inits["gb"].reshape(-1) + 0.5, rtol=1e-6)
    assert np.allclose(infer_float(model, x), _ort(p, x), atol=1e-4)
    inits["cb"] = rng.normal(size=3)                         # [C]: ONNX broadcasts it along W
    p = _save(tmp_path, "addbias_bad", nodes[:1] + [helper.make_node("Add", ["c", "cb"], ["cbias"])] + nodes[2:],
              inits, ["N", 1, 6, 6], ["N", 4])
    with pytest.raises(InputError, match="addbias_bad.onnx.*Add"):
        load_executable(p)


def test_weights_behind_constant_subgraphs_execute(tmp_path):
    """Weights reached through Transpose / Reshape / fp16 Cast / arithmetic on constants (as
    exporters leave them) execute like plain initializers, and equal what analysis extracts."""
    from pyquant.onnx_io import iter_weights

    rng = np.random.default_rng(9)
    w1 = rng.normal(size=(5, 6)).astype(np.float32)                 # stored [out, in]: needs Transpose
    flat2 = rng.normal(size=15).astype(np.float16)                  # stored flat fp16
    g = helper.make_graph([
        helper.make_node("Transpose", ["w1"], ["w1t"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "w1t"], ["h"], name="mm"),
        helper.make_node("Mul", ["b1", "half"], ["b1h"]),
        helper.make_node("Add", ["h", "b1h"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("Cast", ["flat2"], ["f32"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["f32", "shape"], ["w2"]),
        helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc", transB=1),
    ], "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(rng.normal(size=5).astype(np.float32), "b1"),
         numpy_helper.from_array(np.float32(0.5), "half"), numpy_helper.from_array(flat2, "flat2"),
         numpy_helper.from_array(np.array([3, 5], np.int64), "shape")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / "chain.onnx"
    onnx.save(m, str(p))
    model = load_executable(p)
    assert [ly.name for ly in model.layers] == ["mm", "fc"] and model.layers[0].relu
    x = rng.normal(size=(7, 6))
    assert np.allclose(infer_float(model, x), _ort(p, x), atol=1e-4)
    for ly, it in zip(model.layers, iter_weights(p)):
        assert ly.name == it.name and np.array_equal(ly.w, np.asarray(it.w, np.float64))


def _torch_view_flatten(tmp_path, name, tail):
    """Conv -> Relu -> x.view(x.size(0), <tail>) as PyTorch exports it with a dynamic batch."""
    rng = np.random.default_rng(10)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Shape", ["r"], ["shp"]),
             helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
             helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["n1", "tail"], ["tgt"], axis=0),
             helper.make_node("Reshape", ["r", "tgt"], ["f"]),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1)]
    inits = {"w": rng.normal(size=(3, 2, 3, 3)), "b": rng.normal(size=3), "w2": rng.normal(size=(4, 3 * 5 * 5)),
             "b2": rng.normal(size=4)}
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
                          + [numpy_helper.from_array(np.array([0], np.int64), "ax0"),
                             numpy_helper.from_array(np.array(tail, np.int64), "tail")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / f"{name}.onnx"
    onnx.save(m, str(p))
    return p


def test_dynamic_batch_view_flatten(tmp_path):
    """Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) is a Flatten: float == ORT for
    several batch sizes, and it converts to an executable integer model; a target that does not
    flatten ([N, 3, -1]) is rejected."""
    from pyquant.calibrate import PlanBuilder
    from pyquant.infer import infer_quantized

    p = _torch_view_flatten(tmp_path, "viewflat", [-1])
    model = load_executable(p)
    assert [ly.kind for ly in model.layers] == ["conv", "dense"] and model.layers[1].flatten_chw == (3, 5, 5)
    rng = np.random.default_rng(11)
    for n in (1, 4, 9):
        x = rng.normal(size=(n, 2, 5, 5))
        assert np.allclose(infer_float(model, x), _ort(p, x), atol=1e-4)
    x = rng.normal(size=(32, 2, 5, 5))
    pb = PlanBuilder(model, x)
    f = _ort(p, x)
    q = infer_quantized(({"input": {"scale": pb.scales.input}}, pb.build([8, 8])), x)
    assert 10 * np.log10((f**2).sum() / ((f - q) ** 2).sum()) > 25
    bad = _torch_view_flatten(tmp_path, "viewbad", [3, -1])
    with pytest.raises(InputError, match="viewbad.onnx.*Reshape"):
        load_executable(bad)


_N = helper.make_node


@pytest.mark.parametrize("name,nodes,inits,shape", [
    ("gemm_1d", [_N("Gemm", ["x", "w"], ["y"], transB=1)], {"w": np.ones(6)}, ["N", 6]),
    ("bn_sizes", [_N("Gemm", ["x", "w"], ["h"], transB=1), _N("BatchNormalization", ["h", "g", "b", "m", "v"], ["y"])],
     {"w": np.ones((3, 6)), "g": np.ones(2), "b": np.ones(3), "m": np.ones(3), "v": np.ones(3)}, ["N", 6]),
    ("bn_negvar", [_N("Gemm", ["x", "w"], ["h"], transB=1), _N("BatchNormalization", ["h", "g", "b", "m", "v"], ["y"])],
     {"w": np.ones((3, 6)), "g": np.ones(3), "b": np.ones(3), "m": np.ones(3), "v": -np.ones(3)}, ["N", 6]),
    ("conv_stride0", [_N("Conv", ["x", "w"], ["c"], strides=[0, 0]), _N("Flatten", ["c"], ["f"]),
                      _N("Gemm", ["f", "w2"], ["y"], transB=1)],
     {"w": np.ones((2, 1, 3, 3)), "w2": np.ones((3, 32))}, ["N", 1, 6, 6]),
    ("pool_stride0", [_N("Conv", ["x", "w"], ["c"]), _N("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[0, 0]),
                      _N("Flatten", ["p"], ["f"]), _N("Gemm", ["f", "w2"], ["y"], transB=1)],
     {"w": np.ones((2, 1, 3, 3)), "w2": np.ones((3, 8))}, ["N", 1, 6, 6]),
    ("degenerate_scale", [_N("Gemm", ["x", "w"], ["h"], transB=1), _N("Relu", ["h"], ["r"]),
                          _N("Gemm", ["r", "w2", "b2"], ["y"], transB=1)],
     {"w": np.full((3, 6), 1e-30), "w2": np.ones((2, 3)), "b2": np.array([1e30, 1.0])}, ["N", 6]),
])
def test_malformed_executable_graphs_are_clear_errors(tmp_path, capsys, name, nodes, inits, shape):
    """Graphs that would crash the import or the writer (1-D Gemm weight, BN size mismatch or
    negative variance, zero strides, scales beyond float32) are one-line errors naming the model."""
    p = _save(tmp_path, name, nodes, inits, shape, ["N", 3])
    np.save(tmp_path / "c.npy", np.random.default_rng(0).uniform(0, 1, (8,) + tuple(shape[1:])))
    rc = main(["convert", str(p), "--calib", str(tmp_path / "c.npy"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and f"{name}.onnx" in err, err
    assert not (tmp_path / "out").exists()


def test_graph_only_ops_are_all_listed(tmp_path):
    """A graph the importer accepts but the integer pipeline cannot run yet (depthwise conv,
    residual join, sigmoid) is ONE error naming every such op and node."""
    rng = np.random.default_rng(12)
    p = _save(tmp_path, "graphonly", [
        _N("Conv", ["x", "dw"], ["d"], group=2, pads=[1, 1, 1, 1], name="dwconv"),
        _N("Add", ["d", "x"], ["s"], name="join"),
        _N("Sigmoid", ["s"], ["g"], name="sig"),
        _N("Flatten", ["g"], ["f"]),
        _N("Gemm", ["f", "w2"], ["y"], transB=1, name="fc"),
    ], {"dw": rng.normal(size=(2, 1, 3, 3)), "w2": rng.normal(size=(3, 2 * 4 * 4))}, ["N", 2, 4, 4], ["N", 3])
    with pytest.raises(InputError) as e:
        load_executable(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{p}: ") and "operator(s) Add, Conv, Sigmoid" in msg
    assert "'dwconv': group=2" in msg and "'join'" in msg and "'sig'" in msg


def test_input_shape_pins_dynamic_dims(tmp_path):
    rng = np.random.default_rng(13)
    nodes = [_N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), _N("Relu", ["c"], ["r"]),
             _N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), _N("Flatten", ["p"], ["f"]),
             _N("Gemm", ["f", "w2"], ["y"], transB=1)]
    p = _save(tmp_path, "dyn", nodes, {"w": rng.normal(size=(2, 1, 3, 3)), "w2": rng.normal(size=(3, 2 * 3 * 2))},
              ["N", 1, "H", "W"], ["N", 3])
    with pytest.raises(InputError, match=r"dyn\.onnx: input 'x' has dynamic dimensions.*input-shape"):
        load_executable(p)
    model = load_executable(p, input_shape=[1, 1, 6, 4])
    assert model.input_chw == (1, 6, 4) and model.layers[1].flatten_chw == (2, 3, 2)
    x = rng.normal(size=(4, 1, 6, 4))
    assert np.allclose(infer_float(model, x), _ort(p, x), atol=1e-4)
