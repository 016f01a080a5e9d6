#!/usr/bin/env bash
# `make demo`: the pyquant flow on the bundled digits examples (MLP and CNN).
# For each model: analyse (per-layer SNR gate), convert to an executable integer model under the
# `snr` plan and under the accuracy-aware plan (1-point accuracy budget), write golden vectors and
# an HTML report, and print float accuracy, integer accuracy per plan, bits per weight and bytes.
# Later issues append hardware runs (RTL / HLS / virtual board) to this script.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PQ="$ROOT/.venv/bin/pyquant"
OUT="${DEMO_OUT:-$ROOT/build/demo}"
EX="$ROOT/examples"
mkdir -p "$OUT"
cd "$ROOT"

for m in digits_mlp digits_cnn; do
  echo "=== $m ==="
  "$PQ" analyze "$EX/$m.onnx" --json "$OUT/$m.analyze.json"
  "$PQ" convert "$EX/$m.onnx" --calib "$EX/digits_calib.npy" -o "$OUT/$m.snr" -q
  "$PQ" convert "$EX/$m.onnx" --calib "$EX/digits_calib.npy" --target accuracy-drop=0.01 -o "$OUT/$m.acc" -q
  "$PQ" golden "$OUT/$m.acc" --input "$EX/digits_calib.npy" -n 4 -o "$OUT/$m.acc.golden" -q
  "$PQ" report "$OUT/$m.acc" -o "$OUT/$m.report.html" -q
  "$PQ" evaluate "$EX/$m.onnx" --json "$OUT/$m.eval.json"
  echo "  files: $OUT/$m.{snr,acc}/ (layer files), $OUT/$m.acc.golden/, $OUT/$m.report.html"
  echo
done
