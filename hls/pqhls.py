"""Build and call the pq_accel HLS kernel's C simulation from Python.

- :func:`build` compiles the kernel (the same sources Vitis compiles, against the g++ shim) as
  the ``extern "C"`` shared library or as the C-sim test bench, once per distinct
  (sources, flags) into ``build/hls/cache/<hash>/``. Safe under pytest-xdist: a file lock
  serialises compilers and the result is renamed into place atomically.
- :class:`Kernel` wraps ``pq_accel_call`` (ctypes): one accelerator call on numpy arrays.
- :func:`xilinx_ap_types` fetches Xilinx's open-source ``ap_int.h`` / ``hls_stream.h`` (as shipped in
  the pinned, hash-checked hls4ml wheel; downloaded with pip, never installed, nothing vendored) so
  the unchanged kernel source can also be C-simulated against the real arbitrary-precision types.

Command line: ``python hls/pqhls.py ap-types`` prints that include directory (fetching it once);
``python hls/pqhls.py build lib|tb|tb-xilinx`` builds through the same cache as the tests (so
``make hls`` and ``make test`` compile each artefact once) and prints its path. Errors are one
line on stderr and exit status 2.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from pyquant.packing import pack

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "hls" / "pq_accel"
CACHE = ROOT / "build" / "hls" / "cache"
CXX = os.environ.get("CXX", "g++")
CXXFLAGS = ["-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-unused-label",
            "-I", str(SRC)]
KERNEL_SRCS = ["pq_accel.cpp"]
TARGETS = {
    "lib": (KERNEL_SRCS + ["pq_accel_capi.cpp"], ["-shared", "-fPIC", "-DPQ_SIM_STATS"], "libpq_accel.so"),
    "tb": (KERNEL_SRCS + ["tb_pq_accel.cpp"], [], "tb_pq_accel"),
}
# Xilinx's HLS arbitrary-precision types (Apache-2.0) as shipped inside this exact wheel.
AP_TYPES_WHEEL = ("hls4ml", "1.3.0", "01bf1de2cd9bca56699b9fe3385cb1735026b022f9580fe1d73faf192dfb90f2")
AP_TYPES_MEMBER = "hls4ml/templates/vivado/ap_types/"
AP_TYPES_DIR = ROOT / "build" / "hls" / "xilinx_ap_types"
# ap_axi_sdata.h is not in that wheel: a from-scratch stand-in for the test builds only.
AP_TYPES_EXTRA = ROOT / "hls" / "tests" / "xilinx_ap_types_extra"
ERRORS = {0: "ok", -1: "ARGS", -2: "WGT_LEN", -3: "CONST", -4: "REUSE", -5: "ACT_LEN", -6: "UNDERFLOW",
          -7: "LEFTOVER", -8: "RES_FRAMING"}


class KernelError(RuntimeError):
    """pq_accel_call returned an error code (``code``; ``name`` is the PQ_E_* suffix)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"pq_accel_call failed ({ERRORS.get(code, code)}): {message}")
        self.code = code
        self.name = ERRORS.get(code, str(code))


def build(target: str = "lib", defines: dict[str, object] | None = None, extra: list[str] | None = None) -> Path:
    """Compile ``target`` ("lib" or "tb") with ``-D`` ``defines``; return the cached artefact path.

    Guarantees: the returned file was built from the current sources with exactly these flags;
    concurrent callers (threads or processes) get the same complete file. Raises
    ``RuntimeError`` with the compiler's first error line if compilation fails.
    """
    srcs, tflags, out_name = TARGETS[target]
    flags = CXXFLAGS + tflags + [f"-D{k}={v}" for k, v in sorted((defines or {}).items())] + list(extra or [])
    h = hashlib.sha256(" ".join([CXX] + flags).encode())
    for f in sorted(SRC.glob("*.h")) + [SRC / s for s in srcs]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    d = CACHE / h.hexdigest()[:16]
    out = d / out_name
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{d.name}.lock", "w") as lock:  # one lock per artefact: distinct builds run in parallel
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if out.exists():
                return out
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{out_name}.", dir=d)
            os.close(fd)
            cmd = [CXX] + flags + [str(SRC / s) for s in srcs] + ["-o", tmp]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                os.unlink(tmp)
                first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip()[:300])
                raise RuntimeError(f"{SRC}: compiling {target} failed: {first}")
            os.chmod(tmp, 0o755)
            os.replace(tmp, out)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out


