"""Unit tests of scripts/pqproto.py against docs/PROTOCOL.md and published COBS vectors."""

from __future__ import annotations

import struct
import zlib

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts import pqproto as pq

# Known-answer vectors: the examples of the COBS article (Cheshire & Baker 1999 / Wikipedia).
COBS_VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize("raw,enc", COBS_VECTORS)
def test_cobs_known_vectors(raw: bytes, enc: bytes) -> None:
    assert pq.cobs_encode(raw) == enc
    assert pq.cobs_decode(enc) == raw


def test_cobs_decoder_accepts_redundant_final_code() -> None:
    # some encoders emit an extra 0x01 after a final 0xFF block; it decodes to the same data
    assert pq.cobs_decode(b"\xff" + bytes(range(1, 255)) + b"\x01") == bytes(range(1, 255))


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x05\x11\x22", b"\x03\x11\x00"])
def test_cobs_decode_rejects(bad: bytes) -> None:
    with pytest.raises(pq.CobsError):
        pq.cobs_decode(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_roundtrip_and_overhead(data: bytes) -> None:
    enc = pq.cobs_encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert pq.cobs_decode(enc) == data


def test_frame_layout_matches_protocol_md() -> None:
    raw = pq.frame_bytes(0x03, 0x1234, b"\xaa\xbb")
    # version, cmd, seq LE, len LE, payload, CRC-32 (zlib) LE of everything before
    assert raw[:6] == bytes([1, 3, 0x34, 0x12, 2, 0])
    assert raw[6:8] == b"\xaa\xbb"
    assert struct.unpack("<I", raw[8:])[0] == zlib.crc32(raw[:8])
    wire = pq.encode_frame(0x03, 0x1234, b"\xaa\xbb")
    assert wire.endswith(b"\x00") and wire.count(b"\x00") == 1
    f = pq.decode_frame(wire[:-1])
    assert (f.version, f.cmd, f.seq, f.payload) == (1, 3, 0x1234, b"\xaa\xbb")


def test_max_payload_frame_efficiency() -> None:
    # PROTOCOL.md: a 4096-byte payload costs <= 10 + 17 + 1 extra bytes (>= 99 % efficiency)
    payload = bytes(range(1, 256)) * 16 + b"\x01"
    wire = pq.encode_frame(0x03, 1, payload[:4096])
    assert len(wire) - 4096 <= 28
    assert 4096 / len(wire) >= 0.99
    assert len(wire) <= pq.max_wire_size(4096)


@pytest.mark.parametrize("mutate,reason", [
    (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "CRC"),
    (lambda raw: raw[:4] + b"\x05\x00" + raw[6:], "length"),
    (lambda raw: raw[:7], "short"),
])
def test_decode_frame_rejects(mutate, reason: str) -> None:
    raw = pq.frame_bytes(0x02, 7, b"\x01\x02\x03")
    with pytest.raises(pq.FrameError) as ei:
        pq.decode_frame(pq.cobs_encode(mutate(raw)))
    assert reason.lower() in str(ei.value).lower()


def test_every_single_bit_flip_is_detected() -> None:
    raw = pq.frame_bytes(0x03, 42, bytes(range(40)))
    for i in range(len(raw)):
        for b in range(8):
            bad = bytearray(raw)
            bad[i] ^= 1 << b
            with pytest.raises(pq.FrameError):
                pq.decode_frame(pq.cobs_encode(bytes(bad)))


def test_reader_resynchronises_after_garbage() -> None:
    r = pq.FrameReader()
    a = pq.encode_frame(0x81, 1, b"\x00hello")
    b = pq.encode_frame(0x82, 2, b"\x00")
    stream = b"garbage\xff\xfe" + b"\x00" + a[:5] + b"XX" + a[5:] + b"\x00\x00" + b
    got = []
    for i in range(0, len(stream), 3):  # arbitrary split points
        got += r.feed(stream[i:i + 3])
    frames = [g for g in got if isinstance(g, pq.Frame)]
    errors = [g for g in got if isinstance(g, pq.FrameError)]
    assert [(f.cmd, f.seq, f.payload) for f in frames] == [(0x82, 2, b"\x00")]
    assert len(errors) == 2  # the garbage block and the corrupted frame; empty blocks ignored


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x7F), st.integers(0, 0xFFFF), st.binary(max_size=300),
                          st.binary(max_size=40)), min_size=1, max_size=8),
       st.integers(1, 64))
