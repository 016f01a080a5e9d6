"""pyquant-deploy: upload a converted model to a pq board over UART, run it, check the outputs.

    pyquant-deploy --port /dev/ttyUSB0 --model out/mlp --input x.npy [--baud 921600]
    make deploy PORT=/dev/ttyUSB0 MODEL=out/mlp INPUT=x.npy [BAUD=...]

Flow (protocol: docs/PROTOCOL.md, host side in scripts/pqproto.py):

1. open the port, HELLO: magic, protocol version, buffer sizes and accelerator parameters;
2. upload ``model.meta.bin`` and every layer file with a progress bar (bytes/s, ETA); a
   partial upload already on the board (after a disconnect) is resumed from STATUS; a fresh
   upload is windowed (two 4 KB frames in flight, ``--window``) until the first link anomaly,
   then stop-and-wait, where the chunk size adapts to the link quality (halved after failed
   attempts, doubled back after clean runs);
3. LOAD_INPUT (the input quantised to int8 HWC as in docs/FORMAT.md), RUN, READ_OUTPUT;
4. compare the board's outputs with the golden model (``pyquant.infer_int``, or ``--expected``)
   and print the latency and the per-layer cycle counts the board reports.

Exit status: 0 = outputs equal the golden outputs (or ``--no-compare``), 1 = outputs differ,
2 = any error (no device, wrong device, timeout, NAK storm, version mismatch, bad files),
each reported in one line.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from scripts import pqproto as pq

MIN_CHUNK = 16
WINDOW = 2 * (pq.MAX_PAYLOAD + 64)  # two full frames in flight cover any round trip
LOAD_HDR = {pq.Cmd.LOAD_META: 8, pq.Cmd.LOAD_LAYER: 6, pq.Cmd.LOAD_INPUT: 6}


class DeployError(Exception):
    """A user-facing error (one line); exit code 2."""


# --------------------------------------------------------------------------------------------
# model directory and input


@dataclass
class Model:
    """The files the board needs, plus what the host needs to talk about them."""

    dir: Path
    meta: bytes
    header: dict
    records: list[dict]
    blobs: list[bytes]
    names: list[str]

    @property
    def in_size(self) -> int:
        h = self.header
        return int(h["in_h"]) * int(h["in_w"]) * int(h["in_c"])

    @property
    def out_size(self) -> int:
        return int(self.header["out_size"])

    @property
    def total_bytes(self) -> int:
        return len(self.meta) + sum(len(b) for b in self.blobs)


def load_model(path: str | os.PathLike) -> Model:
    """Read and validate a ``pyquant convert`` output directory (sizes and CRC-32s).

    Raises :class:`DeployError` naming the file and the problem, or when the model is not
    executable (analysis-only layers cannot run on the board).
    """
    from pyquant.errors import PyquantError
    from pyquant.layerfiles import JSON_NAME, read_meta, read_model_dir

    d = Path(path)
    try:
        doc, _layers = read_model_dir(d)
        mp = d / doc.get("meta_file", "model.meta.bin")
        hdr, recs, _blob = read_meta(mp)
        meta = mp.read_bytes()
        blobs, names = [], []
        for e in doc["layers"]:
            blobs.append((d / e["file"]).read_bytes())
            names.append(str(e["name"]))
    except PyquantError as e:
        raise DeployError(str(e)) from None
    except OSError as e:
        raise DeployError(f"{d}: cannot read model: {e.strerror or e}") from None
    if not hdr["flags"] & 1:
        raise DeployError(f"{mp}: model is not executable (analysis-only layers); "
                          f"convert it with calibration data (see {JSON_NAME})")
    return Model(d, meta, hdr, recs, blobs, names)


def quantize_input(x: np.ndarray, model: Model, where: str) -> np.ndarray:
    """Turn an input array into int8 ``[N, in_h*in_w*in_c]`` in HWC order.

    * integer arrays are taken as already quantised codes (HWC), values must fit int8;
    * float arrays are model inputs: ``[N, in_size]`` flat in the ONNX order (CHW), or
      ``[N, c, h, w]`` (NCHW), or ``[N, h, w, c]`` when ``c`` does not match the second axis;
      quantised as ``clip(rint(x / input_scale), -127, 127)`` (docs/FORMAT.md section 4).
    """
    h, w, c = (int(model.header[k]) for k in ("in_h", "in_w", "in_c"))
    size = h * w * c
    a = np.asarray(x)
    if a.ndim == 1 and a.size == size:
        a = a.reshape(1, size)
    if a.ndim < 2 or a.shape[0] == 0 or int(np.prod(a.shape[1:])) != size:
        raise DeployError(f"{where}: input shape {a.shape} does not fit the model input "
                          f"(h={h}, w={w}, c={c}: {size} values per sample)")
    n = a.shape[0]
    if np.issubdtype(a.dtype, np.integer):
        if a.min() < -128 or a.max() > 127:
            raise DeployError(f"{where}: integer input values must fit int8 (got {a.min()}..{a.max()})")
        return a.reshape(n, size).astype(np.int8)
    if not np.issubdtype(a.dtype, np.floating):
        raise DeployError(f"{where}: input dtype {a.dtype} is neither integer nor float")
    if not np.all(np.isfinite(a)):
        raise DeployError(f"{where}: input contains NaN or infinity")
    if a.ndim == 4 and a.shape[1:] == (h, w, c) and a.shape[1] != c:
        hwc = a
    else:
        hwc = a.reshape(n, c, h, w).transpose(0, 2, 3, 1)
    scale = float(model.header["input_scale"])
    if not scale > 0:
        raise DeployError(f"{model.dir}: model.meta.bin has no input scale")
    q = np.clip(np.rint(hwc.astype(np.float64) / scale), -127, 127)
    return q.reshape(n, size).astype(np.int8)


def load_input(path: str | os.PathLike, model: Model, samples: int | None) -> np.ndarray:
    """Load ``.npy`` (or ``.npz`` key ``X``/first array) and quantise it (see :func:`quantize_input`)."""
    p = Path(path)
    try:
        obj = np.load(p, allow_pickle=False)
        if isinstance(obj, np.lib.npyio.NpzFile):
            key = "X" if "X" in obj.files else obj.files[0]
            arr = obj[key]
        else:
            arr = obj
    except FileNotFoundError:
        raise DeployError(f"{p}: input file not found") from None
    except (OSError, ValueError, IndexError) as e:
        raise DeployError(f"{p}: not a readable .npy/.npz array ({' '.join(str(e).split())})") from None
    xq = quantize_input(arr, model, str(p))
    if samples is not None:
        if samples < 1:
            raise DeployError(f"--samples must be >= 1, got {samples}")
        xq = xq[:samples]
    return xq


def golden_outputs(model: Model, xq: np.ndarray) -> np.ndarray:
    """The golden model's int8 outputs ``[N, out_size]`` for quantised inputs ``xq``.

    Uses ``pyquant.infer.infer_int`` (the bit-exact integer reference of the whole model,
    built on ``pyquant.intmath.layer_int``). Raises :class:`DeployError` when it is not
    available or fails.
    """
    try:
        from pyquant.infer import infer_int
    except ImportError as e:
        raise DeployError(f"golden model unavailable (pyquant.infer: {e}); pass --golden DIR, "
                          "--expected FILE or --no-compare") from None
    try:
        y = np.asarray(infer_int(model.dir, xq))
    except Exception as e:  # the reference must not crash silently into a "match"
        raise DeployError(f"golden model failed on {model.dir}: {' '.join(str(e).split())}") from None
    return y.reshape(xq.shape[0], -1).astype(np.int8)


def load_golden_dir(path: str | os.PathLike, model: Model) -> tuple[np.ndarray, np.ndarray]:
    """``(input, output)`` int8 arrays of a ``pyquant golden`` directory (input.npy, output.npy)."""
    d = Path(path)
    try:
        x = np.load(d / "input.npy", allow_pickle=False)
        y = np.load(d / "output.npy", allow_pickle=False)
    except FileNotFoundError as e:
        raise DeployError(f"{d}: not a golden-vector directory ({Path(e.filename).name} missing)") from None
    except (OSError, ValueError) as e:
        raise DeployError(f"{d}: unreadable golden vectors ({' '.join(str(e).split())})") from None
    x = np.asarray(x).reshape(x.shape[0], -1)
    y = np.asarray(y).reshape(y.shape[0], -1)
    if x.dtype != np.int8 or y.dtype != np.int8 or x.shape[0] != y.shape[0]:
        raise DeployError(f"{d}: input.npy/output.npy must be int8 with the same number of samples")
    if x.shape[1] != model.in_size or y.shape[1] != model.out_size:
        raise DeployError(f"{d}: golden vectors are {x.shape[1]} -> {y.shape[1]} values per sample, "
                          f"model {model.dir} is {model.in_size} -> {model.out_size}")
    return x, y


# --------------------------------------------------------------------------------------------
# transfer


@dataclass
class Timing:
    open_s: float = 0.0
    hello_s: float = 0.0
    upload_s: float = 0.0
    input_s: float = 0.0
    run_s: float = 0.0
    read_s: float = 0.0


@dataclass
class Result:
    """Everything one deployment measured (also written by ``--json``)."""

    port: str
    hello: dict = field(default_factory=dict)
    resumed_from: int = 0
    upload_payload: int = 0
    upload_wire: int = 0  # bytes written to the port during the model upload (frames, retries)
    upload_rx_wire: int = 0
    timing: Timing = field(default_factory=Timing)
    total_cycles: int = 0
    layer_cycles: list[int] = field(default_factory=list)
    samples: int = 0
    out_size: int = 0
    match: bool | None = None
    mismatches: int = 0
    link: dict = field(default_factory=dict)


class Uploader:
    """Chunked, resumable, link-adaptive uploads (LOAD_META / LOAD_LAYER / LOAD_INPUT).

    :meth:`send` guarantees on return that the board acknowledged ``len(data)`` contiguous
    bytes for the target; it raises :class:`pqproto.ProtoError` otherwise.

    Chunk size: the largest frame the board takes at first. While the chunk can still shrink,
    a request gets only ``quick_retries`` resends; if they fail the chunk is halved (down to
    ``min_chunk``) and the upload continues from the same offset (the board acknowledges
    bytes it already holds without rewriting them, so a lost answer costs nothing). Any
    request that needed a resend also halves the chunk; ``grow_after`` clean first-try
    requests in a row double it again. At the smallest chunk a request gets the link's full
    retry budget, and ``stuck_limit`` such exhausted requests in a row end the upload.
    """

    def __init__(self, client: pq.Client, advance: Callable[[int], None],
                 log: Callable[[str], None], min_chunk: int = MIN_CHUNK, max_chunk: int | None = None,
                 grow_after: int = 4, stuck_limit: int = 2, quick_retries: int = 1) -> None:
        self.c = client
        self.advance = advance
        self.log = log
        self.min_chunk = min_chunk
        self.max_chunk = max_chunk
        self.grow_after = grow_after
        self.stuck_limit = stuck_limit
        self.quick_retries = quick_retries
        self.chunk: int | None = None
        self.clean = 0
        self.shrinks = 0

    def _limit(self, cmd: int) -> int:
        lim = self.c.max_payload - LOAD_HDR[cmd]
        if self.max_chunk:
            lim = min(lim, self.max_chunk)
        return max(self.min_chunk, lim)

    def _send_one(self, cmd: int, target: int, total: int, off: int, data: bytes, retries: int | None) -> int:
        if cmd == pq.Cmd.LOAD_META:
            return self.c.load_meta(total, off, data, retries=retries)
        if cmd == pq.Cmd.LOAD_LAYER:
            return self.c.load_layer(target, off, data, retries=retries)
        return self.c.load_input(target, off, data, retries=retries)

    def send(self, cmd: int, target: int, data: bytes, start: int = 0, what: str = "") -> None:
        """Upload ``data[start:]`` (``target``: layer index or n_samples; total = ``len(data)``)."""
        total = len(data)
        limit = self._limit(cmd)
        if self.chunk is None:
            self.chunk = limit
        off = start
        link = self.c.link
        stuck = 0
        patient = False  # after a silent quick attempt: same chunk, full retry budget
        while off < total:
            n = min(self.chunk, limit, total - off)
            can_shrink = self.chunk > self.min_chunk and n > self.min_chunk and not patient
            before = link.stats.attempts
            try:
                got = self._send_one(cmd, target, total, off, data[off:off + n],
                                     self.quick_retries if can_shrink else None)
            except (pq.NakStorm, pq.LinkTimeout) as e:
                self.clean = 0
                if getattr(e, "silent", False):
                    if can_shrink:
                        patient = True  # silence is a stall or a dead board, not noise: wait longer
                        continue
                    raise  # nothing came back at all through the full retry budget: dead board
                if can_shrink:
                    self.chunk = max(self.min_chunk, min(self.chunk, n) // 2)
                    self.shrinks += 1
                    continue
                stuck += 1
                if stuck >= self.stuck_limit:
                    raise
                self.log(f"{what}: {e}; trying again")
                continue
            if got <= off or got > total:
                raise pq.ProtoError(f"{link.name}: {what}: board acknowledged {got} bytes after a chunk "
                                    f"at {off}+{n} of {total}; upload out of step")
            stuck = 0
            patient = False
            self.advance(got - off)
            off = got
            if link.stats.attempts - before > 1:
                self.clean = 0
                self.chunk = max(self.min_chunk, self.chunk // 2)
            else:
                self.clean += 1
                if self.clean >= self.grow_after and self.chunk < limit:
                    self.chunk = min(limit, self.chunk * 2)
                    self.clean = 0

    def read_output(self, total: int) -> bytes:
        """READ_OUTPUT ``total`` bytes with the same adaptive chunking as :meth:`send`."""
        link = self.c.link
        limit = max(self.min_chunk, self.c.max_payload - 1)
        if self.max_chunk:
            limit = max(self.min_chunk, min(limit, self.max_chunk))
        chunk = min(limit, self.chunk or limit)
        got = bytearray()
        stuck = clean = 0
        patient = False
        while len(got) < total:
            n = min(chunk, total - len(got))
            can_shrink = chunk > self.min_chunk and n > self.min_chunk and not patient
            before = link.stats.attempts
            try:
                got += self.c.read_output(len(got), n, retries=self.quick_retries if can_shrink else None)
            except (pq.NakStorm, pq.LinkTimeout) as e:
                clean = 0
                if getattr(e, "silent", False):
                    if can_shrink:
                        patient = True
                        continue
                    raise
                if can_shrink:
                    chunk = max(self.min_chunk, min(chunk, n) // 2)
                    continue
                stuck += 1
                if stuck >= self.stuck_limit:
                    raise
                self.log(f"outputs: {e}; trying again")
                continue
            stuck = 0
            patient = False
            if link.stats.attempts - before > 1:
                clean = 0
                chunk = max(self.min_chunk, chunk // 2)
            else:
                clean += 1
                if clean >= self.grow_after and chunk < limit:
                    chunk, clean = min(limit, chunk * 2), 0
        return bytes(got)


class _Progress:
    """A rich progress bar on stderr (bytes, bytes/s, ETA), or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.p = None
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                       TimeRemainingColumn, TransferSpeedColumn)
            self.p = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                              console=Console(stderr=True), transient=False)
            self.task = self.p.add_task("upload", total=total)

    def start(self) -> None:
        if self.p:
            self.p.start()

    def describe(self, text: str) -> None:
        if self.p:
            self.p.update(self.task, description=text)

    def advance(self, n: int) -> None:
        if self.p:
            self.p.advance(self.task, n)

    def reset(self) -> None:
        if self.p:
            self.p.reset(self.task)

    def stop(self) -> None:
        if self.p:
            self.p.stop()


