"""A fault-injecting serial link: a pty proxy between the host tool and a (virtual) board.

The link opens the board's tty (e.g. the pty printed by the host firmware), creates a new
pseudo-terminal for the host, and forwards bytes both ways. On the way it can

* drop, flip (one random bit) or duplicate bytes, each byte independently with probability
  ``rate`` (the kind chosen uniformly among the enabled ones), in one or both directions;
* stall the host-to-board direction for ``stall_secs`` once ``stall_after`` bytes passed;
* disconnect (close the host's pty) once ``disconnect_after`` host-to-board bytes passed;
* pace each direction at ``baud`` (8N1: 10 bits per byte) by sleeping for the wire time of
  every chunk it forwards, so upload times are those of a real UART at that rate.

Run as a program it prints ``PTY <path>`` (the host side, same form as the firmware) on
stdout and forwards until interrupted, the board goes away or it disconnects::

    python -m scripts.faultlink /dev/pts/7 --rate 0.01 --seed 3
"""

from __future__ import annotations

import argparse
import os
import random
import select
import sys
import termios
import threading
import time
import tty
from dataclasses import dataclass, field

KINDS = ("drop", "flip", "dup")


@dataclass
class FaultConfig:
    """What the link does to the bytes it forwards (see the module docstring)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    direction: str = "both"          # "both", "h2b" (host to board) or "b2h"
    stall_after: int | None = None   # host-to-board bytes before the stall
    stall_secs: float = 0.0
    disconnect_after: int | None = None  # host-to-board bytes before the host side is closed
    baud: int | None = None          # pace at this line rate (None: as fast as the pty goes)
    seed: int = 0
    skip_first: int = 0              # bytes per direction forwarded untouched (e.g. the handshake)

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message for an impossible configuration."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is not in [0, 1]")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {', '.join(KINDS)}, got {bad or 'none'}")
        if self.direction not in ("both", "h2b", "b2h"):
            raise ValueError(f"direction must be both, h2b or b2h, got {self.direction!r}")
        if self.baud is not None and self.baud <= 0:
            raise ValueError(f"baud must be positive, got {self.baud}")


@dataclass
class DirStats:
    """Per-direction counters."""

    bytes_in: int = 0
    bytes_out: int = 0
    dropped: int = 0
    flipped: int = 0
    duplicated: int = 0
    paced_secs: float = 0.0


@dataclass
class LinkStats:
    h2b: DirStats = field(default_factory=DirStats)
    b2h: DirStats = field(default_factory=DirStats)
    stalled: bool = False
    disconnected: bool = False


def _raw(fd: int) -> None:
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error:
        pass


class FaultLink:
    """A running proxy between ``board_path`` and a fresh host-side pty (:attr:`path`).

    Guarantees: with ``rate == 0`` and no stall/disconnect, bytes pass unchanged and in
    order in both directions; every injected fault is counted in :attr:`stats`.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, board_path: str, cfg: FaultConfig | None = None) -> None:
        self.cfg = cfg or FaultConfig()
        self.cfg.validate()
        self.board_path = board_path
        try:
            self.board_fd = os.open(board_path, os.O_RDWR | os.O_NOCTTY)
        except OSError as e:
            raise OSError(f"{board_path}: cannot open board tty: {e.strerror}") from None
        _raw(self.board_fd)
        self.host_master, self.host_slave = os.openpty()
        _raw(self.host_slave)
        self.path = os.ttyname(self.host_slave)
        self.stats = LinkStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._host_closed = False
        self.done = threading.Event()  # set when forwarding ended (board gone, disconnect, close)
        self._threads = [
            threading.Thread(target=self._pump, args=("h2b",), daemon=True, name="faultlink-h2b"),
            threading.Thread(target=self._pump, args=("b2h",), daemon=True, name="faultlink-b2h"),
        ]
        for t in self._threads:
            t.start()

    # -- fault model ------------------------------------------------------------------------
    def _mangle(self, data: bytes, direction: str, rng: random.Random, st: DirStats) -> bytes:
        """Apply the byte faults to ``data`` (``st.bytes_in`` not yet counting it)."""
        c = self.cfg
        if c.rate <= 0 or c.direction not in ("both", direction):
            return data
        out = bytearray()
        for i, b in enumerate(data):
            if st.bytes_in + i < c.skip_first or rng.random() >= c.rate:
                out.append(b)
                continue
            kind = c.kinds[rng.randrange(len(c.kinds))]
            if kind == "drop":
                st.dropped += 1
            elif kind == "flip":
                st.flipped += 1
                out.append(b ^ (1 << rng.randrange(8)))
            else:
                st.duplicated += 1
                out += bytes((b, b))
        return bytes(out)

    def _close_host(self) -> None:
        with self._lock:
            if self._host_closed:
                return
            self._host_closed = True
            for fd in (self.host_master, self.host_slave):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _pump(self, direction: str) -> None:
        c = self.cfg
        st = getattr(self.stats, direction)
        rng = random.Random(f"{c.seed}-{direction}")
        src, dst = (self.host_master, self.board_fd) if direction == "h2b" else (self.board_fd, self.host_master)
        # pace in ~5 ms slices of wire time
        slice_s = 0.005
        chunk = max(1, int(c.baud / 10 * slice_s)) if c.baud else 4096
        next_t = time.monotonic()
        busy = False
        try:
            while not self._stop.is_set():
                try:
                    r, _, _ = select.select([src], [], [], 0.05)
                except (OSError, ValueError):
                    break
                if not r:
                    continue
                try:
                    data = os.read(src, chunk)
                except OSError:
                    if direction == "h2b" and not self._host_closed:
                        # nobody has the host side open right now (EIO): wait for a reopen
                        time.sleep(0.02)
                        continue
                    break
                if not data:
                    break
                if direction == "h2b" and c.disconnect_after is not None \
                        and st.bytes_in + len(data) > c.disconnect_after:
                    keep = max(0, c.disconnect_after - st.bytes_in)
                    self._forward(dst, self._mangle(data[:keep], direction, rng, st), st)
                    st.bytes_in += keep
                    self.stats.disconnected = True
                    self._close_host()
                    break
                if direction == "h2b" and c.stall_after is not None and not self.stats.stalled \
                        and st.bytes_in + len(data) > c.stall_after:
                    keep = max(0, c.stall_after - st.bytes_in)
                    self._forward(dst, self._mangle(data[:keep], direction, rng, st), st)
                    st.bytes_in += keep
                    data = data[keep:]
                    self.stats.stalled = True
                    time.sleep(c.stall_secs)
                    next_t = time.monotonic()
                out = self._mangle(data, direction, rng, st)
                st.bytes_in += len(data)
                if c.baud:
                    # while the line is busy back to back (the previous read was a full slice),
                    # a small lag of this loop (scheduling, the read) is absorbed instead of
                    # being added to the wire time; after a partial read the line was idle and
                    # the clock restarts now
                    now = time.monotonic()
                    if not busy or now - next_t > slice_s:
                        next_t = now
                    next_t += len(data) * 10.0 / c.baud
                    busy = len(data) >= chunk  # more was waiting: the line stays busy
                    delay = next_t - now
                    if delay > 0:
                        st.paced_secs += delay
                        time.sleep(delay)
                if not self._forward(dst, out, st):
                    break
        finally:
            self.done.set()
            if direction == "b2h":
                # the board went away: the host must notice
                if not self._stop.is_set():
                    self._close_host()

    def _forward(self, fd: int, data: bytes, st: DirStats) -> bool:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                return False
            view = view[n:]
            st.bytes_out += n
        return True

    def close(self) -> None:
        """Stop forwarding and close both sides (idempotent)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=1.0)
        self._close_host()
        try:
            os.close(self.board_fd)
        except OSError:
            pass

    def __enter__(self) -> "FaultLink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def summary(self) -> str:
        """One line of counters."""
        a, b = self.stats.h2b, self.stats.b2h
        return (f"faultlink: host->board {a.bytes_in} B (dropped {a.dropped}, flipped {a.flipped}, "
                f"dup {a.duplicated}); board->host {b.bytes_in} B (dropped {b.dropped}, "
                f"flipped {b.flipped}, dup {b.duplicated})"
                + ("; stalled" if self.stats.stalled else "")
                + ("; disconnected" if self.stats.disconnected else ""))


def add_fault_args(p: argparse.ArgumentParser) -> None:
    """The fault options shared by this program and scripts/vboard.py."""
    g = p.add_argument_group("fault injection")
    g.add_argument("--rate", "--fault-rate", dest="rate", type=float, default=0.0,
                   help="per-byte fault probability (default 0)")
    g.add_argument("--kinds", default=",".join(KINDS), help="comma list of drop,flip,dup (default all)")
    g.add_argument("--direction", default="both", choices=("both", "h2b", "b2h"))
    g.add_argument("--stall-after", type=int, default=None, metavar="BYTES",
                   help="stall host-to-board forwarding after BYTES bytes")
    g.add_argument("--stall-secs", type=float, default=2.0, help="stall length (default 2 s)")
    g.add_argument("--disconnect-after", type=int, default=None, metavar="BYTES",
                   help="close the host side after BYTES host-to-board bytes")
    g.add_argument("--pace", "--link-baud", dest="pace", type=int, default=None, metavar="BAUD",
                   help="pace both directions at BAUD (8N1)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--skip-first", type=int, default=0, metavar="BYTES",
                   help="bytes per direction forwarded untouched before faults start")


def config_from_args(a: argparse.Namespace) -> FaultConfig:
    cfg = FaultConfig(rate=a.rate, kinds=tuple(k for k in a.kinds.split(",") if k), direction=a.direction,
                      stall_after=a.stall_after, stall_secs=a.stall_secs,
                      disconnect_after=a.disconnect_after, baud=a.pace, seed=a.seed,
                      skip_first=a.skip_first)
    cfg.validate()
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="faultlink", description=__doc__.split("\n\n")[0])
    p.add_argument("board", help="the board's tty (e.g. the PTY line printed by pqfw-host)")
    add_fault_args(p)
    a = p.parse_args(argv)
    try:
        cfg = config_from_args(a)
        link = FaultLink(a.board, cfg)
    except (ValueError, OSError) as e:
        print(f"faultlink: error: {e}", file=sys.stderr)
        return 2
    print(f"PTY {link.path}", flush=True)
    try:
        while not link.done.is_set():
            link.done.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        link.close()
        print(link.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
