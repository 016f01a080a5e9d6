"""scripts/bench_accel.py input checks: the DSP count it divides by must come from a synthesis
of the very configuration it simulates (LANES 8, default parameters)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


@pytest.mark.parametrize("summary", [
    None,                                                    # missing file
    "not json",
    {"family": "xcup", "lanes": 8},                          # no dsp
    {"family": "xcup", "lanes": 8, "dsp": 0},
    {"family": "xcup", "lanes": 3, "dsp": 4},                # another LANES
    {"family": "xcup", "lanes": 8, "dsp": 9, "params": {"MAX_ROWS": 16}},
])
def test_bad_summary(summary, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A missing or mismatched synthesis summary: exit 2, one line naming the file, no output."""
    from scripts.bench_accel import main
    sp = tmp_path / "summary.json"
    if summary is not None:
        sp.write_text(summary if isinstance(summary, str) else json.dumps(summary))
    out = tmp_path / "accel.json"
    assert main(["--synth", str(sp), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(sp) in err[0], err
    assert not out.exists()
