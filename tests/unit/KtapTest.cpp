// Host tests for the KTAP writer: the exact lines Linux KUnit prints.
#include <lib/test/Ktap.h>

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

struct Capture {
    std::vector<std::string> lines;
    static void emit(StringView line, void* ctx)
    {
        static_cast<Capture*>(ctx)->lines.emplace_back(line.characters(), line.length());
    }
};

using Result = KtapWriter::Result;
using Lines = std::vector<std::string>;

}

TEST(KtapTest, Header)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin(3);
    EXPECT_EQ(capture.lines, (Lines { "KTAP version 1", "1..3" }));
}

TEST(KtapTest, SuiteHeaderIsIndented)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin(1);
    ktap.begin_suite("pmm", 4);
    EXPECT_EQ(capture.lines, (Lines { "KTAP version 1", "1..1", "    KTAP version 1", "    # Subtest: pmm", "    1..4" }));
    EXPECT_EQ(ktap.depth(), 1u);
}

TEST(KtapTest, CaseResults)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin(1);
    ktap.begin_suite("s", 3);
    capture.lines.clear();
    ktap.case_result(1, "alloc_one", Result::Pass);
    ktap.case_result(2, "free_twice", Result::Fail);
    ktap.case_result(3, "smp_only", Result::Skip, "needs 2 CPUs");
    EXPECT_EQ(capture.lines,
        (Lines { "    ok 1 alloc_one", "    not ok 2 free_twice", "    ok 3 smp_only # SKIP needs 2 CPUs" }));
}

TEST(KtapTest, SkipWithoutReason)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin_suite("s", 1);
    capture.lines.clear();
    ktap.case_result(1, "c", Result::Skip);
    EXPECT_EQ(capture.lines, (Lines { "    ok 1 c # SKIP" }));
}

TEST(KtapTest, DiagnosticIndentFollowsNesting)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin(1);
    ktap.diagnostic("top");
    ktap.begin_suite("s", 1);
    ktap.diagnostic("inside: EXPECTATION FAILED at pmm.cpp:42");
    ktap.case_result(1, "c", Result::Pass);
    ktap.end_suite(1, "s", Result::Pass);
    ktap.diagnostic("after");
    EXPECT_EQ(capture.lines[2], "# top");
    EXPECT_EQ(capture.lines[6], "    # inside: EXPECTATION FAILED at pmm.cpp:42");
    EXPECT_EQ(capture.lines.back(), "# after");
}

TEST(KtapTest, FullDocumentMatchesKunit)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin(2);
    ktap.begin_suite("example", 3);
    ktap.case_result(1, "example_simple_test", Result::Pass);
    ktap.case_result(2, "example_failing_test", Result::Fail);
    ktap.case_result(3, "example_skip_test", Result::Skip, "this test should be skipped");
    EXPECT_EQ(ktap.suite_result(), Result::Fail);
    ktap.end_suite(1, "example", ktap.suite_result());
    ktap.begin_suite("single", 1);
    ktap.case_result(1, "only_case", Result::Pass);
    ktap.end_suite(2, "single", ktap.suite_result());

    Lines expected {
        "KTAP version 1",
        "1..2",
        "    KTAP version 1",
        "    # Subtest: example",
        "    1..3",
        "    ok 1 example_simple_test",
        "    not ok 2 example_failing_test",
        "    ok 3 example_skip_test # SKIP this test should be skipped",
        "# example: pass:1 fail:1 skip:1 total:3",
        "# Totals: pass:1 fail:1 skip:1 total:3",
        "not ok 1 example",
        "    KTAP version 1",
        "    # Subtest: single",
        "    1..1",
        "    ok 1 only_case",
        "ok 2 single",
    };
    EXPECT_EQ(capture.lines, expected);
}

TEST(KtapTest, SuiteResultRules)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin_suite("a", 2);
    ktap.case_result(1, "x", Result::Skip, "r");
    ktap.case_result(2, "y", Result::Skip, "r");
    EXPECT_EQ(ktap.suite_result(), Result::Skip);
    ktap.end_suite(1, "a", ktap.suite_result(), "all skipped");
    EXPECT_EQ(capture.lines.back(), "ok 1 a # SKIP all skipped");

    ktap.begin_suite("b", 2);
    ktap.case_result(1, "x", Result::Skip, "r");
    ktap.case_result(2, "y", Result::Pass);
    EXPECT_EQ(ktap.suite_result(), Result::Pass);
    ktap.end_suite(2, "b", ktap.suite_result());

    ktap.begin_suite("empty", 0);
    EXPECT_EQ(ktap.suite_result(), Result::Pass);
    ktap.end_suite(3, "empty", ktap.suite_result());
    EXPECT_EQ(capture.lines.back(), "ok 3 empty");
}

TEST(KtapTest, Counters)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    ktap.begin(2);
    ktap.begin_suite("a", 2);
    ktap.case_result(1, "x", Result::Pass);
    ktap.case_result(2, "y", Result::Fail);
    ktap.end_suite(1, "a", ktap.suite_result());
    ktap.begin_suite("b", 3);
    ktap.case_result(1, "x", Result::Pass);
    ktap.case_result(2, "y", Result::Skip);
    ktap.case_result(3, "z", Result::Pass);
    EXPECT_EQ(ktap.suite_passed(), 2u);
    EXPECT_EQ(ktap.suite_skipped(), 1u);
    EXPECT_EQ(ktap.suite_failed(), 0u);
    ktap.end_suite(2, "b", ktap.suite_result());
    EXPECT_EQ(ktap.total_passed(), 3u);
    EXPECT_EQ(ktap.total_failed(), 1u);
    EXPECT_EQ(ktap.total_skipped(), 1u);
    EXPECT_EQ(ktap.suites_failed(), 1u);
    EXPECT_EQ(ktap.depth(), 0u);
}

TEST(KtapTest, NamesNeedNotBeNulTerminated)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    const char chars[] = { 'a', 'b', 'c', 'X', 'X' };
    ktap.begin_suite(StringView(chars, 3), 1);
    EXPECT_EQ(capture.lines[1], "    # Subtest: abc");
}

TEST(KtapTest, LongLinesAreTruncated)
{
    Capture capture;
    KtapWriter ktap(Capture::emit, &capture);
    std::string long_name(1000, 'n');
    ktap.begin_suite("s", 1);
    ktap.case_result(1, StringView(long_name.data(), long_name.size()), Result::Pass);
    EXPECT_EQ(capture.lines.back().size(), KtapWriter::max_line_length);
    EXPECT_EQ(capture.lines.back().substr(0, 11), "    ok 1 nn");
}
