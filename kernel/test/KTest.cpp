#include <lib/text/Format.h>
#include <lib/test/Ktap.h>
#include <log/Log.h>
#include <mm/Kmalloc.h>
#include <module/ModuleRegistry.h>
#include <test/KTest.h>

extern "C" const ktest::Suite* const __ktest_suites_start[];
extern "C" const ktest::Suite* const __ktest_suites_end[];

namespace ktest {

namespace {
KtapWriter* g_writer = nullptr;

void emit_line(StringView line, void*)
{
    klog::console_write(line.characters(), line.length());
    klog::console_write("\n", 1);
}

bool filter_matches(const char* filter, const char* name)
{
    StringView f(filter);
    StringView n(name);
    // Suites that break the machine on purpose (inject_*) run only when named.
    if (f == "all" || f == "1")
        return !n.starts_with("inject_");
    // Comma-separated list of suite names.
    while (!f.is_empty()) {
        isize comma = f.find(',');
        StringView item = comma < 0 ? f : f.substring(0, (usize)comma);
        if (item == n)
            return true;
        if (comma < 0)
            break;
        f = f.substring((usize)comma + 1);
    }
    return false;
}

int run_list(const Suite* const* suites, usize count)
{
    KtapWriter writer(emit_line, nullptr);
    g_writer = &writer;
    writer.begin(count);
    // Every suite's case count, before any case runs: if a case panics or hangs, the harness still
    // knows how many cases never reported and counts each of them as failed.
    for (usize s = 0; s < count; ++s) {
        char plan[KtapWriter::max_line_length];
        format(plan, sizeof(plan), "plan: %s %zu", suites[s]->name, suites[s]->case_count);
        writer.diagnostic(plan);
    }
    for (usize s = 0; s < count; ++s) {
        const Suite& suite = *suites[s];
        if (suite.init && suite.init() != 0) {
            writer.end_suite(s + 1, suite.name, KtapWriter::Result::Skip, "suite init failed");
            continue;
        }
        writer.begin_suite(suite.name, suite.case_count);
        bool suite_failed = false;
        for (usize c = 0; c < suite.case_count; ++c) {
            Test test(suite.cases[c].name);
            suite.cases[c].run(test);
            KtapWriter::Result result = test.failed() ? KtapWriter::Result::Fail
                : test.skip_reason()                  ? KtapWriter::Result::Skip
                                                      : KtapWriter::Result::Pass;
            suite_failed |= test.failed();
            writer.case_result(c + 1, suite.cases[c].name, result, test.skip_reason() ? test.skip_reason() : "");
        }
        if (suite.exit)
            suite.exit();
        writer.end_suite(s + 1, suite.name, suite_failed ? KtapWriter::Result::Fail : KtapWriter::Result::Pass);
    }
    g_writer = nullptr;
    return (int)writer.total_failed();
}
}

void Test::fail(const char* file, int line, const char* fmt, ...)
{
    m_failed = true;
    char message[384];
    va_list args;
    va_start(args, fmt);
    vformat(message, sizeof(message), fmt, args);
    va_end(args);
    char text[512];
    // KUnit's style: the location, then the expectation.
    format(text, sizeof(text), "EXPECTATION FAILED at %s:%d: %s", file, line, message);
    if (g_writer)
        g_writer->diagnostic(text);
}

void Test::log(const char* fmt, ...)
{
    char text[512];
    va_list args;
    va_start(args, fmt);
    vformat(text, sizeof(text), fmt, args);
    va_end(args);
    if (g_writer)
        g_writer->diagnostic(text);
}

usize suite_count()
{
    usize count = (usize)(__ktest_suites_end - __ktest_suites_start);
    for (auto& module : modules::list())
        count += module.suites().size();
    return count;
}

// Kernel suites first, then each loaded module's, in load order.
const Suite* suite_at(usize index)
{
    usize kernel = (usize)(__ktest_suites_end - __ktest_suites_start);
    if (index < kernel)
        return __ktest_suites_start[index];
    index -= kernel;
    for (auto& module : modules::list()) {
        if (index < module.suites().size())
            return module.suites()[index];
        index -= module.suites().size();
    }
    return nullptr;
}

int run_suites(const char* filter)
{
    usize total = suite_count();
    auto selected = try_kmalloc(sizeof(const Suite*) * (total ? total : 1));
    if (selected.is_error()) {
        log_err("selftest: cannot allocate the suite list");
        return 1;
    }
    auto** list = (const Suite**)selected.value();
    usize count = 0;
    for (usize i = 0; i < total; ++i)
        if (filter_matches(filter, suite_at(i)->name))
            list[count++] = suite_at(i);
    if (count == 0)
        log_warn("selftest: no suite matches '%s'", filter);
    int failures = run_list(list, count);
    kfree(list);
    return failures;
}

int run_suite_array(const Suite* const* suites, usize count) { return run_list(suites, count); }

} // namespace ktest
