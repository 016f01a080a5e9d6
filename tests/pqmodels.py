"""Small executable model directories for the host-tool tests, written with the project's own
layer-file writer (pyquant.layerfiles) from random codes and constants.

They do not depend on the ONNX converter, so the deploy/vboard tests exercise the protocol and
the firmware on every width (INT2/4/6/8), on conv + pooling and on multi-tile layers even when
the converter's choices would not produce them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyquant.intmath import layer_int
from pyquant.layerfiles import LayerRecord, write_model_dir


def _consts(rng: np.random.Generator, x: np.ndarray, codes: np.ndarray) -> tuple:
    """bias/mult/shift giving a spread of int8 outputs for activations like ``x``."""
    m = codes.shape[0]
    acc = x.astype(np.int64) @ codes.astype(np.int64).T
    std = float(acc.std()) or 1.0
    bias = rng.integers(-int(std), int(std) + 1, size=m).astype(np.int32)
    mult = rng.integers(16384, 32768, size=m).astype(np.int64)
    # out ~ acc * mult / 2**shift with |out| ~ 40 for |acc| ~ std
    shift = np.full(m, int(np.clip(np.ceil(np.log2(std * 24576 / 40)), 1, 47)), dtype=np.int64)
    return bias, mult, shift


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _codes(rng: np.random.Generator, m: int, k: int, bits: int) -> np.ndarray:
    q = _qmax(bits)
    return rng.integers(-q, q + 1, size=(m, k)).astype(np.int8)


def make_mlp(out_dir: str | Path, seed: int = 0, dims: tuple[int, ...] = (64, 48, 32, 10),
             bits: tuple[int, ...] = (8, 4, 2), samples: int = 16) -> Path:
    """Dense chain ``dims`` with the given widths (ReLU on all but the last layer)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-127, 128, size=(samples, dims[0])).astype(np.int8)
    layers = []
    for i, (k, m, b) in enumerate(zip(dims[:-1], dims[1:], bits)):
        codes = _codes(rng, m, k, b)
        bias, mult, shift = _consts(rng, x, codes)
        relu = i < len(dims) - 2
        layers.append(LayerRecord(
            name=f"fc{i}", tensor=f"fc{i}.weight", op="Gemm", kind="dense", shape=(m, k), codes=codes,
            bits=b, status="ok", scale=np.array([0.01]), executable=True, relu=relu,
            bias_int=bias, mult=mult, shift=shift, in_scale=0.02, out_scale=0.02))
        x = layer_int(x, codes, bias, mult, shift, relu)
    info = {"executable": True, "input": {"h": 1, "w": 1, "c": dims[0], "scale": 0.02}, "out_size": dims[-1]}
    write_model_dir(out_dir, layers, info)
    return Path(out_dir)


def make_cnn(out_dir: str | Path, seed: int = 0, samples: int = 8) -> Path:
    """conv3x3 pad1 1->8 (INT6, ReLU, maxpool 2) -> conv3x3 pad1 8->16 (INT4, ReLU, avgpool 2)
    -> dense 64->10 (INT8): every off-accelerator operation of docs/FORMAT.md section 4."""
    from pyquant.infer import im2col_hwc, pool_int

    rng = np.random.default_rng(seed)
    a = rng.integers(-127, 128, size=(samples, 8, 8, 1)).astype(np.int8)
    layers = []
    spec = [(1, 8, 8, 6, "max"), (8, 16, 4, 4, "avg")]
    for i, (cin, cout, hw, b, pool) in enumerate(spec):
        g = dict(in_h=hw, in_w=hw, in_c=cin, kh=3, kw=3, stride_h=1, stride_w=1, pad_top=1, pad_left=1,
                 pad_bottom=1, pad_right=1, out_h=hw, out_w=hw)
        codes = _codes(rng, cout, cin * 9, b)
        xm = im2col_hwc(a, g).reshape(-1, cin * 9)
        bias, mult, shift = _consts(rng, xm, codes)
        layers.append(LayerRecord(
            name=f"conv{i}", tensor=f"conv{i}.weight", op="Conv", kind="conv", shape=(cout, cin, 3, 3),
            codes=codes, bits=b, status="ok", scale=np.array([0.01]), executable=True, relu=True,
            pool=pool, pool_k=2, pool_stride=2, geom=g, bias_int=bias, mult=mult, shift=shift,
            in_scale=0.02, out_scale=0.02))
        y = layer_int(xm, codes, bias, mult, shift, True).reshape(samples, hw, hw, cout)
        a = pool_int(y, pool, 2, 2)
    x = a.reshape(samples, -1)
    codes = _codes(rng, 10, 64, 8)
    bias, mult, shift = _consts(rng, x, codes)
    layers.append(LayerRecord(
        name="fc", tensor="fc.weight", op="Gemm", kind="dense", shape=(10, 64), codes=codes, bits=8,
        status="ok", scale=np.array([0.01]), executable=True, relu=False, bias_int=bias, mult=mult,
        shift=shift, in_scale=0.02, out_scale=0.02))
    info = {"executable": True, "input": {"h": 8, "w": 8, "c": 1, "scale": 0.02}, "out_size": 10}
    write_model_dir(out_dir, layers, info)
    return Path(out_dir)


def random_input(model_dir: str | Path, n: int, seed: int = 1) -> np.ndarray:
    """int8 HWC inputs for a model directory from this module."""
    import json

    info = json.loads((Path(model_dir) / "model.json").read_text())["info"]["input"]
    size = info["h"] * info["w"] * info["c"]
    return np.random.default_rng(seed).integers(-127, 128, size=(n, size)).astype(np.int8)
