#include "idaw/timing_histogram.h"

namespace idaw {

TimingSummary TimingHistogram::Snapshot::summarize(const Snapshot* earlier) const noexcept {
    TimingSummary s;
    std::array<std::uint64_t, kNumBins> counts{};
    std::uint64_t total = 0;
    for (int i = 0; i < kNumBins; ++i) {
        counts[i] = bins[i] - (earlier ? earlier->bins[i] : 0);
        total += counts[i];
    }
    s.blocks = total;
    s.over_budget = over_budget - (earlier ? earlier->over_budget : 0);
    s.max_us = static_cast<double>(max_ns) / 1000.0;
    if (total == 0) return s;
    auto percentile = [&](double q) {
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1));
        std::uint64_t seen = 0;
        for (int i = 0; i < kNumBins; ++i) {
            seen += counts[i];
            if (seen > rank) return bin_centre_ns(i) / 1000.0;
        }
        return bin_centre_ns(kNumBins - 1) / 1000.0;
    };
    s.p50_us = percentile(0.50);
    s.p99_us = percentile(0.99);
    // A bin's centre can sit above the true maximum; never report a percentile above it.
    if (s.max_us > 0.0) {
        if (s.p50_us > s.max_us) s.p50_us = s.max_us;
        if (s.p99_us > s.max_us) s.p99_us = s.max_us;
    }
    return s;
}

}  // namespace idaw
