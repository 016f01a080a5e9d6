# pyquant core (analysis, packing, layer files, bin2c): benchmark target.
BENCH_TARGETS += bench-pyquant
.PHONY: bench-pyquant

bench-pyquant: $(STAMP) ## pyquant analyze/convert throughput (20M weights) + pack/unpack MB/s -> build/bench/pyquant.json
	$(PY) scripts/bench_pyquant.py -o build/bench/pyquant.json
