// The (valence, arousal) -> 64-d emotion map (idaw/emotion_map.h): known points, clamping, ranges, and the dims it
// leaves at zero. tests/test_emotion_map.py holds the training labels and the Python host to the same function.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "idaw/emotion_map.h"

using idaw::emotion_from_valence_arousal;

namespace {

/// Plutchik values 2 exp(-d^2 / (2 * 0.35^2)) - 1 worked out by hand (Python's math, 9 decimals) for two points.
constexpr double kAtOrigin[8] = {-0.947108143, -0.760523934, -0.937727825, -0.929616161,
                                 -0.937727825, -0.740154783, -0.966240232, -0.458263343};
constexpr double kAtMinorKeyPoint[8] = {-0.999335886, -0.999706427, 0.549674858, -0.881564105,
                                        -0.978670606, 0.164545467,  0.213061319, -0.966582968};

void check_plutchik(const std::array<float, idaw::kEmotionDims>& e, const double (&want)[8]) {
    for (std::size_t k = 0; k < idaw::kNumPlutchik; ++k) {
        CAPTURE(k);
        CHECK(e[idaw::kEmotionPlutchik + k] == doctest::Approx(want[k]).epsilon(2e-7));
    }
}

}  // namespace

TEST_CASE("the map at known points") {
    const auto origin = emotion_from_valence_arousal(0.0, 0.0);
    CHECK(origin[idaw::kEmotionValence] == 0.0f);
    CHECK(origin[idaw::kEmotionArousal] == 0.0f);
    CHECK(origin[idaw::kEmotionIntensity] == -1.0f);  // no emotion at all
    check_plutchik(origin, kAtOrigin);

    // The A-minor point the plugin test plays (tests/test_plugin_host.py): intensity 2 * 0.75 / sqrt 2 - 1.
    const auto minor = emotion_from_valence_arousal(-0.6, 0.45);
    CHECK(minor[idaw::kEmotionValence] == -0.6f);
    CHECK(minor[idaw::kEmotionArousal] == 0.45f);
    CHECK(minor[idaw::kEmotionIntensity] == doctest::Approx(0.060660172).epsilon(1e-7));
    check_plutchik(minor, kAtMinorKeyPoint);

    // On its prototype point an emotion is at full strength (p = 1 -> 1) and the largest of the eight.
    for (std::size_t k = 0; k < idaw::kNumPlutchik; ++k) {
        CAPTURE(k);
        const auto e = emotion_from_valence_arousal(idaw::kPlutchikVa[k][0], idaw::kPlutchikVa[k][1]);
        CHECK(e[idaw::kEmotionPlutchik + k] == 1.0f);
    }
    // |(valence, arousal)| >= sqrt 2 (a corner) is full intensity; |(0.6, 0.8)| = 1 gives 2 / sqrt 2 - 1.
    CHECK(emotion_from_valence_arousal(1.0, -1.0)[idaw::kEmotionIntensity] == 1.0f);
    CHECK(emotion_from_valence_arousal(0.6, 0.8)[idaw::kEmotionIntensity] ==
          doctest::Approx(std::sqrt(2.0) - 1.0).epsilon(1e-7));
}

TEST_CASE("inputs are clamped to [-1, 1] and NaN counts as neutral") {
    CHECK(emotion_from_valence_arousal(3.0, -7.5) == emotion_from_valence_arousal(1.0, -1.0));
    CHECK(emotion_from_valence_arousal(-1e300, 1e300) == emotion_from_valence_arousal(-1.0, 1.0));
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(emotion_from_valence_arousal(inf, -inf) == emotion_from_valence_arousal(1.0, -1.0));
    CHECK(emotion_from_valence_arousal(nan, 0.3) == emotion_from_valence_arousal(0.0, 0.3));
    CHECK(emotion_from_valence_arousal(0.3, nan) == emotion_from_valence_arousal(0.3, 0.0));
}

TEST_CASE("every value lies in [-1, 1]; dominance and the latent dims stay 0; strength falls with distance") {
    for (int i = -25; i <= 25; ++i) {
        for (int j = -25; j <= 25; ++j) {
            const double v = i / 20.0, a = j / 20.0;  // beyond [-1, 1] on purpose
            const auto e = emotion_from_valence_arousal(v, a);
            for (std::size_t d = 0; d < e.size(); ++d) {
                if (!(std::isfinite(e[d]) && e[d] >= -1.0f && e[d] <= 1.0f))
                    FAIL("dim " << d << " = " << e[d] << " at " << v << ", " << a);
                const bool unmapped = d == idaw::kEmotionDominance || d >= idaw::kEmotionMappedDims;
                if (unmapped && e[d] != 0.0f)
                    FAIL("dim " << d << " should stay 0, is " << e[d] << " at " << v << ", " << a);
            }
        }
    }
    // Walking away from joy's prototype (0.8, 0.5) towards sadness's (-0.7, -0.6): joy falls, sadness rises.
    float joy = 2.0f, sadness = -2.0f;
    for (int step = 0; step <= 10; ++step) {
        const double t = step / 10.0;
        const auto e = emotion_from_valence_arousal(0.8 - 1.5 * t, 0.5 - 1.1 * t);
        CHECK(e[idaw::kEmotionPlutchik + 0] < joy);
        CHECK(e[idaw::kEmotionPlutchik + 4] > sadness);
        joy = e[idaw::kEmotionPlutchik + 0];
        sadness = e[idaw::kEmotionPlutchik + 4];
    }
}
