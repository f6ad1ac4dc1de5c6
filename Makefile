# Developer targets. The README's test command is the reference for tests.
.PHONY: bench
# Benchmark closure materialisation against the seed (BENCHMARKS.md);
# RUNS=n sets the number of runs per contender.
bench:
	scripts/bench $(RUNS)

.PHONY: bench-image
# Benchmark image building (buildImage) against buildah, umoci, a
# dockerTools-shaped pipeline and tar | pigz / zstd (BENCHMARKS.md, "Images");
# RUNS=n sets the number of runs per contender.
bench-image:
	scripts/bench-image $(RUNS)
.PHONY: bench-push
# Push of the large image to a local registry, ocitools against skopeo
# (BENCHMARKS.md, "Push"); RUNS=n sets the number of runs.
bench-push:
	scripts/bench-push $(RUNS)
