// Second-order IIR sections with the coefficient formulas of JUCE's IIRCoefficients.
#pragma once

#include <cmath>

namespace idaw {

/// Normalised biquad coefficients (a0 == 1): y = b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2.
struct BiquadCoefficients {
    double b0 = 1.0, b1 = 0.0, b2 = 0.0, a1 = 0.0, a2 = 0.0;

    /// Identity filter.
    static BiquadCoefficients identity() noexcept { return {}; }

    /// JUCE IIRCoefficients::makeLowShelf (SAFE-DB was recorded through it). Real-time safe.
    static BiquadCoefficients low_shelf(double sample_rate, double freq, double q, double gain_db) noexcept;
    /// JUCE IIRCoefficients::makeHighShelf. Real-time safe.
    static BiquadCoefficients high_shelf(double sample_rate, double freq, double q, double gain_db) noexcept;
    /// JUCE IIRCoefficients::makePeakFilter. Real-time safe.
    static BiquadCoefficients peak(double sample_rate, double freq, double q, double gain_db) noexcept;
};

/// One biquad in transposed direct form II, double-precision state, one instance per channel.
class Biquad {
  public:
    /// Filters one sample. Real-time safe.
    inline double process(double x) noexcept {
        const double y = c_.b0 * x + s1_;
        s1_ = c_.b1 * x - c_.a1 * y + s2_;
        s2_ = c_.b2 * x - c_.a2 * y;
        return y;
    }
    /// Replaces the coefficients, keeping the state (changes are small when smoothed). Real-time safe.
    void set_coefficients(const BiquadCoefficients& c) noexcept { c_ = c; }
    /// Clears the state. Real-time safe.
    void reset() noexcept { s1_ = s2_ = 0.0; }
    /// True when the state holds only finite numbers. Real-time safe.
    bool state_is_finite() const noexcept { return std::isfinite(s1_) && std::isfinite(s2_); }

  private:
    BiquadCoefficients c_{};
    double s1_ = 0.0, s2_ = 0.0;
};

}  // namespace idaw
