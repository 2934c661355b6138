// The last stage of the chain: a soft limiter that nothing above full scale gets past.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace idaw {

/// Linked multi-channel safety limiter: a smoothed gain rider followed by a soft-knee clipper.
///
/// Below `kThreshold` both parts are exact identities (gain 1.0, no shaping), so quiet audio passes
/// bit for bit. Above it the rider pulls the level down (0.2 ms attack, 5 ms hold, 100 ms release)
/// and the clipper rounds off what the rider is too slow for, approaching but never reaching
/// kCeiling. There is no look-ahead, so it adds no latency.
class SafetyLimiter {
  public:
    static constexpr double kThreshold = 0.93;  ///< -0.63 dBFS: level where limiting starts
    static constexpr double kCeiling = 0.989;   ///< -0.1 dBFS: hard bound of the output

    /// Sets time constants for a sample rate and clears the state. Not real-time safe.
    void prepare(double sample_rate) noexcept {
        attack_ = 1.0 - std::exp(-1.0 / (0.0002 * sample_rate));
        release_ = 1.0 - std::exp(-1.0 / (0.100 * sample_rate));
        hold_samples_ = static_cast<int>(0.005 * sample_rate);
        reset();
    }
    /// Back to unity gain. Real-time safe.
    void reset() noexcept {
        gain_ = 1.0;
        hold_ = 0;
    }
    /// Limits `n` frames of planar audio in place; returns how many frames it changed. Real-time safe.
    std::uint64_t process(float* const* ch, int num_channels, int n) noexcept {
        std::uint64_t changed = 0;
        for (int i = 0; i < n; ++i) {
            double peak = 0.0;
            for (int c = 0; c < num_channels; ++c) peak = std::max(peak, static_cast<double>(std::fabs(ch[c][i])));
            const double wanted = peak > kThreshold ? kThreshold / peak : 1.0;
            if (wanted < gain_) {
                gain_ += (wanted - gain_) * attack_;
                hold_ = hold_samples_;
            } else if (hold_ > 0) {
                --hold_;
            } else if (gain_ != 1.0) {
                gain_ += (wanted - gain_) * release_;
                if (gain_ > 1.0 - 1e-7) gain_ = 1.0;  // land exactly, so transparency returns
            }
            if (gain_ == 1.0 && peak <= kThreshold) continue;
            ++changed;
            for (int c = 0; c < num_channels; ++c) ch[c][i] = static_cast<float>(soft_clip(ch[c][i] * gain_));
        }
        return changed;
    }
    /// Identity up to kThreshold, then a tanh knee whose slope starts at 1 and which tends to kCeiling.
    static double soft_clip(double x) noexcept {
        const double a = std::fabs(x);
        if (a <= kThreshold) return x;
        const double room = kCeiling - kThreshold;
        const double y = kThreshold + room * std::tanh((a - kThreshold) / room);
        return std::copysign(std::min(y, kCeiling), x);
    }

  private:
    double attack_ = 0.0, release_ = 0.0, gain_ = 1.0;
    int hold_samples_ = 0, hold_ = 0;
};

}  // namespace idaw
