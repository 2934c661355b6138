// The chain's compressor: feed-forward, stereo-linked, soft knee, smoothed in the gain domain.
#pragma once

#include <algorithm>
#include <cmath>

#include "idaw/smoother.h"

namespace idaw {

/// The compressor's settings, as the parameter table holds them.
struct CompressorSettings {
    double threshold_db = 0.0;  ///< level (dBFS) above which it compresses
    double ratio = 1.0;         ///< input dB above the threshold per output dB; 1 = no compression
    double knee_db = 6.0;       ///< width of the soft knee around the threshold (0 = hard knee)
    double attack_ms = 10.0;    ///< time constant of rising gain reduction
    double release_ms = 100.0;  ///< time constant of falling gain reduction
    double makeup_db = 0.0;     ///< gain added after compression
};

/// The static curve: gain (dB, <= 0) the compressor applies, once settled, to a signal at `level_db` (dBFS).
///
/// The soft-knee gain computer of Giannoulis, Massberg and Reiss, "Digital Dynamic Range Compressor Design - A
/// Tutorial and Analysis" (JAES 60(6), 2012), eq. 4: below the knee the output level is the input level; above it
/// threshold + (level - threshold) / ratio; within the knee (|level - threshold| <= knee / 2) the quadratic that
/// joins the two with matching slopes. This function is the formula's one home: the engine calls it, and
/// tests/test_compressor.py holds an independent Python transcription of eq. 4 to it. Real-time safe.
inline double compressor_static_gain_db(double level_db, double threshold_db, double ratio, double knee_db) noexcept {
    const double over = level_db - threshold_db;
    const double slope = 1.0 / ratio - 1.0;  // <= 0: how much of each dB above the threshold is taken away
    if (2.0 * over <= -knee_db) return 0.0;
    if (2.0 * std::fabs(over) <= knee_db) {
        const double into = over + knee_db / 2.0;
        return slope * into * into / (2.0 * knee_db);
    }
    return slope * over;
}

/// Feed-forward compressor with a linked detector (the loudest channel of each frame sets the gain of all).
///
/// Per frame: the peak level in dBFS goes through the static curve (compressor_static_gain_db); the gain reduction
/// it asks for is smoothed by a branching one-pole (Giannoulis et al., "smooth branching" detector in the gain
/// domain, eq. 17): while the asked reduction is above the present one it moves with the attack time constant,
/// else with the release one, so a step of the input level gives a reduction that follows 1 - exp(-t / attack)
/// exactly, and its end exp(-t / release). Smoothing in the gain domain, rather than smoothing the level first,
/// keeps the time constants independent of the ratio and the threshold, which is what users set them for.
///
/// Transparent at ratio 1: the static curve is then 0 dB everywhere, the reduction decays to zero (and is set to
/// exactly zero once below kSettledDb) and, with makeup 0 dB, gain() is exactly 1.0, so the engine skips it and
/// the chain's output is bit for bit what it was without a compressor.
///
/// Threshold, ratio, knee and makeup move on per-sample linear ramps (zipper-free, like the engine's gains); a
/// new attack or release time applies at once (a time constant has no audible step). The detector has no
/// look-ahead, so the compressor adds no latency.
class Compressor {
  public:
    static constexpr double kSettledDb = 1e-6;  ///< a reduction below this is zero (ends the release exactly)
    static constexpr double kDbPerNeper = 8.685889638065035;  ///< 20 / ln(10): dB = kDbPerNeper * ln(amplitude)

    /// Sets the rate and the ramp length and clears the state (no reduction). Not real-time safe.
    void prepare(double sample_rate, int ramp_samples) noexcept {
        sample_rate_ = sample_rate;
        ramp_samples_ = std::max(1, ramp_samples);
        reset();
    }
    /// Clears the gain reduction. Real-time safe.
    void reset() noexcept { reduction_db_ = 0.0; }

    /// New settings: jumps to them (`snap`) or ramps there. Real-time safe.
    void set(const CompressorSettings& s, bool snap) noexcept {
        auto move = [&](LinearRamp& ramp, double value) {
            if (snap)
                ramp.snap(value);
            else
                ramp.ramp_to(value, ramp_samples_);
        };
        move(threshold_db_, s.threshold_db);
        move(ratio_, s.ratio);
        move(knee_db_, s.knee_db);
        move(makeup_db_, s.makeup_db);
        attack_ = coefficient(s.attack_ms);
        release_ = coefficient(s.release_ms);
    }

    /// True when process() would return gains of exactly 1.0 (ratio 1, makeup 0 dB, nothing to release, no ramp
    /// under way): the engine then leaves the signal untouched. Real-time safe.
    bool transparent() const noexcept {
        return reduction_db_ == 0.0 && ratio_.value() == 1.0 && makeup_db_.value() == 0.0 && !ratio_.ramping() &&
               !makeup_db_.ramping() && !threshold_db_.ramping() && !knee_db_.ramping();
    }

    /// The linear gain for one frame whose loudest channel has absolute value `peak`. Real-time safe.
    double gain(double peak) noexcept {
        const double threshold = threshold_db_.advance(), ratio = ratio_.advance(), knee = knee_db_.advance();
        const double makeup = makeup_db_.advance();
        // -200 dBFS for silence: far below any threshold, and finite.
        const double level_db = peak > 1e-10 ? kDbPerNeper * std::log(peak) : -200.0;
        const double asked = -compressor_static_gain_db(level_db, threshold, ratio, knee);  // >= 0
        const double a = asked > reduction_db_ ? attack_ : release_;
        reduction_db_ = a * reduction_db_ + (1.0 - a) * asked;
        if (reduction_db_ < kSettledDb) reduction_db_ = 0.0;
        const double gain_db = makeup - reduction_db_;
        return gain_db == 0.0 ? 1.0 : std::exp(gain_db / kDbPerNeper);
    }

    /// The present gain reduction in dB (>= 0). Real-time safe.
    double reduction_db() const noexcept { return reduction_db_; }

  private:
    /// One-pole coefficient of a time constant: exp(-1 / (tau * rate)).
    double coefficient(double ms) const noexcept { return std::exp(-1000.0 / (std::max(ms, 1e-3) * sample_rate_)); }

    double sample_rate_ = 48000.0;
    int ramp_samples_ = 960;
    LinearRamp threshold_db_, ratio_, knee_db_, makeup_db_;
    double attack_ = 0.0, release_ = 0.0;
    double reduction_db_ = 0.0;
};

}  // namespace idaw