def test_reader_recovers_every_intact_frame(items, split: int) -> None:
    # garbage (terminated by a delimiter, so it cannot swallow the next frame) between frames
    stream = b""
    for cmd, seq, payload, junk in items:
        stream += junk + b"\x00" + pq.encode_frame(cmd, seq, payload)
    r = pq.FrameReader()
    got = []
    for i in range(0, len(stream), split):
        got += [f for f in r.feed(stream[i:i + split]) if isinstance(f, pq.Frame)]
    want = [(c, s, p) for c, s, p, _ in items]
    # a junk block can by chance be a valid frame only if it carries a correct CRC-32
    assert [(f.cmd, f.seq, f.payload) for f in got if (f.cmd, f.seq, f.payload) in want] == want


def test_reader_drops_oversized_block() -> None:
    r = pq.FrameReader(max_payload=64)
    out = r.feed(b"\x01" * 500)
    assert any(isinstance(o, pq.FrameError) for o in out)
    good = pq.encode_frame(0x81, 9, b"\x00ok")
    out = r.feed(b"\x01\x01\x00" + good)
    assert [o.seq for o in out if isinstance(o, pq.Frame)] == [9]


# ---- Link / Client against scripted boards on a pty --------------------------------------

from fakeboard import FakeBoard  # noqa: E402


def _open(path: str) -> serial.Serial:
    return serial.Serial(path, 115200, timeout=0.05)


def test_link_hello_ok() -> None:
    with FakeBoard("hello") as fb, _open(fb.path) as s:
        c = pq.Client(pq.Link(s, name=fb.path, margin=0.2))
        h = c.hello()
        assert h.proto_version == 1 and h.max_payload == 4096 and h.accel_max_rows == 256
        with pytest.raises(pq.BoardError) as ei:
            c.status()
        assert "E_CMD" in str(ei.value) and ei.value.code == pq.E_CMD


def test_link_retries_same_seq_after_nak() -> None:
    with FakeBoard("flaky", every=3) as fb, _open(fb.path) as s:
        link = pq.Link(s, name=fb.path, margin=0.2)
        c = pq.Client(link)
        c.hello()
        assert link.stats.naks == 2 and link.stats.retries == 2 and link.stats.attempts == 3


def test_link_nak_storm() -> None:
    with FakeBoard("nak") as fb, _open(fb.path) as s:
        link = pq.Link(s, name=fb.path, margin=0.2, retries=4)
        with pytest.raises(pq.NakStorm) as ei:
            pq.Client(link).hello()
        assert "NAK storm" in str(ei.value) and "5 times" in str(ei.value)
        assert fb.frames_seen == 5


def test_link_silent_timeout() -> None:
    with FakeBoard("silent") as fb, _open(fb.path) as s:
        link = pq.Link(s, name=fb.path, margin=0.1, retries=2)
        with pytest.raises(pq.LinkTimeout) as ei:
            pq.Client(link).hello()
        assert "nothing received" in str(ei.value)


@pytest.mark.parametrize("mode", ["v2", "evers"])
def test_link_version_mismatch(mode: str) -> None:
    with FakeBoard(mode) as fb, _open(fb.path) as s:
        with pytest.raises(pq.VersionMismatch) as ei:
            pq.Client(pq.Link(s, name=fb.path, margin=0.2)).hello()
        assert "version mismatch" in str(ei.value)


def test_link_wrong_magic() -> None:
    with FakeBoard("badmagic") as fb, _open(fb.path) as s:
        with pytest.raises(pq.WrongDevice):
            pq.Client(pq.Link(s, name=fb.path, margin=0.2)).hello()


# ---- Link.pipeline (windowed uploads) against an in-process board -------------------------


