"""A tiny scripted board on a pseudo-terminal, for host-side error-path tests.

It is deliberately *not* a firmware: it answers HELLO (and optionally every request) in one
of a few misbehaving modes so the host tool's error handling can be exercised without the
real firmware. The real firmware is tested through scripts/vboard.py.
"""

from __future__ import annotations

import os
import struct
import threading
import tty

from scripts import pqproto as pq


def hello_body(proto: int = pq.PROTO_VERSION, magic: bytes = pq.MAGIC, max_payload: int = 4096) -> bytes:
    """A HELLO response body (status 0 first) with plausible capabilities."""
    return bytes([0]) + pq.HELLO_FMT.pack(magic, proto, 0, 1, 0, max_payload, 65536, 1 << 20, 1 << 16,
                                          8, 256, 1024, 32768, 0, b"\0\0\0")


class FakeBoard:
    """Runs ``mode`` on the master side of a fresh pty; ``path`` is the slave to open.

    Modes: ``silent`` (reads, never answers), ``garbage`` (answers every byte burst with
    non-protocol text), ``nak`` (NAKs every frame), ``v2`` (answers with version-2 frames),
    ``evers`` (answers every request with status E_VERSION), ``badmagic`` (HELLO with another
    magic), ``hello`` (a correct HELLO, E_CMD to anything else), ``flaky`` (answers HELLO
    correctly but only every ``every``-th attempt, NAK otherwise), ``mute`` (a correct HELLO,
    then silence).
    """

    def __init__(self, mode: str, every: int = 3) -> None:
        self.mode = mode
        self.every = every
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.frames_seen = 0
        self.executed: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _send(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def _run(self) -> None:
        import select
        reader = pq.FrameReader()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if self.mode == "silent":
                continue
            if self.mode == "garbage":
                self._send(b"U-Boot 2024.01\r\nroot@board:~# ")
                continue
            for item in reader.feed(data):
                if isinstance(item, pq.FrameError):
                    self._send(pq.encode_frame(pq.NAK, item.seq if item.seq is not None else 0xFFFF, b"\x01"))
                    continue
                self.frames_seen += 1
                self._answer(item)

    def _answer(self, f: pq.Frame) -> None:
        m = self.mode
        if m == "nak":
            self._send(pq.encode_frame(pq.NAK, f.seq, b"\x02"))
        elif m == "v2":
            self._send(pq.encode_frame(f.cmd | pq.RESP, f.seq, hello_body(2), version=2))
        elif m == "evers":
            self._send(pq.encode_frame(f.cmd | pq.RESP, f.seq, bytes([pq.E_VERSION]) + struct.pack("<I", 1)))
        elif m == "badmagic" and f.cmd == pq.Cmd.HELLO:
            self._send(pq.encode_frame(f.cmd | pq.RESP, f.seq, hello_body(magic=b"XXXX")))
        elif m == "mute" and f.cmd != pq.Cmd.HELLO:
            pass  # answers HELLO, then nothing: a board that hangs after the handshake
        elif m == "flaky" and self.frames_seen % self.every:
            self._send(pq.encode_frame(pq.NAK, f.seq, b"\x02"))
        elif f.cmd == pq.Cmd.HELLO:
            self._send(pq.encode_frame(f.cmd | pq.RESP, f.seq, hello_body()))
        else:
            self.executed.append((f.cmd, f.seq))
            self._send(pq.encode_frame(f.cmd | pq.RESP, f.seq, bytes([pq.E_CMD]) + struct.pack("<I", f.cmd)))

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=1)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "FakeBoard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