def open_port(port: str, baud: int) -> "object":
    """Open ``port`` with pyserial; raises :class:`pqproto.NoDevice` with one line."""
    import serial

    if not port:
        raise pq.NoDevice("no device given (use --port / PORT=)")
    try:
        return serial.Serial(port, baudrate=baud, timeout=0.05, write_timeout=10)
    except (serial.SerialException, OSError, ValueError) as e:
        msg = " ".join(str(e).split())
        code = getattr(e, "errno", None)
        why = os.strerror(code) if isinstance(code, int) else msg
        if code in (errno.ENOENT, errno.ENXIO, errno.ENODEV) or "No such file" in msg:
            raise pq.NoDevice(f"no device at {port} ({why})") from None
        raise pq.NoDevice(f"cannot open {port}: {why}") from None


def handshake(client: pq.Client) -> pq.Hello:
    """HELLO with wrong-device detection: bytes but never a valid frame -> :class:`WrongDevice`."""
    link = client.link
    try:
        return client.hello()
    except (pq.LinkTimeout, pq.NakStorm) as e:
        if link.stats.valid_frames == 0 and link.rx_any > 0:
            raise pq.WrongDevice(f"{link.name}: wrong device: received {link.rx_any} bytes but no valid "
                                 f"pq protocol frame (not a pq firmware, or wrong baud rate)") from None
        if isinstance(e, pq.LinkTimeout) and link.rx_any == 0:
            raise pq.LinkTimeout(f"{link.name}: timeout: no answer to HELLO (no firmware running on this "
                                 f"port, or wrong baud rate)") from None
        raise


