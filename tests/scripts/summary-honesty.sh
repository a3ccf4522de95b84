#!/usr/bin/env bash
# The closing summary tells the truth: tests/run-all.sh's own stage functions run on planted
# failures, and each count must come out right. A tiny GoogleTest binary with three failing cases
# must count three failures (not the "1 failed" of a crash fallback); a crash with no count, a
# stale QEMU result, a harness that exits non-zero without a result and a missing binary must
# each count as a failure. Exit 0 passes.
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../run-all.sh
source tests/run-all.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bad=0
expect() { # what, expected "passed failed skipped", actual
    if [ "$2" = "$3" ]; then
        echo "ok   $1 ($3)"
    else
        echo "FAIL $1: expected '$2', got '$3'"
        bad=1
    fi
}
at_least_failed() { # what, minimum failed
    if [ "$total_failed" -ge "$2" ]; then
        echo "ok   $1 ($total_failed failed)"
    else
        echo "FAIL $1: expected at least $2 failed, counted $total_failed"
        bad=1
    fi
}
reset() { total_passed=0; total_failed=0; total_skipped=0; }

# 1. Three failing, three passing and one skipped case in a real GoogleTest binary.
cat > "$work/planted.cpp" << 'CPP'
#include <gtest/gtest.h>
TEST(Planted, PassesOne) { EXPECT_EQ(1, 1); }
TEST(Planted, FailsOne) { EXPECT_EQ(1, 2); }
TEST(Planted, FailsTwo) { ASSERT_TRUE(false); }
TEST(Other, PassesTwo) { SUCCEED(); }
TEST(Other, FailsThree) { ADD_FAILURE() << "planted"; }
TEST(Other, Skipped) { GTEST_SKIP() << "planted skip"; }
// The unit stage points the ELF tests at this build's fixtures (BUILD/fixtures/elf), not build/'s.
TEST(Env, FixturesOfThisBuild) { EXPECT_STREQ(getenv("HOMEOS_ELF_FIXTURES"), FIXTURES); }
CPP
mkdir -p "$work/host"
if ! clang++ -std=c++20 -O0 -DFIXTURES="\"$work/fixtures/elf\"" -o "$work/host/planted" "$work/planted.cpp" \
    -lgtest -lgtest_main -lpthread 2> "$work/cc.log"; then
    echo "FAIL cannot build the planted GoogleTest binary:"
    cat "$work/cc.log"
    exit 1
fi
reset
unit_stage "$work/host/planted" "$work" > "$work/stage.log"
expect "unit stage: three planted failures counted" "3 3 1" "$total_passed $total_failed $total_skipped"
expect "summary line" "3 passed, 3 failed, 1 skipped" "$(summary_line)"

# 2. The log parser alone, without a JSON report (as after a crash): --gtest_brief=1 output.
HOMEOS_ELF_FIXTURES="$work/fixtures/elf" "$work/host/planted" --gtest_brief=1 > "$work/brief.log" 2>&1
expect "brief log without JSON: every [  FAILED  ] case" "3 3 1" "$(gtest_counts "$work/brief.log" "$work/none.json" 1)"

# 3. A binary that crashes after one passing line, with no count at all.
cat > "$work/crash" << 'SH'
#!/usr/bin/env bash
echo "[==========] Running 5 tests from 1 test suite."
kill -SEGV $$
SH
chmod +x "$work/crash"
echo '{"testsuites": []}' > "$work/unit.json"  # Stale: must be deleted, not read.
reset
unit_stage "$work/crash" "$work" > "$work/stage.log"
at_least_failed "unit stage: a crash with no count fails" 1

# 4. A missing unit-test binary.
reset
unit_stage "$work/nosuch" "$work" > "$work/stage.log"
at_least_failed "unit stage: a missing binary fails" 1

# 5. A stale qemu.json saying all passed, and a harness that exits 1 without writing one.
echo '{"passed": 500, "failed": 0}' > "$work/qemu.json"
reset
qemu_stage "$work" false > "$work/stage.log"
at_least_failed "qemu stage: no result from this run fails" 1
expect "qemu stage: the stale result is not read" "0" "$total_passed"

# 6. A harness that writes "0 failed" but exits non-zero.
reset
qemu_stage "$work" bash -c "echo '{\"passed\": 3, \"failed\": 0}' > $work/qemu.json; exit 2" > "$work/stage.log"
at_least_failed "qemu stage: a non-zero exit status fails" 1

# 7. A harness result with skips is carried into the summary.
reset
qemu_stage "$work" bash -c "echo '{\"passed\": 3, \"failed\": 2, \"skipped\": 4}' > $work/qemu.json; exit 1" > "$work/stage.log"
expect "qemu stage: counts from the JSON" "3 2 4" "$total_passed $total_failed $total_skipped"

exit "$bad"
