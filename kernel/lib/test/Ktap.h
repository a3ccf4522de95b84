#pragma once
// A KTAP version 1 writer that prints exactly what Linux KUnit prints, so kunit.py-style tools
// and our CI parse the kernel's self-test output unchanged.
//
// Interface:
//   KtapWriter ktap(emit, ctx);     // emit() gets each line without its newline
//   ktap.begin(2);                  // "KTAP version 1", "1..2"
//   ktap.begin_suite("pmm", 3);     // "    KTAP version 1", "    # Subtest: pmm", "    1..3"
//   ktap.case_result(1, "alloc", KtapWriter::Result::Pass);           // "    ok 1 alloc"
//   ktap.case_result(2, "free", KtapWriter::Result::Skip, "no SMP");  // "    ok 2 free # SKIP no SMP"
//   ktap.diagnostic("note");        // "    # note" (indent follows the nesting)
//   ktap.end_suite(1, "pmm", ktap.suite_result());
//       // "# pmm: pass:1 fail:0 skip:1 total:2", "# Totals: pass:1 fail:0 skip:1 total:2"
//       // (KUnit prints these two only when total > 1), then "ok 1 pmm"
//
// Lines longer than max_line_length are truncated. The writer keeps counters, never allocates,
// and takes no lock: one test executor drives it.
#include <ktl/StringView.h>
#include <ktl/Types.h>

class KtapWriter {
public:
    using EmitFunction = void (*)(StringView line, void* ctx);
    enum class Result { Pass, Fail, Skip };

    static constexpr usize max_line_length = 256;

    KtapWriter(EmitFunction emit, void* ctx) : m_emit(emit), m_ctx(ctx) { }

    void begin(usize suite_count);
    void begin_suite(StringView name, usize case_count);
    void case_result(usize number, StringView name, Result result, StringView skip_reason = {});
    void diagnostic(StringView text);
    // Prints the suite's statistics line as KUnit does, then its result line.
    void end_suite(usize number, StringView name, Result result, StringView skip_reason = {});

    // KUnit's rule for a suite: failed if any case failed, skipped if every case was skipped.
    Result suite_result() const;

    usize depth() const { return m_depth; }
    // Cases in the current (or last) suite.
    usize suite_passed() const { return m_suite_passed; }
    usize suite_failed() const { return m_suite_failed; }
    usize suite_skipped() const { return m_suite_skipped; }
    // Cases over the whole run.
    usize total_passed() const { return m_total_passed; }
    usize total_failed() const { return m_total_failed; }
    usize total_skipped() const { return m_total_skipped; }
    usize suites_failed() const { return m_suites_failed; }

private:
    void line(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    void result_line(usize number, StringView name, Result result, StringView skip_reason);

    EmitFunction m_emit;
    void* m_ctx;
    usize m_depth { 0 };
    usize m_suite_passed { 0 };
    usize m_suite_failed { 0 };
    usize m_suite_skipped { 0 };
    usize m_total_passed { 0 };
    usize m_total_failed { 0 };
    usize m_total_skipped { 0 };
    usize m_suites_failed { 0 };
};