class LoopPort:
    """A serial-like port with an in-process board: each complete request frame written is
    answered (OK + u32 index, or whatever ``answer`` returns) when the host next reads.
    Records the most frames ever written but not yet answered."""

    def __init__(self, answer=None) -> None:
        self.timeout: float | None = 0.05
        self.reader = pq.FrameReader(8192)
        self.queue: list[pq.Frame] = []
        self.frames: list[pq.Frame] = []
        self.max_unanswered = 0
        self.answer = answer or (lambda i, f: pq.encode_frame(f.cmd | pq.RESP, f.seq, b"\0" + struct.pack("<I", i)))

    def write(self, data: bytes) -> int:
        for f in self.reader.feed(data):
            assert isinstance(f, pq.Frame)
            self.queue.append(f)
            self.frames.append(f)
        self.max_unanswered = max(self.max_unanswered, len(self.queue))
        return len(data)

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        if not self.queue:
            import time
            time.sleep(self.timeout or 0)
            return b""
        f = self.queue.pop(0)
        return self.answer(len(self.frames) - len(self.queue) - 1, f)


def _reqs(n: int, size: int = 4090) -> list[tuple[int, bytes]]:
    return [(pq.Cmd.LOAD_LAYER, struct.pack("<HI", 0, i * size) + bytes([i + 1]) * size) for i in range(n)]


def test_pipeline_keeps_a_window_and_accepts_in_order() -> None:
    port = LoopPort()
    link = pq.Link(port, baud=921600, margin=0.2, seq0=100)
    seen: list[int] = []
    reqs = _reqs(7)
    assert link.pipeline(reqs, lambda i, r: seen.append(struct.unpack("<I", r.body)[0]),
                         window=2 * (4096 + 64)) == 7
    assert seen == list(range(7))
    assert [f.payload for f in port.frames] == [p for _, p in reqs]  # each sent once, in order
    assert len({f.seq for f in port.frames}) == 7
    assert 2 <= port.max_unanswered <= 3  # several frames in flight, bounded by the window
    port2 = LoopPort()
    pq.Link(port2, baud=921600, margin=0.2).pipeline(_reqs(4), lambda i, r: None, window=1)
    assert port2.max_unanswered == 1  # a tiny window degenerates to stop-and-wait


def _answer_with(bad_at: int, kind: str):
    def answer(i: int, f: pq.Frame) -> bytes:
        if i != bad_at:
            return pq.encode_frame(f.cmd | pq.RESP, f.seq, b"\0" + struct.pack("<I", i))
        if kind == "nak":
            return pq.encode_frame(pq.NAK, f.seq, b"\x04")
        if kind == "corrupt":
            return b"\x05\x11\x22\x33\x44\x00"
        if kind == "lost":
            return b""
        raise AssertionError(kind)
    return answer


@pytest.mark.parametrize("kind", ["nak", "corrupt", "lost"])
def test_pipeline_stops_at_first_anomaly_without_retransmitting(kind: str) -> None:
    port = LoopPort(_answer_with(3, kind))
    link = pq.Link(port, baud=921600, margin=0.05)
    seen: list[int] = []
    assert link.pipeline(_reqs(8), lambda i, r: seen.append(i), window=2 * (4096 + 64)) == 3
    assert seen == [0, 1, 2]
    payloads = [f.payload for f in port.frames]
    assert len(payloads) == len(set(payloads)) <= 3 + 3  # nothing resent; only the window ahead


def test_pipeline_board_error_propagates() -> None:
    port = LoopPort(lambda i, f: pq.encode_frame(f.cmd | pq.RESP, f.seq, bytes([pq.E_CRC]) + b"\1\0\0\0"))
    link = pq.Link(port, baud=921600, margin=0.05)

    def accept(i: int, r: pq.Response) -> None:
        if r.status:
            raise pq.BoardError(pq.Cmd.LOAD_LAYER, r.status, 1, "loop")

    with pytest.raises(pq.BoardError, match="E_CRC"):
        link.pipeline(_reqs(3), accept)
