// TimingHistogram: bin placement, percentiles of known durations, interval summaries and a concurrent reader.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

#include "idaw/timing_histogram.h"
#include "test_support.h"

using idaw::TimingHistogram;
using idaw::TimingSummary;

namespace {

// A bin's geometric centre is within half a bin (2^(1/32), 2.2%) of anything in the bin; the small extra
// allows for rounding in log2/exp2.
const double kHalfBin = std::exp2(0.5 / TimingHistogram::kBinsPerOctave) * (1.0 + 1e-9);

/// Nearest-rank percentile the way summarize() defines it: the value at index floor(q * (n - 1)) once sorted.
double true_percentile_us(std::vector<std::uint64_t> ns, double q) {
    std::sort(ns.begin(), ns.end());
    return static_cast<double>(ns[static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1))]) / 1000.0;
}

/// Records `ns` into a fresh histogram and checks p50, p99, max and the block count against the exact values.
void check_percentiles(const std::vector<std::uint64_t>& ns) {
    TimingHistogram h;
    for (std::uint64_t d : ns) h.record(d, false);
    const TimingSummary s = h.snapshot().summarize();
    const double p50 = true_percentile_us(ns, 0.50), p99 = true_percentile_us(ns, 0.99);
    const double max_us = static_cast<double>(*std::max_element(ns.begin(), ns.end())) / 1000.0;
    INFO("p50 " << s.p50_us << " (exact " << p50 << "), p99 " << s.p99_us << " (exact " << p99 << ")");
    CHECK(s.blocks == ns.size());
    CHECK(s.max_us == doctest::Approx(max_us).epsilon(1e-12));
    CHECK(s.p50_us <= p50 * kHalfBin);
    CHECK(s.p50_us >= p50 / kHalfBin);
    CHECK(s.p99_us <= p99 * kHalfBin);
    CHECK(s.p99_us >= p99 / kHalfBin);
    CHECK(s.p50_us <= s.p99_us);
    CHECK(s.p99_us <= s.max_us);
}

}  // namespace

TEST_CASE("bin_of places every duration between its bin's edges") {
    CHECK(TimingHistogram::bin_of(0) == 0);
    CHECK(TimingHistogram::bin_of(1) == 0);
    CHECK(TimingHistogram::bin_of(2) == TimingHistogram::kBinsPerOctave);
    CHECK(TimingHistogram::bin_of(1024) == 10 * TimingHistogram::kBinsPerOctave);
    CHECK(TimingHistogram::bin_of(~0ull) == TimingHistogram::kNumBins - 1);  // overflow bin, never out of range
    int previous = 0;
    for (double ns = 2.0; ns < 4.0e9; ns *= 1.0137) {
        const auto d = static_cast<std::uint64_t>(ns);
        const int bin = TimingHistogram::bin_of(d);
        INFO("duration " << d << " ns -> bin " << bin);
        REQUIRE(bin >= previous);  // monotone
        REQUIRE(bin < TimingHistogram::kNumBins);
        const double lo = std::exp2(static_cast<double>(bin) / TimingHistogram::kBinsPerOctave);
        const double hi = std::exp2(static_cast<double>(bin + 1) / TimingHistogram::kBinsPerOctave);
        REQUIRE(static_cast<double>(d) >= lo * (1.0 - 1e-12));
        REQUIRE(static_cast<double>(d) < hi * (1.0 + 1e-12));
        previous = bin;
    }
}

