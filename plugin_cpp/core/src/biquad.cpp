#include "idaw/biquad.h"

#include <algorithm>

namespace idaw {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

/// JUCE clamps the frequency below at 2 Hz; we also keep it below Nyquist, where JUCE only asserts.
double angular_frequency(double sample_rate, double freq) noexcept {
    const double f = std::clamp(freq, 2.0, 0.499 * sample_rate);
    return kTwoPi * f / sample_rate;
}

/// JUCE: gainFactor = Decibels::decibelsToGain(dB); A = sqrt(gainFactor).
double shelf_amplitude(double gain_db) noexcept { return std::sqrt(std::pow(10.0, gain_db / 20.0)); }

BiquadCoefficients normalise(double b0, double b1, double b2, double a0, double a1, double a2) noexcept {
    const double inv = 1.0 / a0;
    return {b0 * inv, b1 * inv, b2 * inv, a1 * inv, a2 * inv};
}

}  // namespace

BiquadCoefficients BiquadCoefficients::low_shelf(double sample_rate, double freq, double q, double gain_db) noexcept {
    const double A = shelf_amplitude(gain_db);
    const double aminus1 = A - 1.0, aplus1 = A + 1.0;
    const double omega = angular_frequency(sample_rate, freq);
    const double coso = std::cos(omega);
    const double beta = std::sin(omega) * std::sqrt(A) / q;
    const double aminus1_coso = aminus1 * coso;
    return normalise(A * (aplus1 - aminus1_coso + beta), A * 2.0 * (aminus1 - aplus1 * coso),
                     A * (aplus1 - aminus1_coso - beta), aplus1 + aminus1_coso + beta, -2.0 * (aminus1 + aplus1 * coso),
                     aplus1 + aminus1_coso - beta);
}

BiquadCoefficients BiquadCoefficients::high_shelf(double sample_rate, double freq, double q, double gain_db) noexcept {
    const double A = shelf_amplitude(gain_db);
    const double aminus1 = A - 1.0, aplus1 = A + 1.0;
    const double omega = angular_frequency(sample_rate, freq);
    const double coso = std::cos(omega);
    const double beta = std::sin(omega) * std::sqrt(A) / q;
    const double aminus1_coso = aminus1 * coso;
    return normalise(A * (aplus1 + aminus1_coso + beta), A * -2.0 * (aminus1 + aplus1 * coso),
                     A * (aplus1 + aminus1_coso - beta), aplus1 - aminus1_coso + beta, 2.0 * (aminus1 - aplus1 * coso),
                     aplus1 - aminus1_coso - beta);
}

BiquadCoefficients BiquadCoefficients::peak(double sample_rate, double freq, double q, double gain_db) noexcept {
    const double A = shelf_amplitude(gain_db);
    const double omega = angular_frequency(sample_rate, freq);
    const double alpha = 0.5 * std::sin(omega) / q;
    const double c2 = -2.0 * std::cos(omega);
    const double alpha_a = alpha * A, alpha_over_a = alpha / A;
    return normalise(1.0 + alpha_a, c2, 1.0 - alpha_a, 1.0 + alpha_over_a, c2, 1.0 - alpha_over_a);
}

}  // namespace idaw
