#!/usr/bin/env bash
# Runs every test stage and ends with the one line CI reads: "N passed, N failed, N skipped".
#   1. host unit tests (GoogleTest, ASan+UBSan) over the shared kernel/lib sources
#   2. fuzzer smoke runs: each libFuzzer target replays its seeds plus a few thousand inputs
#   3. script tests: tests/scripts/*.sh, one test each
#   4. QEMU: in-kernel KTAP selftests on several machines, the kernel prompt, bad-input boots
#
# Every count comes from this run: each stage deletes its old result files first, and a stage
# that crashes, exits non-zero without a count, or writes no result counts at least one failure
# and says why. tests/scripts/summary-honesty.sh sources this file (the stages are functions; the
# run itself happens only when the file is executed) and checks the counting on planted failures.
set -uo pipefail

total_passed=0
total_failed=0
total_skipped=0

count() { # passed failed [skipped]
    total_passed=$((total_passed + $1))
    total_failed=$((total_failed + $2))
    total_skipped=$((total_skipped + ${3:-0}))
}

# A stage that could not produce an honest count: one failure, with the reason on its own line.
stage_failure() { # reason
    echo "FAIL $1"
    count 0 1
}

# GoogleTest counts from one run: prints "passed failed skipped". The JSON report (written only
# when the binary finishes) is the primary source; the "[  FAILED  ] Suite.Case" lines of the log
# are the fallback, because --gtest_brief=1 drops the "N tests, listed below" line and a crash
# leaves no JSON. A non-zero exit status with no failed case counted is still one failure.
gtest_counts() { # log json status
    python3 - "$1" "$2" "$3" << 'EOF'
import json, re, sys
log_path, json_path, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    log = open(log_path, errors="replace").read()
except OSError:
    log = ""
failed_names = set()
for line in log.splitlines():
    m = re.match(r"^\[  FAILED  \] (\S+\.\S+)", line)
    if m and not re.match(r"^\[  FAILED  \] \d+ tests?, listed below", line):
        failed_names.add(m.group(1).rstrip(","))
passed = failed = skipped = 0
report = None
try:
    report = json.load(open(json_path))
except (OSError, ValueError):
    pass
if report is not None:
    for suite in report.get("testsuites", []):
        for case in suite.get("testsuite", []):
            name = f"{suite.get('name')}.{case.get('name')}"
            if case.get("failures"):
                failed_names.add(name)
            elif case.get("result") == "SKIPPED":
                skipped += 1
            elif case.get("status") == "RUN":
                passed += 1
else:
    m = re.findall(r"^\[  PASSED  \] (\d+) tests?", log, re.M)
    passed = int(m[-1]) if m else 0
    m = re.findall(r"^\[  SKIPPED \] (\d+) tests?", log, re.M)
    skipped = int(m[-1]) if m else 0
failed = len(failed_names)
if status != 0 and failed == 0:
    failed = 1
print(passed, failed, skipped)
EOF
}

unit_stage() { # binary (BUILD/host/unit-tests) results-dir
    local binary=$1 results=$2
    local log="$results/unit.log" json="$results/unit.json"
    rm -f "$log" "$json"
    if [ ! -x "$binary" ]; then
        stage_failure "unit tests: $binary was not built"
        return
    fi
    # The ELF tests read their fixtures from this build, not from whatever build/ holds.
    local build
    build=$(dirname "$(dirname "$binary")")
    HOMEOS_ELF_FIXTURES="$build/fixtures/elf" "$binary" --gtest_brief=1 --gtest_output="json:$json" > "$log" 2>&1
    local status=$?
    tail -5 "$log"
    local passed failed skipped
    read -r passed failed skipped < <(gtest_counts "$log" "$json" "$status")
    if ! [[ "${passed:-}" =~ ^[0-9]+$ && "${failed:-}" =~ ^[0-9]+$ && "${skipped:-}" =~ ^[0-9]+$ ]]; then
        echo "FAIL unit tests: the counts could not be read from $log"
        passed=0 failed=1 skipped=0
    fi
    if [ "$status" -ne 0 ]; then
        [ -f "$json" ] || echo "FAIL unit tests: exited with status $status and wrote no JSON report (crash?)"
        grep -E '^\[  FAILED  \]|ERROR|Sanitizer|Segmentation|Aborted' "$log" | head -40
    elif [ "$failed" -ne 0 ]; then
        grep -E '^\[  FAILED  \]' "$log" | head -40
    fi
    if [ "$status" -eq 0 ] && [ ! -f "$json" ]; then
        echo "FAIL unit tests: exited 0 but wrote no JSON report"
        failed=$((failed + 1))
    fi
    echo "unit tests: $passed passed, $failed failed, $skipped skipped"
    count "$passed" "$failed" "$skipped"
}

