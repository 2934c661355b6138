// TruePeakLimiter (true_peak_limiter.h): transparency below the ceiling, the true peak of what it lets out measured
// with an independent 8x interpolator (64 taps a phase), gain ramps without steps, exact return to unity, block-split
// invariance, and the detector's interpolation against the ideal band-limited signal. tests/test_master.py measures
// the mastered output with scipy's resampler and pyloudnorm.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "idaw/true_peak_limiter.h"

using idaw::TruePeakLimiter;
using idaw::TruePeakLimiterSettings;

namespace {

constexpr double kRate = 48000.0;
constexpr double kPi = 3.14159265358979323846;

/// Planar stereo audio.
struct Stereo {
    std::vector<float> left, right;
    explicit Stereo(std::size_t n) : left(n), right(n) {}
    std::size_t size() const { return left.size(); }
};

/// Runs `audio` through a limiter in blocks of `block` frames (in place).
void run(TruePeakLimiter& limiter, Stereo& audio, int block) {
    for (std::size_t start = 0; start < audio.size(); start += static_cast<std::size_t>(block)) {
        const int n = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(block), audio.size() - start));
        float* ch[2] = {audio.left.data() + start, audio.right.data() + start};
        limiter.process(ch, n);
    }
}

/// True peak (linear) by 8x interpolation with a 64-taps-per-phase Blackman-windowed sinc: longer and differently
/// windowed than the limiter's own 12-tap detector, so it checks the limiter rather than repeating it.
double reference_true_peak(const std::vector<float>& x) {
    constexpr int kPhases = 8, kHalf = 32;
    double peak = 0.0;
    for (std::size_t n = 0; n + 1 < x.size(); ++n) {
        peak = std::max(peak, std::fabs(static_cast<double>(x[n])));
        for (int k = 1; k < kPhases; ++k) {
            const double at = static_cast<double>(n) + static_cast<double>(k) / kPhases;
            double sum = 0.0;
            for (int j = -kHalf + 1; j <= kHalf; ++j) {
                const long m = static_cast<long>(n) + j;
                if (m < 0 || m >= static_cast<long>(x.size())) continue;
                const double t = at - static_cast<double>(m);
                const double sinc = std::sin(kPi * t) / (kPi * t);
                const double u = (t + kHalf) / (2.0 * kHalf);  // 0..1 across the window
                const double window = 0.42 - 0.5 * std::cos(2 * kPi * u) + 0.08 * std::cos(4 * kPi * u);
                sum += x[static_cast<std::size_t>(m)] * sinc * window;
            }
            peak = std::max(peak, std::fabs(sum));
        }
    }
    return peak;
}

double db(double amplitude) { return 20.0 * std::log10(amplitude); }

/// Loud, band-limited (below 20 kHz, as audio at 48 kHz is) material with inter-sample peaks, in three parts that
/// each fade in and out over 5 ms: a sine at a quarter of the rate whose samples miss its crests by 45 degrees (its
/// sample peak is 3 dB below its true peak), dense partials like a noisy mix, and a decaying 60 Hz drum-like burst.
/// The second channel is the first inverted, turned down and 5 frames late (band-limited too).
Stereo hot_material(std::size_t n, unsigned seed) {
    Stereo s(n);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> freq(50.0, 19000.0), phase(0.0, 2 * kPi);
    std::vector<std::pair<double, double>> partials(48);
    for (auto& [f, p] : partials) f = freq(rng), p = phase(rng);
    const std::size_t part = n / 3, fade = 240;
    for (std::size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i);
        double v;
        if (i < part) {
            v = 0.99 * std::sin(kPi / 2.0 * t + kPi / 4.0);
        } else if (i < 2 * part) {
            v = 0.0;
            for (const auto& [f, p] : partials) v += 0.22 * std::sin(2 * kPi * f * t / kRate + p);
        } else {
            v = 1.5 * std::exp(-static_cast<double>(i % 4800) / 600.0) * std::sin(2 * kPi * 60.0 * t / kRate);
        }
        const std::size_t into = i % part;
        const double edge = static_cast<double>(std::min(into, part - 1 - into));
        if (edge < fade) v *= 0.5 - 0.5 * std::cos(kPi * edge / fade);
        s.left[i] = static_cast<float>(v);
    }
    for (std::size_t i = 5; i < n; ++i) s.right[i] = -0.8f * s.left[i - 5];
    return s;
}

}  // namespace

TEST_CASE("below the ceiling it is the input delayed by its latency, bit for bit") {
    TruePeakLimiter limiter;
    limiter.prepare(kRate, 2, {-1.0, 2.0, 100.0});
    CHECK(limiter.latency() == 96 + 32);
    Stereo audio(20000), original(20000);
    for (std::size_t i = 0; i < audio.size(); ++i) {
        audio.left[i] = original.left[i] = static_cast<float>(0.5 * std::sin(0.01 * static_cast<double>(i)));
        audio.right[i] = original.right[i] = static_cast<float>(0.3 * std::cos(0.003 * static_cast<double>(i)));
    }
    run(limiter, audio, 256);
    const auto d = static_cast<std::size_t>(limiter.latency());
    for (std::size_t i = 0; i < d; ++i) CHECK(audio.left[i] == 0.0f);
    bool same = true;
    for (std::size_t i = d; i < audio.size(); ++i)
        same = same && audio.left[i] == original.left[i - d] && audio.right[i] == original.right[i - d];
    CHECK(same);
    CHECK(limiter.peak_reduction_db() == 0.0);
}