def xilinx_ap_types() -> Path:
    """Return an include directory holding Xilinx's ``ap_int.h`` and ``hls_stream.h``.

    Guarantees: the headers come from the wheel pinned in :data:`AP_TYPES_WHEEL`, fetched with
    ``pip download --no-deps --require-hashes`` (sha256 checked) and unpacked once into
    ``build/hls/xilinx_ap_types/``; concurrent callers (pytest-xdist workers, make) serialise on a
    file lock and only ever see a complete directory (unpacked aside, then renamed into place).
    Raises ``RuntimeError`` with a one-line reason if the wheel cannot be fetched or is wrong.
    """
    name, version, sha = AP_TYPES_WHEEL
    if (AP_TYPES_DIR / "ap_int.h").is_file():
        return AP_TYPES_DIR
    AP_TYPES_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(AP_TYPES_DIR.parent / ".xilinx_ap_types.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (AP_TYPES_DIR / "ap_int.h").is_file():
                return AP_TYPES_DIR
            with tempfile.TemporaryDirectory(prefix=".xilinx_ap_types.", dir=AP_TYPES_DIR.parent) as tmp:
                req = Path(tmp) / "req.txt"
                req.write_text(f"{name}=={version} --hash=sha256:{sha}\n")
                cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                       "--require-hashes", "-r", str(req), "-d", str(Path(tmp) / "dl")]
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                wheels = sorted((Path(tmp) / "dl").glob(f"{name}-{version}-*.whl"))
                if r.returncode != 0 or not wheels:
                    why = ((r.stderr or r.stdout).strip().splitlines() or ["no wheel downloaded"])[-1]
                    raise RuntimeError(f"{AP_TYPES_DIR}: cannot fetch {name}=={version} for Xilinx's ap_types: {why}")
                if hashlib.sha256(wheels[0].read_bytes()).hexdigest() != sha:  # pip checked it too
                    raise RuntimeError(f"{wheels[0]}: sha256 differs from the pinned {sha}")
                stage = Path(tmp) / "ap_types"
                with zipfile.ZipFile(wheels[0]) as z:
                    for info in z.infolist():
                        rel = info.filename[len(AP_TYPES_MEMBER):]
                        if not info.filename.startswith(AP_TYPES_MEMBER) or info.is_dir() or ".." in rel:
                            continue
                        dst = stage / rel
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        dst.write_bytes(z.read(info))
                if not (stage / "ap_int.h").is_file() or not (stage / "hls_stream.h").is_file():
                    raise RuntimeError(f"{wheels[0]}: no {AP_TYPES_MEMBER}ap_int.h / hls_stream.h inside")
                shutil.rmtree(AP_TYPES_DIR, ignore_errors=True)  # a stale partial copy (none is ever made)
                os.replace(stage, AP_TYPES_DIR)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return AP_TYPES_DIR


def xilinx_types_flags() -> list[str]:
    """Extra compiler flags that make :func:`build` use Xilinx's types instead of ``pq_shim.h``."""
    return ["-w", "-I", str(xilinx_ap_types()), "-I", str(AP_TYPES_EXTRA)]


def have_cxx() -> bool:
    """True when the C++ compiler used by :func:`build` is on PATH."""
    return shutil.which(CXX) is not None


