// Compressor (compressor.h) on its own and in the engine: the static curve's shape, transparency returning after
// compression, ramps without steps, bad samples, and block-split invariance. tests/test_compressor.py measures the
// curve and the time constants through the Python extension against the published formula.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "idaw/compressor.h"
#include "idaw/engine.h"
#include "test_support.h"

using idaw::Compressor;
using idaw::compressor_static_gain_db;
using idaw::CompressorSettings;
using idaw::Engine;
using idaw::Parameters;
using idaw::ParamId;

namespace {

constexpr double kRate = 48000.0;

CompressorSettings squash() {
    CompressorSettings s;
    s.threshold_db = -30.0;
    s.ratio = 4.0;
    s.knee_db = 6.0;
    s.attack_ms = 1.0;
    s.release_ms = 20.0;
    return s;
}

}  // namespace

TEST_CASE("the static curve is continuous, never positive and has the ratio's slope above the knee") {
    for (double knee : {0.0, 6.0, 24.0}) {
        double previous = compressor_static_gain_db(-100.0, -20.0, 4.0, knee);
        for (double level = -100.0; level <= 20.0; level += 0.01) {
            const double g = compressor_static_gain_db(level, -20.0, 4.0, knee);
            CHECK(g <= 0.0);
            CHECK(std::fabs(g - previous) < 0.01);  // no jump at the knee's edges (slope at most 3/4 dB per dB)
            previous = g;
        }
        // Far above: each input dB gives 1/4 dB out; far below: untouched.
        const double slope =
            compressor_static_gain_db(10.0, -20.0, 4.0, knee) - compressor_static_gain_db(0.0, -20.0, 4.0, knee);
        CHECK(slope == doctest::Approx(-7.5));
        CHECK(compressor_static_gain_db(-60.0, -20.0, 4.0, knee) == 0.0);
    }
    CHECK(compressor_static_gain_db(0.0, -20.0, 1.0, 6.0) == 0.0);  // ratio 1: no gain change anywhere
}

TEST_CASE("transparency returns exactly after the compression released") {
    Compressor c;
    c.prepare(kRate, 960);
    c.set(squash(), true);
    CHECK_FALSE(c.transparent());
    for (int i = 0; i < 4800; ++i) c.gain(0.5);  // -6 dBFS, 24 dB above the threshold
    CHECK(c.reduction_db() > 10.0);
    CompressorSettings off = squash();
    off.ratio = 1.0;
    c.set(off, false);  // ramps back to ratio 1, then releases
    int samples = 0;
    while (!c.transparent() && samples < 10 * 48000) {
        c.gain(0.5);
        ++samples;
    }
    CHECK(c.transparent());
    CHECK(c.reduction_db() == 0.0);
    CHECK(c.gain(0.5) == 1.0);
}

TEST_CASE("a new setting moves the gain without a step") {
    Compressor c;
    c.prepare(kRate, 960);
    c.set(squash(), true);
    double g = 0.0;
    for (int i = 0; i < 48000; ++i) g = c.gain(0.5);
    CompressorSettings harder = squash();
    harder.threshold_db = -50.0;
    harder.ratio = 20.0;
    harder.attack_ms = 0.1;  // a time constant applies at once; the threshold and ratio ramp
    c.set(harder, false);
    double worst = 0.0;
    for (int i = 0; i < 4800; ++i) {
        const double next = c.gain(0.5);
        worst = std::max(worst, std::fabs(20.0 * std::log10(next / g)));
        g = next;
    }
    INFO("largest gain step " << worst << " dB");
    CHECK(worst < 0.1);
}

TEST_CASE("the engine's compressor: any block split gives the same output, and bad samples do not stick") {
    Parameters p = Parameters::defaults();
    p[ParamId::CompThresholdDb] = -24.0f;
    p[ParamId::CompRatio] = 6.0f;
    p[ParamId::CompAttackMs] = 2.0f;
    p[ParamId::CompReleaseMs] = 50.0f;
    p[ParamId::CompMakeupDb] = 6.0f;
    idaw::test::Rng rng(11);
    const int frames = 24000;
    std::vector<float> source(2 * frames);
    for (float& x : source) x = static_cast<float>(rng.uniform(-0.5, 0.5));

    auto run = [&](int block) {
        Engine engine;
        engine.prepare(kRate, 512, 2);
        engine.set_parameters_now(p);
        std::vector<float> audio = source;
        float* channels[2] = {audio.data(), audio.data() + frames};
        for (int start = 0; start < frames; start += block) {
            float* at[2] = {channels[0] + start, channels[1] + start};
            engine.process(at, 2, std::min(block, frames - start));
        }
        return audio;
    };
    const std::vector<float> whole = run(512);
    CHECK(run(37) == whole);
    CHECK(run(1) == whole);

    // An infinite sample in the input is replaced by silence (engine rule); the compressor's state must stay
    // finite and keep compressing the finite samples that follow.
    Engine engine;
    engine.prepare(kRate, 512, 2);
    engine.set_parameters_now(p);
    std::vector<float> audio = source;
    audio[100] = INFINITY;
    audio[frames + 100] = NAN;
    float* channels[2] = {audio.data(), audio.data() + frames};
    engine.process(channels, 2, 512);
    CHECK(std::isfinite(engine.compressor_reduction_db()));
    for (int i = 0; i < 512; ++i) CHECK(std::isfinite(audio[i]));
    CHECK(engine.compressor_reduction_db() > 0.0);
}
