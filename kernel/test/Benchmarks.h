#pragma once
// In-kernel benchmarks for `make bench` (never run by `make test`): module load time for a small
// and a large module, and initramfs unpack throughput. Each prints a "BENCH name value unit" line.
namespace benchmarks {
void run();
}
