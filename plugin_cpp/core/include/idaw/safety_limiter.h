// The last stage of the chain: a safety limiter that acts only on what exceeds full scale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace idaw {

/// Linked multi-channel safety limiter: a gain rider that acts only above full scale.
///
/// Transparent up to full scale: while the gain is 1.0 and every channel of a frame is within ±kCeiling the
/// frame is not touched at all, so a neutral chain passes any input within ±1.0 bit for bit (a mastered
/// track peaking at -0.01 dBFS included). A frame whose peak exceeds kCeiling gets gain = min(gain,
/// kCeiling / peak) on that very sample (instant attack), so no sample ever leaves above full scale and no
/// clipper is needed. The gain is held for 5 ms after the last sample that lowered it, then released (100 ms
/// time constant) back to exactly 1.0, where transparency returns.
///
/// Why no look-ahead: a look-ahead limiter would need latency (the plugin would report it, and live and
/// offline renders would no longer line up sample for sample). Overs only happen when the chain adds gain (or
/// the input itself is beyond full scale), so the price of an instant gain drop (a brief distortion on the
/// over, as the gain steps down within one sample) is paid only there, never by material that already fits.
class SafetyLimiter {
  public:
    static constexpr float kCeiling = 1.0f;  ///< full scale: the level above which it acts, and the output bound

    /// Sets time constants for a sample rate and clears the state. Not real-time safe.
    void prepare(double sample_rate) noexcept {
        release_ = 1.0 - std::exp(-1.0 / (0.100 * sample_rate));
        hold_samples_ = static_cast<int>(0.005 * sample_rate);
        reset();
    }
    /// Back to unity gain. Real-time safe.
    void reset() noexcept {
        gain_ = 1.0;
        hold_ = 0;
    }
    /// Current gain (1.0 when idle). Real-time safe.
    double gain() const noexcept { return gain_; }

    /// Limits `n` frames of planar audio in place; returns how many frames it changed. The samples must be
    /// finite (the engine sanitises its input and recovers from non-finite filter output before this stage).
    /// Real-time safe.
    std::uint64_t process(float* const* ch, int num_channels, int n) noexcept {
        std::uint64_t changed = 0;
        for (int i = 0; i < n; ++i) {
            float peak = 0.0f;
            for (int c = 0; c < num_channels; ++c) peak = std::max(peak, std::fabs(ch[c][i]));
            // Compared in float, the engine's sample type: exactly ±1.0 is within full scale.
            const bool over = peak > kCeiling;
            const double wanted = over ? kCeiling / static_cast<double>(peak) : 1.0;
            if (wanted < gain_) {
                gain_ = wanted;  // instant attack: this very sample lands on full scale
                hold_ = hold_samples_;
            } else if (hold_ > 0) {
                --hold_;
            } else if (gain_ != 1.0) {
                // Release towards what this frame allows (never above it, so no sample can exceed the ceiling).
                gain_ += (wanted - gain_) * release_;
                if (gain_ > 1.0 - 1e-7) gain_ = 1.0;  // land exactly, so transparency returns
            }
            if (gain_ == 1.0 && !over) continue;
            ++changed;
            for (int c = 0; c < num_channels; ++c) ch[c][i] = scaled(ch[c][i], gain_);
        }
        return changed;
    }

    /// `x * gain` rounded to float and bounded to ±kCeiling. With gain ≤ kCeiling / |x| the product is within
    /// full scale in exact arithmetic; the clamp only catches a rounding step above it. Real-time safe.
    static float scaled(float x, double gain) noexcept {
        return std::clamp(static_cast<float>(static_cast<double>(x) * gain), -kCeiling, kCeiling);
    }

  private:
    double release_ = 0.0, gain_ = 1.0;
    int hold_samples_ = 0, hold_ = 0;
};

}  // namespace idaw
