// Lock-free histogram of per-block processing time, written by the audio thread, read by anyone.
#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace idaw {

/// Percentiles of block processing time, in microseconds.
struct TimingSummary {
    std::uint64_t blocks = 0;
    std::uint64_t over_budget = 0;
    double p50_us = 0.0;
    double p99_us = 0.0;
    double max_us = 0.0;
};

/// Log-spaced histogram (16 bins per octave, about 4.4% wide) of nanosecond durations.
///
/// One writer (the audio thread) records; any thread may snapshot. Counters only grow, so a reader
/// gets per-interval figures by subtracting two snapshots.
class TimingHistogram {
  public:
    static constexpr int kBinsPerOctave = 16;
    static constexpr int kNumBins = 32 * kBinsPerOctave;  // 1 ns .. ~4 s

    /// Plain copy of the counters for a reader.
    struct Snapshot {
        std::array<std::uint64_t, kNumBins> bins{};
        std::uint64_t blocks = 0;
        std::uint64_t over_budget = 0;
        std::uint64_t max_ns = 0;  ///< largest duration since clear() (take_max() leaves it alone)
        /// Percentiles of everything counted in this snapshot, or since `earlier`.
        TimingSummary summarize(const Snapshot* earlier = nullptr) const noexcept;
    };

    /// Counts one block. Real-time safe (relaxed atomic increments, no locks).
    void record(std::uint64_t duration_ns, bool over_budget) noexcept {
        bins_[bin_of(duration_ns)].fetch_add(1, std::memory_order_relaxed);
        if (over_budget) over_budget_.fetch_add(1, std::memory_order_relaxed);
        // The all-time maximum has one writer: a plain load and store.
        if (duration_ns > max_ns_.load(std::memory_order_relaxed))
            max_ns_.store(duration_ns, std::memory_order_relaxed);
        std::uint64_t seen = window_max_ns_.load(std::memory_order_relaxed);
        // Only the reader's take_max() competes, so this loop ends after at most two tries.
        while (duration_ns > seen &&
               !window_max_ns_.compare_exchange_weak(seen, duration_ns, std::memory_order_relaxed)) {
        }
        blocks_.fetch_add(1, std::memory_order_release);
    }

    /// Copies the counters. Not for the audio thread (it is a 4 KB copy), but lock-free.
    Snapshot snapshot() const noexcept {
        Snapshot s;
        s.blocks = blocks_.load(std::memory_order_acquire);
        for (int i = 0; i < kNumBins; ++i) s.bins[i] = bins_[i].load(std::memory_order_relaxed);
        s.over_budget = over_budget_.load(std::memory_order_relaxed);
        s.max_ns = max_ns_.load(std::memory_order_relaxed);
        return s;
    }

    /// Returns the largest duration seen since the previous call and starts a new window.
    std::uint64_t take_max() noexcept { return window_max_ns_.exchange(0, std::memory_order_relaxed); }

    /// Zeroes every counter. Only while nothing records (e.g. in prepare()).
    void clear() noexcept {
        for (auto& b : bins_) b.store(0, std::memory_order_relaxed);
        blocks_.store(0, std::memory_order_relaxed);
        over_budget_.store(0, std::memory_order_relaxed);
        max_ns_.store(0, std::memory_order_relaxed);
        window_max_ns_.store(0, std::memory_order_relaxed);
    }

    /// Bin holding a duration. Real-time safe.
    static int bin_of(std::uint64_t ns) noexcept {
        if (ns <= 1) return 0;
        const int bin = static_cast<int>(std::log2(static_cast<double>(ns)) * kBinsPerOctave);
        return bin < kNumBins ? bin : kNumBins - 1;
    }
    /// Geometric centre of a bin in nanoseconds.
    static double bin_centre_ns(int bin) noexcept { return std::exp2((bin + 0.5) / kBinsPerOctave); }

  private:
    std::array<std::atomic<std::uint64_t>, kNumBins> bins_{};
    std::atomic<std::uint64_t> blocks_{0};
    std::atomic<std::uint64_t> over_budget_{0};
    std::atomic<std::uint64_t> max_ns_{0};
    std::atomic<std::uint64_t> window_max_ns_{0};
};

}  // namespace idaw
