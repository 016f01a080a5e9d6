#!/usr/bin/env bash
# sw/fuzz/run.sh SECONDS - run both libFuzzer targets for SECONDS each (built by `make -C sw fuzzers`),
# with seed corpora in sw/build/fuzz/corpus_*. Exits non-zero on the first crash/leak/UB report.
set -euo pipefail
SECS="${1:-300}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
B="$HERE/../build/fuzz"
"$HERE/../../.venv/bin/python" "$HERE/seeds.py" "$B"
for t in frame meta; do
  mkdir -p "$B/corpus_$t" "$B/artifacts_$t"
  echo "fuzz_$t: ${SECS}s"
  "$B/fuzz_$t" -max_total_time="$SECS" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$B/artifacts_$t/" "$B/corpus_$t" "$B/seeds_$t" 2>&1 | tail -n 12
done
