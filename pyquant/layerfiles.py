"""Layer files: the converter's output directory (docs/FORMAT.md sections 5 and 7).

A model directory holds, for ``n`` layers in execution order:

- ``layer_<NN>_<name>.bin``: the packed codes of the canonical ``W[M, K]`` (docs/FORMAT.md
  section 3), nothing else;
- ``model.json``: every fact, for people and tools (section 7);
- ``model.meta.bin``: the same facts for the firmware (section 5), little-endian, fixed-size
  records, CRC-32 trailer.

:func:`write_model_dir` (or the streaming :class:`ModelWriter`) builds the directory in a
temporary sibling and renames it into place, so on any error the target is left as it was.
:func:`read_model_dir` validates the three views against each other and raises
:class:`~pyquant.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pyquant.errors import InputError
from pyquant.fileio import loads_json
from pyquant.packing import pack, row_bytes, unpack

FORMAT_VERSION = 1
META_NAME = "model.meta.bin"
JSON_NAME = "model.json"
META_MAGIC = b"PQMB"
HEADER_SIZE = 64
LAYER_REC_SIZE = 128
PARAM_ROW_SIZE = 8

OP_CODES = {"dense": 1, "conv": 2, "other": 3}
POOL_CODES = {"none": 0, "max": 1, "avg": 2}
GEOM_KEYS = ("in_h", "in_w", "in_c", "kh", "kw", "stride_h", "stride_w",
             "pad_top", "pad_left", "pad_bottom", "pad_right", "out_h", "out_w")

# Header: magic, version, header_size, layer_rec_size, n_layers, file_size, params_offset,
# params_size, in_h, in_w, in_c, flags, input_scale, out_size, total_weight_bytes, reserved[20]
_HDR = struct.Struct("<4sHHHHIIIHHHHfII20s")
# Layer record: name[32], op, bits, flags, pool, rows, cols, bin_size, bin_crc32, params_offset,
# 13 geometry u16, pool_k, pool_stride, reserved u16, w_scale, in_scale, out_scale, reserved[28]
_REC = struct.Struct("<32sBBBBIIIII" + "H" * 13 + "HHHfff28s")
_ROW = struct.Struct("<iHBB")
assert _HDR.size == HEADER_SIZE and _REC.size == LAYER_REC_SIZE and _ROW.size == PARAM_ROW_SIZE


@dataclass
class LayerRecord:
    """One quantized layer: canonical codes plus everything the metadata files hold.

    ``codes`` is int8 ``[M, K]`` in the canonical layout (docs/FORMAT.md section 2);
    ``scale`` is float64 ``[1]`` (per tensor) or ``[M]`` (per channel). The execution fields
    keep their defaults for analysis-only models.
    """

    name: str
    tensor: str
    op: str
    kind: str
    shape: tuple[int, ...]
    codes: np.ndarray
    bits: int
    status: str
    scale: np.ndarray
    candidates: list[dict] = field(default_factory=list)
    executable: bool = False
    relu: bool = False
    pool: str = "none"
    pool_k: int = 0
    pool_stride: int = 0
    geom: dict | None = None
    bias_int: np.ndarray | None = None
    mult: np.ndarray | None = None
    shift: np.ndarray | None = None
    in_scale: float = 0.0
    out_scale: float = 0.0

    @property
    def rows(self) -> int:
        return int(self.codes.shape[0])

    @property
    def cols(self) -> int:
        return int(self.codes.shape[1])


def layer_file_name(index: int, name: str) -> str:
    """``layer_<NN>_<name>.bin`` with the name reduced to ``[A-Za-z0-9_.-]`` (at most 48 chars)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "layer"
    return f"layer_{index:02d}_{safe[-48:].lstrip('_.') or 'layer'}.bin"


