// The one main() for every Google Benchmark file in tests/bench.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
