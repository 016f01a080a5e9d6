# mk/hls.mk - Vitis HLS kernel (hls/pq_accel): C-sim with g++ always; csynth + Verilog export
# where Vitis HLS is installed. Builds go to build/hls/ (C-sim) and hls/build/ (Vitis).
# The C-sim binaries are built by hls/pqhls.py into the cache the pytest tests share
# (build/hls/cache, keyed by sources + flags, lock-protected) and copied to build/hls/.
# Xilinx's open-source ap_int.h/hls_stream.h: fetched once from the pinned, hash-checked hls4ml wheel
# into build/hls/xilinx_ap_types by hls/pqhls.py (pip download, nothing installed or vendored).
BENCH_TARGETS += bench-hls
.PHONY: hls hls-real-types bench-hls

HLS_SRC      := $(ROOT)/hls/pq_accel
HLS_OUT      := $(ROOT)/build/hls
HLS_VEC      := $(HLS_OUT)/vectors
HLS_VITIS     = $(firstword $(shell command -v vitis_hls vitis-run 2>/dev/null))
HLS_STEPS    ?= csynth export

hls: $(STAMP) ## HLS kernel: C-sim bench (g++; shim and Xilinx ap_int.h) on synthetic + digits golden vectors; csynth + Verilog export if Vitis exists
	$(PY) scripts/gen_hls_vectors.py -o $(HLS_VEC) --digits
	@tb=$$($(PY) $(ROOT)/hls/pqhls.py build tb) || exit 2; cp -f $$tb $(HLS_OUT)/tb_pq_accel
	$(HLS_OUT)/tb_pq_accel $(HLS_VEC)/synthetic/index.txt $(HLS_VEC)/index_*.txt
	@$(MAKE) --no-print-directory hls-real-types
	@if [ -z "$(HLS_VITIS)" ]; then \
	  echo "hls: Vitis HLS not found (no vitis_hls or vitis-run on PATH): C simulation only; csynth/export skipped (see hls/README.md)"; \
	elif [ "$(notdir $(HLS_VITIS))" = "vitis_hls" ]; then \
	  vitis_hls -f $(HLS_SRC)/run_hls.tcl -tclargs $(HLS_STEPS) && echo "hls: Verilog in hls/build/pq_accel/verilog"; \
	else \
	  PQ_HLS_STEPS="$(HLS_STEPS)" vitis-run --mode hls --tcl $(HLS_SRC)/run_hls.tcl && echo "hls: Verilog in hls/build/pq_accel/verilog"; \
	fi

hls-real-types: $(STAMP) ## C-sim bench compiled against Xilinx's ap_int.h/hls_stream.h (pinned hls4ml wheel, fetched once)
	@test -f $(HLS_VEC)/synthetic/index.txt || $(PY) scripts/gen_hls_vectors.py -o $(HLS_VEC) --digits
	@tb=$$($(PY) $(ROOT)/hls/pqhls.py build tb-xilinx) || exit 2; cp -f $$tb $(HLS_OUT)/tb_pq_accel_xilinx_types
	$(HLS_OUT)/tb_pq_accel_xilinx_types $(HLS_VEC)/synthetic/index.txt $(HLS_VEC)/index_*.txt

bench-hls: $(STAMP) ## HLS C-sim wall time + cycle model on the digits MLP/CNN, beside hls4ml (throwaway venv) -> build/bench/hls.json
	$(PY) scripts/bench_hls.py -o build/bench/hls.json
