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

/// One biquad in direct form I, double-precision state, one instance per channel.
///
/// Direct form I keeps the true input and output history, so when smoothing changes the coefficients
/// the state stays meaningful and a sweep produces smaller transients than the transposed forms.
class Biquad {
  public:
    /// Filters one sample. Real-time safe.
    inline double process(double x) noexcept {
        const double y = c_.b0 * x + c_.b1 * x1_ + c_.b2 * x2_ - c_.a1 * y1_ - c_.a2 * y2_;
        x2_ = x1_;
        x1_ = x;
        y2_ = y1_;
        y1_ = y;
        return y;
    }
    /// Replaces the coefficients, keeping the state (changes are small when smoothed). Real-time safe.
    void set_coefficients(const BiquadCoefficients& c) noexcept { c_ = c; }
    /// Clears the state. Real-time safe.
    void reset() noexcept { x1_ = x2_ = y1_ = y2_ = 0.0; }

  private:
    BiquadCoefficients c_{};
    double x1_ = 0.0, x2_ = 0.0, y1_ = 0.0, y2_ = 0.0;
};

}  // namespace idaw
