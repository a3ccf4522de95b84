#!/usr/bin/env python3
"""The harness's own tests: its KTAP accounting on canned kernel output. Run by
tests/scripts/summary-ktap.sh; no QEMU needed."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def tally(text):
    cases, errors = harness.ktap_verdicts(text)
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for _, _, verdict, _ in cases:
        counts[verdict] += 1
    return counts, cases, errors


COMPLETE = """\
[    0.100000] selftest: running
KTAP version 1
1..2
# plan: alpha 2
# plan: beta 3
    KTAP version 1
    # Subtest: alpha
    1..2
    ok 1 test_one
    ok 2 test_two
    # alpha: pass:2 fail:0 skip:0 total:2
    # Totals: pass:2 fail:0 skip:0 total:2
ok 1 alpha
    KTAP version 1
    # Subtest: beta
    1..3
    ok 1 test_a
    not ok 2 test_b
    ok 3 test_c # SKIP no 1 GiB pages on this CPU
    # beta: pass:1 fail:1 skip:1 total:3
not ok 2 beta
"""

# A panic in the middle of the second of three suites: the harness must count the rest of beta
# and all of gamma as failed, from the plans printed before any case ran.
PANIC = """\
KTAP version 1
1..3
# plan: alpha 2
# plan: beta 4
# plan: gamma 5
    KTAP version 1
    # Subtest: alpha
    1..2
    ok 1 test_one
    ok 2 test_two
ok 1 alpha
    KTAP version 1
    # Subtest: beta
    1..4
    ok 1 test_a
[    1.234567] KERNEL PANIC: page fault at 0x0 in test_b
"""


class KtapAccounting(unittest.TestCase):
    def test_complete_run_counts_pass_fail_skip(self):
        counts, _, errors = tally(COMPLETE)
        self.assertEqual(counts, {"pass": 3, "fail": 1, "skip": 1})
        self.assertEqual(errors, [])

    def test_panic_mid_suite_counts_every_unreported_case(self):
        counts, cases, errors = tally(PANIC)
        self.assertEqual(counts, {"pass": 3, "fail": 3 + 5, "skip": 0})
        missing = [(suite, name) for suite, name, verdict, _ in cases if verdict == "fail"]
        self.assertIn(("beta", "case 2 of 4"), missing)
        self.assertIn(("gamma", "case 5 of 5"), missing)
        self.assertTrue(any("finished" in e for e in errors), errors)

    def test_panic_without_plan_lines_still_fails_unstarted_suites(self):
        text = "\n".join(line for line in PANIC.splitlines() if not line.startswith("# plan:"))
        counts, _, errors = tally(text)
        # beta's own "1..4" is known (3 missing); gamma never started: one failure, count unknown.
        self.assertEqual(counts, {"pass": 3, "fail": 3 + 1, "skip": 0})
        self.assertTrue(errors)

    def test_skip_without_reason_fails(self):
        text = COMPLETE.replace("# SKIP no 1 GiB pages on this CPU", "# SKIP")
        counts, cases, _ = tally(text)
        self.assertEqual(counts, {"pass": 3, "fail": 2, "skip": 0})
        self.assertIn(("beta", "test_c", "fail", "skipped without a reason"), cases)

    def test_suite_init_skip_skips_its_planned_cases(self):
        text = """\
KTAP version 1
1..2
# plan: alpha 1
# plan: beta 3
    KTAP version 1
    # Subtest: alpha
    1..1
    ok 1 test_one
ok 1 alpha
ok 2 beta # SKIP suite init failed
"""
        counts, _, errors = tally(text)
        self.assertEqual(counts, {"pass": 1, "fail": 0, "skip": 3})
        self.assertEqual(errors, [])
        counts, _, _ = tally(text.replace(" # SKIP suite init failed", " # SKIP"))
        self.assertEqual(counts, {"pass": 1, "fail": 3, "skip": 0})

    def test_more_cases_than_planned_is_an_error(self):
        text = COMPLETE.replace("    ok 2 test_two\n", "    ok 2 test_two\n    ok 3 test_three\n")
        _, _, errors = tally(text)
        self.assertTrue(any("alpha planned 2 cases, ran 3" in e for e in errors), errors)

    def test_no_ktap_at_all(self):
        cases, errors = harness.ktap_verdicts("KERNEL PANIC: early\n")
        self.assertEqual(cases, [])
        self.assertTrue(errors)

    def test_two_documents_are_both_counted(self):
        counts, _, errors = tally(COMPLETE + "homeos> selftest alpha\n" + COMPLETE)
        self.assertEqual(counts, {"pass": 6, "fail": 2, "skip": 2})
        self.assertEqual(errors, [])

    def test_record_ktap_feeds_the_result(self):
        result = harness.Result("canned")
        harness.record_ktap(result, PANIC, "ktap")
        self.assertEqual((len(result.passed), len(result.failed), len(result.skipped)), (3, 8, 0))
        result = harness.Result("canned")
        harness.record_ktap(result, COMPLETE, "ktap")
        self.assertEqual(result.skipped, ["ktap beta.test_c # SKIP no 1 GiB pages on this CPU"])

    def test_result_skip_needs_a_reason(self):
        result = harness.Result("skips")
        result.skip("with", "a reason")
        result.skip("without", "  ")
        self.assertEqual(len(result.skipped), 1)
        self.assertEqual(result.failed, ["without: skipped without a reason"])


class Summary(unittest.TestCase):
    def test_no_matching_scenario_fails_and_replaces_a_stale_summary(self):
        with tempfile.TemporaryDirectory() as build:
            os.makedirs(os.path.join(build, "results"))
            summary = os.path.join(build, "results", "qemu.json")
            with open(summary, "w") as f:
                f.write('{"passed": 99, "failed": 0}')
            run = subprocess.run([sys.executable, harness.__file__, "--only", "no-such-scenario"],
                                 env=dict(os.environ, BUILD=build), capture_output=True, text=True)
            self.assertNotEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertIn("qemu: 0 passed, 1 failed, 0 skipped", run.stdout)
            with open(summary) as f:
                self.assertEqual(f.read(), '{"passed": 0, "failed": 1, "skipped": 0}')


if __name__ == "__main__":
    unittest.main()