def _jfloat(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _u16(v, what: str, strict: bool) -> int:
    v = int(v)
    if 0 <= v <= 0xFFFF:
        return v
    if strict:
        raise InputError(f"{what} = {v} does not fit the u16 field of {META_NAME}")
    return 0


def _geometry(layer: LayerRecord) -> dict:
    """Geometry written to the metadata (FORMAT.md section 5); dense layers get the 1x1 form."""
    g = dict.fromkeys(GEOM_KEYS, 0)
    if layer.geom:
        g.update({k: int(v) for k, v in layer.geom.items() if k in g})
    elif layer.kind == "dense":
        g.update(in_h=1, in_w=1, in_c=layer.cols, kh=1, kw=1, stride_h=1, stride_w=1, out_h=1, out_w=1)
    elif layer.kind == "conv" and len(layer.shape) == 4:
        g.update(kh=layer.shape[2], kw=layer.shape[3], in_c=layer.shape[1])
    return g


def _check_layer(layer: LayerRecord) -> None:
    c = np.asarray(layer.codes)
    if c.ndim != 2 or c.dtype != np.int8:
        raise InputError(f"layer {layer.name!r}: codes must be int8 [M, K], got {c.dtype} {c.shape}")
    if layer.kind not in OP_CODES:
        raise InputError(f"layer {layer.name!r}: kind must be dense|conv|other, got {layer.kind!r}")
    if layer.pool not in POOL_CODES:
        raise InputError(f"layer {layer.name!r}: pool must be none|max|avg, got {layer.pool!r}")
    s = np.asarray(layer.scale, dtype=np.float64).reshape(-1)
    if s.size not in (1, c.shape[0]) or not np.all(np.isfinite(s)):
        raise InputError(f"layer {layer.name!r}: scale must be finite, [1] or [M]")
    f32max = float(np.finfo(np.float32).max)
    for what, v in (("weight scale", float(np.max(np.abs(s)))), ("in_scale", abs(layer.in_scale)),
                    ("out_scale", abs(layer.out_scale))):
        if not v <= f32max:          # model.meta.bin stores scales as f32
            raise InputError(f"layer {layer.name!r}: {what} {v:g} does not fit float32 (degenerate weights or "
                             "activations: e.g. weights ~0 next to a huge bias)")
    if layer.executable:
        for nm in ("bias_int", "mult", "shift"):
            v = getattr(layer, nm)
            if v is None or np.asarray(v).reshape(-1).size != c.shape[0]:
                raise InputError(f"layer {layer.name!r}: executable layer needs {nm}[{c.shape[0]}]")
        m = np.asarray(layer.mult).reshape(-1)
        sh = np.asarray(layer.shift).reshape(-1)
        b = np.asarray(layer.bias_int, dtype=np.int64).reshape(-1)
        if m.min() < 0 or m.max() > 32767 or sh.min() < 1 or sh.max() > 47:
            raise InputError(f"layer {layer.name!r}: mult/shift outside 0..32767 / 1..47")
        if b.min() < -(2**31) or b.max() >= 2**31:
            raise InputError(f"layer {layer.name!r}: bias does not fit int32")


def _layer_json(index: int, layer: LayerRecord, fname: str, nbytes: int, crc: int) -> dict:
    s = np.asarray(layer.scale, dtype=np.float64).reshape(-1)
    per_channel = s.size != 1
    return {
        "index": index, "name": layer.name, "tensor": layer.tensor, "op": layer.op, "kind": layer.kind,
        "rows": layer.rows, "cols": layer.cols, "shape": [int(x) for x in layer.shape],
        "params": layer.rows * layer.cols, "bits": int(layer.bits), "status": layer.status,
        "granularity": "channel" if per_channel else "tensor",
        "scale": float(s[0]) if s.size == 1 else None,
        "scales": [float(x) for x in s],
        "file": fname, "bytes": int(nbytes), "crc32": int(crc),
        "candidates": [_json_candidate(c) for c in layer.candidates],
        "executable": bool(layer.executable), "relu": bool(layer.relu), "pool": layer.pool,
        "pool_k": int(layer.pool_k), "pool_stride": int(layer.pool_stride),
        "geom": {k: int(v) for k, v in layer.geom.items()} if layer.geom else None,
        "bias": None if layer.bias_int is None else [int(x) for x in np.asarray(layer.bias_int).reshape(-1)],
        "mult": None if layer.mult is None else [int(x) for x in np.asarray(layer.mult).reshape(-1)],
        "shift": None if layer.shift is None else [int(x) for x in np.asarray(layer.shift).reshape(-1)],
        "in_scale": float(layer.in_scale), "out_scale": float(layer.out_scale),
    }


def _json_candidate(c: dict) -> dict:
    out = dict(c)
    if "snr_db" in out and out["snr_db"] is not None:
        out["snr_db"] = _jfloat(out["snr_db"])
    return out


def _jsonable(o):
    """Recursively convert numpy scalars/arrays and non-finite floats for strict JSON."""
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return _jfloat(o)
    return o


def build_meta(entries: list[dict], info: dict) -> bytes:
    """Serialise ``model.json``-style layer entries + ``info`` into ``model.meta.bin`` bytes."""
    n = len(entries)
    params_offset = HEADER_SIZE + LAYER_REC_SIZE * n
    recs = []
    blob = bytearray()
    for e in entries:
        ex = bool(e["executable"])
        lp = params_offset + len(blob) if ex else 0
        if ex:
            for b, m, s in zip(e["bias"], e["mult"], e["shift"]):
                blob += _ROW.pack(int(b), int(m), int(s), 0)
        flags = (1 if e["relu"] else 0) | (2 if e["granularity"] == "channel" else 0) \
            | (4 if e["status"] == "fallback" else 0) | (8 if ex else 0)
        g = e["_geom"]
        geo = [_u16(g[k], f"layer {e['name']!r} {k}", ex) for k in GEOM_KEYS]
        wscale = e["scale"] if e["scale"] is not None else 0.0
        recs.append(_REC.pack(
            e["name"].encode("utf-8")[:31], OP_CODES[e["kind"]], int(e["bits"]), flags,
            POOL_CODES[e["pool"]], e["rows"], e["cols"], e["bytes"], e["crc32"], lp, *geo,
            _u16(e["pool_k"], "pool_k", ex), _u16(e["pool_stride"], "pool_stride", ex), 0,
            float(wscale), float(e["in_scale"]), float(e["out_scale"]), b""))
    inp = info.get("input") or {}
    executable = bool(info.get("executable"))
    file_size = params_offset + len(blob) + 4
    hdr = _HDR.pack(META_MAGIC, FORMAT_VERSION, HEADER_SIZE, LAYER_REC_SIZE, n, file_size,
                    params_offset, len(blob),
                    _u16(inp.get("h", 0), "input h", executable), _u16(inp.get("w", 0), "input w", executable),
                    _u16(inp.get("c", 0), "input c", executable), 1 if executable else 0,
                    float(inp.get("scale", 0.0)) if executable else 0.0,
                    int(info.get("out_size", 0) or 0), sum(int(e["bytes"]) for e in entries), b"")
    body = hdr + b"".join(recs) + bytes(blob)
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


class ModelWriter:
    """Streaming, atomic writer of a model directory.

    ``add(layer)`` writes one layer file immediately (so codes need not stay in memory);
    ``commit()`` writes ``model.json`` and ``model.meta.bin`` and renames the temporary
    directory to ``out_dir``. Used as a context manager, an exception aborts: the temporary
    directory is removed and ``out_dir`` is untouched. An existing ``out_dir`` is replaced only
    if it is empty or holds a previous ``model.json`` (never an unrelated directory).
    """

    def __init__(self, out_dir: str | os.PathLike, info: dict):
        self.out = Path(out_dir)
        self.info = dict(info)
        self.entries: list[dict] = []
        if self.out.exists():
            if not self.out.is_dir():
                raise InputError(f"{self.out}: output path exists and is not a directory")
            if any(self.out.iterdir()) and not (self.out / JSON_NAME).exists():
                raise InputError(f"{self.out}: output directory is not empty and holds no {JSON_NAME};"
                                 " refusing to replace it")
        parent = self.out.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=parent))
        except OSError as e:
            raise InputError(f"{self.out}: cannot create output directory: {e.strerror or e}") from None

    def __enter__(self) -> ModelWriter:
        return self

    def __exit__(self, et, ev, tb) -> None:
        if et is not None:
            self.abort()

    def abort(self) -> None:
        """Remove the temporary directory; ``out_dir`` is untouched."""
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def add(self, layer: LayerRecord) -> dict:
        """Pack and write one layer file; return its ``model.json`` entry."""
        try:
            _check_layer(layer)
        except InputError as e:
            self.abort()
            raise InputError(f"{self.info.get('source') or self.out}: {e}") from None
        idx = len(self.entries)
        fname = layer_file_name(idx, layer.name)
        data = pack(layer.codes, layer.bits)
        try:
            (self.tmp / fname).write_bytes(data)
        except OSError as e:
            self.abort()
            raise InputError(f"{self.out}: cannot write {fname}: {e.strerror or e}") from None
        e = _layer_json(idx, layer, fname, len(data), zlib.crc32(data) & 0xFFFFFFFF)
        e["_geom"] = _geometry(layer)
        self.entries.append(e)
        return e

    def commit(self, extra: Callable[[Path], None] | None = None) -> None:
        """Write the metadata, call ``extra(tmp_dir)`` (to add more files), then rename into place."""
        try:
            meta = build_meta(self.entries, self.info)
            layers = []
            for e in self.entries:
                e = dict(e)
                e.pop("_geom")
                layers.append(e)
            doc = {
                "format": "pyquant-model", "version": FORMAT_VERSION,
                "info": _jsonable(self.info),
                "meta_file": META_NAME, "meta_bytes": len(meta),
                "meta_crc32": zlib.crc32(meta) & 0xFFFFFFFF,
                "total_weight_bytes": sum(e["bytes"] for e in layers),
                "layers": _jsonable(layers),
            }
            text = json.dumps(doc, indent=1, allow_nan=False)
            (self.tmp / META_NAME).write_bytes(meta)
            (self.tmp / JSON_NAME).write_text(text + "\n", encoding="utf-8")
            if extra is not None:
                extra(self.tmp)
            os.chmod(self.tmp, 0o755)
            old = None
            if self.out.exists():
                old = self.tmp.with_name(self.tmp.name + ".old")
                os.rename(self.out, old)
            try:
                os.rename(self.tmp, self.out)
            except OSError:
                if old is not None:
                    os.rename(old, self.out)
                raise
            self.tmp = None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as e:
            self.abort()
            raise InputError(f"{self.out}: cannot write model directory: {e.strerror or e}") from None
        except BaseException:
            self.abort()
            raise


