"""The virtual board: the host build of the firmware (sw/) on a pseudo-terminal.

:class:`VBoard` builds (once, under a file lock, safe under pytest-xdist) and starts
``sw/build/host-<backend>/pqfw-host``, reads the ``PTY <path>`` line it prints first, and
optionally puts a :class:`scripts.faultlink.FaultLink` in front of it. :attr:`VBoard.path`
is what the host tool opens.

Backends: ``cref`` (the firmware's C reference model of pq_accel, fast) and ``verilated``
(the Verilated RTL top ``pq_accel``, through sw/platform/verilated).

As a program (``make vboard``) it prints ``PTY <path>`` and serves until interrupted::

    python -m scripts.vboard --backend verilated [--rate 0.01] [--pace 115200]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from scripts.faultlink import FaultConfig, FaultLink, add_fault_args, config_from_args

ROOT = Path(__file__).resolve().parent.parent
SW = ROOT / "sw"
BACKENDS = ("cref", "verilated")


class VBoardError(RuntimeError):
    """The virtual board could not be built or started (one-line message)."""


@contextmanager
def file_lock(name: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``build/locks/<name>.lock`` (blocks; released on exit)."""
    d = ROOT / "build" / "locks"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# A private build directory: builds started here (under our lock) never race with builds of
# sw/build/ started elsewhere (make fw, the firmware's own tests).
FW_BUILD = ROOT / "build" / "vboard"


def firmware_binary(backend: str = "cref") -> Path:
    """Where :func:`build_firmware` puts the host firmware for ``backend``."""
    return FW_BUILD / f"host-{backend}" / "pqfw-host"


