#include "idaw/emotion_map.h"

#include <algorithm>
#include <cmath>

namespace idaw {
namespace {

/// `x` clamped to [-1, 1]; NaN becomes 0, so no NaN ever reaches the nets.
double unit_clamp(double x) noexcept { return std::isnan(x) ? 0.0 : std::clamp(x, -1.0, 1.0); }

}  // namespace

std::array<float, kEmotionDims> emotion_from_valence_arousal(double valence, double arousal) noexcept {
    const double v = unit_clamp(valence), a = unit_clamp(arousal);
    std::array<float, kEmotionDims> e{};
    e[kEmotionValence] = static_cast<float>(v);
    e[kEmotionArousal] = static_cast<float>(a);
    e[kEmotionIntensity] = static_cast<float>(2.0 * std::min(1.0, std::hypot(v, a) / std::sqrt(2.0)) - 1.0);
    for (std::size_t k = 0; k < kNumPlutchik; ++k) {
        const double dv = kPlutchikVa[k][0] - v, da = kPlutchikVa[k][1] - a;
        const double d2 = dv * dv + da * da;
        e[kEmotionPlutchik + k] =
            static_cast<float>(2.0 * std::exp(-d2 / (2.0 * kPlutchikWidth * kPlutchikWidth)) - 1.0);
    }
    return e;
}

}  // namespace idaw
