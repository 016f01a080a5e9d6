# mk/sw.mk - firmware targets (sw/). Builds go to sw/build/.
.PHONY: fw fw-cross fw-test fuzz

fw: $(STAMP) ## build the host firmware (virtual board, C reference accelerator; BACKEND=verilated for the RTL)
	$(MAKE) --no-print-directory -C sw host BACKEND=$(or $(BACKEND),cref)

fw-cross: $(STAMP) ## freestanding arm-none-eabi Cortex-A9 build of the firmware core: ELF path + size
	$(MAKE) --no-print-directory -C sw cross

fw-test: $(STAMP) ## firmware unit tests (C, ASan/UBSan) + Python checks against pyquant + short fuzz
	$(PY) -m pytest -q sw

FUZZ_SECONDS ?= 300
fuzz: $(STAMP) ## libFuzzer (ASan/UBSan) on the frame decoder and the meta parser, FUZZ_SECONDS each (default 300)
	$(MAKE) --no-print-directory -C sw fuzzers
	bash sw/fuzz/run.sh $(FUZZ_SECONDS)
