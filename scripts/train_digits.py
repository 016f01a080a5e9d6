#!/usr/bin/env python3
"""Train and export the two bundled digits models (deterministic, numpy only).

Usage: ``python scripts/train_digits.py [-o examples]``

Data: scikit-learn's ``load_digits`` (1797 8x8 images, 0..16 grey levels, ships offline).
Pixels are scaled to [0, 1] (``x / 16``). A fixed-seed stratified split gives

- train     60 %  (used for training only),
- calib     10 %  ``digits_calib.npy``   float32 [N, 64]  (activation-scale calibration and the
                                          accuracy-aware search; no labels needed),
- heldout   15 %  ``digits_heldout.npz`` X float32 [N, 64], y int64 (checks the search's budget),
- test      15 %  ``digits_test.npz``    X float32 [N, 64], y int64 (reported accuracy).

Both models take the flat 64 pixels of the MLP or the NCHW ``[N, 1, 8, 8]`` image of the CNN;
pyquant accepts either layout when the per-sample element count matches.

Models (all layers fit the accelerator's MAX_ROWS=256 / MAX_COLS=1024):

- ``digits_mlp.onnx``: Gemm 64->64, Relu, Gemm 64->32, Relu, Gemm 32->10.
- ``digits_cnn.onnx``: Conv 3x3 pad 1 (1->8), BatchNormalization, Relu, MaxPool 2,
  Conv 3x3 pad 1 (8->16), Relu, MaxPool 2, Flatten, Gemm 64->10.

The CNN is trained without BN; on export its first conv is re-parameterised as conv' followed by
a BatchNormalization with non-trivial (seeded) gamma/beta/mean/var such that BN(conv'(x)) equals
the trained conv(x). The exported graph therefore computes the trained function and the
importer's BN folding is exercised on real parameters (a wrong fold breaks the accuracy).

Each ONNX file carries ``metadata_props`` naming its data files (``pyquant.data.calib``,
``pyquant.data.heldout``, ``pyquant.data.test``, relative to the model), which is how
``pyquant evaluate`` finds the data set of the bundled examples.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

SEED = 20240607
SPLITS = {"train": 0.60, "calib": 0.10, "heldout": 0.15, "test": 0.15}


# --------------------------------------------------------------------------- data
def load_splits(seed: int = SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Deterministic stratified split of sklearn digits -> {name: (X float32 [N,64] in [0,1], y)}."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {k: [] for k in SPLITS}
    for c in range(10):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n = len(idx)
        b1 = int(round(n * SPLITS["train"]))
        b2 = b1 + int(round(n * SPLITS["calib"]))
        b3 = b2 + int(round(n * SPLITS["heldout"]))
        parts["train"] += idx[:b1].tolist()
        parts["calib"] += idx[b1:b2].tolist()
        parts["heldout"] += idx[b2:b3].tolist()
        parts["test"] += idx[b3:].tolist()
    out = {}
    for k, ids in parts.items():
        ids = np.array(sorted(ids))
        out[k] = (x[ids], y[ids])
    return out


# --------------------------------------------------------------------------- training helpers
class Adam:
    """Plain Adam over a dict of float64 parameters."""

    def __init__(self, params: dict[str, np.ndarray], lr: float = 3e-3, b1: float = 0.9,
                 b2: float = 0.999, eps: float = 1e-8, wd: float = 1e-4):
        self.p, self.lr, self.b1, self.b2, self.eps, self.wd = params, lr, b1, b2, eps, wd
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        for k, g in grads.items():
            if self.p[k].ndim > 1:
                g = g + self.wd * self.p[k]
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            mh = self.m[k] / (1 - self.b1 ** self.t)
            vh = self.v[k] / (1 - self.b2 ** self.t)
            self.p[k] -= self.lr * mh / (np.sqrt(vh) + self.eps)


def softmax_ce(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(p[np.arange(n), y] + 1e-12).mean())
    g = p.copy()
    g[np.arange(n), y] -= 1
    return loss, g / n


def he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


# --------------------------------------------------------------------------- MLP
def mlp_forward(p: dict[str, np.ndarray], x: np.ndarray, cache: bool = False):
    h1p = x @ p["W1"].T + p["b1"]
    h1 = np.maximum(h1p, 0)
    h2p = h1 @ p["W2"].T + p["b2"]
    h2 = np.maximum(h2p, 0)
    out = h2 @ p["W3"].T + p["b3"]
    return (out, (x, h1p, h1, h2p, h2)) if cache else out


def train_mlp(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 120) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = {"W1": he(rng, (64, 64), 64), "b1": np.zeros(64), "W2": he(rng, (32, 64), 64),
         "b2": np.zeros(32), "W3": he(rng, (10, 32), 32), "b3": np.zeros(10)}
    opt = Adam(p, lr=3e-3)
    x = x.astype(np.float64)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 32):
            b = order[i:i + 32]
            out, (xb, h1p, h1, h2p, h2) = mlp_forward(p, x[b], cache=True)
            _, g = softmax_ce(out, y[b])
            gr = {"W3": g.T @ h2, "b3": g.sum(0)}
            g2 = (g @ p["W3"]) * (h2p > 0)
            gr.update({"W2": g2.T @ h1, "b2": g2.sum(0)})
            g1 = (g2 @ p["W2"]) * (h1p > 0)
            gr.update({"W1": g1.T @ xb, "b1": g1.sum(0)})
            opt.step(gr)
    return p


# --------------------------------------------------------------------------- CNN (NCHW)
def im2col(x: np.ndarray, k: int, pad: int) -> np.ndarray:
    """x [B,C,H,W] -> cols [B, H*W, C*k*k] (stride 1, 'same' padding), column order (c, ky, kx)."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((b, c, k, k, h, w), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, ky, kx] = xp[:, :, ky:ky + h, kx:kx + w]
    return cols.reshape(b, c * k * k, h * w).transpose(0, 2, 1)