def wgt_bytes(w: np.ndarray, bits: int, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> bytes:
    """The ``wgt`` stream bytes (docs/HARDWARE.md section 3) for codes ``w[M, K]``."""
    rec = np.zeros(w.shape[0], dtype=np.dtype([("b", "<i4"), ("m", "<u2"), ("s", "u1"), ("z", "u1")]))
    rec["b"], rec["m"], rec["s"] = bias, mult, shift
    return rec.tobytes() + pack(np.asarray(w, dtype=np.int64), bits)


class Kernel:
    """The kernel's C simulation loaded with ctypes (state persists between calls, as in hardware)."""

    def __init__(self, path: Path | str) -> None:
        self.lib = ctypes.CDLL(str(path))
        u32, sz = ctypes.c_uint32, ctypes.c_size_t
        vp = ctypes.c_void_p
        self.lib.pq_accel_call.argtypes = [u32, u32, u32, u32, u32, vp, sz, vp, sz, vp, sz]
        self.lib.pq_accel_call.restype = ctypes.c_int
        self.lib.pq_accel_strerror.argtypes = [ctypes.c_int]
        self.lib.pq_accel_strerror.restype = ctypes.c_char_p
        self.lib.pq_accel_cycle_estimate.argtypes = [u32, u32, u32, u32, u32]
        self.lib.pq_accel_cycle_estimate.restype = ctypes.c_uint64
        cfg = (ctypes.c_uint32 * 4)()
        self.lib.pq_accel_config(cfg)
        self.max_rows, self.max_cols, self.wmem_bytes, self.lanes = (int(v) for v in cfg)

    def call_raw(self, prec: int, rows: int, cols: int, ncols: int, flags: int, wgt: bytes, x: bytes,
                 y_len: int) -> bytes:
        """One call on raw byte sequences; returns the ``res`` bytes or raises :class:`KernelError`."""
        y = ctypes.create_string_buffer(max(y_len, 1))
        wb = ctypes.create_string_buffer(wgt, max(len(wgt), 1))
        xb = ctypes.create_string_buffer(x, max(len(x), 1))
        rc = self.lib.pq_accel_call(prec, rows, cols, ncols, flags, wb, len(wgt), xb, len(x), y, y_len)
        if rc != 0:
            raise KernelError(rc, self.lib.pq_accel_strerror(rc).decode())
        return y.raw[:y_len]

    def layer(self, x: np.ndarray, w: np.ndarray, bias, mult, shift, relu: bool, bits: int,
              reuse: bool = False) -> np.ndarray:
        """``Y[N, M]`` int8 for ``X[N, K]`` and codes ``W[M, K]`` (same contract as ``layer_int``)."""
        w = np.asarray(w)
        x = np.asarray(x, dtype=np.int64).reshape(-1, w.shape[1])
        m, k = w.shape
        n = x.shape[0]
        wgt = b"" if reuse else wgt_bytes(w, bits, bias, mult, shift)
        flags = int(bool(relu)) | (2 if reuse else 0)
        y = self.call_raw(bits, m, k, n, flags, wgt, x.astype(np.int8).tobytes(), n * m)
        return np.frombuffer(y, dtype=np.int8).reshape(n, m).copy()

    def cycle_estimate(self, prec: int, rows: int, cols: int, ncols: int, flags: int = 0) -> int:
        """The documented cycle model of one call (docs/HARDWARE.md 4.x)."""
        return int(self.lib.pq_accel_cycle_estimate(prec, rows, cols, ncols, flags))

    def sim_stats(self) -> tuple[int, int, int]:
        """(loop iterations, loop entries, MAC loop entries) of the last call's C simulation."""
        out = (ctypes.c_uint64 * 3)()
        if self.lib.pq_accel_sim_stats(out) != 0:
            raise RuntimeError("library built without PQ_SIM_STATS")
        return int(out[0]), int(out[1]), int(out[2])


def run_model(kernel: Kernel, model, x_int8: np.ndarray) -> np.ndarray:
    """Integer inference of a converted model with every accelerator call done by the kernel's
    C simulation and the host-side steps (im2col, pooling) by pyquant: the same loop as
    :func:`pyquant.infer.infer_int`, so the result must equal it byte for byte.

    Raises ``ValueError`` if a layer exceeds the kernel's capacity (this helper does not tile).
    """
    from pyquant.infer import call_input, call_output, check_executable, load_int_model

    info, layers = load_int_model(model)
    check_executable(layers, info.get("_where", "model"))
    a = np.asarray(x_int8).astype(np.int8)
    n = a.shape[0]
    a = a.reshape(n, -1)
    for ly in layers:
        m, k = ly.codes.shape
        if m > kernel.max_rows or k > kernel.max_cols:
            raise ValueError(f"layer {ly.name}: {m}x{k} exceeds the kernel capacity")
        xm = call_input(ly, a)
        y = kernel.layer(xm, ly.codes, ly.bias_int, ly.mult, ly.shift, bool(ly.relu), int(ly.bits))
        a = call_output(ly, y, n)
    return a


def _main(argv: list[str]) -> int:
    """``ap-types``: print the Xilinx ap_types include directory (fetched once).
    ``build lib|tb|tb-xilinx``: build through the shared cache, print the artefact path."""
    usage = "usage: pqhls.py ap-types | build lib|tb|tb-xilinx"
    if argv not in (["ap-types"], ["build", "lib"], ["build", "tb"], ["build", "tb-xilinx"]):
        print(usage, file=sys.stderr)
        return 2
    try:
        if argv[0] == "ap-types":
            print(xilinx_ap_types())
        elif argv[1] == "tb-xilinx":
            print(build("tb", extra=xilinx_types_flags()))
        else:
            print(build(argv[1]))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"pqhls: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