def write_model_dir(out_dir: str | os.PathLike, layers: list[LayerRecord], info: dict,
                    extra: Callable[[Path], None] | None = None) -> None:
    """Write ``layers`` and ``info`` to ``out_dir`` atomically (see :class:`ModelWriter`).

    ``extra(tmp_dir)``, if given, is called before the rename to add files (e.g. golden vectors)
    so that they appear atomically with the rest. On any error ``out_dir`` is left as it was.
    """
    with ModelWriter(out_dir, info) as w:
        for layer in layers:
            w.add(layer)
        w.commit(extra)


def _read_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}") from None


def read_meta(path: str | os.PathLike) -> tuple[dict, list[dict], bytes]:
    """Parse ``model.meta.bin``: returns (header dict, layer record dicts, params blob).

    Raises :class:`InputError` on a bad magic, version, size or CRC.
    """
    p = Path(path)
    data = _read_bytes(p)
    if len(data) < HEADER_SIZE + 4:
        raise InputError(f"{p}: truncated ({len(data)} bytes)")
    h = dict(zip(("magic", "version", "header_size", "layer_rec_size", "n_layers", "file_size",
                  "params_offset", "params_size", "in_h", "in_w", "in_c", "flags", "input_scale",
                  "out_size", "total_weight_bytes", "reserved"), _HDR.unpack_from(data, 0)))
    if h["magic"] != META_MAGIC:
        raise InputError(f"{p}: bad magic {h['magic']!r} (expected {META_MAGIC!r})")
    if h["version"] != FORMAT_VERSION:
        raise InputError(f"{p}: unsupported format version {h['version']} (expected {FORMAT_VERSION})")
    if h["header_size"] != HEADER_SIZE or h["layer_rec_size"] != LAYER_REC_SIZE:
        raise InputError(f"{p}: unexpected header/record size {h['header_size']}/{h['layer_rec_size']}")
    if h["file_size"] != len(data):
        raise InputError(f"{p}: file is {len(data)} bytes but its header says {h['file_size']}")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if crc != zlib.crc32(data[:-4]) & 0xFFFFFFFF:
        raise InputError(f"{p}: CRC-32 trailer does not match the contents")
    n = h["n_layers"]
    if h["params_offset"] != HEADER_SIZE + LAYER_REC_SIZE * n or \
            h["params_offset"] + h["params_size"] + 4 != len(data):
        raise InputError(f"{p}: inconsistent params_offset/params_size")
    recs = []
    names = ("name", "op", "bits", "flags", "pool", "rows", "cols", "bin_size", "bin_crc32",
             "params_offset") + GEOM_KEYS + ("pool_k", "pool_stride", "reserved16", "w_scale",
                                             "in_scale", "out_scale", "reserved")
    for i in range(n):
        r = dict(zip(names, _REC.unpack_from(data, HEADER_SIZE + i * LAYER_REC_SIZE)))
        r["name"] = r["name"].rstrip(b"\0").decode("utf-8", errors="replace")
        recs.append(r)
    blob = data[h["params_offset"]:h["params_offset"] + h["params_size"]]
    return h, recs, blob


