"""``pyquant bin2c``: headers compile with ``gcc -std=c99 -Wall -Wextra -Werror`` and the
compiled program sees exactly the bytes of the files (sizes, CRC-32, metadata fields)."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib

import numpy as np
import pytest

from pyquant.cli import main

GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc not installed")

CRC_C = r"""
static uint32_t crc32_buf(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  size_t i; int k;
  for (i = 0; i < n; i++) { c ^= p[i]; for (k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u))); }
  return c ^ 0xFFFFFFFFu;
}
"""


def _compile_run(tmp_path, src: str) -> str:
    c = tmp_path / "t.c"
    c.write_text(src)
    exe = tmp_path / "t"
    r = subprocess.run([GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(tmp_path),
                        "-o", str(exe), str(c)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def test_single_file_header(tmp_path):
    data = bytes(np.random.default_rng(0).integers(0, 256, 1001, dtype=np.uint8))
    (tmp_path / "blob.bin").write_bytes(data)
    assert main(["bin2c", str(tmp_path / "blob.bin"), "-o", str(tmp_path / "blob.h"), "--name", "my_blob"]) == 0
    text = (tmp_path / "blob.h").read_text()
    assert "static const uint8_t my_blob[1001]" in text
    out = _compile_run(tmp_path, '#include <stdio.h>\n#include <stdint.h>\n#include "blob.h"\n#include "blob.h"\n'
                       + CRC_C + "int main(void) {\n"
                       '  printf("%u %u %u %u\\n", (unsigned)sizeof(my_blob), (unsigned)MY_BLOB_LEN,'
                       " (unsigned)crc32_buf(my_blob, sizeof(my_blob)),"
                       " (unsigned)((uintptr_t)my_blob % 16u));\n  return 0;\n}\n")
    assert out.split() == ["1001", "1001", str(zlib.crc32(data)), "0"]


def test_model_header(small_onnx, tmp_path):
    out = tmp_path / "m"
    assert main(["convert", str(small_onnx), "-o", str(out), "-q", "--snr-min", "20"]) == 0
    assert main(["bin2c", "--model", str(out), "-o", str(tmp_path / "weights.h"), "--name", "net"]) == 0
    doc = json.loads((out / "model.json").read_text())
    meta = (out / "model.meta.bin").read_bytes()
    src = ('#include <stdio.h>\n#include "weights.h"\n' + CRC_C + "int main(void) {\n  unsigned i;\n"
           '  printf("%u %u %u\\n", (unsigned)NET_N_LAYERS, (unsigned)sizeof(net_meta), '
           "(unsigned)crc32_buf(net_meta, sizeof(net_meta)));\n"
           "  for (i = 0; i < NET_N_LAYERS; i++) {\n    const pq_layer_desc_t *l = &net_layers[i];\n"
           '    printf("%s %u %u %u %u %u %u %u %.9g\\n", l->name, l->op, l->bits, (unsigned)l->rows, '
           "(unsigned)l->cols, (unsigned)l->bin_size, (unsigned)(crc32_buf(l->weights, l->bin_size) == "
           "l->bin_crc32), (unsigned)l->in_c, (double)l->w_scale);\n  }\n  return 0;\n}\n")
    lines = _compile_run(tmp_path, src).splitlines()
    assert lines[0].split() == ["3", str(len(meta)), str(zlib.crc32(meta))]
    for line, e in zip(lines[1:], doc["layers"]):
        f = line.split()
        assert f[0] == e["name"] and int(f[2]) == e["bits"] and int(f[3]) == e["rows"] and int(f[4]) == e["cols"]
        assert int(f[1]) == (2 if e["kind"] == "conv" else 1)
        assert int(f[5]) == e["bytes"] and f[6] == "1"
        assert float(f[8]) == pytest.approx(e["scale"], rel=1e-6)
    assert lines[2].split()[7] == "144"       # dense in_c = K


def test_bin2c_errors(tmp_path, capsys):
    (tmp_path / "e.bin").write_bytes(b"")
    assert main(["bin2c", str(tmp_path / "e.bin"), "-o", str(tmp_path / "e.h")]) == 2
    assert "e.bin: file is empty" in capsys.readouterr().err
    (tmp_path / "x.bin").write_bytes(b"\x01")
    assert main(["bin2c", str(tmp_path / "x.bin"), "-o", str(tmp_path / "x.h"), "--name", "int"]) == 2
    assert main(["bin2c", str(tmp_path / "x.bin"), "-o", str(tmp_path / "x.h"), "--name", "9a"]) == 2
    err = capsys.readouterr().err
    assert "'int' is not a valid C identifier" in err and "'9a'" in err
    assert not (tmp_path / "x.h").exists() and not (tmp_path / "e.h").exists()


def test_executable_model_header_params(tmp_path):
    """An executable model's header: each layer's ``params`` points at its rows' 8-byte
    {bias, mult, shift, 0} records inside ``PREFIX_meta``, equal to model.json's constants."""
    from pathlib import Path

    ex = Path(__file__).resolve().parents[1] / "examples"
    out = tmp_path / "cnn"
    assert main(["convert", str(ex / "digits_cnn.onnx"), "--calib", str(ex / "digits_calib.npy"), "-o", str(out),
                 "-q"]) == 0
    assert main(["bin2c", "--model", str(out), "-o", str(tmp_path / "cnn.h"), "--name", "cnn"]) == 0
    src = ('#include <stdio.h>\n#include <string.h>\n#include "cnn.h"\nint main(void) {\n  unsigned i, r;\n'
           "  for (i = 0; i < CNN_N_LAYERS; i++) {\n    const pq_layer_desc_t *l = &cnn_layers[i];\n"
           '    printf("%u %u %u %u %u %u\\n", l->flags, l->pool, l->in_h, l->out_h, l->pool_k, l->kh);\n'
           "    for (r = 0; r < l->rows; r++) {\n      int32_t b; uint16_t m; memcpy(&b, l->params + 8 * r, 4);\n"
           '      memcpy(&m, l->params + 8 * r + 4, 2);\n      printf("%ld %u %u\\n", (long)b, (unsigned)m, '
           "(unsigned)l->params[8 * r + 6]);\n    }\n  }\n  return 0;\n}\n")
    lines = iter(_compile_run(tmp_path, src).splitlines())
    doc = json.loads((out / "model.json").read_text())
    for e in doc["layers"]:
        g = e["geom"]
        flags, pool, in_h, out_h, pool_k, kh = (int(v) for v in next(lines).split())
        assert flags == (1 if e["relu"] else 0) | 8 and pool == {"none": 0, "max": 1, "avg": 2}[e["pool"]]
        assert (in_h, out_h, pool_k, kh) == ((g["in_h"], g["out_h"], e["pool_k"], g["kh"]) if g
                                             else (1, 1, 0, 1))
        for r in range(e["rows"]):
            assert [int(v) for v in next(lines).split()] == [e["bias"][r], e["mult"][r], e["shift"][r]]
