"""Write seed corpora for the libFuzzer targets into BUILD/seeds_{frame,meta} (idempotent)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent.parent))

from metabuild import Layer, build  # noqa: E402
from pqlink import wire  # noqa: E402


def rec(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """One record of fuzz_frame's structured mode (CRC/len are fixed by the harness)."""
    body = struct.pack("<BBHH", 1, cmd, seq, len(payload)) + payload
    return struct.pack("<H", len(body)) + body


def main(out: str) -> None:
    """Write the seeds."""
    o = Path(out)
    (o / "seeds_meta").mkdir(parents=True, exist_ok=True)
    (o / "seeds_frame").mkdir(parents=True, exist_ok=True)
    models = [
        ([Layer(10, 16, 4), Layer(4, 10, 8, relu=False)], (1, 1, 16)),
        ([Layer(4, 18, 6, conv=(6, 6, 2, 3, 3, 1, 1), pool=1, pool_k=2, pool_s=2), Layer(3, 36, 2)], (6, 6, 2)),
        ([Layer(3, 12, 8, conv=(5, 5, 3, 2, 2, 2, 0), pool=2, pool_k=2, pool_s=1)], (5, 5, 3)),
    ]
    for i, (layers, hwc) in enumerate(models):
        meta, blobs = build(layers, hwc, seed=i)
        (o / "seeds_meta" / f"model{i}.bin").write_bytes(meta)
        frames = rec(0x01, 1) + rec(0x08, 2)
        frames += rec(0x02, 3, struct.pack("<II", len(meta), 0) + meta)
        for j, b in enumerate(blobs):
            frames += rec(0x03, 4 + j, struct.pack("<HI", j, 0) + b)
        per = hwc[0] * hwc[1] * hwc[2]
        frames += rec(0x04, 10, struct.pack("<HI", 1, 0) + bytes(range(per % 256)) + bytes(per - per % 256))
        frames += rec(0x05, 11) + rec(0x06, 12, struct.pack("<IH", 0, 3)) + rec(0x07, 13, struct.pack("<H", 0))
        (o / "seeds_frame" / f"flow{i}.bin").write_bytes(b"\x01" + frames)
        (o / "seeds_frame" / f"raw{i}.bin").write_bytes(b"\x00" + wire(0x01, 5) + b"xx\x00" + wire(0x07, 6, b"\xff\xff"))


if __name__ == "__main__":
    main(sys.argv[1])
