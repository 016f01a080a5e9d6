"""Golden vectors: every accelerator call of an integer inference, written for test benches.

``write_golden(model_dir, x, out_dir)`` runs :func:`pyquant.infer.infer_int` on the model
directory and writes, for the model input and for each layer ``NN`` (docs/FORMAT.md section 9.1):

- ``input.{npy,hex,bin}``: the quantized model input, int8 ``[B, H·W·C]`` (HWC);
- ``lNN_wgt.{bin,hex,w32.hex}``: the layer's ``wgt`` stream bytes (8 bytes of constants per
  row, then the packed codes: docs/HARDWARE.md section 3);
- ``lNN_x.{npy,hex,bin,w32.hex}``: the call's ``X[N, K]`` (the ``act`` stream; conv: im2col of the
  layer input, ``N = B·out_h·out_w``);
- ``lNN_y.{npy,hex,bin,w32.hex}``: the call's result ``Y[N, M]`` (the ``res`` stream);
- ``lNN_out.{npy,hex,bin}``: the layer output activation after pooling, ``[B, out_size]``
  (= the next layer's input);
- ``output.{npy,hex,bin}``: the model output, int8 ``[B, M_last]``;
- ``manifest.json``: one entry per call (M, K, N, bits, relu, pool, file names, sizes, CRCs).

``.npy`` keeps the array shape; ``.bin`` is the raw little-endian byte sequence (int8 two's
complement, row-major, exactly what the board receives or sends); ``.hex`` is one value per line,
two lower-case hex digits (the byte, two's complement), for ``$readmemh`` and C test benches;
``.w32.hex`` is the same stream as 32-bit little-endian words, 8 hex digits per line (last word
zero-padded), as the AXI-Stream carries it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np

from pyquant.errors import InputError
from pyquant.fileio import dumps_strict_json, read_array_file
from pyquant.infer import infer_int, load_int_model, quantize_input, input_chw, in_scale_of
from pyquant.packing import pack, row_bytes

GOLDEN_VERSION = 1


def wgt_stream(layer) -> bytes:
    """The ``wgt`` stream of one call: per row bias i32, mult u16, shift u8, 0; then packed codes."""
    m = layer.codes.shape[0]
    rec = np.zeros(m, dtype=np.dtype([("b", "<i4"), ("m", "<u2"), ("s", "u1"), ("z", "u1")]))
    rec["b"] = np.asarray(layer.bias_int, dtype=np.int64)
    rec["m"] = np.asarray(layer.mult, dtype=np.int64)
    rec["s"] = np.asarray(layer.shift, dtype=np.int64)
    return rec.tobytes() + pack(layer.codes, layer.bits)


def hex_bytes(data: bytes) -> str:
    """One byte per line, two lower-case hex digits."""
    return "".join(f"{b:02x}\n" for b in data)


def hex_words(data: bytes) -> str:
    """32-bit little-endian words (zero-padded), 8 hex digits per line."""
    pad = (-len(data)) % 4
    w = np.frombuffer(data + b"\0" * pad, dtype="<u4")
    return "".join(f"{int(v):08x}\n" for v in w)


def _write_vec(d: Path, stem: str, arr: np.ndarray | None, raw: bytes | None = None,
               words: bool = False) -> dict:
    files = {}
    data = raw if raw is not None else np.ascontiguousarray(arr, dtype=np.int8).tobytes()
    if arr is not None:
        np.save(d / f"{stem}.npy", np.ascontiguousarray(arr, dtype=np.int8))
        files["npy"] = f"{stem}.npy"
        files["shape"] = [int(s) for s in arr.shape]
    (d / f"{stem}.bin").write_bytes(data)
    (d / f"{stem}.hex").write_text(hex_bytes(data))
    files.update({"bin": f"{stem}.bin", "hex": f"{stem}.hex", "bytes": len(data),
                  "crc32": zlib.crc32(data) & 0xFFFFFFFF})
    if words:
        (d / f"{stem}.w32.hex").write_text(hex_words(data))
        files["w32"] = f"{stem}.w32.hex"
        files["words"] = -(-len(data) // 4)
    return files


def load_input(path: str | os.PathLike, info: dict, layers: list, raw_int8: bool = False) -> np.ndarray:
    """Read ``X.npy`` (or the ``X`` of an ``.npz`` split): float inputs are quantized with the
    model's input scale (HWC);
    with ``raw_int8`` (or an int8 array) the values are taken as already-quantized HWC int8."""
    p = Path(path)
    x = read_array_file(p, "X", "input")
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.number) \
            or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{p}: expected a real numeric .npy array (or .npz with X)")
    if x.size == 0:
        raise InputError(f"{p}: holds no samples (shape {x.shape})")
    chw = input_chw(info, layers)
    if x.dtype == np.int8 or raw_int8:
        per = chw[0] * chw[1] * chw[2]
        x = x.reshape(1, -1) if x.ndim == 1 else x
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != per:
            raise InputError(f"{p}: int8 input shape {tuple(x.shape)} does not match the model input ({per} values)")
        if x.min() < -128 or x.max() > 127 or not np.issubdtype(x.dtype, np.integer):
            raise InputError(f"{p}: int8 input values must be integers in [-128, 127]")
        return x.reshape(x.shape[0], -1).astype(np.int8)
    return quantize_input(x, in_scale_of(info, layers), chw, where=str(p))


def write_golden(model, x_int8: np.ndarray, out_dir: str | os.PathLike, source: str = "") -> dict:
    """Write the golden vectors of ``infer_int(model, x_int8)`` into ``out_dir`` atomically.

    Returns the manifest. ``out_dir`` is replaced only if it does not exist, is empty or holds a
    previous ``manifest.json``; on any error it is left as it was.
    """
    info, layers = load_int_model(model)
    y, inter = infer_int((info, layers), x_int8, return_intermediates=True)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").exists())):
        raise InputError(f"{out}: exists and is not a golden-vector directory; refusing to replace it")
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise InputError(f"{out}: cannot create output directory: {e.strerror or e}") from None
    try:
        x8 = np.asarray(x_int8, dtype=np.int8).reshape(len(y), -1)
        man = {"format": "pyquant-golden", "version": GOLDEN_VERSION, "model": source or info.get("_where", ""),
               "samples": int(len(y)), "input_scale": float(in_scale_of(info, layers)),
               "input": _write_vec(tmp, "input", x8, words=True), "calls": []}
        for i, (ly, it) in enumerate(zip(layers, inter)):
            stem = f"l{i:02d}"
            m, k = ly.codes.shape
            n = int(it["x"].shape[0])
            wgt = wgt_stream(ly)
            e = {"index": i, "name": ly.name, "kind": ly.kind, "M": int(m), "K": int(k), "N": n,
                 "bits": int(ly.bits), "relu": bool(ly.relu), "pool": ly.pool, "pool_k": int(ly.pool_k),
                 "pool_stride": int(ly.pool_stride), "geom": ly.geom,
                 "row_bytes": row_bytes(k, ly.bits), "in_scale": float(ly.in_scale),
                 "out_scale": float(ly.out_scale),
                 "wgt": _write_vec(tmp, f"{stem}_wgt", None, raw=wgt, words=True),
                 "x": _write_vec(tmp, f"{stem}_x", it["x"], words=True),
                 "y": _write_vec(tmp, f"{stem}_y", it["y"], words=True),
                 "out": _write_vec(tmp, f"{stem}_out", it["act_out"])}
            man["calls"].append(e)
        man["output"] = _write_vec(tmp, "output", y)
        (tmp / "manifest.json").write_text(dumps_strict_json(man))
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            old = tmp.with_name(tmp.name + ".old")
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"{out}: cannot write golden vectors: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return man
