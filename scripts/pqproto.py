"""Host side of the pq firmware UART protocol, version 1 (docs/PROTOCOL.md).

Layers, bottom up:

* :func:`cobs_encode` / :func:`cobs_decode` - Consistent Overhead Byte Stuffing.
* :func:`encode_frame` / :func:`decode_frame` - header ``<B B H H>`` + payload + CRC-32
  (``zlib.crc32``), COBS-encoded and terminated by one ``0x00``.
* :class:`FrameReader` - turns a byte stream into frames, dropping garbage (resynchronises on
  the next delimiter).
* :class:`Link` - stop-and-wait requests over a serial-like port: sequence numbers, retries
  with the *same* seq on timeout / NAK / corrupted answer, timeouts scaled to the wire time;
  plus :meth:`Link.pipeline`, several upload frames in flight that stops at the first anomaly.
* :class:`Client` - the eight commands with their payloads packed and responses parsed.

Every failure reaches the caller as a :class:`ProtoError` subclass whose ``str()`` is one
line naming the port and the problem.
"""

from __future__ import annotations

import enum
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Protocol

PROTO_VERSION = 1
MAX_PAYLOAD = 4096
HEADER = struct.Struct("<BBHH")
HEADER_SIZE = HEADER.size  # 6
CRC_SIZE = 4
MIN_FRAME = HEADER_SIZE + CRC_SIZE  # 10
NAK = 0x7F
RESP = 0x80
SEQ_UNKNOWN = 0xFFFF
BITS_PER_BYTE = 10  # UART 8N1
MAGIC = b"PQFW"


class Cmd(enum.IntEnum):
    """Request command codes."""

    HELLO = 0x01
    LOAD_META = 0x02
    LOAD_LAYER = 0x03
    LOAD_INPUT = 0x04
    RUN = 0x05
    READ_OUTPUT = 0x06
    STATUS = 0x07
    RESET = 0x08


ERROR_NAMES = {
    0: "OK",
    1: "E_VERSION",
    2: "E_CMD",
    3: "E_LEN",
    4: "E_OFFSET",
    5: "E_SIZE",
    6: "E_META",
    7: "E_CRC",
    8: "E_STATE",
    9: "E_LAYER",
    10: "E_ACCEL",
}
ERROR_TEXT = {
    1: "protocol version mismatch",
    2: "unknown command",
    3: "payload length wrong for the command",
    4: "offset/length outside the buffer or not contiguous",
    5: "total size larger than the board's buffer",
    6: "metadata invalid",
    7: "layer or metadata CRC-32 mismatch",
    8: "command not valid now",
    9: "layer index out of range",
    10: "accelerator error or timeout",
}
E_VERSION, E_CMD, E_LEN, E_OFFSET, E_SIZE, E_META, E_CRC, E_STATE, E_LAYER, E_ACCEL = range(1, 11)
ACCEL_KINDS = {0: "C reference", 1: "RTL", 2: "HLS", 3: "hardware"}


# --------------------------------------------------------------------------------------------
# errors


class ProtoError(Exception):
    """Base of every protocol/link failure; ``str()`` is one line."""


class NoDevice(ProtoError):
    """The port cannot be opened."""


class Disconnected(ProtoError):
    """The port went away while in use."""


class LinkTimeout(ProtoError):
    """No valid answer after all retries. ``silent``: not a single byte came back meanwhile
    (a dead or disconnected board rather than a noisy line)."""

    silent = False


class NakStorm(ProtoError):
    """Every attempt of a request was NAKed or answered with a corrupted frame."""


class WrongDevice(ProtoError):
    """Something answers, but it does not speak this protocol."""


class VersionMismatch(ProtoError):
    """The board speaks another protocol version."""


class BoardError(ProtoError):
    """The board executed the request and answered with a non-zero status."""

    def __init__(self, cmd: int, code: int, detail: int, port: str = "") -> None:
        self.cmd, self.code, self.detail = cmd, code, detail
        name = ERROR_NAMES.get(code, f"error {code}")
        text = ERROR_TEXT.get(code, "unknown error code")
        where = f"{port}: " if port else ""
        super().__init__(f"{where}board refused {cmd_name(cmd)}: {name} ({text}), detail {detail}")