def build_firmware(backend: str = "cref", verbose: bool = False) -> Path:
    """Build (or bring up to date) the host firmware; returns the binary's path.

    Runs ``make -C sw host BACKEND=<backend> BUILD=build/vboard`` under the lock
    ``sw-host-<backend>`` so that concurrent callers (xdist workers) do not race. Raises
    :class:`VBoardError` with the tail of the build log on failure.
    """
    if backend not in BACKENDS:
        raise VBoardError(f"unknown backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    if not (SW / "Makefile").exists():
        raise VBoardError(f"{SW / 'Makefile'}: firmware sources not found")
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    with file_lock(f"sw-host-{backend}"):
        r = subprocess.run(["make", "-s", "-C", str(SW), "host", f"BACKEND={backend}", f"BUILD={FW_BUILD}"],
                           env=env,
                           stdout=None if verbose else subprocess.PIPE,
                           stderr=None if verbose else subprocess.STDOUT, text=True)
    if r.returncode != 0:
        tail = " | ".join((r.stdout or "").strip().splitlines()[-6:])
        raise VBoardError(f"building the host firmware (BACKEND={backend}) failed: {tail}")
    b = firmware_binary(backend)
    if not b.exists():
        raise VBoardError(f"{b}: firmware build succeeded but the binary is missing")
    return b


class VBoard:
    """A running virtual board (see the module docstring). Context manager.

    Guarantees after :meth:`start`: :attr:`path` is an openable tty served by the firmware
    (directly, or through the fault link when ``fault`` is given).
    """

    def __init__(self, backend: str = "cref", fault: FaultConfig | None = None, *,
                 binary: str | os.PathLike | None = None, args: tuple[str, ...] = ("--quiet",),
                 build: bool = True, start_timeout: float = 20.0, log: str | os.PathLike | None = None) -> None:
        self.backend = backend
        self.fault = fault
        self.binary = Path(binary) if binary else None
        self.args = tuple(args)
        self.build = build
        self.start_timeout = start_timeout
        self.log_path = Path(log) if log else None
        self.proc: subprocess.Popen | None = None
        self.link: FaultLink | None = None
        self.board_path = ""
        self.path = ""
        self._log = None

    def start(self) -> "VBoard":
        b = self.binary
        if b is None:
            b = build_firmware(self.backend) if self.build else firmware_binary(self.backend)
        if not Path(b).exists():
            raise VBoardError(f"{b}: firmware binary not found (run `make -C sw host BACKEND={self.backend}`)")
        err = subprocess.DEVNULL
        if self.log_path is not None and str(self.log_path) == "-":
            err = None  # inherit
        elif self.log_path is not None:
            self._log = open(self.log_path, "wb")
            err = self._log
        self.proc = subprocess.Popen([str(b), *self.args], stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL)
        line = self._first_line()
        if not line.startswith("PTY "):
            self.stop()
            raise VBoardError(f"{b}: expected 'PTY <path>' as the first line, got {line!r}")
        self.board_path = line.split(None, 1)[1].strip()
        self.path = self.board_path
        if self.fault is not None:
            try:
                self.link = FaultLink(self.board_path, self.fault)
            except (OSError, ValueError) as e:
                self.stop()
                raise VBoardError(f"fault link: {e}") from None
            self.path = self.link.path
        return self

    def _first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        end = time.monotonic() + self.start_timeout
        while b"\n" not in buf:
            left = end - time.monotonic()
            if left <= 0:
                self.stop()
                raise VBoardError(f"firmware did not print its PTY line within {self.start_timeout:.0f}s")
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(fd, 256)
                if not chunk:
                    code = self.proc.wait(timeout=5)
                    raise VBoardError(f"firmware exited (status {code}) before printing its PTY line")
                buf += chunk
        return buf.split(b"\n", 1)[0].decode(errors="replace").strip()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the fault link and the firmware (SIGTERM, then SIGKILL); idempotent."""
        if self.link is not None:
            self.link.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "VBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        tail = " | ".join(r.stdout.strip().splitlines()[-3:])
        raise VBoardError(f"{what} failed (exit {r.returncode}): {tail}")


def prepare_example(name: str, out: Path, samples: int) -> tuple[Path, Path]:
    """``pyquant convert`` ``examples/<name>.onnx`` with its calibration split and write the
    golden vectors of its first ``samples`` calibration inputs; returns (model_dir, golden_dir)."""
    py = sys.executable
    onnx = ROOT / "examples" / f"{name}.onnx"
    calib = ROOT / "examples" / "digits_calib.npy"
    mdir, gdir = out / name, out / f"{name}-golden"
    _run([py, "-m", "pyquant", "convert", str(onnx), "--calib", str(calib), "-o", str(mdir), "-q"],
         f"pyquant convert {onnx.name}")
    _run([py, "-m", "pyquant", "golden", str(mdir), "--input", str(calib), "-n", str(samples), "-o", str(gdir),
          "-q"], f"pyquant golden {name}")
    return mdir, gdir


def deploy_sim(backend: str = "verilated", models: tuple[str, ...] = ("digits_mlp", "digits_cnn"),
               samples: int = 32, out: Path | None = None, fault: FaultConfig | None = None,
               extra: tuple[str, ...] = ()) -> int:
    """The whole flow on the virtual board (``make deploy-sim``): convert each example, write
    its golden vectors, start the virtual board, upload with the real host tool over the
    pty, run, fetch the outputs and compare them with the golden vectors. Returns 0 only when
    every model's outputs match bit for bit."""
    from scripts import deploy

    out = out or ROOT / "build" / "deploy-sim"
    rc = 0
    with VBoard(backend, fault, args=("--quiet",)) as vb:
        for name in models:
            mdir, gdir = prepare_example(name, out, samples)
            print(f"deploy-sim: {name} on the virtual board ({backend}) at {vb.path}", flush=True)
            r = deploy.main(["--port", vb.path, "--model", str(mdir), "--golden", str(gdir), "--no-progress",
                             "--json", str(out / f"{name}-deploy.json"), *extra])
            if r != 0:
                rc = r
            if not vb.alive():
                raise VBoardError("the firmware exited during the run")
    if rc == 0:
        print(f"deploy-sim: outputs of {', '.join(models)} on the virtual board ({backend}) match the golden "
              f"vectors", flush=True)
    else:
        print(f"deploy-sim: FAILED (exit {rc})", file=sys.stderr, flush=True)
    return rc


def bench_uart(out_json: Path, model: str = "digits_mlp", bauds: tuple[int, ...] = (115200, 921600),
               backend: str = "cref", repeats: int = 5) -> dict:
    """Upload the digits example through the fault link paced at each baud rate (no faults),
    ``repeats`` times per rate, and write ``payload bytes / wire bytes`` and the upload times
    (median, min, max: the 921600-baud upload lasts ~85 ms, so a few ms of scheduling delay in
    the Python pacer show as whole percents) to ``out_json`` (atomically)."""
    import statistics

    import json
    import tempfile

    from scripts import deploy

    work = ROOT / "build" / "bench" / "uart-work"
    mdir, gdir = prepare_example(model, work, 8)
    m = deploy.load_model(mdir)
    runs = []
    for baud in bauds:
        js = work / f"deploy-{baud}.json"
        times, retries = [], 0
        with VBoard(backend, FaultConfig(baud=baud)) as vb:
            for _ in range(repeats):
                r = deploy.main(["--port", vb.path, "--model", str(mdir), "--golden", str(gdir), "--baud",
                                 str(baud), "--fresh", "--no-progress", "--json", str(js)])
                if r != 0:
                    raise VBoardError(f"bench-uart: deploy at {baud} baud failed (exit {r})")
                d = json.loads(js.read_text())
                times.append(d["timing"]["upload_s"])
                retries += d["link"]["retries"]
        payload = m.total_bytes
        med = statistics.median(times)
        runs.append({
            "baud": baud,
            "upload_s": round(med, 4),
            "upload_s_min": round(min(times), 4),
            "upload_s_max": round(max(times), 4),
            "repeats": repeats,
            "line_time_s": round(payload * 10 / baud, 4),
            "payload_bytes": payload,
            "wire_bytes_sent": d["upload_wire"],
            "upload_efficiency": round(payload / (med * baud / 10), 4),
            "upload_efficiency_best": round(payload / (min(times) * baud / 10), 4),
            "retries": retries,
        })
    from scripts import pqproto as pq
    first = runs[0]
    doc = {
        "model": model, "model_bytes": m.total_bytes, "frame_payload_max": pq.MAX_PAYLOAD,
        "payload_bytes": first["payload_bytes"], "wire_bytes": first["wire_bytes_sent"],
        "payload_over_wire": round(first["payload_bytes"] / first["wire_bytes_sent"], 4),
        "payload_over_wire_4096B_frame": round(4096 / len(pq.encode_frame(3, 1, bytes(range(1, 256)) * 16 + b"\x01")), 4),
        "runs": runs,
        "note": "payload_over_wire: model bytes / bytes the host wrote during the upload (LOAD_META/LOAD_LAYER frames: "
                "headers, COBS, CRCs, delimiters). upload_s = meta + layers measured by the host tool "
                "through the fault link paced at the baud rate (8N1, both directions); upload_efficiency = "
                "payload bytes / (upload_s x baud/10) with upload_s the median of the repeats, the final answer's "
                "round trip included (windowed upload: two frames in flight, docs/PROTOCOL.md)",
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".uart.", suffix=".tmp", dir=out_json.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, out_json)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vboard", description="Start the virtual board and print its PTY path.")
    p.add_argument("--backend", choices=BACKENDS, default="verilated",
                   help="accelerator behind the firmware (default verilated)")
    p.add_argument("--binary", default=None, help="use this firmware binary instead of building one")
    p.add_argument("--no-build", action="store_true", help="do not run make first")
    p.add_argument("--log", default="-", help="write the firmware's stderr to this file (default: stderr)")
    p.add_argument("--deploy-sim", action="store_true",
                   help="run the whole flow (convert, golden, upload, run, compare) instead of serving")
    p.add_argument("--models", default="digits_mlp,digits_cnn", help="--deploy-sim examples (comma list)")
    p.add_argument("--samples", type=int, default=32, help="--deploy-sim samples per model (default 32)")
    p.add_argument("--bench-uart", metavar="JSON", default=None,
                   help="write the UART upload benchmark (115200 and 921600 baud, paced) to JSON")
    add_fault_args(p)
    a = p.parse_args(argv)
    if a.bench_uart:
        try:
            doc = bench_uart(Path(a.bench_uart))
        except (VBoardError, OSError) as e:
            print(f"vboard: error: {e}", file=sys.stderr)
            return 2
        for r in doc["runs"]:
            print(f"bench-uart: {doc['model']} ({doc['model_bytes']} B) at {r['baud']} baud: upload {r['upload_s']:.4f}s "
                  f"median of {r['repeats']} (line time {r['line_time_s']:.4f}s): {100 * r['upload_efficiency']:.1f}% "
                  f"of the line rate (best {100 * r['upload_efficiency_best']:.1f}%)")
        print(f"bench-uart: payload/wire {doc['payload_over_wire']:.4f}; wrote {a.bench_uart}")
        return 0
    if a.deploy_sim:
        try:
            cfg = config_from_args(a)
            use_link = cfg.rate > 0 or cfg.stall_after is not None or cfg.disconnect_after is not None \
                or cfg.baud is not None
            return deploy_sim(a.backend, tuple(m for m in a.models.split(",") if m), a.samples,
                              fault=cfg if use_link else None)
        except (VBoardError, ValueError, OSError) as e:
            print(f"vboard: error: {e}", file=sys.stderr)
            return 2
    try:
        cfg = config_from_args(a)
        use_link = cfg.rate > 0 or cfg.stall_after is not None or cfg.disconnect_after is not None \
            or cfg.baud is not None
        vb = VBoard(a.backend, cfg if use_link else None, binary=a.binary, build=not a.no_build,
                    args=(), log=a.log).start()
    except (VBoardError, ValueError) as e:
        print(f"vboard: error: {e}", file=sys.stderr)
        return 2
    # SIGTERM (make, CI, a test) stops the firmware and the link too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"PTY {vb.path}", flush=True)
    print(f"vboard: firmware pid {vb.proc.pid} ({a.backend}) on {vb.board_path}"
          + (f", host side through the fault link {vb.path}" if vb.link else "")
          + "; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        while vb.alive() and not (vb.link and vb.link.done.is_set()):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        vb.stop()
        if vb.link:
            print(vb.link.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
