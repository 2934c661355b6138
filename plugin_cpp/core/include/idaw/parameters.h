// The engine's parameter set: one table of names, ranges and defaults shared by every front end.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace idaw {

/// Index of each parameter in a Parameters snapshot. The EQ block follows SAFE-DB's column order.
enum class ParamId : std::uint8_t {
    InputGainDb,
    DriveDb,
    DriveAsymmetry,
    LowShelfGainDb,
    LowShelfFreqHz,
    Peak1GainDb,
    Peak1FreqHz,
    Peak1Q,
    Peak2GainDb,
    Peak2FreqHz,
    Peak2Q,
    Peak3GainDb,
    Peak3FreqHz,
    Peak3Q,
    HighShelfGainDb,
    HighShelfFreqHz,
    Mix,
    OutputGainDb,
    // The compressor (compressor.h), after the EQ: appended, so the indices above never move.
    CompThresholdDb,
    CompRatio,
    CompKneeDb,
    CompAttackMs,
    CompReleaseMs,
    CompMakeupDb,
    Count
};

inline constexpr std::size_t kNumParams = static_cast<std::size_t>(ParamId::Count);
/// Offset of the 13 SAFE-layout EQ parameters inside a snapshot.
inline constexpr std::size_t kEqFirstParam = static_cast<std::size_t>(ParamId::LowShelfGainDb);
inline constexpr std::size_t kNumEqParams = 13;
/// Q of both shelves, fixed as in the SAFE plug-in.
inline constexpr double kShelfQ = 0.71;

/// How a parameter is smoothed and interpolated: gains in dB linearly, frequencies and Q geometrically.
enum class ParamScale : std::uint8_t { Linear, Log };

/// Static description of one parameter.
struct ParamSpec {
    std::string_view name;
    std::string_view unit;
    float min_value;
    float max_value;
    float default_value;
    ParamScale scale;
};

/// The table every front end reads: names, units, ranges (inclusive) and defaults.
inline constexpr std::array<ParamSpec, kNumParams> kParamSpecs{{
    {"input_gain", "dB", -24.0f, 24.0f, 0.0f, ParamScale::Linear},
    {"drive", "dB", 0.0f, 36.0f, 0.0f, ParamScale::Linear},
    {"crunch", "", 0.0f, 1.0f, 0.0f, ParamScale::Linear},
    {"low_gain", "dB", -12.0f, 12.0f, 0.0f, ParamScale::Linear},
    {"low_freq", "Hz", 22.0f, 1000.0f, 150.0f, ParamScale::Log},
    {"mid1_gain", "dB", -12.0f, 12.0f, 0.0f, ParamScale::Linear},
    {"mid1_freq", "Hz", 82.0f, 3900.0f, 560.0f, ParamScale::Log},
    {"mid1_q", "", 0.1f, 10.0f, 0.71f, ParamScale::Log},
    {"mid2_gain", "dB", -12.0f, 12.0f, 0.0f, ParamScale::Linear},
    {"mid2_freq", "Hz", 180.0f, 4700.0f, 1000.0f, ParamScale::Log},
    {"mid2_q", "", 0.1f, 10.0f, 0.71f, ParamScale::Log},
    {"mid3_gain", "dB", -12.0f, 12.0f, 0.0f, ParamScale::Linear},
    {"mid3_freq", "Hz", 220.0f, 10000.0f, 3300.0f, ParamScale::Log},
    {"mid3_q", "", 0.1f, 10.0f, 0.71f, ParamScale::Log},
    {"high_gain", "dB", -12.0f, 12.0f, 0.0f, ParamScale::Linear},
    {"high_freq", "Hz", 580.0f, 20000.0f, 8200.0f, ParamScale::Log},
    {"mix", "", 0.0f, 1.0f, 1.0f, ParamScale::Linear},
    {"output_gain", "dB", -24.0f, 24.0f, 0.0f, ParamScale::Linear},
    {"comp_threshold", "dB", -60.0f, 0.0f, 0.0f, ParamScale::Linear},
    {"comp_ratio", "", 1.0f, 20.0f, 1.0f, ParamScale::Log},
    {"comp_knee", "dB", 0.0f, 24.0f, 6.0f, ParamScale::Linear},
    {"comp_attack", "ms", 0.1f, 200.0f, 10.0f, ParamScale::Log},
    {"comp_release", "ms", 5.0f, 2000.0f, 100.0f, ParamScale::Log},
    {"comp_makeup", "dB", 0.0f, 24.0f, 0.0f, ParamScale::Linear},
}};

/// A full-state parameter snapshot (never a delta), tagged with the sender's sequence number.
struct Parameters {
    std::array<float, kNumParams> values{};
    std::uint64_t sequence = 0;

    /// A snapshot holding every default.
    static Parameters defaults() noexcept {
        Parameters p;
        for (std::size_t i = 0; i < kNumParams; ++i) p.values[i] = kParamSpecs[i].default_value;
        return p;
    }
    /// Value of one parameter.
    float operator[](ParamId id) const noexcept { return values[static_cast<std::size_t>(id)]; }
    /// Mutable value of one parameter.
    float& operator[](ParamId id) noexcept { return values[static_cast<std::size_t>(id)]; }
};

/// Result of validating a snapshot: index of the first bad parameter, or -1 when all are in range.
struct ParamCheck {
    int bad_index = -1;
    bool ok() const noexcept { return bad_index < 0; }
};

/// Checks every value is finite and inside its range. Real-time safe.
inline ParamCheck check_parameters(const Parameters& p) noexcept {
    for (std::size_t i = 0; i < kNumParams; ++i) {
        const float v = p.values[i];
        // NaN fails both comparisons, so it is rejected here too.
        if (!(v >= kParamSpecs[i].min_value && v <= kParamSpecs[i].max_value)) return {static_cast<int>(i)};
    }
    return {};
}

}  // namespace idaw