def _read_layer(d: Path, jp: Path, mp: Path, hdr: dict, blob: bytes, i: int, e: dict, r: dict) -> LayerRecord:
    """Validate layer ``i`` (json entry ``e``, meta record ``r``, its .bin) and build its record."""
    try:
        name, bits, rows, cols = e["name"], int(e["bits"]), int(e["rows"]), int(e["cols"])
        fname = e["file"]
    except (KeyError, TypeError, ValueError) as ex:
        raise InputError(f"{jp}: layer {i} entry is malformed ({ex})") from None
    if r["name"] != name.encode("utf-8")[:31].decode("utf-8", errors="replace") or r["bits"] != bits \
            or r["rows"] != rows or r["cols"] != cols:
        raise InputError(f"{mp}: layer {i} record ({r['name']}, INT{r['bits']}, {r['rows']}x{r['cols']}) "
                         f"does not match {JSON_NAME} ({name}, INT{bits}, {rows}x{cols})")
    if bits not in (2, 4, 6, 8):
        raise InputError(f"{jp}: layer {name!r} has invalid bits {bits}")
    bp = d / fname
    if Path(fname).name != fname:
        raise InputError(f"{jp}: layer {name!r} file {fname!r} is not a plain file name")
    data = _read_bytes(bp)
    need = rows * row_bytes(cols, bits)
    if len(data) != need or len(data) != e["bytes"] or len(data) != r["bin_size"]:
        raise InputError(f"{bp}: size {len(data)} bytes does not match its metadata "
                         f"({need} expected for {rows}x{cols} INT{bits})")
    crc = zlib.crc32(data) & 0xFFFFFFFF
    if crc != e["crc32"] or crc != r["bin_crc32"]:
        raise InputError(f"{bp}: CRC-32 {crc:#010x} does not match its metadata ({e['crc32']:#010x})")
    try:
        codes = unpack(data, bits, (rows, cols))
    except ValueError as ex:
        raise InputError(f"{bp}: {ex}") from None
    qm = (1 << (bits - 1)) - 1
    if codes.size and (codes.min() < -qm or codes.max() > qm):
        raise InputError(f"{bp}: holds codes outside the INT{bits} range")
    ex = bool(e.get("executable"))
    bias = mult = shift = None
    if ex:
        off = r["params_offset"] - hdr["params_offset"]
        if off < 0 or off + rows * PARAM_ROW_SIZE > len(blob):
            raise InputError(f"{mp}: layer {name!r} params_offset out of range")
        arr = np.frombuffer(blob, dtype=np.dtype([("b", "<i4"), ("m", "<u2"), ("s", "u1"), ("z", "u1")]),
                            count=rows, offset=off)
        bias, mult, shift = arr["b"].astype(np.int32), arr["m"].astype(np.int64), arr["s"].astype(np.int64)
        if e.get("bias") is not None and (list(bias) != e["bias"] or list(mult) != e["mult"]
                                          or list(shift) != e["shift"]):
            raise InputError(f"{mp}: layer {name!r} constants differ from {JSON_NAME}")
    scales = np.asarray(e.get("scales") or [e.get("scale") or 0.0], dtype=np.float64)
    return LayerRecord(
        name=name, tensor=e.get("tensor", ""), op=e.get("op", ""), kind=e.get("kind", "other"),
        shape=tuple(int(x) for x in e.get("shape", (rows, cols))), codes=codes, bits=bits,
        status=e.get("status", "ok"), scale=scales, candidates=list(e.get("candidates") or []),
        executable=ex, relu=bool(e.get("relu")), pool=e.get("pool", "none"),
        pool_k=int(e.get("pool_k", 0)), pool_stride=int(e.get("pool_stride", 0)),
        geom=e.get("geom"), bias_int=bias, mult=mult, shift=shift,
        in_scale=float(e.get("in_scale", 0.0)), out_scale=float(e.get("out_scale", 0.0)))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_entry(jp: Path, i: int, e) -> None:
    """Types of one ``model.json`` layer entry (section 7); InputError naming field and layer."""
    if not isinstance(e, dict):
        raise InputError(f"{jp}: layer {i} entry is malformed (not an object)")
    checks = {
        "name": lambda v: isinstance(v, str), "file": lambda v: isinstance(v, str),
        "tensor": lambda v: isinstance(v, str), "op": lambda v: isinstance(v, str),
        "kind": lambda v: isinstance(v, str) and v in OP_CODES, "status": lambda v: v in ("ok", "fallback"),
        "rows": _is_int, "cols": _is_int, "bits": _is_int, "bytes": _is_int, "crc32": _is_int,
        "shape": lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
        "candidates": lambda v: isinstance(v, list) and all(isinstance(c, dict) and _is_int(c.get("bits"))
                                                            for c in v),
        "scale": lambda v: v is None or _is_num(v),
        "scales": lambda v: isinstance(v, list) and all(_is_num(x) for x in v),
        "executable": lambda v: isinstance(v, bool), "relu": lambda v: isinstance(v, bool),
        "pool": lambda v: isinstance(v, str) and v in POOL_CODES, "pool_k": _is_int, "pool_stride": _is_int,
        "geom": lambda v: v is None or (isinstance(v, dict) and all(_is_int(v.get(k)) for k in GEOM_KEYS)),
        "bias": lambda v: v is None or (isinstance(v, list) and all(_is_int(x) for x in v)),
        "mult": lambda v: v is None or (isinstance(v, list) and all(_is_int(x) for x in v)),
        "shift": lambda v: v is None or (isinstance(v, list) and all(_is_int(x) for x in v)),
        "in_scale": _is_num, "out_scale": _is_num,
    }
    required = ("name", "file", "rows", "cols", "bits", "bytes", "crc32")
    for k, ok in checks.items():
        if k not in e:
            if k in required:
                raise InputError(f"{jp}: layer {i} entry is malformed (missing {k!r})")
            continue
        if not ok(e[k]):
            raise InputError(f"{jp}: layer {i} field {k!r} has an invalid value {str(e[k])[:40]!r}")


