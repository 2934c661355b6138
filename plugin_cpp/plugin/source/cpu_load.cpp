#include "cpu_load.h"

namespace idaw::plugin {

CpuLoad cpu_load_between(const TimingHistogram::Snapshot& earlier, const TimingHistogram::Snapshot& later,
                         std::uint64_t frames, double sample_rate) noexcept {
    CpuLoad out;
    // The engine clears its histogram when prepared again: then count from zero.
    static const TimingHistogram::Snapshot kEmpty{};
    const TimingHistogram::Snapshot& base = later.blocks < earlier.blocks ? kEmpty : earlier;
    const TimingSummary summary = later.summarize(&base);
    out.blocks = summary.blocks;
    out.over_budget = summary.over_budget;
    out.p99_us = summary.p99_us;
    out.max_us = summary.max_us;
    if (frames == 0 || sample_rate <= 0.0) return out;
    double busy_ns = 0.0;
    for (int i = 0; i < TimingHistogram::kNumBins; ++i) {
        const std::uint64_t count = later.bins[i] - base.bins[i];
        if (count != 0) busy_ns += static_cast<double>(count) * TimingHistogram::bin_centre_ns(i);
    }
    out.load = busy_ns / (1e9 * static_cast<double>(frames) / sample_rate);
    return out;
}

}  // namespace idaw::plugin
