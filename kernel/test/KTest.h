#pragma once
// In-kernel test framework in the style of Linux KUnit.
//
// Interface:
//   static void test_something(ktest::Test& t) { KEXPECT_EQ(t, 1 + 1, 2); }
//   KTEST_SUITE(my_suite, KTEST_CASE(test_something), ...);
//
// Suites register into the .ktest_suites linker section; the executor walks it on `selftest=all`
// or `selftest=<suite>[,<suite>...]` and prints KTAP version 1.
#include <ktl/Types.h>

namespace ktest {

class Test {
public:
    explicit Test(const char* name) : m_name(name) { }
    const char* name() const { return m_name; }
    // Records a failure with a printf-style explanation, printed as a KTAP diagnostic line.
    void fail(const char* file, int line, const char* fmt, ...) __attribute__((format(printf, 4, 5)));
    // Marks the case skipped ("ok N name # SKIP reason").
    void skip(const char* reason) { m_skip_reason = reason; }
    // A KTAP diagnostic line ("    # ...").
    void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    bool failed() const { return m_failed; }
    const char* skip_reason() const { return m_skip_reason; }

private:
    const char* m_name;
    const char* m_skip_reason { nullptr };
    bool m_failed { false };
};

struct Case {
    const char* name;
    void (*run)(Test&);
};

struct Suite {
    const char* name;
    const Case* cases;
    usize case_count;
    // Optional per-suite setup and teardown; init may return non-zero to skip the suite.
    int (*init)();
    void (*exit)();
};

// Runs the suites named by `filter` ("all" or a comma-separated list). Returns the number of
// failed cases. Prints KTAP to the kernel console; after the top-level plan, one "# plan: SUITE N"
// line per suite, so a run cut short by a panic still tells the harness what never reported.
// Suites named inject_* (they break the machine on purpose) run only when named, not under "all".
int run_suites(const char* filter);
// Runs an explicit array of suites (for modules' suites later), as one KTAP document.
int run_suite_array(const Suite* const* suites, usize count);
usize suite_count();
const Suite* suite_at(usize index);

} // namespace ktest

namespace ktest {
// The value a failed KEXPECT_EQ/NE prints: integers as they are, addresses by their value.
template<typename T>
constexpr unsigned long long printable(T value) { return (unsigned long long)value; }
template<AddressKind Kind>
constexpr unsigned long long printable(Address<Kind> address) { return address.ull(); }
}

#define KTEST_CASE(fn) ::ktest::Case { #fn, fn }

#define KTEST_SUITE_WITH(suite_name, init_fn, exit_fn, ...)                                      \
    static const ::ktest::Case suite_name##_ktest_cases[] = { __VA_ARGS__ };                      \
    static const ::ktest::Suite suite_name##_ktest_suite = { #suite_name, suite_name##_ktest_cases, \
        sizeof(suite_name##_ktest_cases) / sizeof(::ktest::Case), init_fn, exit_fn };            \
    [[gnu::used, gnu::section(".ktest_suites")]] static const ::ktest::Suite* const               \
        suite_name##_ktest_ptr = &suite_name##_ktest_suite;

#define KTEST_SUITE(suite_name, ...) KTEST_SUITE_WITH(suite_name, nullptr, nullptr, __VA_ARGS__)

#define KEXPECT_TRUE(t, cond)                                                           \
    do {                                                                                \
        if (!(cond)) (t).fail(__FILE__, __LINE__, "expected %s to be true", #cond);     \
    } while (0)
#define KEXPECT_FALSE(t, cond)                                                          \
    do {                                                                                \
        if (cond) (t).fail(__FILE__, __LINE__, "expected %s to be false", #cond);       \
    } while (0)
#define KEXPECT_EQ(t, a, b)                                                                              \
    do {                                                                                                 \
        auto _ka = (a);                                                                                  \
        auto _kb = (b);                                                                                  \
        if (!(_ka == _kb))                                                                               \
            (t).fail(__FILE__, __LINE__, "expected %s == %s (0x%llx vs 0x%llx)", #a, #b,                 \
                ::ktest::printable(_ka), ::ktest::printable(_kb));                                   \
    } while (0)
#define KEXPECT_NE(t, a, b)                                                                              \
    do {                                                                                                 \
        auto _ka = (a);                                                                                  \
        auto _kb = (b);                                                                                  \
        if (_ka == _kb)                                                                                  \
            (t).fail(__FILE__, __LINE__, "expected %s != %s (both 0x%llx)", #a, #b,                     \
                ::ktest::printable(_ka));                                                              \
    } while (0)
// The ASSERT forms end the case on failure.
#define KASSERT_TRUE(t, cond)                                                           \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            (t).fail(__FILE__, __LINE__, "assertion %s failed", #cond);                 \
            return;                                                                     \
        }                                                                               \
    } while (0)
#define KASSERT_EQ(t, a, b)                                                                              \
    do {                                                                                                 \
        auto _ka = (a);                                                                                  \
        auto _kb = (b);                                                                                  \
        if (!(_ka == _kb)) {                                                                             \
            (t).fail(__FILE__, __LINE__, "assertion %s == %s failed (0x%llx vs 0x%llx)", #a, #b,         \
                ::ktest::printable(_ka), ::ktest::printable(_kb));                                   \
            return;                                                                                      \
        }                                                                                                \
    } while (0)
