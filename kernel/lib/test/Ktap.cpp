// KTAP version 1 output in Linux KUnit's exact shape; see Ktap.h.
#include <lib/text/Format.h>
#include <lib/test/Ktap.h>

namespace {
// KUnit indents each nesting level by four spaces.
constexpr usize indent_width = 4;
}

void KtapWriter::line(const char* fmt, ...)
{
    char buffer[max_line_length + 1];
    usize indent = m_depth * indent_width;
    if (indent > max_line_length)
        indent = max_line_length;
    __builtin_memset(buffer, ' ', indent);

    va_list args;
    va_start(args, fmt);
    usize length = vformat(buffer + indent, sizeof buffer - indent, fmt, args);
    va_end(args);

    usize total = indent + length;
    if (total > max_line_length)
        total = max_line_length;
    m_emit(StringView(buffer, total), m_ctx);
}

void KtapWriter::begin(usize suite_count)
{
    m_depth = 0;
    line("KTAP version 1");
    line("1..%zu", suite_count);
}

void KtapWriter::begin_suite(StringView name, usize case_count)
{
    ++m_depth;
    m_suite_passed = m_suite_failed = m_suite_skipped = 0;
    line("KTAP version 1");
    line("# Subtest: %.*s", (int)name.length(), name.characters());
    line("1..%zu", case_count);
}

void KtapWriter::result_line(usize number, StringView name, Result result, StringView skip_reason)
{
    const char* status = result == Result::Fail ? "not ok" : "ok";
    if (result == Result::Skip) {
        line("%s %zu %.*s # SKIP%s%.*s", status, number, (int)name.length(), name.characters(),
            skip_reason.is_empty() ? "" : " ", (int)skip_reason.length(), skip_reason.characters());
    } else {
        line("%s %zu %.*s", status, number, (int)name.length(), name.characters());
    }
}

void KtapWriter::case_result(usize number, StringView name, Result result, StringView skip_reason)
{
    switch (result) {
    case Result::Pass: ++m_suite_passed; ++m_total_passed; break;
    case Result::Fail: ++m_suite_failed; ++m_total_failed; break;
    case Result::Skip: ++m_suite_skipped; ++m_total_skipped; break;
    }
    result_line(number, name, result, skip_reason);
}

void KtapWriter::diagnostic(StringView text)
{
    line("# %.*s", (int)text.length(), text.characters());
}

KtapWriter::Result KtapWriter::suite_result() const
{
    if (m_suite_failed > 0)
        return Result::Fail;
    usize total = m_suite_passed + m_suite_failed + m_suite_skipped;
    if (total > 0 && m_suite_skipped == total)
        return Result::Skip;
    return Result::Pass;
}

void KtapWriter::end_suite(usize number, StringView name, Result result, StringView skip_reason)
{
    if (m_depth > 0)
        --m_depth;
    // KUnit (lib/kunit/test.c, kunit_print_suite_stats) prints the counts only for more than one
    // case. Its "Totals" line counts parameterised cases one by one; we have none, so it repeats.
    usize total = m_suite_passed + m_suite_failed + m_suite_skipped;
    if (total > 1) {
        line("# %.*s: pass:%zu fail:%zu skip:%zu total:%zu", (int)name.length(), name.characters(), m_suite_passed,
            m_suite_failed, m_suite_skipped, total);
        line("# Totals: pass:%zu fail:%zu skip:%zu total:%zu", m_suite_passed, m_suite_failed, m_suite_skipped, total);
    }
    if (result == Result::Fail)
        ++m_suites_failed;
    result_line(number, name, result, skip_reason);
}
