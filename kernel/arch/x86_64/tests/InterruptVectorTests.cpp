// Claiming interrupt vectors: allocate_vector() reserves what it hands out, so two callers that
// allocate before either registers never share a vector (a check-then-set race without the lock
// and the reservation), and a delivered interrupt reaches the handler registered on it.
#include <arch/x86_64/Interrupts.h>
#include <test/KTest.h>

namespace {

volatile u32 g_hits = 0;
void count_hit(TrapFrame&, void*) { g_hits = g_hits + 1; }

void test_two_allocations_get_distinct_vectors(ktest::Test& t)
{
    auto first = interrupts::allocate_vector();
    auto second = interrupts::allocate_vector();
    KASSERT_TRUE(t, !first.is_error());
    bool second_ok = !second.is_error();
    u8 a = first.value(), b = second_ok ? second.value() : 0;
    bool a_reserved = interrupts::is_reserved_for_tests(a);
    if (second_ok)
        interrupts::unregister_handler(b);
    interrupts::unregister_handler(a);
    KASSERT_TRUE(t, second_ok);
    KEXPECT_NE(t, a, b);
    KEXPECT_TRUE(t, a_reserved);
    KEXPECT_TRUE(t, interrupts::is_free_for_tests(a));
    KEXPECT_TRUE(t, interrupts::is_free_for_tests(b));
}

void test_reserved_vector_takes_its_handler(ktest::Test& t)
{
    auto vector = interrupts::allocate_vector();
    KASSERT_TRUE(t, !vector.is_error());
    u8 v = vector.value();
    auto registered = interrupts::register_handler(v, count_hit, nullptr);
    // A second registration on the now-owned vector is refused.
    auto again = interrupts::register_handler(v, count_hit, nullptr);
    g_hits = 0;
    if (!registered.is_error()) {
        // Deliver it as the trap stub would: the dispatcher must find the handler, not the
        // reservation. (The LAPIC EOI it sends with nothing in service is ignored.)
        TrapFrame frame {};
        frame.vector = v;
        trap_dispatch(&frame);
    }
    interrupts::unregister_handler(v);
    KASSERT_TRUE(t, !registered.is_error());
    KASSERT_TRUE(t, again.is_error());
    KEXPECT_EQ(t, again.error().code(), (int)EBUSY);
    KEXPECT_EQ(t, g_hits, 1u);
    KEXPECT_TRUE(t, interrupts::is_free_for_tests(v));
}

void test_exhaustion_is_ebusy_and_recovers(ktest::Test& t)
{
    // Claim every free dynamic vector: each exactly once, then EBUSY; giving them back restores all.
    static u8 claimed[256];
    usize count = 0;
    bool duplicate = false;
    for (;;) {
        auto vector = interrupts::allocate_vector();
        if (vector.is_error()) {
            KEXPECT_EQ(t, vector.error().code(), (int)EBUSY);
            break;
        }
        for (usize i = 0; i < count; ++i)
            duplicate |= claimed[i] == vector.value();
        if (count == sizeof(claimed) || duplicate)
            break;
        claimed[count++] = vector.value();
    }
    for (usize i = 0; i < count; ++i)
        interrupts::unregister_handler(claimed[i]);
    KEXPECT_FALSE(t, duplicate);
    KEXPECT_TRUE(t, count > 0 && count <= interrupts::LAST_DYNAMIC_VECTOR - interrupts::FIRST_DYNAMIC_VECTOR + 1u);
    auto after = interrupts::allocate_vector();
    KASSERT_TRUE(t, !after.is_error());
    interrupts::unregister_handler(after.value());
}

} // namespace

KTEST_SUITE(interrupt_vectors,
    KTEST_CASE(test_two_allocations_get_distinct_vectors),
    KTEST_CASE(test_reserved_vector_takes_its_handler),
    KTEST_CASE(test_exhaustion_is_ebusy_and_recovers));
