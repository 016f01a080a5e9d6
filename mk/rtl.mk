# mk/rtl.mk - hand-written RTL accelerator (rtl/) and its cocotb benches (verif/).
#   make sim [SIM=icarus|verilator] [WAVES=1]   every cocotb bench through pytest (both sims by default)
#   make lint-rtl                               Verilator --lint-only -Wall on the top
#   make synth                                  Yosys synth_xilinx -family xcup -> build/synth/summary.json
#   make bench-accel                            cycles per layer at each precision -> build/bench/accel.json
.PHONY: sim lint-rtl synth bench-accel

sim: $(STAMP) ## cocotb benches of rtl/ (SIM=icarus|verilator, default both; WAVES=1 dumps waveforms; RTL=hls: top benches on the Vitis export)
ifeq ($(RTL),hls)
	@ls hls/build/pq_accel/verilog/*.v >/dev/null 2>&1 || { echo "make sim RTL=hls: error: hls/build/pq_accel/verilog has no Vitis HLS export (run 'make hls' where vitis_hls is installed)" >&2; exit 2; }
	RTL=hls SIM=$(SIM) WAVES=$(WAVES) $(PY) -m pytest -q -n auto verif/pq_accel
else
	SIM=$(SIM) WAVES=$(WAVES) $(PY) -m pytest -q -n auto verif
endif

lint-rtl: $(STAMP) ## Verilator lint (-Wall) of rtl/ with the top pq_accel
	$(PY) -c "import sys; sys.path.insert(0, 'verif'); import simrun, subprocess; d = simrun.verilator_bin_dir(); \
	sys.exit(subprocess.call([str(d / 'verilator'), '--lint-only', '-Wall', '-Irtl', '--top-module', 'pq_accel'] + [str(p) for p in simrun.rtl_sources()]))"

synth: $(STAMP) ## Yosys synth_xilinx -family xcup of pq_accel (default parameters) -> build/synth/summary.json
	$(PY) -m scripts.synth_rtl --out build/synth

bench-accel: $(STAMP) ## RTL accelerator cycles per layer (dense/conv x INT8/6/4/2) -> build/bench/accel.json
	@test -f build/synth/summary.json || $(PY) -m scripts.synth_rtl --out build/synth
	$(PY) -m scripts.bench_accel --synth build/synth/summary.json --out build/bench/accel.json

BENCH_TARGETS += bench-accel
