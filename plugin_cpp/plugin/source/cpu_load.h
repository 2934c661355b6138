// Audio-thread load for the editor, computed from the engine's timing histogram.
#pragma once

#include <cstdint>

#include "idaw/timing_histogram.h"

namespace idaw::plugin {

/// What the editor shows about the audio thread over the last interval.
struct CpuLoad {
    double load = 0.0;    ///< engine time / audio time (1.0 = 100 % of one core for real time)
    double p99_us = 0.0;  ///< 99th percentile of block processing time
    double max_us = 0.0;  ///< largest block since the engine was prepared
    std::uint64_t blocks = 0;
    std::uint64_t over_budget = 0;
};

/// Load between two histogram snapshots during which `frames` frames were processed at `sample_rate`: the sum of
/// block times (each block counted at its bin's centre, within 4.4 %) over the audio's duration.
CpuLoad cpu_load_between(const TimingHistogram::Snapshot& earlier, const TimingHistogram::Snapshot& later,
                         std::uint64_t frames, double sample_rate) noexcept;

}  // namespace idaw::plugin
