# Developer targets. The README's test command is the reference for tests.
.PHONY: bench
# Benchmark closure materialisation against the seed (BENCHMARKS.md);
# RUNS=n sets the number of runs per contender.
bench:
	scripts/bench $(RUNS)