def check_fits(model: Model, h: pq.Hello, xq: np.ndarray, port: str) -> None:
    """Refuse (one line) what the board's buffers cannot hold, before sending anything."""
    if len(model.meta) > h.meta_max:
        raise DeployError(f"{model.dir}: model.meta.bin is {len(model.meta)} bytes, board {port} holds {h.meta_max}")
    wb = sum(len(b) for b in model.blobs)
    if wb > h.weights_max:
        raise DeployError(f"{model.dir}: weights are {wb} bytes, board {port} holds {h.weights_max}")
    if xq.size > h.act_max:
        raise DeployError(f"input is {xq.size} bytes ({xq.shape[0]} samples), board {port} activation "
                          f"buffer holds {h.act_max}: use --samples")
    if xq.shape[0] > 0xFFFF:
        raise DeployError(f"{xq.shape[0]} samples do not fit the u16 n_samples field: use --samples")
    if xq.shape[0] * model.out_size > h.act_max:
        raise DeployError(f"outputs of {xq.shape[0]} samples exceed the board's activation buffer: use --samples")


def upload_windowed(client: pq.Client, model: Model, up: Uploader, prog: _Progress, window: int) -> tuple[int, int]:
    """Fresh upload of meta + layers with several frames in flight (:meth:`pqproto.Link.pipeline`).

    Returns (chunks acknowledged, chunks): all of them only when the board acknowledged every
    chunk in order with the exact byte count expected (so it holds the whole model, each layer
    CRC-checked); fewer after the first link anomaly, when the board's state past them is
    unknown and must be read with STATUS.
    A non-zero status raises :class:`pqproto.BoardError`; an acknowledgement that does not
    match the chunk raises :class:`pqproto.ProtoError`.
    """
    link = client.link
    reqs: list[tuple[int, bytes]] = []
    ends: list[tuple[int, int, str]] = []  # (acknowledged bytes expected, chunk length, what)
    objs = [(pq.Cmd.LOAD_META, 0, model.meta, "model.meta.bin")]
    objs += [(pq.Cmd.LOAD_LAYER, i, b, f"layer {i} ({model.names[i]})") for i, b in enumerate(model.blobs)]
    for cmd, target, data, what in objs:
        step = up._limit(cmd)
        for off in range(0, len(data), step):
            chunk = data[off:off + step]
            head = (struct.pack("<II", len(data), off) if cmd == pq.Cmd.LOAD_META
                    else struct.pack("<HI", target, off))
            reqs.append((cmd, head + chunk))
            ends.append((off + len(chunk), len(chunk), what))

    def accept(i: int, r: pq.Response) -> None:
        cmd = reqs[i][0]
        if r.status != 0:
            detail = struct.unpack_from("<I", r.body)[0] if len(r.body) >= 4 else 0
            raise pq.BoardError(cmd, r.status, detail, link.name)
        end, n, what = ends[i]
        got = struct.unpack_from("<I", r.body)[0] if len(r.body) >= 4 else -1
        if got != end:
            raise pq.ProtoError(f"{link.name}: {what}: board acknowledged {got} bytes after a chunk "
                                f"ending at {end}; upload out of step")
        prog.advance(n)

    return link.pipeline(reqs, accept, window=window), len(reqs)