def _check_doc(jp: Path, doc: dict) -> None:
    """Types of the top-level ``model.json`` fields that readers use."""
    mf = doc.get("meta_file", META_NAME)
    if not isinstance(mf, str) or Path(mf).name != mf or not mf:
        raise InputError(f"{jp}: meta_file must be a plain file name, got {mf!r}")
    info = doc.get("info", {})
    if not isinstance(info, dict):
        raise InputError(f"{jp}: info must be an object")
    inp = info.get("input")
    if inp is not None and not (isinstance(inp, dict) and all(_is_num(inp.get(k, 0)) for k in ("h", "w", "c",
                                                                                              "scale"))):
        raise InputError(f"{jp}: info.input must be null or an object with numeric h, w, c, scale")
    for k in ("plan", "summary", "criteria", "calibration"):
        if info.get(k) is not None and not isinstance(info[k], dict):
            raise InputError(f"{jp}: info.{k} must be an object")


def read_model_dir(path: str | os.PathLike) -> tuple[dict, list[LayerRecord]]:
    """Read and validate a model directory; return ``(model_json, layers)``.

    Checks the format version, that ``model.meta.bin`` matches ``model.json`` (CRC, layer
    count, names, bits, dims, sizes, constants) and that every ``.bin`` has the size and CRC-32
    both metadata files give. Raises :class:`InputError` naming the file and the problem.
    """
    d = Path(path)
    if not d.is_dir():
        raise InputError(f"{d}: not a model directory (not found)")
    jp = d / JSON_NAME
    doc = loads_json(_read_bytes(jp), jp)         # strict: no NaN/Infinity, bounded nesting
    if not isinstance(doc, dict) or doc.get("format") != "pyquant-model":
        raise InputError(f"{jp}: not a pyquant model.json")
    if doc.get("version") != FORMAT_VERSION:
        raise InputError(f"{jp}: unsupported format version {doc.get('version')!r} (expected {FORMAT_VERSION})")
    _check_doc(jp, doc)
    mp = d / doc.get("meta_file", META_NAME)
    hdr, recs, blob = read_meta(mp)
    meta_raw = _read_bytes(mp)
    if doc.get("meta_crc32") is not None and zlib.crc32(meta_raw) & 0xFFFFFFFF != doc["meta_crc32"]:
        raise InputError(f"{mp}: CRC-32 differs from the one recorded in {JSON_NAME}")
    entries = doc.get("layers")
    if not isinstance(entries, list) or len(entries) != hdr["n_layers"]:
        raise InputError(f"{mp}: {hdr['n_layers']} layers but {JSON_NAME} lists "
                         f"{len(entries) if isinstance(entries, list) else 'none'}")
    layers = []
    for i, (e, r) in enumerate(zip(entries, recs)):
        _check_entry(jp, i, e)
        try:
            layers.append(_read_layer(d, jp, mp, hdr, blob, i, e, r))
        except (KeyError, TypeError, ValueError, AttributeError) as ex:
            raise InputError(f"{jp}: layer {i} entry is malformed ({type(ex).__name__}: {ex})") from None
    return doc, layers
