// The mastering limiter: look-ahead, stereo-linked, true-peak (8x oversampled) detection.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace idaw {

/// The limiter's settings.
struct TruePeakLimiterSettings {
    double ceiling_dbtp = -1.0;  ///< the true peak (dBTP) no output may exceed
    double lookahead_ms = 2.0;   ///< how long before a peak the gain starts to fall (the attack; adds latency)
    double release_ms = 100.0;   ///< time constant of the gain's return after a peak
};

/// Look-ahead limiter whose output's true peak stays at or below a ceiling.
///
/// Detection: each channel is interpolated 8x by a Kaiser-windowed-sinc polyphase filter of 32 taps per phase
/// (within 0.012 of a unit sine up to 20 kHz at 48 kHz); the loudest of the sample and its seven interpolated
/// neighbours, over all channels, is the frame's true peak, and ceiling / true peak (at most 1) the gain it asks
/// for. ITU-R BS.1770-4 Annex 2 defines true peak at 4x, which reads a sine near 20 kHz up to 0.5 dB below its
/// crest (the crest can fall midway between two of its points); 8x reads at most 0.12 dB low, so an output this
/// limiter holds at the ceiling also meets it by any 4x meter.
///
/// Gain: the asked gains go through a sliding minimum over kSpread + W frames (W = the look-ahead), then a release
/// (the gain falls at once to what is asked, and rises toward it with the release time constant), then a moving
/// average over W frames, and multiply the input delayed by latency() frames. Every value the average takes in is
/// at most the gain asked for within kGuard frames either side of the delayed frame, so each output sample and each
/// interpolated point between samples near it is scaled by no more than its own ceiling / true peak: the gain
/// reaches the required level by the peak, in a straight-line ramp over W frames (no click, no overshoot), instead
/// of jumping there. The moving average is the scheme of e.g. Signalsmith's limiter; the true-peak spread is ours.
///
/// Transparent below the ceiling: while no true peak reaches it, every gain is exactly 1.0 and the output is the
/// input delayed by latency() frames, bit for bit. Not in the engine's chain (it has latency, the live chain has
/// none): it runs where latency costs nothing, at the end of an offline render (idaw master, the song sketch).
class TruePeakLimiter {
  public:
    static constexpr int kOversampling = 8;                   ///< detection points per sample (BS.1770: 4)
    static constexpr int kTapsPerPhase = 32;                  ///< interpolator taps per phase
    static constexpr double kKaiserBeta = 5.0;                ///< the interpolator's window (see design_interpolator)
    static constexpr int kDetectorDelay = kTapsPerPhase / 2;  ///< frames the detector lags its input
    static constexpr int kGuard = kTapsPerPhase / 2;          ///< frames either side a frame's asked gain covers
    static constexpr int kSpread = 2 * kGuard + 1;            ///< extra frames in the sliding minimum for the guard
    static constexpr int kMaxChannels = 8;                    ///< channels per frame it can link
    static constexpr double kDbPerNeper = 8.685889638065035;  ///< 20 / ln(10)

    /// Sizes the delay lines for `channels` channels at `sample_rate` and clears the state; the settings are
    /// clamped to what it can do (look-ahead 0.1..50 ms, release 1..5000 ms, ceiling -60..0 dBTP). Allocates: not
    /// real-time safe.
    void prepare(double sample_rate, int channels, const TruePeakLimiterSettings& settings) {
        channels_ = std::clamp(channels, 1, kMaxChannels);
        const double lookahead_ms = std::clamp(settings.lookahead_ms, 0.1, 50.0);
        const double release_ms = std::clamp(settings.release_ms, 1.0, 5000.0);
        ceiling_ = std::exp(std::clamp(settings.ceiling_dbtp, -60.0, 0.0) / kDbPerNeper);
        window_ = std::max(1, static_cast<int>(std::lround(lookahead_ms * 1e-3 * sample_rate)));
        release_ = 1.0 - std::exp(-1000.0 / (release_ms * sample_rate));
        latency_ = window_ + kGuard + kDetectorDelay;
        design_interpolator();
        min_span_ = window_ + kSpread;
        min_values_.assign(static_cast<std::size_t>(min_span_), 1.0);
        min_times_.assign(static_cast<std::size_t>(min_span_), 0);
        average_ring_.assign(static_cast<std::size_t>(window_), 1.0);
        for (auto& line : delay_) line.assign(static_cast<std::size_t>(latency_), 0.0f);
        reset();
    }

    /// Back to silence and unity gain (the delay lines hold zeros). Real-time safe.
    void reset() noexcept {
        for (auto& h : history_) h.fill(0.0f);
        history_pos_ = 0;
        for (auto& line : delay_) std::fill(line.begin(), line.end(), 0.0f);
        std::fill(average_ring_.begin(), average_ring_.end(), 1.0);
        average_sum_ = static_cast<double>(window_);
        average_pos_ = 0;
        ones_ = window_;
        min_head_ = min_count_ = 0;
        released_ = 1.0;
        gain_ = 1.0;
        delay_pos_ = 0;
        time_ = 0;
        lowest_gain_ = 1.0;
    }