def upload_model(client: pq.Client, model: Model, up: Uploader, prog: _Progress, fresh: bool,
                 log: Callable[[str], None], window: int = 0, ours: bool = False) -> int:
    """Upload meta + layers, resuming a partial upload; returns the bytes skipped by resuming.

    A fresh upload with ``window`` > 0 first goes windowed (:func:`upload_windowed`); at its
    first link anomaly it continues stop-and-wait with adaptive chunks from what STATUS says
    the board holds (the board executes frames in order, so STATUS answers after all of them).
    ``ours``: the board's content is known to come from this model (then a complete model on
    the board is not sent again; otherwise a complete model of the same sizes may be another
    one, so it is uploaded afresh).
    """
    n = len(model.blobs)
    starts = [0] * (n + 1)
    resumed = 0
    if not fresh:
        st = client.status()
        partial_meta = 0 < st.meta_bytes < len(model.meta)
        full_meta = st.meta_bytes == len(model.meta)
        layer_bytes = [client.status(i).layer_bytes for i in range(n)] if full_meta else [0] * n
        if ours and full_meta and layer_bytes == [len(b) for b in model.blobs] \
                and st.layers_complete == n and st.state >= 2:
            prog.advance(model.total_bytes)
            return model.total_bytes  # all there (only the last answers were lost)
        partial_layers = full_meta and any(b < len(blob) for b, blob in zip(layer_bytes, model.blobs))
        consistent = all(b <= len(blob) for b, blob in zip(layer_bytes, model.blobs))
        if (partial_meta or partial_layers) and consistent:
            starts[0] = st.meta_bytes
            if full_meta:
                starts[1:] = layer_bytes
            resumed = sum(starts)
            log(f"resuming a partial upload: the board already holds {resumed} of {model.total_bytes} bytes")
        else:
            fresh = True
    if fresh and window > 0:
        done, total = upload_windowed(client, model, up, prog, window)
        if done == total:
            return 0
        prog.reset()
        if done == 0:
            # not even the first LOAD_META (offset 0) is known to have run: the board may still
            # hold an older model, so nothing it holds can be trusted
            log("link anomaly at the start of the windowed upload: uploading stop-and-wait")
            return upload_model(client, model, up, prog, True, log)
        # the board ran our offset-0 LOAD_META, so all it holds is ours, in order
        log("link anomaly during the windowed upload: continuing stop-and-wait from the board's STATUS")
        upload_model(client, model, up, prog, False, log, ours=True)
        return 0
    # no RESET needed for a fresh upload: LOAD_META at offset 0 makes the board forget the
    # previous model, its layers, input and outputs (docs/PROTOCOL.md, board behaviour)
    prog.advance(resumed)
    prog.describe("model.meta.bin")
    up.send(pq.Cmd.LOAD_META, 0, model.meta, starts[0], "model.meta.bin")
    for i, blob in enumerate(model.blobs):
        prog.describe(f"layer {i} {model.names[i]}")
        up.send(pq.Cmd.LOAD_LAYER, i, blob, starts[i + 1], f"layer {i} ({model.names[i]})")
    return resumed


