#!/usr/bin/env bash
# `make demo`: the pyquant flow on the bundled digits examples (MLP and CNN).
# For each model: analyse (per-layer SNR gate), convert to an executable integer model under the
# `snr` plan and under the accuracy-aware plan (1-point accuracy budget), write golden vectors and
# an HTML report, and print float accuracy, integer accuracy per plan, bits per weight and bytes.
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

# The accuracy-aware models on the virtual board: the real host tool uploads them over a
# pseudo-terminal to the firmware, which runs every layer on the Verilated RTL accelerator.
echo "=== virtual board: firmware on a pty + Verilated pq_accel RTL ==="
VB_LOG="$OUT/vboard.log"
exec {VB}< <(exec "$ROOT/.venv/bin/python" -m scripts.vboard --backend verilated --log "$VB_LOG" 2>>"$VB_LOG")
VB_PID=$!
trap 'kill $VB_PID 2>/dev/null || true' EXIT
PTY=""
while IFS= read -r -t 600 line <&"$VB"; do
  case "$line" in PTY\ *) PTY="${line#PTY }"; break ;; esac
done
if [ -z "$PTY" ]; then
  echo "demo: error: the virtual board did not start (see $VB_LOG)" >&2
  exit 1
fi
echo "  virtual board on $PTY"
for m in digits_mlp digits_cnn; do
  echo "--- $m (accuracy-aware plan) on the virtual board, 64 test images ---"
  "$ROOT/.venv/bin/pyquant-deploy" --port "$PTY" --model "$OUT/$m.acc" --input "$EX/digits_test.npz" \
    --samples 64 --clock-mhz 250 --fresh --no-progress --output "$OUT/$m.board_out.npy"
done
