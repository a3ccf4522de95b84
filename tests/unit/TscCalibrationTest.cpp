// Host tests for the calibration arithmetic: against synthetic clocks of known frequency, the
// estimate lies within its own error bound, the bound shrinks with the window and grows with the
// brackets, and a stated (CPUID) frequency is accepted only when the measurement agrees.
#include <lib/time/TscCalibration.h>

#include <gtest/gtest.h>
#include <random>

namespace {

// A sample of a counter running at `hz` whose bracket is `half` cycles wide on each side, with
// the reference instant placed anywhere inside it (offset in [-half, half]).
ClockSample sample_at(u64 reference_ns, u64 hz, u64 half, i64 offset)
{
    u64 true_cycles = (u64)((unsigned __int128)reference_ns * hz / 1000000000u);
    return { reference_ns, (u64)((i64)true_cycles + offset), half };
}

u64 error_ppm(u64 estimate, u64 truth) { return (estimate > truth ? estimate - truth : truth - estimate) * 1000000 / truth; }

}

TEST(TscCalibrationTest, ExactSamplesGiveTheFrequency)
{
    auto estimate = estimate_frequency(sample_at(1'000'000, 2'400'000'000, 0, 0), sample_at(3'000'000, 2'400'000'000, 0, 0), 0);
    EXPECT_EQ(estimate.hz, 2'400'000'000u);
    EXPECT_LE(estimate.error_ppm, 3u); // rounding only
    EXPECT_EQ(estimate.window_ns, 2'000'000u);
}

TEST(TscCalibrationTest, EstimateStaysWithinItsBound)
{
    std::mt19937_64 random(6);
    for (int trial = 0; trial < 20000; ++trial) {
        u64 hz = 100'000'000 + random() % 5'000'000'000;
        u64 half0 = random() % 20000, half1 = random() % 20000;
        i64 offset0 = half0 ? (i64)(random() % (2 * half0 + 1)) - (i64)half0 : 0;
        i64 offset1 = half1 ? (i64)(random() % (2 * half1 + 1)) - (i64)half1 : 0;
        u64 start_ns = 1'000'000 + random() % 1'000'000'000;
        u64 window_ns = 200'000 + random() % 20'000'000;
        auto estimate = estimate_frequency(sample_at(start_ns, hz, half0, offset0),
            sample_at(start_ns + window_ns, hz, half1, offset1), 10);
        if (estimate.error_ppm == UINT64_MAX)
            continue; // brackets wider than the window: no estimate, which is right
        // +1 ppm for the integer rounding of the synthetic samples themselves.
        ASSERT_LE(error_ppm(estimate.hz, hz), estimate.error_ppm + 1) << "trial " << trial << " hz " << hz;
    }
}

TEST(TscCalibrationTest, BoundShrinksWithTheWindowAndGrowsWithTheBrackets)
{
    u64 hz = 2'000'000'000;
    auto short_window = estimate_frequency(sample_at(0 + 1000, hz, 2000, 0), sample_at(1'001'000, hz, 2000, 0), 10);
    auto long_window = estimate_frequency(sample_at(1000, hz, 2000, 0), sample_at(20'001'000, hz, 2000, 0), 10);
    auto wide_brackets = estimate_frequency(sample_at(1000, hz, 20000, 0), sample_at(20'001'000, hz, 20000, 0), 10);
    EXPECT_GT(short_window.error_ppm, long_window.error_ppm);
    EXPECT_GT(wide_brackets.error_ppm, long_window.error_ppm);
    // 4000 cycles of bracket over 40M cycles is 100 ppm; 20 ns of reference over 20 ms is 1 ppm
    // (each rounded up).
    EXPECT_GE(long_window.error_ppm, 101u);
    EXPECT_LE(long_window.error_ppm, 104u);
}

TEST(TscCalibrationTest, NoWindowIsNoEstimate)
{
    ClockSample same { 5000, 12345, 0 };
    EXPECT_EQ(estimate_frequency(same, same, 10).error_ppm, UINT64_MAX);
    ClockSample backwards { 4000, 12000, 0 };
    EXPECT_EQ(estimate_frequency(same, backwards, 10).error_ppm, UINT64_MAX);
    EXPECT_FALSE(reported_frequency_agrees(2'000'000'000, estimate_frequency(same, backwards, 10)));
}

TEST(TscCalibrationTest, LongWindowsDoNotOverflow)
{
    // 30 s at 3 GHz: cycles * 1e9 would overflow 64 bits.
    u64 hz = 3'000'000'000;
    auto estimate = estimate_frequency(sample_at(1'000'000, hz, 100, 0), sample_at(30'001'000'000, hz, 100, 0), 10);
    EXPECT_LE(error_ppm(estimate.hz, hz), 1u);
    EXPECT_LE(estimate.error_ppm, 3u);
}

TEST(TscCalibrationTest, ReportedFrequencyMustAgree)
{
    CalibrationEstimate measured { 2'400'000'000, 200, 1'000'000 };
    EXPECT_TRUE(reported_frequency_agrees(2'400'000'000, measured));
    EXPECT_TRUE(reported_frequency_agrees(2'400'700'000, measured));  // 292 ppm: within 200 + 100
    EXPECT_FALSE(reported_frequency_agrees(2'401'000'000, measured)); // 417 ppm
    EXPECT_FALSE(reported_frequency_agrees(2'000'000'000, measured));
    EXPECT_FALSE(reported_frequency_agrees(0, measured));
    EXPECT_FALSE(reported_frequency_agrees(2'400'000'000, CalibrationEstimate {}));
}