    /// Channels per frame (as prepared).
    int channels() const noexcept { return channels_; }
    /// Frames between an input sample and the output sample it becomes.
    int latency() const noexcept { return latency_; }
    /// The ceiling as a linear amplitude.
    double ceiling() const noexcept { return ceiling_; }
    /// The gain applied to the last output frame (1.0 when idle).
    double gain() const noexcept { return gain_; }
    /// The largest gain reduction (dB, >= 0) since prepare() or reset().
    double peak_reduction_db() const noexcept {
        return lowest_gain_ < 1.0 ? -kDbPerNeper * std::log(lowest_gain_) : 0.0;
    }

    /// Limits `n` frames of planar audio in place: output frame i is input frame i - latency() (zeros before the
    /// first input) times the gain. Samples must be finite. Real-time safe.
    void process(float* const* ch, int n) noexcept {
        for (int i = 0; i < n; ++i) {
            const double asked = asked_gain(ch, i);
            push_minimum(asked);
            const double held = min_values_[static_cast<std::size_t>(min_head_)];
            // Release: falls at once to what is held, rises toward it with the release time constant.
            released_ = held < released_ ? held : released_ + (held - released_) * release_;
            if (held == 1.0 && released_ > 1.0 - 1e-9) released_ = 1.0;  // land exactly: transparency returns
            average_sum_ += released_ - average_ring_[static_cast<std::size_t>(average_pos_)];
            average_ring_[static_cast<std::size_t>(average_pos_)] = released_;
            average_pos_ = average_pos_ + 1 == window_ ? 0 : average_pos_ + 1;
            // Once the window holds only ones the running sum is set to exactly window_ (its rounding errors would
            // otherwise keep the gain a hair below 1.0 for ever), so an idle limiter's gain is exactly 1.0.
            ones_ = released_ == 1.0 ? std::min(ones_ + 1, window_) : 0;  // saturates: no overflow in long runs
            if (ones_ >= window_) average_sum_ = static_cast<double>(window_);
            gain_ = std::min(1.0, average_sum_ / static_cast<double>(window_));
            lowest_gain_ = std::min(lowest_gain_, gain_);
            const auto slot = static_cast<std::size_t>(delay_pos_);
            for (int c = 0; c < channels_; ++c) {
                const float delayed = delay_[static_cast<std::size_t>(c)][slot];
                delay_[static_cast<std::size_t>(c)][slot] = ch[c][i];
                const float limit = static_cast<float>(ceiling_);
                ch[c][i] = gain_ == 1.0 ? delayed : std::clamp(static_cast<float>(delayed * gain_), -limit, limit);
            }
            delay_pos_ = delay_pos_ + 1 == latency_ ? 0 : delay_pos_ + 1;
            ++time_;
        }
    }

    /// The interpolated value at point `phase` / kOversampling (phase 1..kOversampling - 1) between
    /// samples[kDetectorDelay - 1] and samples[kDetectorDelay] of kTapsPerPhase consecutive samples (the detector's
    /// formula, for tests).
    double interpolate(const float* samples, int phase) const noexcept {
        return static_cast<double>(interpolate_all(samples)[static_cast<std::size_t>(phase)]);
    }

  private:
    using Points = std::array<float, kOversampling>;

    /// All kOversampling points (phase 0 is the sample itself) of the interval after samples[kDetectorDelay - 1].
    /// Tap-major, so that the loop over the points is one vector multiply-add per tap (no reassociation needed):
    /// the detector costs about a tenth of a phase-major dot product.
    Points interpolate_all(const float* samples) const noexcept {
#if defined(__GNUC__)
        // GCC and Clang vector extensions: two 4-lane multiply-adds per tap (SSE or NEON), whatever the optimiser
        // would otherwise make of the two loops (GCC's -O3 vectorised over the taps instead, with shuffles, at a
        // third of the speed; 8-lane vectors are split through memory on a baseline x86-64 build).
        static_assert(kOversampling == 8, "two 4-lane halves");
        typedef float Lanes __attribute__((vector_size(4 * sizeof(float))));
        Lanes low = {}, high = {};
        for (int j = 0; j < kTapsPerPhase; ++j) {
            Lanes a, b;
            std::memcpy(&a, coefficients_[static_cast<std::size_t>(j)].data(), sizeof a);
            std::memcpy(&b, coefficients_[static_cast<std::size_t>(j)].data() + 4, sizeof b);
            low += a * samples[j];
            high += b * samples[j];
        }
        Points out;
        std::memcpy(out.data(), &low, sizeof low);
        std::memcpy(out.data() + 4, &high, sizeof high);
        return out;
#else
        Points sum{};
        for (int j = 0; j < kTapsPerPhase; ++j) {
            const auto& taps = coefficients_[static_cast<std::size_t>(j)];
            for (int k = 0; k < kOversampling; ++k)
                sum[static_cast<std::size_t>(k)] += taps[static_cast<std::size_t>(k)] * samples[j];
        }
        return sum;
#endif
    }