def deploy(args: argparse.Namespace, out: Callable[[str], None]) -> Result:
    """The whole flow (module docstring). ``Result.match`` is True only when every output byte
    equals the golden model's, None when not compared."""
    model = load_model(args.model)
    expected = None
    if args.golden and not args.input:
        xq, expected = load_golden_dir(args.golden, model)
        if args.samples is not None:
            xq, expected = xq[:args.samples], expected[:args.samples]
    elif args.input:
        xq = load_input(args.input, model, args.samples)
    else:
        raise DeployError("no input given (use --input x.npy / INPUT=, or --golden DIR)")
    if args.golden and args.input:
        raise DeployError("--golden brings its own input; do not also pass --input")
    if expected is not None:
        pass
    elif args.expected:
        try:
            expected = np.load(args.expected, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DeployError(f"{args.expected}: cannot read expected outputs ({e})") from None
        expected = np.asarray(expected).reshape(-1, model.out_size)[: xq.shape[0]].astype(np.int8)
        if expected.shape[0] != xq.shape[0]:
            raise DeployError(f"{args.expected}: {expected.shape[0]} expected rows for {xq.shape[0]} samples")
    elif not args.no_compare:
        expected = golden_outputs(model, xq)

    res = Result(port=args.port, samples=int(xq.shape[0]), out_size=model.out_size)
    verbose = (lambda m: print(f"deploy: {m}", file=sys.stderr)) if args.verbose else None
    t0 = time.monotonic()
    ser = open_port(args.port, args.baud)
    try:
        link = pq.Link(ser, name=args.port, baud=args.baud, retries=args.retries, margin=args.timeout,
                       log=verbose)
        client = pq.Client(link, run_timeout=args.run_timeout)
        link.drain(quiet=0.05, limit=0.5)
        res.timing.open_s = time.monotonic() - t0
        t = time.monotonic()
        h = handshake(client)
        res.timing.hello_s = time.monotonic() - t
        res.hello = {"fw": ".".join(map(str, h.fw_version)), "proto": h.proto_version,
                     "max_payload": h.max_payload, "accel": h.accel_kind_name, "lanes": h.accel_lanes,
                     "max_rows": h.accel_max_rows, "max_cols": h.accel_max_cols, "wmem": h.accel_wmem_bytes}
        out(f"board {args.port}: pq firmware {res.hello['fw']}, protocol v{h.proto_version}, "
            f"accelerator {h.accel_kind_name} ({h.accel_lanes} lanes, {h.accel_max_rows}x{h.accel_max_cols}, "
            f"wmem {h.accel_wmem_bytes} B), max payload {h.max_payload} B")
        check_fits(model, h, xq, args.port)

        prog = _Progress(model.total_bytes + int(xq.size), enabled=not args.no_progress)

        def note(m: str) -> None:
            # progress notes go to stdout; stderr carries only the final one-line error
            print(f"deploy: {m}", flush=True)

        def vnote(m: str) -> None:
            if args.verbose:
                print(f"deploy: {m}", file=sys.stderr, flush=True)

        up = Uploader(client, prog.advance, vnote, max_chunk=args.chunk)
        prog.start()
        try:
            t = time.monotonic()
            tx0, rx0 = link.stats.tx_wire, link.stats.rx_wire
            try:
                res.resumed_from = upload_model(client, model, up, prog, args.fresh, note,
                                                window=getattr(args, "window", WINDOW))
            except pq.BoardError as e:
                if args.fresh or e.code not in (pq.E_CRC, pq.E_META, pq.E_OFFSET, pq.E_SIZE, pq.E_STATE):
                    raise
                note(f"board state does not match this model ({e.__class__.__name__}: "
                     f"{pq.ERROR_NAMES.get(e.code)}); resetting and uploading from scratch")
                prog.reset()
                res.resumed_from = upload_model(client, model, up, prog, True, note,
                                                window=getattr(args, "window", WINDOW))
            res.timing.upload_s = time.monotonic() - t
            res.upload_wire = link.stats.tx_wire - tx0
            res.upload_rx_wire = link.stats.rx_wire - rx0
            res.upload_payload = model.total_bytes - res.resumed_from
            t = time.monotonic()
            prog.describe("input")
            xbytes = xq.tobytes()
            try:
                up.send(pq.Cmd.LOAD_INPUT, int(xq.shape[0]), xbytes, 0, "input")
            except pq.BoardError as e:
                if e.code == pq.E_SIZE and e.detail:
                    raise DeployError(f"{args.port}: the board holds at most {e.detail} samples of this model "
                                      f"(its activation buffers); use --samples {e.detail}") from None
                raise
            res.timing.input_s = time.monotonic() - t
        finally:
            prog.stop()
        out(f"uploaded {res.upload_payload} B of model in {res.timing.upload_s:.3f}s"
            + (f" (resumed: {res.resumed_from} B were already on the board)" if res.resumed_from else "")
            + f", input {len(xbytes)} B ({xq.shape[0]} samples) in {res.timing.input_s:.3f}s")

        t = time.monotonic()
        run = client.run()
        res.timing.run_s = time.monotonic() - t
        res.total_cycles = run.total_cycles
        res.layer_cycles = list(run.cycles)

        t = time.monotonic()
        n_out = xq.shape[0] * model.out_size
        got = up.read_output(n_out)
        res.timing.read_s = time.monotonic() - t
        y = np.frombuffer(bytes(got), dtype=np.int8).reshape(xq.shape[0], model.out_size)
        s = link.stats
        res.link = {"tx_wire": s.tx_wire, "rx_wire": s.rx_wire, "tx_payload": s.tx_payload,
                    "rx_payload": s.rx_payload, "requests": s.requests, "retries": s.retries,
                    "naks": s.naks, "timeouts": s.timeouts, "bad_frames": s.bad_frames}
    finally:
        try:
            ser.close()
        except Exception:
            pass

    # report
    out(f"run: host round trip {res.timing.run_s * 1e3:.1f} ms, board {res.total_cycles} accelerator cycles "
        f"for {xq.shape[0]} samples ({res.total_cycles / max(1, xq.shape[0]):.0f} per sample)")
    if len(res.layer_cycles) != len(model.blobs):
        out(f"warning: board reported {len(res.layer_cycles)} layer cycle counts for {len(model.blobs)} layers")
    mhz = args.clock_mhz
    if mhz:
        out(f"latency at {mhz:g} MHz: {res.total_cycles / mhz:.1f} us for the batch, "
            f"{res.total_cycles / mhz / max(1, xq.shape[0]):.2f} us per sample")
    for i, cyc in enumerate(res.layer_cycles):
        r = model.records[i] if i < len(model.records) else {}
        nm = model.names[i] if i < len(model.names) else "?"
        out(f"  layer {i:2d} {nm:<24s} INT{r.get('bits', '?')} {r.get('rows', '?')}x{r.get('cols', '?')}"
            f"  {cyc:>12d} cycles" + (f"  {cyc / mhz:10.1f} us" if mhz else ""))
    s = res.link
    out(f"link: {s['requests']} requests, {s['retries']} retries ({s['naks']} NAKs, {s['timeouts']} timeouts, "
        f"{s['bad_frames']} corrupted frames); {s['tx_wire']} B sent, {s['rx_wire']} B received")
    if args.output:
        _save_npy(Path(args.output), y)
    if expected is not None:
        if expected.shape != y.shape:
            raise DeployError(f"golden outputs have shape {expected.shape}, board returned {y.shape}")
        bad = np.nonzero(np.any(expected != y, axis=1))[0]
        res.mismatches = int(bad.size)
        res.match = bad.size == 0
        if bad.size:
            i = int(bad[0])
            out(f"first mismatch: sample {i}: board {y[i].tolist()} expected {expected[i].tolist()}")
    return res


def _save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyquant-deploy", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", "-p", default=os.environ.get("PORT", ""), help="serial device (/dev/ttyUSB0, a pty)")
    p.add_argument("--model", "-m", required=True, help="model directory written by `pyquant convert`")
    p.add_argument("--input", "-i", help=".npy/.npz input: float model input, or int8 quantised HWC")
    p.add_argument("--baud", "-b", type=int, default=115200, help="UART baud rate (default 115200)")
    p.add_argument("--samples", type=int, default=None, help="use only the first N samples")
    p.add_argument("--golden", "-g", help="a `pyquant golden` directory: its input.npy is sent and the board's "
                   "outputs must equal its output.npy")
    p.add_argument("--expected", help="compare with these int8 outputs (.npy) instead of pyquant.infer_int")
    p.add_argument("--no-compare", action="store_true", help="do not compare with the golden model")
    p.add_argument("--output", "-o", help="save the board's outputs (.npy, int8 [N, out_size])")
    p.add_argument("--json", help="write a JSON summary (timings, link counters, cycles)")
    p.add_argument("--fresh", action="store_true", help="RESET the board first: never resume")
    p.add_argument("--retries", type=int, default=8, help="retries per request (default 8)")
    p.add_argument("--timeout", type=float, default=0.5,
                   help="seconds added to each request's wire time before a retry (default 0.5)")
    p.add_argument("--run-timeout", type=float, default=120.0, help="seconds to wait for RUN (default 120)")
    p.add_argument("--chunk", type=int, default=None, help="largest upload chunk in bytes (default: board max)")
    p.add_argument("--window", type=int, default=WINDOW,
                   help=f"wire bytes of upload frames in flight before an answer (default {WINDOW}; "
                   "0 = stop-and-wait only)")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="also print latencies in microseconds for a board timer at this clock (cycles / MHz)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", "-v", action="store_true", help="log every failed attempt")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.retries < 0 or args.timeout <= 0 or args.baud <= 0:
        print("pyquant-deploy: error: --retries must be >= 0, --timeout and --baud > 0", file=sys.stderr)
        return 2
    if args.window < 0:
        print("pyquant-deploy: error: --window must be >= 0", file=sys.stderr)
        return 2
    if args.chunk is not None and args.chunk < MIN_CHUNK:
        print(f"pyquant-deploy: error: --chunk must be >= {MIN_CHUNK}", file=sys.stderr)
        return 2

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        res = deploy(args, out)
    except (DeployError, pq.ProtoError) as e:
        print(f"pyquant-deploy: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyquant-deploy: interrupted", file=sys.stderr)
        return 130
    doc = {"port": res.port, "hello": res.hello, "samples": res.samples, "match": res.match,
           "mismatches": res.mismatches, "resumed_from": res.resumed_from, "upload_payload": res.upload_payload,
           "upload_wire": res.upload_wire, "upload_rx_wire": res.upload_rx_wire,
           "timing": res.timing.__dict__, "total_cycles": res.total_cycles, "layer_cycles": res.layer_cycles,
           "link": res.link}
    if args.json:
        _save_json(Path(args.json), doc)
    if res.match is None:
        out("outputs NOT compared (--no-compare)")
        return 0
    if res.match:
        out(f"PASS: outputs match the golden vectors ({res.samples} samples x {res.out_size} int8 outputs, "
            f"bit-exact)")
        return 0
    print(f"pyquant-deploy: FAIL: outputs differ from the golden vectors in {res.mismatches} of {res.samples} "
          f"samples", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
