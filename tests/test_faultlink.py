"""scripts/faultlink.py: each fault kind does exactly what it claims, measured through an echo board."""

from __future__ import annotations

import os
import random
import select
import subprocess
import sys
import threading
import time
import tty

import pytest
import serial

from scripts.faultlink import FaultConfig, FaultLink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EchoBoard:
    """A pty whose master echoes every byte; ``path`` is its slave; ``received`` logs the input."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.received = bytearray()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.02)
            if r:
                try:
                    d = os.read(self.master, 4096)
                except OSError:
                    return
                self.received += d
                os.write(self.master, d)

    def close(self) -> None:
        self._stop.set()
        self._t.join(1)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def echo():
    b = EchoBoard()
    yield b
    b.close()


def _exchange(path: str, data: bytes, settle: float = 0.3, max_wait: float = 10.0) -> bytes:
    """Write ``data`` in pieces, read until the line is quiet for ``settle`` s."""
    got = bytearray()
    with serial.Serial(path, 115200, timeout=0.02) as s:
        for i in range(0, len(data), 256):
            s.write(data[i:i + 256])
            got += s.read(4096)
        last = time.monotonic()
        end = last + max_wait
        while time.monotonic() - last < settle and time.monotonic() < end:
            d = s.read(4096)
            if d:
                got += d
                last = time.monotonic()
    return bytes(got)


def _is_subsequence(small: bytes, big: bytes) -> bool:
    it = iter(big)
    return all(any(c == x for x in it) for c in small)


DATA = bytes(random.Random(1).randrange(256) for _ in range(6000))


def test_clean_link_is_transparent(echo: EchoBoard) -> None:
    with FaultLink(echo.path, FaultConfig()) as link:
        got = _exchange(link.path, DATA)
    assert got == DATA and bytes(echo.received) == DATA
    assert link.stats.h2b.bytes_out == len(DATA) == link.stats.b2h.bytes_out


def test_drop(echo: EchoBoard) -> None:
    with FaultLink(echo.path, FaultConfig(rate=0.02, kinds=("drop",), direction="h2b", seed=5)) as link:
        got = _exchange(link.path, DATA)
    d = link.stats.h2b.dropped
    assert 0.01 * len(DATA) < d < 0.03 * len(DATA)
    assert len(got) == len(DATA) - d and bytes(echo.received) == got
    assert _is_subsequence(got, DATA)


def test_flip(echo: EchoBoard) -> None:
    with FaultLink(echo.path, FaultConfig(rate=0.02, kinds=("flip",), direction="b2h", seed=6)) as link:
        got = _exchange(link.path, DATA)
    assert bytes(echo.received) == DATA  # host->board untouched
    assert len(got) == len(DATA)
    diff = [a ^ b for a, b in zip(got, DATA) if a != b]
    assert len(diff) == link.stats.b2h.flipped > 0
    assert all(bin(x).count("1") == 1 for x in diff)


def test_dup(echo: EchoBoard) -> None:
    with FaultLink(echo.path, FaultConfig(rate=0.02, kinds=("dup",), seed=7)) as link:
        got = _exchange(link.path, DATA)
    dups = link.stats.h2b.duplicated + link.stats.b2h.duplicated
    assert link.stats.h2b.duplicated > 0 and link.stats.b2h.duplicated > 0
    assert len(got) == len(DATA) + dups
    assert _is_subsequence(DATA, got)


def test_stall_delays_then_delivers(echo: EchoBoard) -> None:
    # the stall is long compared with any scheduling delay, so the bounds below are about the
    # link's behaviour, not the machine's load: the first 1000 bytes come back well inside the
    # stall, the rest only after it
    cfg = FaultConfig(stall_after=1000, stall_secs=3.0)
    with FaultLink(echo.path, cfg) as link, serial.Serial(link.path, 115200, timeout=0.05) as s:
        t0 = time.monotonic()
        s.write(DATA[:2000])
        got = bytearray()
        while len(got) < 1000 and time.monotonic() - t0 < 10:
            got += s.read(4096)
        t_first = time.monotonic() - t0
        while len(got) < 2000 and time.monotonic() - t0 < 15:
            got += s.read(4096)
        t_all = time.monotonic() - t0
    assert bytes(got) == DATA[:2000] and link.stats.stalled
    assert t_first < 2.5 and t_all >= 2.95  # bytes before the stall point are not held back


def test_disconnect_mid_transfer(echo: EchoBoard) -> None:
    cfg = FaultConfig(disconnect_after=1500)
    with FaultLink(echo.path, cfg) as link:
        with pytest.raises((serial.SerialException, OSError)):
            with serial.Serial(link.path, 115200, timeout=0.05, write_timeout=2) as s:
                for i in range(0, len(DATA), 100):
                    s.write(DATA[i:i + 100])
                    s.read(4096)
                    time.sleep(0.002)
                end = time.monotonic() + 2
                while time.monotonic() < end:
                    s.read(4096)
        assert link.stats.disconnected and link.done.wait(5)
    assert bytes(echo.received) == DATA[:1500]


def test_pacing_at_baud(echo: EchoBoard) -> None:
    n = 3000
    with FaultLink(echo.path, FaultConfig(baud=115200)) as link, serial.Serial(link.path, timeout=0.05) as s:
        t0 = time.monotonic()
        s.write(DATA[:n])
        got = bytearray()
        while len(got) < n and time.monotonic() - t0 < 10:
            got += s.read(4096)
        dt = time.monotonic() - t0
    wire = n * 10 / 115200  # 0.26 s one way; the echo comes back paced too (overlapping)
    assert bytes(got) == DATA[:n]
    assert wire * 0.95 <= dt < wire * 2 + 1.0


def test_cli_prints_pty_and_rejects_bad_args(echo: EchoBoard) -> None:
    r = subprocess.run([sys.executable, "-m", "scripts.faultlink", echo.path, "--rate", "2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == 2 and "rate" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "scripts.faultlink", "/nonexistent/tty"],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == 2 and "/nonexistent/tty" in r.stderr
    p = subprocess.Popen([sys.executable, "-m", "scripts.faultlink", echo.path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = p.stdout.readline()
        assert line.startswith("PTY /dev/")
        assert _exchange(line.split()[1], b"ping\x00pong", settle=0.2) == b"ping\x00pong"
    finally:
        p.terminate()
        p.wait(10)
