# mk/deploy.mk - host tools: the UART deploy tool, the virtual board, the fault link.
#   make vboard [BACKEND=verilated|cref] [FAULT_RATE=0.01] [PACE=115200]
#   make deploy PORT=/dev/ttyUSB0 MODEL=out/mlp INPUT=x.npy [BAUD=115200]
#   make deploy-sim [BACKEND=verilated|cref] [SIM_MODELS=digits_mlp,digits_cnn] [SIM_SAMPLES=32]
#   make bench-uart
.PHONY: vboard deploy deploy-sim bench-uart

BAUD        ?= 115200
SIM_MODELS  ?= digits_mlp,digits_cnn
SIM_SAMPLES ?= 32

vboard: $(STAMP) ## start the virtual board (host firmware on a pty, BACKEND=verilated|cref) and print its PTY path
	$(PY) -m scripts.vboard --backend $(or $(BACKEND),verilated) \
	  $(if $(FAULT_RATE),--rate $(FAULT_RATE)) $(if $(PACE),--pace $(PACE))

deploy: $(STAMP) ## upload MODEL=DIR to the board on PORT=, run INPUT=x.npy, compare with the golden model [BAUD=]
	@test -n "$(PORT)" || { echo "make deploy: error: PORT= is required (e.g. PORT=/dev/ttyUSB0)" >&2; exit 2; }
	@test -n "$(MODEL)" || { echo "make deploy: error: MODEL= is required (a pyquant convert output directory)" >&2; exit 2; }
	@test -n "$(INPUT)$(GOLDEN)" || { echo "make deploy: error: INPUT=x.npy (or GOLDEN=DIR) is required" >&2; exit 2; }
	$(PY) -m scripts.deploy --port "$(PORT)" --model "$(MODEL)" --baud $(BAUD) \
	  $(if $(INPUT),--input "$(INPUT)") $(if $(GOLDEN),--golden "$(GOLDEN)") $(DEPLOY_ARGS)

deploy-sim: $(STAMP) ## whole flow on the virtual board: convert digits, golden, upload over a pty, run on the Verilated RTL, compare
	$(PY) -m scripts.vboard --deploy-sim --backend $(or $(BACKEND),verilated) \
	  --models $(SIM_MODELS) --samples $(SIM_SAMPLES) $(if $(FAULT_RATE),--rate $(FAULT_RATE))

bench-uart: $(STAMP) ## UART benchmark: payload/wire bytes, digits upload time at 115200 and 921600 baud (paced link)
	$(PY) -m scripts.vboard --bench-uart build/bench/uart.json

BENCH_TARGETS += bench-uart