class CobsError(ValueError):
    """Malformed COBS data."""


class FrameError(ValueError):
    """A delimited frame that fails decoding, length or CRC checks."""

    def __init__(self, reason: str, seq: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.seq = reason, seq


def cmd_name(cmd: int) -> str:
    """Human name of a command code (``'LOAD_LAYER'``), or hex for unknown codes."""
    try:
        return Cmd(cmd & 0x7F).name
    except ValueError:
        return f"cmd 0x{cmd:02x}"


# --------------------------------------------------------------------------------------------
# COBS


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode ``data``; the result contains no ``0x00`` (delimiter not appended).

    Guarantees ``cobs_decode(cobs_encode(x)) == x`` and ``len(out) <= len(x) + len(x)//254 + 1``.
    A final block of exactly 254 non-zero bytes is not followed by an extra code byte
    (the canonical encoding, as in Cheshire & Baker and the ``cobs`` PyPI package).
    """
    data = bytes(data)
    if len(data) >= 64:
        fast = _cobs_encode_np(data)
        if fast is not None:
            return fast
    parts = data.split(b"\x00")
    out = bytearray()
    last = len(parts) - 1
    for i, part in enumerate(parts):
        n = len(part)
        full, rest = divmod(n, 254)
        for k in range(full):
            out.append(0xFF)
            out += part[254 * k:254 * (k + 1)]
        if i == last and n and not rest:
            break  # the data ends with a full 0xFF block: no implicit zero, no extra code
        out.append(rest + 1)
        out += part[254 * full:]
    return bytes(out)


def _cobs_encode_np(data: bytes) -> bytes | None:
    """Vectorised COBS for data whose zero-free runs are all shorter than 254 bytes (then the
    encoding is the data with each zero replaced by the distance to the next zero, behind a
    first code byte); ``None`` when a longer run needs 0xFF blocks."""
    import numpy as np

    a = np.frombuffer(data, dtype=np.uint8)
    z = np.flatnonzero(a == 0)
    ends = np.append(z, len(a))
    codes = np.diff(np.concatenate(([-1], ends)))  # first code, then one per zero
    if codes.max() > 254:
        return None
    out = np.empty(len(a) + 1, dtype=np.uint8)
    out[0] = codes[0]
    out[1:] = a
    out[z + 1] = codes[1:]
    return out.tobytes()


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Inverse of :func:`cobs_encode` (the delimiter must already be stripped).

    Raises :class:`CobsError` on a zero byte inside the data, a code pointing past the end,
    or empty input.
    """
    data = bytes(data)
    if not data:
        raise CobsError("empty COBS block")
    out = bytearray()
    idx = 0
    n = len(data)
    while idx < n:
        code = data[idx]
        if code == 0:
            raise CobsError(f"zero byte inside COBS data at {idx}")
        end = idx + code
        if end > n:
            raise CobsError(f"COBS code {code} at {idx} runs past the end ({n} bytes)")
        block = data[idx + 1:end]
        if b"\x00" in block:
            raise CobsError("zero byte inside COBS data")
        out += block
        idx = end
        if code < 0xFF and idx < n:
            out.append(0)
    return bytes(out)


# --------------------------------------------------------------------------------------------
# frames


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    version: int
    cmd: int
    seq: int
    payload: bytes

    @property
    def is_nak(self) -> bool:
        return self.cmd == NAK

    @property
    def is_response(self) -> bool:
        return self.cmd != NAK and bool(self.cmd & RESP)


def frame_bytes(cmd: int, seq: int, payload: bytes = b"", version: int = PROTO_VERSION) -> bytes:
    """The raw (un-encoded) frame: header, payload, CRC-32 of both."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit the u16 length field")
    raw = HEADER.pack(version & 0xFF, cmd & 0xFF, seq & 0xFFFF, len(payload)) + bytes(payload)
    return raw + struct.pack("<I", zlib.crc32(raw) & 0xFFFFFFFF)


def encode_frame(cmd: int, seq: int, payload: bytes = b"", version: int = PROTO_VERSION) -> bytes:
    """Wire bytes of a frame: COBS(frame) followed by the ``0x00`` delimiter."""
    return cobs_encode(frame_bytes(cmd, seq, payload, version)) + b"\x00"


def decode_frame(block: bytes, max_payload: int = 0xFFFF) -> Frame:
    """Decode one delimited block (delimiter stripped) into a :class:`Frame`.

    Raises :class:`FrameError` (``.seq`` set when the header was readable) when COBS fails,
    the frame is shorter than 10 bytes, the length field does not match, the payload exceeds
    ``max_payload`` or the CRC-32 is wrong. The version is *not* checked here.
    """
    try:
        raw = cobs_decode(block)
    except CobsError as e:
        raise FrameError(f"COBS: {e}") from None
    if len(raw) < MIN_FRAME:
        raise FrameError(f"frame too short ({len(raw)} bytes)")
    version, cmd, seq, length = HEADER.unpack_from(raw)
    if length != len(raw) - MIN_FRAME:
        raise FrameError(f"length field {length} != {len(raw) - MIN_FRAME}", seq)
    if length > max_payload:
        raise FrameError(f"payload {length} > max {max_payload}", seq)
    (crc,) = struct.unpack_from("<I", raw, len(raw) - CRC_SIZE)
    if crc != zlib.crc32(raw[:-CRC_SIZE]) & 0xFFFFFFFF:
        raise FrameError("CRC-32 mismatch", seq)
    return Frame(version, cmd, seq, raw[HEADER_SIZE:-CRC_SIZE])


def max_wire_size(payload_len: int) -> int:
    """Upper bound of the wire bytes of a frame with ``payload_len`` payload bytes."""
    n = payload_len + MIN_FRAME
    return n + n // 254 + 1 + 1


class FrameReader:
    """Incremental stream decoder: :meth:`feed` bytes, get back frames and frame errors.

    Bytes accumulate until a ``0x00``; each non-empty block is decoded. Empty blocks
    (consecutive delimiters) are ignored. A block longer than any legal frame is discarded
    (reported once as a :class:`FrameError`) and bytes are dropped until the next delimiter.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self.limit = max_wire_size(max_payload)
        self.buf = bytearray()
        self.overflow = False
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        for part_i, part in enumerate(bytes(data).split(b"\x00")):
            if part_i > 0:
                # a delimiter ended the previous block
                if self.overflow:
                    self.overflow = False
                elif self.buf:
                    try:
                        out.append(decode_frame(bytes(self.buf), self.max_payload))
                    except FrameError as e:
                        self.garbage_bytes += len(self.buf) + 1
                        out.append(e)
                self.buf.clear()
            if self.overflow:
                self.garbage_bytes += len(part)
                continue
            self.buf += part
            if len(self.buf) > self.limit:
                self.garbage_bytes += len(self.buf)
                self.buf.clear()
                self.overflow = True
                out.append(FrameError("oversized block without delimiter"))
        return out


# --------------------------------------------------------------------------------------------
# link


class SerialLike(Protocol):
    """What :class:`Link` needs from a port (pyserial's ``Serial`` fits)."""

    timeout: float | None

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...

    @property
    def in_waiting(self) -> int: ...


@dataclass
class LinkStats:
    """Counters of one :class:`Link` (bytes are wire bytes unless noted)."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    naks: int = 0
    timeouts: int = 0
    bad_frames: int = 0
    stale_frames: int = 0
    valid_frames: int = 0  # CRC-valid frames received (any seq)
    tx_payload: int = 0   # request payload bytes of successful requests (once each)
    tx_wire: int = 0      # every byte written, retries included
    rx_wire: int = 0
    rx_payload: int = 0   # response payload bytes accepted
    per_cmd_attempts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """An accepted response: status byte and the rest of the payload."""

    cmd: int
    seq: int
    status: int
    body: bytes


class Link:
    """Stop-and-wait request/response over ``port`` (docs/PROTOCOL.md "Reliability").

    :meth:`request` guarantees: it returns only a CRC-valid, version-1 response whose seq
    and cmd match the request; otherwise it raises :class:`LinkTimeout`, :class:`NakStorm`,
    :class:`VersionMismatch`, :class:`WrongDevice` or :class:`Disconnected`. A retry resends
    the identical frame (same seq), so the board executes each request at most once.
    """

    def __init__(self, port: SerialLike, *, name: str = "", baud: int = 115200, retries: int = 8,
                 margin: float = 0.5, max_payload: int = MAX_PAYLOAD,
                 log: Callable[[str], None] | None = None, seq0: int | None = None) -> None:
        self.port = port
        self.name = name or getattr(port, "port", None) or "port"
        self.baud = baud
        self.retries = retries
        self.margin = margin
        self.reader = FrameReader(max(max_payload, MAX_PAYLOAD))
        self.stats = LinkStats()
        self.log = log
        # start from a time-derived seq so a re-run does not collide with the board's
        # cached "last executed" seq from a previous session
        self.seq = (seq0 if seq0 is not None else int(time.time() * 1000)) & 0xFFFF
        if self.seq == SEQ_UNKNOWN:
            self.seq = 0
        self.rx_any = 0  # bytes ever received (to tell "silent" from "talks garbage")

    # wire time of n bytes at the link's baud
    def wire_time(self, nbytes: int) -> float:
        return nbytes * BITS_PER_BYTE / float(self.baud)

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        if self.seq == SEQ_UNKNOWN:
            self.seq = 0
        return self.seq

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            flush = getattr(self.port, "flush", None)
            if flush is not None:
                flush()
        except Exception as e:  # pyserial raises SerialException / OSError
            if "timeout" in type(e).__name__.lower():
                raise LinkTimeout(f"{self.name}: timeout: write blocked (the device does not read)") from None
            raise Disconnected(f"{self.name}: device disconnected while writing ({_one_line(e)})") from None
        self.stats.tx_wire += len(data)

    def _read_some(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b""
        try:
            self.port.timeout = min(remaining, 0.05)
            n = self.port.in_waiting
            data = self.port.read(max(1, min(n, 65536)))
        except Exception as e:
            raise Disconnected(f"{self.name}: device disconnected while reading ({_one_line(e)})") from None
        self.stats.rx_wire += len(data)
        self.rx_any += len(data)
        return data

    def drain(self, quiet: float = 0.05, limit: float = 1.0) -> int:
        """Read and discard input until the line has been quiet for ``quiet`` seconds."""
        end = time.monotonic() + limit
        got = 0
        last = time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < quiet:
            d = self._read_some(min(end, time.monotonic() + quiet))
            if d:
                got += len(d)
                last = time.monotonic()
        self.reader = FrameReader(self.reader.max_payload)
        return got

    def _count_attempt(self, name: str) -> None:
        """Count one transmission of a request named ``name``."""
        self.stats.attempts += 1
        self.stats.per_cmd_attempts[name] = self.stats.per_cmd_attempts.get(name, 0) + 1

    def _check_frame_version(self, frame: Frame) -> None:
        """Raise :class:`VersionMismatch` for a valid frame of another protocol version."""
        if frame.version != PROTO_VERSION:
            raise VersionMismatch(
                f"{self.name}: protocol version mismatch: board frames are v{frame.version}, "
                f"host speaks v{PROTO_VERSION}")

    def _check_status_version(self, status: int) -> None:
        """Raise :class:`VersionMismatch` when the board answered E_VERSION."""
        if status == E_VERSION:
            raise VersionMismatch(
                f"{self.name}: protocol version mismatch: board rejected host protocol "
                f"v{PROTO_VERSION} (E_VERSION)")

    def request(self, cmd: int, payload: bytes = b"", *, timeout: float | None = None,
                retries: int | None = None, resp_max: int = 64, backoff: float = 1.5,
                max_timeout: float = 5.0) -> Response:
        """Send one request and return its response (see the class docstring).

        ``timeout`` is the wait of the first attempt; by default the wire time of the request
        plus ``resp_max`` response bytes at ``baud``, plus ``margin``. Each silent attempt
        multiplies the wait by ``backoff`` (up to ``max_timeout``), so a stalled link or a long
        RUN is waited out while a lost answer is still asked for again quickly. A NAK or a
        corrupted answer triggers the resend at once.
        """
        retries = self.retries if retries is None else retries
        seq = self.next_seq()
        wire = encode_frame(cmd, seq, payload)
        if timeout is None:
            timeout = self.wire_time(len(wire) + max_wire_size(resp_max)) + self.margin
        self.stats.requests += 1
        name = cmd_name(cmd)
        naks = bad = touts = 0
        last_nak_reason = None
        rx_before = self.rx_any
        for attempt in range(retries + 1):
            self._count_attempt(name)
            if attempt:
                self.stats.retries += 1
            self._write(wire)
            wait = min(max_timeout, timeout * backoff ** touts)
            deadline = time.monotonic() + wait
            outcome = None  # "nak" | "bad" | None (timeout)
            while outcome is None and time.monotonic() < deadline:
                data = self._read_some(deadline)
                if not data:
                    continue
                for item in self.reader.feed(data):
                    if isinstance(item, FrameError):
                        self.stats.bad_frames += 1
                        # a corrupted answer: ask again at once (the board dedups by seq)
                        outcome = outcome or "bad"
                        continue
                    self.stats.valid_frames += 1
                    self._check_frame_version(item)
                    if item.is_nak:
                        # stop-and-wait: a NAK (whatever seq it could read, the seq field may
                        # itself be corrupted) is about our request or garbage before it; a
                        # resend is harmless because the board deduplicates by seq
                        self.stats.naks += 1
                        last_nak_reason = item.payload[0] if item.payload else None
                        outcome = "nak"
                        continue
                    if item.seq != seq or item.cmd != (cmd | RESP):
                        self.stats.stale_frames += 1
                        continue
                    if not item.payload:
                        self.stats.bad_frames += 1
                        outcome = outcome or "bad"
                        continue
                    status = item.payload[0]
                    self._check_status_version(status)
                    self.stats.tx_payload += len(payload)
                    self.stats.rx_payload += len(item.payload)
                    return Response(item.cmd, item.seq, status, item.payload[1:])
            if outcome == "nak":
                naks += 1
            elif outcome == "bad":
                bad += 1
            else:
                touts += 1
                self.stats.timeouts += 1
            if self.log:
                self.log(f"{name} seq {seq}: attempt {attempt + 1} failed ({outcome or 'timeout'})")
        attempts = retries + 1
        if touts == 0:
            why = f"last NAK reason {last_nak_reason}" if last_nak_reason is not None else "corrupted answers"
            raise NakStorm(f"{self.name}: NAK storm: {name} failed {attempts} times "
                           f"({naks} NAKs, {bad} corrupted answers; {why}); link too noisy")
        if self.rx_any == rx_before:
            e = LinkTimeout(f"{self.name}: timeout: no answer to {name} after {attempts} attempts "
                            f"from {timeout:.2f}s (nothing received"
                            + (": is the board powered and the baud right?)" if self.rx_any == 0 else ")"))
            e.silent = True
            raise e
        raise LinkTimeout(f"{self.name}: timeout: no valid answer to {name} after {attempts} attempts "
                          f"from {timeout:.2f}s ({naks} NAKs, {bad} corrupted, {touts} silent)")


    def pipeline(self, reqs: list[tuple[int, bytes]], accept: Callable[[int, Response], None], *,
                 window: int = 2 * (MAX_PAYLOAD + 64), resp_max: int = 16) -> int:
        """Send ``reqs`` (cmd, payload) with several frames in flight (docs/PROTOCOL.md,
        "Windowed uploads") and return how many *leading* requests were answered in order.

        A new frame is written while the unanswered frames hold fewer than ``window`` wire
        bytes (at least one frame is always in flight), each with its own seq. The board
        executes frames in arrival order, so the responses must come back in that order:
        ``accept(i, response)`` is called for each in-order response (it may raise, e.g.
        :class:`BoardError`, which propagates). The first anomaly - a NAK, a corrupted
        frame, a response out of order, or no answer within the wire time of the frames in
        flight plus ``margin`` - stops the pipeline at once and the count of accepted
        requests is returned. Nothing is ever retransmitted here: frames after the last
        accepted one may or may not have been executed, so the caller must ask the board
        (STATUS, which queues behind them on the line) before going on.
        """
        pending: list[tuple[int, int, int]] = []  # (index, seq, wire bytes), oldest first
        inflight = 0
        nxt = done = 0
        last = wrote = time.monotonic()
        while done < len(reqs):
            while nxt < len(reqs) and (not pending or inflight < window):
                cmd, payload = reqs[nxt]
                seq = self.next_seq()
                wire = encode_frame(cmd, seq, payload)
                self.stats.requests += 1
                self._count_attempt(cmd_name(cmd))
                self._write(wire)
                pending.append((nxt, seq, len(wire)))
                inflight += len(wire)
                nxt += 1
                wrote = time.monotonic()  # a blocking write is the line being busy, not silence
            deadline = max(last, wrote) + self.wire_time(inflight + max_wire_size(resp_max)) + self.margin
            data = self._read_some(deadline)
            if not data:
                if time.monotonic() >= deadline:
                    self.stats.timeouts += 1
                    return done
                continue
            for item in self.reader.feed(data):
                if isinstance(item, FrameError):
                    self.stats.bad_frames += 1
                    return done
                self.stats.valid_frames += 1
                self._check_frame_version(item)
                if item.is_nak:
                    self.stats.naks += 1
                    return done
                i, seq, nbytes = pending[0]
                cmd, payload = reqs[i]
                if item.seq != seq or item.cmd != (cmd | RESP) or not item.payload:
                    # a stale answer from before, or ours came out of order: a frame was lost
                    self.stats.stale_frames += 1
                    return done
                self._check_status_version(item.payload[0])
                pending.pop(0)
                inflight -= nbytes
                last = time.monotonic()
                self.stats.tx_payload += len(payload)
                self.stats.rx_payload += len(item.payload)
                accept(i, Response(item.cmd, item.seq, item.payload[0], item.payload[1:]))
                done += 1
        return done


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# --------------------------------------------------------------------------------------------
# commands

HELLO_FMT = struct.Struct("<4sBBBBHIIIHHHIB3s")
STATUS_FMT = struct.Struct("<BBIIIH")


@dataclass(frozen=True)
class Hello:
    """Parsed HELLO response."""

    proto_version: int
    fw_version: tuple[int, int, int]
    max_payload: int
    meta_max: int
    weights_max: int
    act_max: int
    accel_lanes: int
    accel_max_rows: int
    accel_max_cols: int
    accel_wmem_bytes: int
    accel_kind: int

    @property
    def accel_kind_name(self) -> str:
        return ACCEL_KINDS.get(self.accel_kind, f"kind {self.accel_kind}")


@dataclass(frozen=True)
class Status:
    """Parsed STATUS response."""

    state: int
    last_error: int
    last_detail: int
    meta_bytes: int
    layer_bytes: int
    layers_complete: int


@dataclass(frozen=True)
class RunResult:
    """Parsed RUN response."""

    total_cycles: int
    cycles: tuple[int, ...]


class Client:
    """The protocol's commands over a :class:`Link`. Non-zero statuses raise :class:`BoardError`."""

    def __init__(self, link: Link, run_timeout: float = 120.0) -> None:
        self.link = link
        self.run_timeout = run_timeout
        self.max_payload = MAX_PAYLOAD

    def _ok(self, cmd: int, payload: bytes = b"", **kw) -> bytes:
        r = self.link.request(cmd, payload, **kw)
        if r.status != 0:
            detail = struct.unpack_from("<I", r.body)[0] if len(r.body) >= 4 else 0
            raise BoardError(cmd, r.status, detail, self.link.name)
        return r.body

    def _short(self, cmd: int, body: bytes, need: int) -> None:
        if len(body) < need:
            raise WrongDevice(f"{self.link.name}: {cmd_name(cmd)} response has {len(body)} bytes, "
                              f"expected {need}")

    def hello(self) -> Hello:
        """HELLO; raises :class:`WrongDevice` when the answer is not a pq firmware's."""
        body = self._ok(Cmd.HELLO)
        self._short(Cmd.HELLO, body, HELLO_FMT.size)
        f = HELLO_FMT.unpack_from(body)
        if f[0] != MAGIC:
            raise WrongDevice(f"{self.link.name}: wrong device: HELLO magic {f[0]!r}, expected {MAGIC!r}")
        h = Hello(f[1], (f[2], f[3], f[4]), f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13])
        if h.proto_version != PROTO_VERSION:
            raise VersionMismatch(f"{self.link.name}: protocol version mismatch: board firmware "
                                  f"{'.'.join(map(str, h.fw_version))} speaks v{h.proto_version}, "
                                  f"host speaks v{PROTO_VERSION}")
        if h.max_payload < 16:
            raise WrongDevice(f"{self.link.name}: board reports max_payload {h.max_payload} (< 16)")
        self.max_payload = min(MAX_PAYLOAD, h.max_payload)
        return h

    def load_meta(self, total: int, offset: int, data: bytes, retries: int | None = None) -> int:
        body = self._ok(Cmd.LOAD_META, struct.pack("<II", total, offset) + data, resp_max=8, retries=retries)
        self._short(Cmd.LOAD_META, body, 4)
        return struct.unpack_from("<I", body)[0]

    def load_layer(self, layer: int, offset: int, data: bytes, retries: int | None = None) -> int:
        body = self._ok(Cmd.LOAD_LAYER, struct.pack("<HI", layer, offset) + data, resp_max=8, retries=retries)
        self._short(Cmd.LOAD_LAYER, body, 4)
        return struct.unpack_from("<I", body)[0]

    def load_input(self, n_samples: int, offset: int, data: bytes, retries: int | None = None) -> int:
        body = self._ok(Cmd.LOAD_INPUT, struct.pack("<HI", n_samples, offset) + data, resp_max=8,
                        retries=retries)
        self._short(Cmd.LOAD_INPUT, body, 4)
        return struct.unpack_from("<I", body)[0]

    def run(self, timeout: float | None = None) -> RunResult:
        """RUN. The board is busy while it computes, so the wait doubles per silent attempt
        (first wait 1 s + margin, no single wait above ``run_timeout``); a duplicate RUN
        is answered from the board's cache, never executed twice."""
        t = timeout or self.run_timeout
        body = self._ok(Cmd.RUN, timeout=min(t, 1.0 + self.link.margin), resp_max=1024, backoff=2.0,
                        max_timeout=t)
        self._short(Cmd.RUN, body, 6)
        total, n = struct.unpack_from("<IH", body)
        self._short(Cmd.RUN, body, 6 + 4 * n)
        return RunResult(total, struct.unpack_from(f"<{n}I", body, 6))

    def read_output(self, offset: int, length: int, retries: int | None = None) -> bytes:
        body = self._ok(Cmd.READ_OUTPUT, struct.pack("<IH", offset, length), resp_max=length + 8,
                        retries=retries)
        if len(body) != length:
            raise ProtoError(f"{self.link.name}: READ_OUTPUT returned {len(body)} bytes, asked {length}")
        return body

    def status(self, layer: int = 0xFFFF) -> Status:
        body = self._ok(Cmd.STATUS, struct.pack("<H", layer))
        self._short(Cmd.STATUS, body, STATUS_FMT.size)
        return Status(*STATUS_FMT.unpack_from(body))

    def reset(self) -> None:
        self._ok(Cmd.RESET)
