// A suite that panics in its second case, for the harness's own test (scenario selftest-panic):
// when a run ends early, every planned case that never reported must count as failed. Suites
// named inject_* never run under selftest=all; only `selftest=inject_panic,...` selects them.
#include <Panic.h>
#include <test/KTest.h>

namespace {
void test_before_the_panic(ktest::Test& t) { KEXPECT_TRUE(t, true); }

void test_panics(ktest::Test&) { panic("selftest: injected panic in inject_panic.test_panics"); }

void test_never_reached(ktest::Test& t) { t.fail(__FILE__, __LINE__, "ran after a panic"); }
}

KTEST_SUITE(inject_panic, KTEST_CASE(test_before_the_panic), KTEST_CASE(test_panics), KTEST_CASE(test_never_reached));