fuzz_stage() { # build-dir results-dir
    local build=$1 results=$2 source name fuzzer corpus scratch
    # One binary per target in tests/fuzz/: a target that was not built fails instead of vanishing.
    for source in tests/fuzz/fuzz_*.cpp; do
        [ -f "$source" ] || continue
        name=$(basename "$source" .cpp)
        fuzzer="$build/fuzz/$name"
        rm -f "$results/$name.log"
        if [ ! -x "$fuzzer" ]; then
            stage_failure "fuzz smoke $name: $fuzzer was not built"
            continue
        fi
        corpus="tests/fuzz/corpus/${name#fuzz_}"
        # New inputs go to a scratch directory first, so test runs never grow the committed corpus.
        scratch="$build/fuzz/new-$name"
        mkdir -p "$scratch"
        local args=(-runs=20000 -seed=1 "$scratch")
        [ -d "$corpus" ] && args+=("$corpus")
        if "$fuzzer" "${args[@]}" > "$results/$name.log" 2>&1; then
            echo "PASS fuzz smoke $name"
            count 1 0
        else
            echo "FAIL fuzz smoke $name"
            tail -30 "$results/$name.log"
            count 0 1
        fi
    done
}

script_stage() { # build-dir results-dir
    local build=$1 results=$2 script name
    # Each tests/scripts/*.sh is one test: exit status 0 passes. They run against the built tree.
    for script in tests/scripts/*.sh; do
        [ -f "$script" ] || continue
        name=$(basename "$script" .sh)
        rm -f "$results/script-$name.log"
        if BUILD="$build" bash "$script" > "$results/script-$name.log" 2>&1; then
            echo "PASS script $name"
            count 1 0
        else
            echo "FAIL script $name"
            tail -30 "$results/script-$name.log"
            count 0 1
        fi
    done
}

# The harness writes its counts to results-dir/qemu.json. Its exit status is honoured: non-zero
# with no failure counted is still a failure, and so is a missing or unreadable JSON.
qemu_stage() { # results-dir command...
    local results=$1
    shift
    local json="$results/qemu.json"
    rm -f "$json"
    "$@"
    local status=$?
    local counts
    if ! counts=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(int(r["passed"]), int(r["failed"]), int(r.get("skipped", 0)))' "$json" 2> /dev/null); then
        stage_failure "qemu: the harness exited with status $status and wrote no readable $json"
        return
    fi
    local passed failed skipped
    read -r passed failed skipped <<< "$counts"
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        echo "FAIL qemu: the harness exited with status $status but counted no failure"
        failed=1
    fi
    count "$passed" "$failed" "$skipped"
}

summary_line() {
    echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
}

main() {
    cd "$(dirname "$0")/.." || exit 1
    BUILD=${BUILD:-build}
    local results="$BUILD/results"
    mkdir -p "$results"
    echo "== host unit tests"
    unit_stage "$BUILD/host/unit-tests" "$results"
    echo "== fuzzer smoke runs"
    fuzz_stage "$BUILD" "$results"
    echo "== script tests"
    script_stage "$BUILD" "$results"
    echo "== QEMU"
    qemu_stage "$results" env BUILD="$BUILD" python3 tests/qemu/harness.py
    summary_line
    [ "$total_failed" -eq 0 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
