"""Minimal independent client of docs/PROTOCOL.md for the firmware tests (COBS, CRC-32, frames).

Independent of scripts/deploy.py on purpose: it is a second implementation of the wire contract.
"""

from __future__ import annotations

import struct
import zlib


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiter); guarantees no zero byte in the result."""
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises ``ValueError`` on malformed input."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > len(data):
            raise ValueError("bad COBS")
        out += data[i:i + code - 1]
        i += code - 1
        if code != 255 and i < len(data):
            out.append(0)
    return bytes(out)


def frame(cmd: int, seq: int, payload: bytes = b"", ver: int = 1) -> bytes:
    """Raw (unencoded) frame with CRC."""
    body = struct.pack("<BBHH", ver, cmd, seq, len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def wire(cmd: int, seq: int, payload: bytes = b"", ver: int = 1) -> bytes:
    """Encoded frame plus delimiter, ready to write."""
    return cobs_encode(frame(cmd, seq, payload, ver)) + b"\x00"


def parse(raw_enc: bytes) -> tuple[int, int, int, bytes]:
    """Decode one encoded frame (without delimiter) -> (ver, cmd, seq, payload); checks CRC."""
    f = cobs_decode(raw_enc)
    if len(f) < 10:
        raise ValueError("short frame")
    ver, cmd, seq, n = struct.unpack_from("<BBHH", f)
    if n + 10 != len(f):
        raise ValueError("length mismatch")
    if zlib.crc32(f[:6 + n]) != struct.unpack_from("<I", f, 6 + n)[0]:
        raise ValueError("crc mismatch")
    return ver, cmd, seq, f[6:6 + n]


def split_frames(stream: bytes) -> list[bytes]:
    """Split a byte stream at 0x00 delimiters into encoded frames (drops empty ones)."""
    return [p for p in stream.split(b"\x00") if p]
