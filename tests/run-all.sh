#!/usr/bin/env bash
# Runs every test stage and ends with the one line CI reads: "N passed, N failed".
#   1. host unit tests (GoogleTest, ASan+UBSan) over the shared kernel/lib sources
#   2. fuzzer smoke runs: each libFuzzer target replays its seeds plus a few thousand inputs
#   3. QEMU: in-kernel KTAP selftests, the kernel prompt, bad-input boots
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
mkdir -p "$BUILD/results"
total_passed=0
total_failed=0

count() { total_passed=$((total_passed + $1)); total_failed=$((total_failed + $2)); }

echo "== host unit tests"
unit_log="$BUILD/results/unit.log"
"$BUILD/host/unit-tests" --gtest_brief=1 > "$unit_log" 2>&1
unit_status=$?
tail -5 "$unit_log"
unit_passed=$(grep -oP '^\[  PASSED  \] \K[0-9]+' "$unit_log" | tail -1)
unit_failed=$(grep -oP '^\[  FAILED  \] \K[0-9]+(?= tests?, listed below)' "$unit_log" | tail -1)
unit_passed=${unit_passed:-0}
unit_failed=${unit_failed:-0}
if [ "$unit_status" -ne 0 ] && [ "$unit_failed" -eq 0 ]; then
    echo "unit tests exited with $unit_status without a failure count (crash?)"
    grep -E "FAILED|ERROR|Sanitizer" "$unit_log" | head -20
    unit_failed=1
fi
[ "$unit_failed" -ne 0 ] && grep -E '^\[  FAILED  \]' "$unit_log" | head -40
count "$unit_passed" "$unit_failed"

echo "== fuzzer smoke runs"
for fuzzer in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$fuzzer" ] || continue
    name=$(basename "$fuzzer")
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    # New inputs go to a scratch directory first, so test runs never grow the committed corpus.
    scratch="$BUILD/fuzz/new-$name"
    mkdir -p "$scratch"
    args=(-runs=20000 -seed=1 "$scratch")
    [ -d "$corpus" ] && args+=("$corpus")
    if "$fuzzer" "${args[@]}" > "$BUILD/results/$name.log" 2>&1; then
        echo "PASS fuzz smoke $name"
        count 1 0
    else
        echo "FAIL fuzz smoke $name"
        tail -30 "$BUILD/results/$name.log"
        count 0 1
    fi
done

echo "== script tests"
# Each tests/scripts/*.sh is one test: exit status 0 passes. They run against the built tree.
for script in tests/scripts/*.sh; do
    [ -f "$script" ] || continue
    name=$(basename "$script" .sh)
    if BUILD="$BUILD" bash "$script" > "$BUILD/results/script-$name.log" 2>&1; then
        echo "PASS script $name"
        count 1 0
    else
        echo "FAIL script $name"
        tail -30 "$BUILD/results/script-$name.log"
        count 0 1
    fi
done

echo "== QEMU"
python3 tests/qemu/harness.py
qemu_passed=$(python3 -c "import json;print(json.load(open('$BUILD/results/qemu.json'))['passed'])" 2>/dev/null || echo 0)
qemu_failed=$(python3 -c "import json;print(json.load(open('$BUILD/results/qemu.json'))['failed'])" 2>/dev/null || echo 1)
count "$qemu_passed" "$qemu_failed"

echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
