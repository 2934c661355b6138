// Drive stage: smooth, optionally asymmetric ("crunch") waveshaping.
#pragma once

#include <algorithm>

namespace idaw {

/// tanh by a [7/6] Pade approximant: error < 1e-8 for |x| <= 2, < 1e-4 up to 5, exactly +-1 beyond; a few ns.
inline double fast_tanh(double x) noexcept {
    x = std::clamp(x, -5.0, 5.0);
    const double x2 = x * x;
    const double num = x * (135135.0 + x2 * (17325.0 + x2 * (378.0 + x2)));
    const double den = 135135.0 + x2 * (62370.0 + x2 * (3150.0 + x2 * 28.0));
    return std::clamp(num / den, -1.0, 1.0);
}

/// Shape of the waveshaper at one drive setting: y = (tanh(g x + b) - tanh(b)) / norm.
struct SaturationShape {
    double pre_gain = 1.0;  ///< g, from the drive in dB
    double bias = 0.0;      ///< b, from the crunch amount: bends the positive and negative halves differently
    double offset = 0.0;    ///< tanh(b), so that silence stays silence
    double inv_norm = 1.0;  ///< 1 / norm, so that a full-scale input maps to at most full scale

    /// Computes the shape for a pre-gain and crunch (0..1). Real-time safe.
    static SaturationShape make(double pre_gain, double crunch) noexcept {
        SaturationShape s;
        s.pre_gain = pre_gain;
        s.bias = 0.6 * crunch;
        s.offset = fast_tanh(s.bias);
        const double up = fast_tanh(pre_gain + s.bias) - s.offset;
        const double down = s.offset - fast_tanh(s.bias - pre_gain);
        s.inv_norm = 1.0 / std::max(up, down);
        return s;
    }
    /// Shapes one sample. Real-time safe.
    double apply(double x) const noexcept { return (fast_tanh(pre_gain * x + bias) - offset) * inv_norm; }
};

}  // namespace idaw