def col2im(g: np.ndarray, shape: tuple[int, ...], k: int, pad: int) -> np.ndarray:
    b, c, h, w = shape
    g = g.transpose(0, 2, 1).reshape(b, c, k, k, h, w)
    xp = np.zeros((b, c, h + 2 * pad, w + 2 * pad))
    for ky in range(k):
        for kx in range(k):
            xp[:, :, ky:ky + h, kx:kx + w] += g[:, :, ky, kx]
    return xp[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(x: np.ndarray, wt: np.ndarray, bias: np.ndarray):
    b, c, h, w = x.shape
    cols = im2col(x, 3, 1)
    out = cols @ wt.reshape(wt.shape[0], -1).T + bias       # [B, HW, O]
    return out.transpose(0, 2, 1).reshape(b, wt.shape[0], h, w), cols


def pool_fwd(x: np.ndarray):
    b, c, h, w = x.shape
    v = x.reshape(b, c, h // 2, 2, w // 2, 2)
    out = v.max(axis=(3, 5))
    mask = v == out[:, :, :, None, :, None]
    # break ties: keep only the first max per window
    m = mask.transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    first = np.cumsum(m, axis=-1) == 1
    m = m & first
    mask = m.reshape(b, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return out, mask


def pool_bwd(g: np.ndarray, mask: np.ndarray) -> np.ndarray:
    b, c, h2, w2 = g.shape
    return (mask * g[:, :, :, None, :, None]).reshape(b, c, h2 * 2, w2 * 2)


def cnn_forward(p: dict[str, np.ndarray], x: np.ndarray, cache: bool = False):
    c1p, cols1 = conv_fwd(x, p["C1"], p["c1"])
    c1 = np.maximum(c1p, 0)
    p1, m1 = pool_fwd(c1)
    c2p, cols2 = conv_fwd(p1, p["C2"], p["c2"])
    c2 = np.maximum(c2p, 0)
    p2, m2 = pool_fwd(c2)
    f = p2.reshape(len(x), -1)                               # CHW flatten, as ONNX Flatten
    out = f @ p["W3"].T + p["b3"]
    return (out, (x, cols1, c1p, m1, p1, cols2, c2p, m2, f)) if cache else out


def train_cnn(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 60) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = {"C1": he(rng, (8, 1, 3, 3), 9), "c1": np.zeros(8), "C2": he(rng, (16, 8, 3, 3), 72),
         "c2": np.zeros(16), "W3": he(rng, (10, 64), 64), "b3": np.zeros(10)}
    opt = Adam(p, lr=3e-3)
    x = x.astype(np.float64).reshape(-1, 1, 8, 8)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 32):
            b = order[i:i + 32]
            out, (xb, cols1, c1p, m1, p1, cols2, c2p, m2, f) = cnn_forward(p, x[b], cache=True)
            _, g = softmax_ce(out, y[b])
            n = len(b)
            gr = {"W3": g.T @ f, "b3": g.sum(0)}
            gp2 = (g @ p["W3"]).reshape(n, 16, 2, 2)
            gc2 = pool_bwd(gp2, m2) * (c2p > 0)                 # [n,16,4,4]
            g2 = gc2.reshape(n, 16, 16).transpose(0, 2, 1)      # [n, HW, O]
            gr["C2"] = np.einsum("npo,npk->ok", g2, cols2).reshape(p["C2"].shape)
            gr["c2"] = g2.sum((0, 1))
            gcols2 = g2 @ p["C2"].reshape(16, -1)                # [n, HW, C*9]
            gp1 = col2im(gcols2, (n, 8, 4, 4), 3, 1)
            gc1 = pool_bwd(gp1, m1) * (c1p > 0)                 # [n,8,8,8]
            g1 = gc1.reshape(n, 8, 64).transpose(0, 2, 1)
            gr["C1"] = np.einsum("npo,npk->ok", g1, cols1).reshape(p["C1"].shape)
            gr["c1"] = g1.sum((0, 1))
            opt.step(gr)
    return p


# --------------------------------------------------------------------------- ONNX export
def _meta(model, extra: dict[str, str]) -> None:
    for k, v in extra.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v


def _finish(graph, name: str, data_files: dict[str, str]):
    from onnx import checker, helper

    model = helper.make_model(graph, producer_name="pyquant-train_digits",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.doc_string = f"{name}: trained by scripts/train_digits.py (seed {SEED}) on sklearn digits / 16"
    _meta(model, data_files)
    checker.check_model(model)
    return model


def export_mlp(p: dict[str, np.ndarray], data_files: dict[str, str]):
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []
    prev = "input"
    for i, (w, b) in enumerate([("W1", "b1"), ("W2", "b2"), ("W3", "b3")], start=1):
        inits += [numpy_helper.from_array(p[w].astype(np.float32), f"fc{i}.weight"),
                  numpy_helper.from_array(p[b].astype(np.float32), f"fc{i}.bias")]
        out = f"fc{i}_out" if i < 3 else "logits"
        nodes.append(helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"], [out],
                                      name=f"fc{i}", transB=1))
        prev = out
        if i < 3:
            nodes.append(helper.make_node("Relu", [prev], [f"relu{i}_out"], name=f"relu{i}"))
            prev = f"relu{i}_out"
    graph = helper.make_graph(
        nodes, "digits_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    return _finish(graph, "digits_mlp", data_files)


def export_cnn(p: dict[str, np.ndarray], data_files: dict[str, str], seed: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed + 1)
    eps = 1e-5
    gamma = rng.uniform(0.5, 2.0, 8)
    var = rng.uniform(0.5, 2.0, 8)
    mean = rng.normal(0.0, 0.3, 8)
    beta = rng.normal(0.0, 0.3, 8)
    a = gamma / np.sqrt(var + eps)
    c1w = p["C1"] / a[:, None, None, None]
    c1b = (p["c1"] - beta) / a + mean
    f32 = np.float32
    inits = [
        numpy_helper.from_array(c1w.astype(f32), "conv1.weight"),
        numpy_helper.from_array(c1b.astype(f32), "conv1.bias"),
        numpy_helper.from_array(gamma.astype(f32), "bn1.weight"),
        numpy_helper.from_array(beta.astype(f32), "bn1.bias"),
        numpy_helper.from_array(mean.astype(f32), "bn1.running_mean"),
        numpy_helper.from_array(var.astype(f32), "bn1.running_var"),
        numpy_helper.from_array(p["C2"].astype(f32), "conv2.weight"),
        numpy_helper.from_array(p["c2"].astype(f32), "conv2.bias"),
        numpy_helper.from_array(p["W3"].astype(f32), "fc.weight"),
        numpy_helper.from_array(p["b3"].astype(f32), "fc.bias"),
    ]
    h = helper.make_node
    nodes = [
        h("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1_out"], name="conv1",
          kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        h("BatchNormalization", ["conv1_out", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                 "bn1.running_var"], ["bn1_out"], name="bn1", epsilon=eps),
        h("Relu", ["bn1_out"], ["relu1_out"], name="relu1"),
        h("MaxPool", ["relu1_out"], ["pool1_out"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        h("Conv", ["pool1_out", "conv2.weight", "conv2.bias"], ["conv2_out"], name="conv2",
          kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        h("Relu", ["conv2_out"], ["relu2_out"], name="relu2"),
        h("MaxPool", ["relu2_out"], ["pool2_out"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        h("Flatten", ["pool2_out"], ["flat"], name="flatten", axis=1),
        h("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    return _finish(graph, "digits_cnn", data_files)


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_np(path: Path, fn, *args, **kw) -> None:
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    fn(tmp, *args, **kw)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default=str(Path(__file__).resolve().parent.parent / "examples"))
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    sp = load_splits(args.seed)
    xtr, ytr = sp["train"]
    data_files = {"pyquant.data.calib": "digits_calib.npy",
                  "pyquant.data.heldout": "digits_heldout.npz",
                  "pyquant.data.test": "digits_test.npz"}
    _atomic_np(out / "digits_calib.npy", np.save, sp["calib"][0])
    _atomic_np(out / "digits_heldout.npz", np.savez, X=sp["heldout"][0], y=sp["heldout"][1])
    _atomic_np(out / "digits_test.npz", np.savez, X=sp["test"][0], y=sp["test"][1])

    summary = {"seed": args.seed, "splits": {k: len(v[1]) for k, v in sp.items()}}
    pm = train_mlp(xtr, ytr, args.seed)
    pc = train_cnn(xtr, ytr, args.seed)
    for name, p, fwd, model in [
        ("digits_mlp", pm, mlp_forward, export_mlp(pm, data_files)),
        ("digits_cnn", pc, lambda q, x: cnn_forward(q, x.reshape(-1, 1, 8, 8)),
         export_cnn(pc, data_files, args.seed)),
    ]:
        _atomic_bytes(out / f"{name}.onnx", model.SerializeToString())
        acc = {k: float((fwd(p, v[0].astype(np.float64)).argmax(1) == v[1]).mean()) for k, v in sp.items()}
        summary[name] = acc
        print(f"{name}: " + "  ".join(f"{k} {100 * a:.2f}%" for k, a in acc.items()))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