TEST_CASE("percentiles of known durations fall within the bin resolution") {
    SUBCASE("one repeated duration") { check_percentiles(std::vector<std::uint64_t>(1000, 12345)); }
    SUBCASE("uniform 1..1000 us") {
        std::vector<std::uint64_t> ns(1000);
        for (std::size_t i = 0; i < ns.size(); ++i) ns[i] = (i + 1) * 1000;
        std::reverse(ns.begin(), ns.end());  // recording order must not matter
        check_percentiles(ns);
    }
    SUBCASE("bimodal: 90% at 50 us, 10% at 2 ms") {
        std::vector<std::uint64_t> ns(900, 50'000);
        ns.insert(ns.end(), 100, 2'000'000);
        check_percentiles(ns);
    }
    SUBCASE("log-uniform 200 ns .. 20 ms") {
        idaw::test::Rng rng(7);
        std::vector<std::uint64_t> ns(20000);
        for (auto& d : ns) d = static_cast<std::uint64_t>(std::exp(rng.uniform(std::log(200.0), std::log(2.0e7))));
        check_percentiles(ns);
    }
}

TEST_CASE("a percentile is within half a bin of the duration, wherever the duration sits in its bin") {
    // 99 blocks at d and one far slower, so the clamp to the maximum cannot hide a misplaced bin centre.
    int checked = 0;
    for (double d = 1000.0; d < 1.0e7; d *= 1.0071) {
        const auto ns = static_cast<std::uint64_t>(d);
        TimingHistogram h;
        for (int i = 0; i < 99; ++i) h.record(ns, false);
        h.record(ns * 100, false);
        const TimingSummary s = h.snapshot().summarize();
        const double exact_us = static_cast<double>(ns) / 1000.0;
        INFO("duration " << ns << " ns: p50 " << s.p50_us << " us, p99 " << s.p99_us << " us");
        REQUIRE(s.p50_us <= exact_us * kHalfBin);
        REQUIRE(s.p50_us >= exact_us / kHalfBin);
        REQUIRE(s.p99_us == s.p50_us);
        ++checked;
    }
    CHECK(checked > 1000);  // about 70 points per bin-octave, so every part of a bin is visited
}

TEST_CASE("counters, max window, interval summaries and clear") {
    TimingHistogram h;
    CHECK(h.snapshot().summarize().blocks == 0);
    CHECK(h.snapshot().summarize().p99_us == 0.0);
    for (int i = 0; i < 100; ++i) h.record(10'000, i % 10 == 0);  // 10 us, every tenth over budget
    const TimingHistogram::Snapshot first = h.snapshot();
    CHECK(first.blocks == 100);
    CHECK(first.over_budget == 10);
    CHECK(first.max_ns == 10'000);
    CHECK(std::accumulate(first.bins.begin(), first.bins.end(), std::uint64_t{0}) == 100);

    for (int i = 0; i < 50; ++i) h.record(1'000'000, true);  // 1 ms
    const TimingHistogram::Snapshot second = h.snapshot();
    const TimingSummary interval = second.summarize(&first);
    CHECK(interval.blocks == 50);
    CHECK(interval.over_budget == 50);
    CHECK(interval.p50_us == doctest::Approx(1000.0).epsilon(0.022));  // only the 1 ms blocks are in the interval
    CHECK(second.summarize().p50_us == doctest::Approx(10.0).epsilon(0.022));  // 100 of 150 blocks took 10 us

    CHECK(h.take_max() == 1'000'000);
    CHECK(h.take_max() == 0);                 // a new window starts
    CHECK(h.snapshot().max_ns == 1'000'000);  // while the all-time maximum stays
    h.record(20'000, false);
    CHECK(h.take_max() == 20'000);
    CHECK(h.snapshot().max_ns == 1'000'000);

    h.clear();
    const TimingHistogram::Snapshot cleared = h.snapshot();
    CHECK(cleared.blocks == 0);
    CHECK(cleared.over_budget == 0);
    CHECK(cleared.max_ns == 0);
    CHECK(std::accumulate(cleared.bins.begin(), cleared.bins.end(), std::uint64_t{0}) == 0);
}

TEST_CASE("a concurrent reader never sees a block counted before its bin") {
    const std::uint64_t n = idaw::test::kThreadSanitizer ? 200'000 : 2'000'000;
    TimingHistogram h;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        idaw::test::Rng rng(3);
        for (std::uint64_t i = 0; i < n; ++i) h.record(1000 + rng.next() % 1'000'000, (i & 7) == 0);
        done.store(true, std::memory_order_release);
    });
    std::uint64_t snapshots = 0, violations = 0, regressions = 0, last_blocks = 0;
    for (;;) {
        const bool finished = done.load(std::memory_order_acquire);
        const TimingHistogram::Snapshot s = h.snapshot();
        const std::uint64_t in_bins = std::accumulate(s.bins.begin(), s.bins.end(), std::uint64_t{0});
        // record() bumps the bin, then publishes `blocks` with release; snapshot() reads `blocks` first with acquire.
        if (in_bins < s.blocks) ++violations;
        if (s.blocks < last_blocks) ++regressions;
        last_blocks = s.blocks;
        ++snapshots;
        if (finished) break;
    }
    writer.join();
    const TimingHistogram::Snapshot end = h.snapshot();
    CHECK(violations == 0);
    CHECK(regressions == 0);
    CHECK(end.blocks == n);
    CHECK(std::accumulate(end.bins.begin(), end.bins.end(), std::uint64_t{0}) == n);
    CHECK(end.over_budget == n / 8);
    MESSAGE(snapshots << " snapshots taken while the writer ran");
}
