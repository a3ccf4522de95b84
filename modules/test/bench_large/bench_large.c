/* A large module for the loader benchmark: ~2000 functions and a table of pointers to them, so
 * relocation work (PC32 calls, 64-bit absolute pointers) dominates, as in a real driver stack. */
#include <homeos/homeos.h>

#define F(n) \
    __attribute__((noinline)) int bench_f##n(int x) { return x * (n + 1) + (int)kmalloc_size_hint[(n) % 16]; }
static const int kmalloc_size_hint[16] = { 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 1, 2, 3, 4 };

#define F10(n) F(n##0) F(n##1) F(n##2) F(n##3) F(n##4) F(n##5) F(n##6) F(n##7) F(n##8) F(n##9)
#define F100(n) F10(n##0) F10(n##1) F10(n##2) F10(n##3) F10(n##4) F10(n##5) F10(n##6) F10(n##7) F10(n##8) F10(n##9)
F100(1) F100(2) F100(3) F100(4) F100(5) F100(6) F100(7) F100(8) F100(9)
F100(10) F100(11) F100(12) F100(13) F100(14) F100(15) F100(16) F100(17) F100(18) F100(19)

#define P(n) bench_f##n,
#define P10(n) P(n##0) P(n##1) P(n##2) P(n##3) P(n##4) P(n##5) P(n##6) P(n##7) P(n##8) P(n##9)
#define P100(n) P10(n##0) P10(n##1) P10(n##2) P10(n##3) P10(n##4) P10(n##5) P10(n##6) P10(n##7) P10(n##8) P10(n##9)
static int (*const table[])(int) = {
    P100(1) P100(2) P100(3) P100(4) P100(5) P100(6) P100(7) P100(8) P100(9)
    P100(10) P100(11) P100(12) P100(13) P100(14) P100(15) P100(16) P100(17) P100(18) P100(19)
};

static int bench_large_init(void)
{
    int sum = 0;
    for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i += 97)
        sum += table[i](1);
    return sum == 0x7fffffff; /* never true: keeps the calls */
}
module_init(bench_large_init);
MODULE_LICENSE("MIT");
MODULE_DESCRIPTION("Loader benchmark: a large module");