TEST_CASE("the true peak of what it lets out stays at the ceiling") {
    const Stereo material = hot_material(36000, 7);
    const double before = db(reference_true_peak(material.left));
    const std::pair<double, double> settings[] = {{-1.0, 0.5}, {-1.0, 2.0}, {-3.0, 5.0}, {-0.1, 2.0}};
    for (const auto& [ceiling, lookahead] : settings) {
        TruePeakLimiter limiter;
        limiter.prepare(kRate, 2, {ceiling, lookahead, 50.0});
        Stereo audio = material;
        run(limiter, audio, 512);
        const double after = std::max(db(reference_true_peak(audio.left)), db(reference_true_peak(audio.right)));
        INFO("ceiling " << ceiling << " dBTP, look-ahead " << lookahead << " ms: " << before << " -> " << after);
        CHECK(before > ceiling + 10.0);  // the material went far over (its dense part peaks at +13.6 dBTP)
        CHECK(after <= ceiling + 0.01);  // the two interpolators agree below 20 kHz
        CHECK(after >= ceiling - 0.5);   // and it did not simply turn everything down
        CHECK(limiter.peak_reduction_db() > 10.0);
    }
}

TEST_CASE("the gain moves in ramps no steeper than one look-ahead from unity to zero") {
    TruePeakLimiter limiter;
    limiter.prepare(kRate, 2, {-6.0, 1.0, 20.0});
    Stereo audio(9600);
    for (std::size_t i = 4000; i < 4010; ++i) audio.left[i] = 1.0f;  // a click far above the ceiling
    double previous = 1.0, steepest = 0.0;
    for (std::size_t i = 0; i < audio.size(); ++i) {
        float* ch[2] = {audio.left.data() + i, audio.right.data() + i};
        limiter.process(ch, 1);
        steepest = std::max(steepest, std::fabs(limiter.gain() - previous));
        previous = limiter.gain();
    }
    CHECK(limiter.peak_reduction_db() > 5.0);
    CHECK(steepest <= 1.0 / 48.0 + 1e-12);  // the moving average over 48 frames: at most 1/48 per frame
}

TEST_CASE("after a peak it releases back to exact unity and transparency") {
    TruePeakLimiter limiter;
    limiter.prepare(kRate, 2, {-1.0, 2.0, 10.0});
    Stereo burst = hot_material(4800, 3);
    run(limiter, burst, 128);
    CHECK(limiter.gain() < 1.0);
    Stereo quiet(48000), original(48000);
    for (std::size_t i = 0; i < quiet.size(); ++i) quiet.left[i] = original.left[i] = 0.1f * static_cast<float>(i % 7);
    run(limiter, quiet, 128);
    CHECK(limiter.gain() == 1.0);
    const auto d = static_cast<std::size_t>(limiter.latency());
    bool same = true;  // the last half second is the quiet input, delayed, untouched
    for (std::size_t i = 24000; i < quiet.size(); ++i) same = same && quiet.left[i] == original.left[i - d];
    CHECK(same);
}

TEST_CASE("the output does not depend on how the audio is split into blocks") {
    Stereo a = hot_material(30000, 11), b = a, c = a;
    TruePeakLimiter la, lb, lc;
    for (TruePeakLimiter* l : {&la, &lb, &lc}) l->prepare(kRate, 2, {-2.0, 3.0, 80.0});
    run(la, a, 1);
    run(lb, b, 64);
    run(lc, c, 4097);
    CHECK(a.left == b.left);
    CHECK(a.right == c.right);
}

TEST_CASE("the detector interpolates a band-limited sine within 0.1 dB of its true crest") {
    TruePeakLimiter limiter;
    limiter.prepare(kRate, 1, {});
    // Sines up to 20 kHz, the top of what audio at 48 kHz holds (BS.1770's 12-tap example reads 0.5 dB low there).
    for (double hz : {997.0, 5000.0, 11025.0, 16000.0, 20000.0}) {
        double worst = 0.0;
        for (double phase = 0.0; phase < 1.0; phase += 0.125) {
            float samples[TruePeakLimiter::kTapsPerPhase];
            for (int j = 0; j < TruePeakLimiter::kTapsPerPhase; ++j)
                samples[j] = static_cast<float>(std::sin(2 * kPi * hz * (j + phase) / kRate));
            for (int k = 1; k < TruePeakLimiter::kOversampling; ++k) {
                const double t = TruePeakLimiter::kDetectorDelay - 1 + phase +
                                 static_cast<double>(k) / TruePeakLimiter::kOversampling;
                const double want = std::sin(2 * kPi * hz * t / kRate);
                worst = std::max(worst, std::fabs(limiter.interpolate(samples, k) - want));
            }
        }
        INFO(hz << " Hz: worst error " << worst);
        CHECK(worst < 0.012);  // of a unit sine: 0.1 dB
    }
}

TEST_CASE("settings are clamped to what it can do") {
    TruePeakLimiter limiter;
    limiter.prepare(kRate, 99, {5.0, 1e6, -1.0});
    CHECK(limiter.ceiling() == 1.0);        // at most 0 dBTP
    CHECK(limiter.latency() == 2400 + 32);  // look-ahead at most 50 ms
    limiter.prepare(kRate, 2, {-1000.0, 0.0, 100.0});
    CHECK(limiter.ceiling() == doctest::Approx(0.001));  // at least -60 dBTP
    CHECK(limiter.latency() == 5 + 32);                  // look-ahead at least 0.1 ms
}