    /// The gain frame i asks for: ceiling / (its true peak), at most 1. Moves frame i into the detector: each
    /// channel's history is a ring written twice (at pos and pos + kTapsPerPhase), so its last kTapsPerPhase
    /// samples are always contiguous without shifting them.
    double asked_gain(float* const* ch, int i) noexcept {
        float peak = 0.0f;
        const auto pos = static_cast<std::size_t>(history_pos_);
        for (int c = 0; c < channels_; ++c) {
            auto& h = history_[static_cast<std::size_t>(c)];
            h[pos] = h[pos + kTapsPerPhase] = ch[c][i];
            const Points points = interpolate_all(h.data() + pos + 1);
            for (float v : points) peak = std::max(peak, std::fabs(v));
        }
        history_pos_ = history_pos_ + 1 == kTapsPerPhase ? 0 : history_pos_ + 1;
        return peak > ceiling_ ? ceiling_ / static_cast<double>(peak) : 1.0;
    }

    /// Sliding minimum over the last min_span_ asked gains: a monotonic queue in a fixed ring (amortised O(1)).
    void push_minimum(double value) noexcept {
        auto at = [&](int k) { return static_cast<std::size_t>((min_head_ + k) % min_span_); };
        // Drop the oldest once it leaves the window, then every value at the back no smaller than the new one.
        if (min_count_ > 0 && min_times_[at(0)] + static_cast<std::uint64_t>(min_span_) <= time_) {
            min_head_ = (min_head_ + 1) % min_span_;
            --min_count_;
        }
        while (min_count_ > 0 && min_values_[at(min_count_ - 1)] >= value) --min_count_;
        min_values_[at(min_count_)] = value;
        min_times_[at(min_count_)] = time_;
        ++min_count_;
    }

    /// Windowed-sinc polyphase coefficients: phase k holds the taps for the point k / kOversampling of a sample after
    /// history[kDetectorDelay - 1]; a Kaiser window (beta kKaiserBeta, about 50 dB of stop band) over the taps,
    /// each phase normalised to unit gain at DC.
    void design_interpolator() noexcept {
        constexpr double kPi = 3.14159265358979323846;
        constexpr double kHalfWidth = kDetectorDelay + 0.5;  // the window is zero just beyond the outermost taps
        for (int k = 0; k < kOversampling; ++k) {
            std::array<double, kTapsPerPhase> taps{};
            double sum = 0.0;
            for (int j = 0; j < kTapsPerPhase; ++j) {
                const double t = (j - (kDetectorDelay - 1)) - static_cast<double>(k) / kOversampling;
                const double sinc = t == 0.0 ? 1.0 : std::sin(kPi * t) / (kPi * t);
                const double r = t / kHalfWidth;
                const double window =
                    bessel_i0(kKaiserBeta * std::sqrt(std::max(0.0, 1.0 - r * r))) / bessel_i0(kKaiserBeta);
                taps[static_cast<std::size_t>(j)] = sinc * window;
                sum += sinc * window;
            }
            for (int j = 0; j < kTapsPerPhase; ++j)
                coefficients_[static_cast<std::size_t>(j)][static_cast<std::size_t>(k)] =
                    static_cast<float>(taps[static_cast<std::size_t>(j)] / sum);
        }
    }

    /// The modified Bessel function of the first kind, order 0 (its power series; converges fast for x <= 10).
    static double bessel_i0(double x) noexcept {
        double sum = 1.0, term = 1.0;
        for (int k = 1; k < 50 && term > 1e-16 * sum; ++k) {
            term *= (x / (2.0 * k)) * (x / (2.0 * k));
            sum += term;
        }
        return sum;
    }

    int channels_ = 2, window_ = 1, latency_ = 1, min_span_ = 1;
    double ceiling_ = 1.0, release_ = 0.0;
    std::array<Points, kTapsPerPhase> coefficients_{};  // [tap][point]
    std::array<std::array<float, 2 * kTapsPerPhase>, kMaxChannels> history_{};
    int history_pos_ = 0;
    std::array<std::vector<float>, kMaxChannels> delay_{};
    std::vector<double> min_values_, average_ring_;
    std::vector<std::uint64_t> min_times_;
    int min_head_ = 0, min_count_ = 0, average_pos_ = 0, delay_pos_ = 0, ones_ = 0;
    double average_sum_ = 1.0, released_ = 1.0, gain_ = 1.0, lowest_gain_ = 1.0;
    std::uint64_t time_ = 0;
};

}  // namespace idaw
