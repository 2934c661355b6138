// Engine DSP: transparency, output bounds, NaN/Inf handling, block-size independence, parameter ramps, the biquad
// formulas, and the engine's bookkeeping (telemetry, counters, analysis ring, channel layouts, PortAudio bridge).
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "idaw/biquad.h"
#include "idaw/engine.h"
#include "idaw/portaudio_bridge.h"
#include "idaw/safety_limiter.h"
#include "test_support.h"

using namespace idaw;
using namespace idaw::test;

namespace {

constexpr double kRate = 48000.0;
// The output bound is exact: full scale, not one float step above it (the limiter's last step is a clamp).
const float kCeilingFloat = static_cast<float>(Engine::kLimiterCeiling);

/// A setting with every stage active: input gain, drive with crunch, all five bands, partial mix, output gain.
Parameters busy_parameters() {
    Parameters p = Parameters::defaults();
    p[ParamId::InputGainDb] = 3.0f;
    p[ParamId::DriveDb] = 14.0f;
    p[ParamId::DriveAsymmetry] = 0.4f;
    p[ParamId::LowShelfGainDb] = 4.5f;
    p[ParamId::LowShelfFreqHz] = 120.0f;
    p[ParamId::Peak1GainDb] = -6.0f;
    p[ParamId::Peak1FreqHz] = 400.0f;
    p[ParamId::Peak1Q] = 2.0f;
    p[ParamId::Peak2GainDb] = 3.5f;
    p[ParamId::Peak2FreqHz] = 1500.0f;
    p[ParamId::Peak2Q] = 0.8f;
    p[ParamId::Peak3GainDb] = -2.0f;
    p[ParamId::Peak3FreqHz] = 5000.0f;
    p[ParamId::Peak3Q] = 4.0f;
    p[ParamId::HighShelfGainDb] = -3.0f;
    p[ParamId::HighShelfFreqHz] = 9000.0f;
    p[ParamId::Mix] = 0.8f;
    p[ParamId::OutputGainDb] = -4.0f;
    return p;
}

/// Everything at the top of its range: the loudest the engine can be asked to be.
Parameters extreme_parameters() {
    Parameters p = Parameters::defaults();
    p[ParamId::InputGainDb] = 24.0f;
    p[ParamId::DriveDb] = 36.0f;
    p[ParamId::DriveAsymmetry] = 1.0f;
    for (ParamId g : {ParamId::LowShelfGainDb, ParamId::Peak1GainDb, ParamId::Peak2GainDb, ParamId::Peak3GainDb,
                      ParamId::HighShelfGainDb})
        p[g] = 12.0f;
    p[ParamId::OutputGainDb] = 24.0f;
    return p;
}

/// Music-like input: two sines and some noise, peaking near -3 dBFS (below full scale, where the limiter acts).
Audio program(int channels, int frames, std::uint64_t seed = 1) {
    const Audio n = noise(channels, frames, 0.1, seed);
    return make_audio(channels, frames, [&](int c, int i) {
        return 0.35 * std::sin(2.0 * M_PI * 110.0 * i / kRate + c) + 0.2 * std::sin(2.0 * M_PI * 2500.0 * i / kRate) +
               n.at(c, i);
    });
}

/// Largest |sample|, or +inf when any sample is not finite.
double peak_abs(const Audio& a) {
    double worst = 0.0;
    for (float s : a.samples) {
        if (!std::isfinite(s)) return std::numeric_limits<double>::infinity();
        worst = std::max(worst, static_cast<double>(std::fabs(s)));
    }
    return worst;
}

/// Root mean square of frames [begin, end) of one channel.
double rms(const Audio& a, int channel, int begin, int end) {
    double sum = 0.0;
    for (int i = begin; i < end; ++i) sum += static_cast<double>(a.at(channel, i)) * a.at(channel, i);
    return std::sqrt(sum / (end - begin));
}

/// Processes frames [begin, end) of `audio` in place, in blocks of `block`.
void process_range(Engine& engine, Audio& audio, int begin, int end, int block) {
    std::vector<float*> ptrs(static_cast<std::size_t>(audio.channels));
    for (int pos = begin; pos < end; pos += block) {
        const int n = std::min(block, end - pos);
        for (int c = 0; c < audio.channels; ++c) ptrs[c] = audio.channel(c) + pos;
        engine.process(ptrs.data(), audio.channels, n);
    }
}

/// Block sizes 0..700 drawn at random (0 and > max_block included on purpose).
std::vector<int> random_block_sizes(std::uint64_t seed, int count = 4000) {
    Rng rng(seed);
    std::vector<int> sizes(static_cast<std::size_t>(count));
    for (int& s : sizes) s = rng.below(8) == 0 ? 0 : 1 + rng.below(700);
    sizes.push_back(1);  // at least one non-zero size, so a render always advances
    return sizes;
}

/// Everything a telemetry reader gets from the ring.
std::vector<BlockTelemetry> drain_telemetry(Engine& engine) {
    std::vector<BlockTelemetry> out;
    BlockTelemetry t;
    while (engine.telemetry_ring().pop(t)) out.push_back(t);
    return out;
}

}  // namespace

// ---- Transparency ------------------------------------------------------------------------------------------

TEST_CASE("default parameters pass audio bit for bit at any block size") {
    for (int channels : {1, 2}) {
        Audio input = noise(channels, 20000, 1.0, 11);
        // Values that a careless gain stage would alter: signed zero, subnormals, exactly full scale (the largest
        // level the limiter leaves alone) and the float just below it.
        input.at(0, 0) = -0.0f;
        input.at(0, 1) = 1e-40f;
        input.at(0, 2) = -FLT_MIN;
        input.at(0, 3) = 1.0f;
        input.at(channels - 1, 4) = -1.0f;
        input.at(0, 5) = std::nextafter(1.0f, 0.0f);
        for (int max_block : {64, 512}) {
            for (int block : {1, 7, 64, 100, 256, 512, 1000, 4096}) {
                for (bool interleaved : {false, true}) {
                    auto engine = make_engine(Parameters::defaults(), max_block, channels);
                    const Audio out = render(*engine, input, {block}, {}, interleaved);
                    const long diff = first_bit_difference(input, out);
                    INFO(channels << " ch, max_block " << max_block << ", block " << block
                                  << std::string(interleaved ? ", interleaved" : ", planar") << ": first difference at "
                                  << where(input, diff));
                    CHECK(diff == -1);
                    CHECK(engine->counters().limited_samples == 0);
                }
            }
        }
    }
}

TEST_CASE("a snapshot equal to the defaults is still transparent, and settles back to transparency") {
    // Push defaults mid-stream (a no-op ramp), and separately go busy and come back: once the ramps have landed and
    // the bands dropped back to bypass, audio must again pass bit for bit.
    const Audio input = program(2, 48000);
    auto engine = make_engine(Parameters::defaults());
    Parameters same = Parameters::defaults();
    same.sequence = 5;
    const Audio out = render(*engine, input, {256}, {{10000, same}});
    CHECK(first_bit_difference(input, out) == -1);

    auto engine2 = make_engine(Parameters::defaults());
    Parameters busy = busy_parameters();
    busy[ParamId::DriveDb] = 0.0f;  // the drive's DC blocker and saturation are checked elsewhere
    const Audio out2 = render(*engine2, input, {256}, {{2048, busy}, {8192, Parameters::defaults()}});
    // Filter tails decay for a while after the bands are bypassed; by 0.5 s they are long gone.
    const int settled = 24000;
    Audio tail_in(2, input.frames - settled), tail_out(2, input.frames - settled);
    for (int c = 0; c < 2; ++c)
        for (int i = 0; i < tail_in.frames; ++i) {
            tail_in.at(c, i) = input.at(c, settled + i);
            tail_out.at(c, i) = out2.at(c, settled + i);
        }
    const long diff = first_bit_difference(tail_in, tail_out);
    INFO("first difference after settling at " << where(tail_in, diff));
    CHECK(diff == -1);
}

// ---- Output bounds -----------------------------------------------------------------------------------------

TEST_CASE("output never exceeds the limiter ceiling, whatever the settings and input") {
    const int frames = 24000;
    std::vector<std::pair<const char*, Audio>> inputs;
    inputs.emplace_back("white noise +-1", noise(2, frames, 1.0, 5));
    for (double hz : {50.0, 1000.0, 10000.0}) {
        inputs.emplace_back("full-scale square", make_audio(2, frames, [&](int, int i) {
                                return std::sin(2.0 * M_PI * hz * i / kRate) >= 0.0 ? 1.0 : -1.0;
                            }));
    }
    for (double hz : {50.0, 1000.0, 10000.0}) inputs.emplace_back("full-scale sine", sine(2, frames, hz, 1.0));
    inputs.emplace_back("Nyquist +-1", make_audio(2, frames, [](int, int i) { return i % 2 ? -1.0 : 1.0; }));
    inputs.emplace_back("DC steps", make_audio(2, frames, [](int, int i) { return (i / 4000) % 2 ? -1.0 : 1.0; }));
    inputs.emplace_back("DC -1", make_audio(2, frames, [](int, int) { return -1.0; }));
    inputs.emplace_back("sparse impulses", make_audio(2, frames, [](int, int i) { return i % 997 == 0 ? 1.0 : 0.0; }));
    inputs.emplace_back("FLT_MAX spikes", make_audio(2, frames, [](int c, int i) {
                            return i % 5003 == 17 ? (c ? -FLT_MAX : FLT_MAX) : 0.5 * std::sin(0.01 * i);
                        }));

    std::vector<std::pair<const char*, Parameters>> settings;
    settings.emplace_back("everything at maximum", extreme_parameters());
    Parameters bands = Parameters::defaults();
    for (ParamId g : {ParamId::LowShelfGainDb, ParamId::Peak1GainDb, ParamId::Peak2GainDb, ParamId::Peak3GainDb,
                      ParamId::HighShelfGainDb})
        bands[g] = 12.0f;
    settings.emplace_back("+12 dB on every band, nothing else", bands);
    Parameters bands_out = bands;
    bands_out[ParamId::OutputGainDb] = 24.0f;
    settings.emplace_back("+12 dB on every band, output +24 dB", bands_out);
    Parameters half_mix = extreme_parameters();
    half_mix[ParamId::Mix] = 0.5f;
    settings.emplace_back("maximum, mix 0.5", half_mix);
    Parameters dry = extreme_parameters();
    dry[ParamId::Mix] = 0.0f;
    settings.emplace_back("maximum, fully dry", dry);
    Parameters narrow = extreme_parameters();
    narrow[ParamId::DriveDb] = 0.0f;
    for (ParamId q : {ParamId::Peak1Q, ParamId::Peak2Q, ParamId::Peak3Q}) narrow[q] = 10.0f;
    narrow[ParamId::Peak1FreqHz] = 82.0f;
    narrow[ParamId::Peak3FreqHz] = 10000.0f;
    settings.emplace_back("no drive, resonant peaks at the range ends", narrow);
    Parameters broad = extreme_parameters();
    for (ParamId q : {ParamId::Peak1Q, ParamId::Peak2Q, ParamId::Peak3Q}) broad[q] = 0.1f;
    broad[ParamId::LowShelfFreqHz] = 1000.0f;
    broad[ParamId::HighShelfFreqHz] = 580.0f;
    settings.emplace_back("broad peaks, overlapping shelves", broad);

    for (const auto& [setting_name, params] : settings) {
        for (const auto& [input_name, input] : inputs) {
            auto engine = make_engine(params, 256);
            const Audio out = render(*engine, input, {256});
            INFO(std::string(setting_name) << " / " << std::string(input_name));
            const double peak = peak_abs(out);
            CHECK(peak <= 1.0);
            CHECK(peak <= kCeilingFloat);
            CHECK(engine->counters().limited_samples > 0);  // the test only means something if the limiter worked
        }
    }
}

TEST_CASE("random snapshots pushed while loud audio plays never produce out-of-range output") {
    Rng rng(99);
    const int frames = 96000;
    const Audio input = noise(2, frames, 1.0, 123);
    std::vector<ParamEvent> events;
    for (int f = 0; f < frames; f += 480) events.push_back({f, random_parameters(rng)});
    for (int i = 0; i < 20; ++i) events[rng.below(static_cast<int>(events.size()))].params = extreme_parameters();
    auto engine = make_engine(extreme_parameters(), 512);
    int rejected = 0;
    const Audio out = render(*engine, input, random_block_sizes(3), events, false, &rejected);
    CHECK(rejected == 0);
    CHECK(peak_abs(out) <= kCeilingFloat);
    CHECK(engine->counters().snapshots_applied > 100);
}

// ---- Safety limiter: transparent up to full scale -------------------------------------------------------

TEST_CASE("a neutral chain leaves any input within +-1.0 bit for bit: 0 changed samples") {
    // A master peaking at -0.01 dBFS (many samples at the peak, as after a brickwall limiter), exactly +-1.0,
    // full-scale noise and full-scale squares: a chain asked to do nothing must not touch any of them.
    const int frames = 48000;
    const float master_peak = static_cast<float>(std::pow(10.0, -0.01 / 20.0));
    std::vector<std::pair<const char*, Audio>> inputs;
    inputs.emplace_back("master at -0.01 dBFS", make_audio(2, frames, [&](int c, int i) {
                            const double x = 1.6 * std::sin(2.0 * M_PI * 60.0 * i / kRate + c) +
                                             0.7 * std::sin(2.0 * M_PI * 3100.0 * i / kRate);
                            return std::clamp(x, -1.0, 1.0) * master_peak;  // flat-topped at the peak
                        }));
    inputs.emplace_back("exactly +-1.0",
                        make_audio(2, frames, [](int c, int i) { return (i / 7 + c) % 2 ? -1.0 : 1.0; }));
    inputs.emplace_back("full-scale noise", noise(2, frames, 1.0, 21));
    const float below = std::nextafter(1.0f, 0.0f);
    inputs.emplace_back("one float below full scale",
                        make_audio(2, frames, [&](int, int i) { return i % 3 ? below : -below; }));

    std::vector<std::pair<const char*, Parameters>> settings;
    settings.emplace_back("defaults", Parameters::defaults());
    // Flat EQ with moved frequencies and Q (what a semantic-EQ answer at intensity 0 may carry): still neutral.
    Parameters moved = Parameters::defaults();
    moved[ParamId::LowShelfFreqHz] = 300.0f;
    moved[ParamId::Peak1FreqHz] = 150.0f;
    moved[ParamId::Peak1Q] = 8.0f;
    moved[ParamId::Peak2FreqHz] = 2500.0f;
    moved[ParamId::Peak3Q] = 0.2f;
    moved[ParamId::HighShelfFreqHz] = 4000.0f;
    settings.emplace_back("0 dB bands at moved frequencies and Q", moved);

    for (const auto& [setting_name, params] : settings) {
        for (const auto& [input_name, input] : inputs) {
            for (int block : {1, 64, 256, 1000}) {
                for (bool interleaved : {false, true}) {
                    auto engine = make_engine(params, 512);
                    const Audio out = render(*engine, input, {block}, {}, interleaved);
                    const long diff = first_bit_difference(input, out);
                    INFO(std::string(setting_name) << " / " << std::string(input_name) << ", block " << block
                                                   << std::string(interleaved ? ", interleaved" : ", planar")
                                                   << ": first difference at " << where(input, diff));
                    CHECK(diff == -1);
                    CHECK(engine->counters().limited_samples == 0);
                }
            }
        }
    }
    CHECK(peak_abs(inputs[0].second) == master_peak);  // the master really peaks at -0.01 dBFS
}

TEST_CASE("an over is caught on its own sample, and transparency returns exactly after hold and release") {
    // Full-scale noise through a neutral chain, with one over: nothing before it changes (no look-ahead), the over
    // lands exactly on full scale (instant attack, linked: the other channel gets the same gain), the gain is
    // held, released, and once it has landed on 1.0 the output is bit-identical to the input again.
    const int frames = 3 * 48000;
    const int at = 4800;
    const float over = 1.5f;
    Audio input = noise(2, frames, 1.0, 31);
    input.at(0, at) = over;
    auto engine = make_engine(Parameters::defaults(), 256);
    const Audio out = render(*engine, input, {256});
    CHECK(peak_abs(out) <= 1.0);

    // Where the gain must be back at exactly 1.0: the 5 ms hold, then the 100 ms release from 1/1.5 until it is
    // within 1e-7 of 1.0, where it snaps (one extra frame for rounding in the exponential's recursion).
    const int hold = static_cast<int>(0.005 * kRate);
    const double release_frames = 0.100 * kRate * std::log((1.0 - 1.0 / over) / 1e-7);
    const int settled = at + hold + static_cast<int>(std::ceil(release_frames)) + 2;
    REQUIRE(settled < frames);

    auto same_bits = [&](int c, int i) { return std::memcmp(input.channel(c) + i, out.channel(c) + i, 4) == 0; };
    long last_changed = -1;
    for (int c = 0; c < 2; ++c)
        for (int i = 0; i < frames; ++i)
            if (!same_bits(c, i)) last_changed = std::max(last_changed, static_cast<long>(i));
    for (int c = 0; c < 2; ++c)
        for (int i = 0; i < at; ++i) REQUIRE(same_bits(c, i));  // no look-ahead: nothing before the over changes
    CHECK(out.at(0, at) == 1.0f);
    const double gain = 1.0 / static_cast<double>(over);
    CHECK(out.at(1, at) == static_cast<float>(static_cast<double>(input.at(1, at)) * gain));
    // Still turned down through the hold and well into the release, and identical again once it has landed.
    CHECK(out.at(0, at + hold) == static_cast<float>(static_cast<double>(input.at(0, at + hold)) * gain));
    INFO("last changed frame " << last_changed << ", settled by " << settled);
    CHECK(last_changed > at + hold + static_cast<int>(0.5 * release_frames));
    CHECK(last_changed < settled);
    CHECK(engine->counters().limited_samples <= static_cast<std::uint64_t>(settled - at));
    CHECK(engine->counters().limited_samples > static_cast<std::uint64_t>(last_changed - at - 100));
}

TEST_CASE("SafetyLimiter: gain lands on exactly 1.0 when the hold and release say, never above the ceiling") {
    SafetyLimiter limiter;
    limiter.prepare(kRate);
    CHECK(limiter.gain() == 1.0);
    const double release_frames = 0.100 * kRate * std::log((1.0 - 1.0 / 4.0) / 1e-7);
    const int hold = static_cast<int>(0.005 * kRate);
    float frame[2];
    float* ch[2] = {&frame[0], &frame[1]};
    int landed = -1;
    for (int i = 0; i < 200000 && landed < 0; ++i) {
        frame[0] = i == 0 ? -4.0f : 0.999f;
        frame[1] = i == 0 ? 2.0f : -1.0f;
        const std::uint64_t changed = limiter.process(ch, 2, 1);
        CHECK(std::fabs(frame[0]) <= 1.0f);
        CHECK(std::fabs(frame[1]) <= 1.0f);
        if (i == 0) {
            CHECK(frame[0] == -1.0f);  // the loudest channel lands exactly on full scale
            CHECK(frame[1] == 0.5f);   // linked: the other channel gets the same gain
            CHECK(limiter.gain() == 0.25);
        }
        if (i > 0 && i <= hold) CHECK(limiter.gain() == 0.25);  // held
        if (limiter.gain() == 1.0) {
            landed = i;
            CHECK(changed == 0);  // the frame on which it lands passes untouched
            CHECK(frame[0] == 0.999f);
            CHECK(frame[1] == -1.0f);
        } else {
            CHECK(changed == 1);
        }
    }
    INFO("landed at frame " << landed << ", predicted " << hold + release_frames);
    CHECK(std::fabs(landed - (hold + release_frames)) <= 2.0);
    // After landing it is an identity again, including the largest float values within full scale.
    float tiny = std::nextafter(1.0f, 0.0f), neg = -1.0f;
    float* after[2] = {&tiny, &neg};
    CHECK(limiter.process(after, 2, 1) == 0);
    CHECK(tiny == std::nextafter(1.0f, 0.0f));
    CHECK(neg == -1.0f);
}

TEST_CASE("SafetyLimiter: x * (1 / |x|) never rounds above full scale, whatever the over") {
    // The rider's gain for an over is 1/peak in double; the product rounded to float must not exceed 1.0f (the
    // clamp guards it, and this checks the clamp is not what keeps the bound in ordinary cases either).
    Rng rng(8);
    int not_one = 0, clamped_not_one = 0, above = 0;
    for (int k = 0; k < 200000; ++k) {
        float x = k < 1000 ? std::nextafter(1.0f, 2.0f) + static_cast<float>(k) * 1.2e-7f
                           : static_cast<float>(rng.uniform(1.0, 64.0));
        if (rng.below(2)) x = -x;
        const double gain = 1.0 / std::fabs(static_cast<double>(x));
        not_one += std::fabs(static_cast<float>(static_cast<double>(x) * gain)) != 1.0f;
        clamped_not_one += std::fabs(SafetyLimiter::scaled(x, gain)) != 1.0f;
        above += std::fabs(SafetyLimiter::scaled(x, std::nextafter(gain, 2.0))) > 1.0f;  // a rounding step up
    }
    CHECK(not_one == 0);
    CHECK(clamped_not_one == 0);
    CHECK(above == 0);
}

// ---- NaN and Inf -------------------------------------------------------------------------------------------

TEST_CASE("NaN/Inf input becomes silence: finite output, identical to zeros there, and normal right after") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float snan = std::numeric_limits<float>::signaling_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    const int frames = 48000;
    Audio bad = program(2, frames, 4);
    Audio zeroed = bad;
    std::uint64_t inserted = 0;
    auto poison = [&](int c, int i, float v) {
        bad.at(c, i) = v;
        zeroed.at(c, i) = 0.0f;
        ++inserted;
    };
    poison(0, 0, nan);  // the very first sample
    poison(1, 0, inf);
    for (int i = 1000; i < 2000; ++i) poison(0, i, nan);  // a long burst in one channel
    poison(1, 1500, -inf);
    for (int i = 4090; i < 4102; ++i) poison(0, i, inf);  // across block boundaries of every schedule below
    for (int i = 20000; i < 20512; ++i) {
        poison(0, i, snan);
        poison(1, i, -nan);
    }
    poison(1, frames - 1, nan);  // the very last sample

    const Parameters params = busy_parameters();
    for (const std::vector<int>& sizes : {std::vector<int>{64}, std::vector<int>{512}, random_block_sizes(8)}) {
        for (bool interleaved : {false, true}) {
            auto engine = make_engine(params, 512);
            auto reference_engine = make_engine(params, 512);
            const Audio out = render(*engine, bad, sizes, {}, interleaved);
            const Audio expected = render(*reference_engine, zeroed, sizes, {}, interleaved);
            INFO("block schedule starting " << sizes.front()
                                            << std::string(interleaved ? ", interleaved" : ", planar"));
            CHECK(peak_abs(out) <= kCeilingFloat);  // also fails on any NaN/Inf
            const long diff = first_bit_difference(out, expected);
            INFO("first difference from the zero-substituted render at " << where(out, diff));
            CHECK(diff == -1);
            CHECK(engine->counters().nonfinite_samples == inserted);
            CHECK(reference_engine->counters().nonfinite_samples == 0);
            // Recovery: right after each burst the output carries the program again, not silence or garbage.
            CHECK(rms(out, 0, 2000, 3000) > 0.05);
            CHECK(rms(out, 0, 20512, 21512) > 0.05);
            CHECK(rms(out, 1, 20512, 21512) > 0.05);
        }
    }
}

TEST_CASE("a non-finite parameter snapshot is rejected and changes nothing") {
    const Audio input = program(2, 9600);
    auto engine = make_engine(Parameters::defaults());
    Parameters p = Parameters::defaults();
    p[ParamId::Peak2GainDb] = std::numeric_limits<float>::quiet_NaN();
    CHECK(check_parameters(p).bad_index == static_cast<int>(ParamId::Peak2GainDb));
    CHECK_FALSE(engine->push_parameters(p));
    engine->set_parameters_now(p);  // ignored, not applied
    Parameters out_of_range = Parameters::defaults();
    out_of_range[ParamId::DriveDb] = 36.5f;
    CHECK(check_parameters(out_of_range).bad_index == static_cast<int>(ParamId::DriveDb));
    CHECK_FALSE(engine->push_parameters(out_of_range));
    out_of_range[ParamId::DriveDb] = 36.0f;
    out_of_range[ParamId::Peak1FreqHz] = 81.0f;
    CHECK(check_parameters(out_of_range).bad_index == static_cast<int>(ParamId::Peak1FreqHz));
    CHECK_FALSE(engine->push_parameters(out_of_range));
    const Audio out = render(*engine, input, {128});
    CHECK(first_bit_difference(input, out) == -1);
    CHECK(engine->counters().snapshots_applied == 0);
}

// ---- Block-size independence -------------------------------------------------------------------------------

TEST_CASE("any split into blocks gives bit-identical output") {
    // Fixed parameters, plus snapshots at fixed sample positions (render() ends a block at each), so that ramps,
    // the coefficient grid and the bypass decisions are all exercised.
    Rng rng(2024);
    const Audio input = program(2, 48000, 77);
    const std::vector<ParamEvent> events = {
        {0, random_parameters(rng)}, {10007, random_parameters(rng)}, {30011, busy_parameters()}};

    struct Case {
        const char* name;
        std::vector<int> sizes;
        int max_block;
        bool interleaved;
    };
    const std::vector<Case> cases = {
        {"1", {1}, 512, false},
        {"32", {32}, 512, false},
        {"100", {100}, 512, false},
        {"128", {128}, 512, false},
        {"512", {512}, 512, false},
        {"512 on an engine prepared for 64", {512}, 64, false},
        {"2000 (split by the engine)", {2000}, 512, false},
        {"random 0..700", random_block_sizes(42), 512, false},
        {"random 0..700, interleaved", random_block_sizes(43), 512, true},
        {"64, interleaved", {64}, 512, true},
    };
    SUBCASE("fixed parameters") {
        auto ref_engine = make_engine(busy_parameters(), 512);
        const Audio reference = render(*ref_engine, input, {64});
        for (const Case& c : cases) {
            auto engine = make_engine(busy_parameters(), c.max_block);
            const Audio out = render(*engine, input, c.sizes, {}, c.interleaved);
            const long diff = first_bit_difference(reference, out);
            INFO("blocks " << std::string(c.name) << ": first difference from 64-frame blocks at " << where(out, diff));
            CHECK(diff == -1);
        }
    }
    SUBCASE("snapshots at fixed positions") {
        auto ref_engine = make_engine(busy_parameters(), 512);
        const Audio reference = render(*ref_engine, input, {64}, events);
        for (const Case& c : cases) {
            auto engine = make_engine(busy_parameters(), c.max_block);
            const Audio out = render(*engine, input, c.sizes, events, c.interleaved);
            const long diff = first_bit_difference(reference, out);
            INFO("blocks " << std::string(c.name) << ": first difference from 64-frame blocks at " << where(out, diff));
            CHECK(diff == -1);
        }
    }
}

// ---- Parameter ramps ---------------------------------------------------------------------------------------

TEST_CASE("an output gain change ramps linearly over ramp_samples() and lands exactly") {
    auto engine = make_engine(Parameters::defaults(), 256, 2);
    REQUIRE(engine->ramp_samples() == 960);  // 20 ms at 48 kHz
    const int change = 4800, ramp = engine->ramp_samples();
    Parameters quiet = Parameters::defaults();
    quiet[ParamId::OutputGainDb] = -24.0f;
    const Audio input = make_audio(2, 9600, [](int, int) { return 0.5; });  // DC: the clean path keeps it
    const Audio out = render(*engine, input, {256}, {{change, quiet}});
    const float target = static_cast<float>(0.5 * db_to_gain(-24.0));
    const double full_step = (0.5 - target) / ramp;
    for (int c = 0; c < 2; ++c) {
        for (int i = 0; i < change; ++i) REQUIRE(out.at(c, i) == 0.5f);
        for (int i = change; i < change + ramp - 1; ++i) {
            INFO("channel " << c << " frame " << i);
            REQUIRE(out.at(c, i) < out.at(c, i - 1));                              // moving every sample ...
            REQUIRE(out.at(c, i - 1) - out.at(c, i) <= full_step * 1.001 + 1e-7);  // ... by one equal step
            REQUIRE(out.at(c, i) > target);
        }
        for (int i = change + ramp - 1; i < out.frames; ++i) REQUIRE(out.at(c, i) == target);
    }
}

TEST_CASE("snapshots applied mid-stream ramp instead of jumping") {
    // For each change A -> B: the largest sample-to-sample step around the change must stay within 5% of the largest
    // step of the same signal rendered entirely at A or entirely at B. Where applying B at once (set_parameters_now
    // between two blocks: no ramp) makes a jump this measure can see, the test also checks that it does, so the
    // bound is known to be tight enough to catch a missing ramp. (A gain step in the direct-form-I EQ does not
    // make a sample-to-sample jump even unramped, so those cases only guard against the ramp adding one.)
    struct Change {
        const char* name;
        Parameters from, to;
        Audio input;
        bool snap_jumps;
    };
    auto with = [](Parameters p, std::initializer_list<std::pair<ParamId, float>> values) {
        for (const auto& [id, v] : values) p[id] = v;
        return p;
    };
    using P = ParamId;
    const Parameters d = Parameters::defaults();
    // Levels keep every render below full scale, where the limiter acts: the ramps are under test here.
    const std::vector<Change> changes = {
        {"output gain -24 -> +12 dB", with(d, {{P::OutputGainDb, -24}}), with(d, {{P::OutputGainDb, 12}}),
         sine(2, 24000, 200.0, 0.2), true},
        {"input gain +12 -> -24 dB", with(d, {{P::InputGainDb, 12}}), with(d, {{P::InputGainDb, -24}}),
         sine(2, 24000, 150.0, 0.2), true},
        {"mix 0 -> 1 with 30 dB drive", with(d, {{P::DriveDb, 30}, {P::Mix, 0}, {P::OutputGainDb, -6}}),
         with(d, {{P::DriveDb, 30}, {P::OutputGainDb, -6}}), sine(2, 24000, 100.0, 0.1), true},
        {"drive 0 -> 36 dB", with(d, {{P::OutputGainDb, -6}}), with(d, {{P::DriveDb, 36}, {P::OutputGainDb, -6}}),
         sine(2, 24000, 100.0, 0.05), true},
        {"crunch 0 -> 1 at 24 dB drive", with(d, {{P::DriveDb, 24}, {P::OutputGainDb, -6}}),
         with(d, {{P::DriveDb, 24}, {P::DriveAsymmetry, 1}, {P::OutputGainDb, -6}}), sine(2, 24000, 100.0, 0.05), true},
        {"peak 2 +12 dB -> bypassed", with(d, {{P::Peak2FreqHz, 700}, {P::Peak2GainDb, 12}}),
         with(d, {{P::Peak2FreqHz, 700}}), sine(2, 24000, 700.0, 0.05), true},
        {"peak 3 at +12 dB swept 300 -> 6000 Hz", with(d, {{P::Peak3GainDb, 12}, {P::Peak3FreqHz, 300}}),
         with(d, {{P::Peak3GainDb, 12}, {P::Peak3FreqHz, 6000}}), sine(2, 24000, 300.0, 0.05), true},
        {"peak 1 bypassed -> +12 dB", with(d, {{P::Peak1FreqHz, 500}}),
         with(d, {{P::Peak1FreqHz, 500}, {P::Peak1GainDb, 12}}), sine(2, 24000, 500.0, 0.05), false},
        {"peak 1 Q 10 -> 0.1 at +12 dB", with(d, {{P::Peak1GainDb, 12}, {P::Peak1FreqHz, 1000}, {P::Peak1Q, 10}}),
         with(d, {{P::Peak1GainDb, 12}, {P::Peak1FreqHz, 1000}, {P::Peak1Q, 0.1f}}), sine(2, 24000, 3000.0, 0.05),
         false},
        {"low shelf -12 -> +12 dB", with(d, {{P::LowShelfGainDb, -12}}), with(d, {{P::LowShelfGainDb, 12}}),
         sine(2, 24000, 60.0, 0.1), false},
        {"high shelf +12 -> -12 dB", with(d, {{P::HighShelfGainDb, 12}}), with(d, {{P::HighShelfGainDb, -12}}),
         sine(2, 24000, 9000.0, 0.05), false},
    };

    const int change_at = 9600, block = 128;  // 9600 = 75 blocks: the change lands on a block start
    // From a little before the change to well after the slowest (EQ, 50 ms) ramp has landed.
    const int window_begin = change_at - 512, window_end = change_at + 2400 + 4096;
    for (const Change& ch : changes) {
        auto engine_a = make_engine(ch.from), engine_b = make_engine(ch.to), engine_ab = make_engine(ch.from);
        auto engine_snap = make_engine(ch.from);
        const Audio only_a = render(*engine_a, ch.input, {block});
        const Audio only_b = render(*engine_b, ch.input, {block});
        const Audio ramped = render(*engine_ab, ch.input, {block}, {{change_at, ch.to}});
        Audio snapped = ch.input;
        process_range(*engine_snap, snapped, 0, change_at, block);
        engine_snap->set_parameters_now(ch.to);
        process_range(*engine_snap, snapped, change_at, snapped.frames, block);

        const double baseline =
            std::max(max_step(only_a, window_begin, window_end), max_step(only_b, window_begin, window_end));
        const double bound = 1.05 * baseline;
        const double with_ramp = max_step(ramped, window_begin, window_end);
        const double without_ramp = max_step(snapped, window_begin, window_end);
        INFO(std::string(ch.name) << ": largest step " << with_ramp << " with the ramp, " << without_ramp
                                  << " without, " << baseline << " at either setting alone");
        CHECK(with_ramp <= bound);
        if (ch.snap_jumps) CHECK(without_ramp > 2.0 * bound);
        const std::uint64_t limited = engine_a->counters().limited_samples + engine_b->counters().limited_samples +
                                      engine_ab->counters().limited_samples;
        CHECK(limited == 0);
    }
}

// ---- Biquad coefficients -----------------------------------------------------------------------------------

namespace {

struct CoefficientCase {
    const char* kind;
    double sample_rate, freq, q, gain_db;
    BiquadCoefficients expected;
};

// Computed outside this code base (Python, float64) from the formulas in JUCE's juce_IIRFilter.cpp
// (IIRCoefficients::makeLowShelf / makePeakFilter / makeHighShelf), each normalised by its a0.
const CoefficientCase kJuceCases[] = {
    {"low_shelf",
     48000,
     150,
     0.71,
     6,
     {1.0048113618085843, -1.9765956999562857, 0.97232265090427161, -1.9767299585939249, 0.97699975407521678}},
    {"low_shelf",
     44100,
     22,
     0.71,
     -12,
     {0.99844588584970184, -1.9937711902608091, 0.99533021320147519, -1.9937638735327721, 0.99378341577921403}},
    {"low_shelf",
     96000,
     1000,
     0.71,
     12,
     {1.0329937274522498, -1.9316337175186613, 0.90691849356996113, -1.9347332362392475, 0.93681270230162439}},
    {"peak",
     48000,
     1000,
     0.71,
     12,
     {1.1312868991922311, -1.8955629259260862, 0.78063276449887042, -1.8955629259260862, 0.91191966369110156}},
    {"peak",
     48000,
     3300,
     10,
     -12,
     {0.96997844999943095, -1.743467297962161, 0.9498370022477195, -1.743467297962161, 0.91981545224715044}},
    {"peak",
     96000,
     82,
     0.1,
     3,
     {1.0091087195884823, -1.9558123629203281, 0.94673181077191526, -1.9558123629203281, 0.95584053036039762}},
    {"peak",
     44100,
     560,
     0.71,
     -4.5,
     {0.97258827695838757, -1.8584806245953136, 0.89182351331592091, -1.8584806245953136, 0.86441179027430837}},
    {"high_shelf",
     48000,
     8200,
     0.71,
     -6,
     {0.63964188602407734, -0.25629706345446462, 0.12918476510185439, -0.76643056410585575, 0.27896015177732281}},
    {"high_shelf",
     44100,
     20000,
     0.71,
     12,
     {1.1540275981655383, 1.6532750571900829, 0.64841497468480935, 1.7091242220897647, 0.74659340795066564}},
    {"high_shelf",
     48000,
     580,
     0.71,
     3,
     {1.399545424552554, -2.6618547539175612, 1.2687782581073284, -1.8835042127239572, 0.88997314146627859}},
};

/// The coefficients the code under test computes for a case.
BiquadCoefficients compute(const char* kind, double sr, double f, double q, double db) {
    const std::string k = kind;
    if (k == "low_shelf") return BiquadCoefficients::low_shelf(sr, f, q, db);
    if (k == "high_shelf") return BiquadCoefficients::high_shelf(sr, f, q, db);
    return BiquadCoefficients::peak(sr, f, q, db);
}

/// |H(e^jw)| in dB at `hz`.
double response_db(const BiquadCoefficients& c, double sr, double hz) {
    const double w = 2.0 * M_PI * hz / sr;
    const double re_n = c.b0 + c.b1 * std::cos(w) + c.b2 * std::cos(2 * w);
    const double im_n = -c.b1 * std::sin(w) - c.b2 * std::sin(2 * w);
    const double re_d = 1.0 + c.a1 * std::cos(w) + c.a2 * std::cos(2 * w);
    const double im_d = -c.a1 * std::sin(w) - c.a2 * std::sin(2 * w);
    return 10.0 * std::log10((re_n * re_n + im_n * im_n) / (re_d * re_d + im_d * im_d));
}

}  // namespace

TEST_CASE("biquad coefficients equal JUCE's IIRCoefficients formulas") {
    for (const CoefficientCase& k : kJuceCases) {
        const BiquadCoefficients c = compute(k.kind, k.sample_rate, k.freq, k.q, k.gain_db);
        INFO(std::string(k.kind) << " sr=" << k.sample_rate << " f=" << k.freq << " q=" << k.q
                                 << " gain=" << k.gain_db);
        CHECK(c.b0 == doctest::Approx(k.expected.b0).epsilon(1e-12));
        CHECK(c.b1 == doctest::Approx(k.expected.b1).epsilon(1e-12));
        CHECK(c.b2 == doctest::Approx(k.expected.b2).epsilon(1e-12));
        CHECK(c.a1 == doctest::Approx(k.expected.a1).epsilon(1e-12));
        CHECK(c.a2 == doctest::Approx(k.expected.a2).epsilon(1e-12));
    }
}

TEST_CASE("biquad responses have the gains their names promise") {
    // Independent of the formulas' algebra: shelves reach their gain at one end and 0 dB at the other, a peak
    // reaches its gain at its centre; 0 dB is the identity.
    const double sr = 48000.0;
    for (double g : {-12.0, -3.0, 6.0, 12.0}) {
        INFO("gain " << g << " dB");
        const auto low = BiquadCoefficients::low_shelf(sr, 200.0, kShelfQ, g);
        CHECK(response_db(low, sr, 0.0) == doctest::Approx(g).epsilon(1e-9));
        CHECK(response_db(low, sr, sr / 2) == doctest::Approx(0.0).epsilon(1e-9));
        const auto high = BiquadCoefficients::high_shelf(sr, 5000.0, kShelfQ, g);
        CHECK(response_db(high, sr, sr / 2) == doctest::Approx(g).epsilon(1e-9));
        CHECK(std::fabs(response_db(high, sr, 0.0)) < 1e-9);
        const auto pk = BiquadCoefficients::peak(sr, 1234.0, 1.7, g);
        CHECK(response_db(pk, sr, 1234.0) == doctest::Approx(g).epsilon(1e-9));
        CHECK(std::fabs(response_db(pk, sr, 0.0)) < 1e-9);
    }
    for (const auto& c :
         {BiquadCoefficients::peak(sr, 1000.0, 0.71, 0.0), BiquadCoefficients::low_shelf(sr, 100.0, 0.71, 0.0),
          BiquadCoefficients::high_shelf(sr, 9000.0, 0.71, 0.0)}) {
        CHECK(c.b0 == doctest::Approx(1.0).epsilon(1e-15));
        CHECK(c.b1 == doctest::Approx(c.a1).epsilon(1e-15));
        CHECK(c.b2 == doctest::Approx(c.a2).epsilon(1e-15));
    }
    // JUCE clamps the frequency at 2 Hz.
    const auto at_one = BiquadCoefficients::low_shelf(sr, 1.0, kShelfQ, 6.0);
    const auto at_two = BiquadCoefficients::low_shelf(sr, 2.0, kShelfQ, 6.0);
    CHECK(at_one.b0 == at_two.b0);
    CHECK(at_one.a1 == at_two.a1);
}

TEST_CASE("eq_response_db matches what the engine actually does to a sine") {
    Parameters p = busy_parameters();
    p[ParamId::DriveDb] = 0.0f;
    p[ParamId::Mix] = 1.0f;
    p[ParamId::InputGainDb] = 0.0f;
    p[ParamId::OutputGainDb] = 0.0f;
    // Frequencies that fit a whole number of cycles into the 24000-frame measurement window.
    const double freqs[] = {60.0, 120.0, 400.0, 1500.0, 5000.0, 9000.0, 16000.0};
    double predicted[std::size(freqs)];
    eq_response_db(p, kRate, freqs, predicted, std::size(freqs));
    for (std::size_t k = 0; k < std::size(freqs); ++k) {
        const double amplitude = 0.1;
        const Audio input = sine(1, 48000, freqs[k], amplitude);
        auto engine = make_engine(p, 512, 1);
        const Audio out = render(*engine, input, {512});
        // Project the settled second half onto sin and cos at the test frequency.
        double s = 0.0, c = 0.0;
        for (int i = 24000; i < 48000; ++i) {
            const double ph = 2.0 * M_PI * freqs[k] * i / kRate;
            s += out.at(0, i) * std::sin(ph);
            c += out.at(0, i) * std::cos(ph);
        }
        const double measured_amp = 2.0 * std::sqrt(s * s + c * c) / 24000.0;
        const double measured_db = 20.0 * std::log10(measured_amp / amplitude);
        INFO(freqs[k] << " Hz: predicted " << predicted[k] << " dB, measured " << measured_db << " dB");
        CHECK(std::fabs(measured_db - predicted[k]) < 0.01);
    }
}

// ---- Bookkeeping -------------------------------------------------------------------------------------------

TEST_CASE("telemetry, counters and the timing histogram account for every block") {
    auto engine = make_engine(Parameters::defaults(), 256, 2);
    engine->set_telemetry_enabled(true);
    engine->set_budget_fraction(1e9);  // nothing is over budget
    Audio audio = program(2, 4000);
    const std::vector<int> sizes = {64, 300, 1, 0, 128, 700, 64, 64};
    std::vector<float*> ptrs(2);
    int pos = 0;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
        if (b == 2) {
            Parameters p = Parameters::defaults();
            p[ParamId::OutputGainDb] = -1.0f;
            p.sequence = 41;
            REQUIRE(engine->push_parameters(p));
            p.sequence = 42;  // two snapshots before one block: only the newest is taken up
            REQUIRE(engine->push_parameters(p));
        }
        if (b == 4) audio.at(1, pos + 5) = std::numeric_limits<float>::quiet_NaN();
        if (b == 6) engine->set_budget_fraction(-1.0);  // everything is over budget
        if (b == 7) {
            engine->set_budget_fraction(1e9);
            audio.at(0, pos + 10) = 3.0f;  // far above the ceiling (last block: the gain reduction outlasts it)
        }
        for (int c = 0; c < 2; ++c) ptrs[c] = audio.channel(c) + pos;
        engine->process(ptrs.data(), 2, sizes[b]);
        pos += sizes[b];
    }
    const std::vector<BlockTelemetry> t = drain_telemetry(*engine);
    REQUIRE(t.size() == sizes.size());
    std::uint64_t sample_time = 0;
    for (std::size_t b = 0; b < t.size(); ++b) {
        INFO("block " << b);
        CHECK(t[b].block_index == b);
        CHECK(t[b].sample_time == sample_time);
        CHECK(t[b].frames == static_cast<std::uint32_t>(sizes[b]));
        CHECK(((t[b].flags & kBlockParamsApplied) != 0) == (b == 2));
        CHECK(((t[b].flags & kBlockNonFiniteInput) != 0) == (b == 4));
        CHECK(((t[b].flags & kBlockLimited) != 0) == (b == 7));
        CHECK(((t[b].flags & kBlockOverBudget) != 0) == (b == 6));  // a 0-frame block (b == 3) is not over budget
        sample_time += t[b].frames;
    }
    const EngineCounters k = engine->counters();
    CHECK(k.blocks == sizes.size());
    CHECK(k.frames == sample_time);
    CHECK(k.snapshots_applied == 1);
    CHECK(k.applied_sequence == 42);
    CHECK(k.nonfinite_samples == 1);
    CHECK(k.limited_samples > 0);
    CHECK(k.telemetry_dropped == 0);
    const TimingHistogram::Snapshot timing = engine->timing().snapshot();
    CHECK(timing.blocks == sizes.size());
    CHECK(timing.over_budget == 1);

    // Nobody drains the ring: records beyond its capacity are counted as dropped, never block the audio thread.
    const std::size_t cap = engine->telemetry_ring().capacity();
    for (std::size_t b = 0; b < cap + 100; ++b) {
        for (int c = 0; c < 2; ++c) ptrs[c] = audio.channel(c);
        engine->process(ptrs.data(), 2, 1);
    }
    CHECK(engine->counters().telemetry_dropped == 100);
    CHECK(drain_telemetry(*engine).size() == cap);

    // prepare() starts a new stream: the clock and the histogram restart.
    engine->prepare(kRate, 256, 2);
    engine->process(ptrs.data(), 2, 10);
    const std::vector<BlockTelemetry> after = drain_telemetry(*engine);
    REQUIRE(after.size() == 1);
    CHECK(after[0].block_index == 0);
    CHECK(after[0].sample_time == 0);
    CHECK(engine->timing().snapshot().blocks == 1);
}

TEST_CASE("the analysis ring carries the mono mix of the sanitised input, only while enabled") {
    auto engine = make_engine(busy_parameters(), 512, 2);
    Audio audio = program(2, 3000);
    audio.at(0, 10) = std::numeric_limits<float>::infinity();
    Audio original = audio;
    original.at(0, 10) = 0.0f;
    process_range(*engine, audio, 0, 1000, 256);  // analysis off: nothing queued
    CHECK(engine->analysis_ring().size() == 0);
    engine->set_analysis_enabled(true);
    process_range(*engine, audio, 1000, 3000, 100);
    std::vector<float> mono(4000);
    REQUIRE(engine->analysis_ring().pop(mono.data(), mono.size()) == 2000);
    for (int i = 0; i < 2000; ++i) {
        const float expected = (original.at(0, 1000 + i) + original.at(1, 1000 + i)) * 0.5f;
        REQUIRE(mono[i] == expected);
    }
    engine->set_analysis_enabled(false);
    process_range(*engine, audio, 0, 500, 100);
    CHECK(engine->analysis_ring().size() == 0);

    // A full ring drops the overflow and counts it.
    engine->set_analysis_enabled(true);
    const int cap = static_cast<int>(engine->analysis_ring().capacity());
    Audio long_input(2, cap + 1000);
    process_range(*engine, long_input, 0, long_input.frames, 512);
    CHECK(engine->analysis_ring().size() == static_cast<std::size_t>(cap));
    CHECK(engine->counters().analysis_dropped == 1000);
}

TEST_CASE("channels beyond the prepared count are silenced; fewer are processed normally") {
    auto engine = make_engine(Parameters::defaults(), 128, 2);
    Audio three = program(3, 1000);
    const Audio in = three;
    SUBCASE("planar") { process_range(*engine, three, 0, 1000, 128); }
    SUBCASE("interleaved") { three = render(*engine, in, {128}, {}, true); }
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(three.at(0, i) == in.at(0, i));
        REQUIRE(three.at(1, i) == in.at(1, i));
        REQUIRE(three.at(2, i) == 0.0f);
    }
    auto mono_engine = make_engine(Parameters::defaults(), 128, 2);
    Audio one = program(1, 1000);
    const Audio one_in = one;
    process_range(*mono_engine, one, 0, 1000, 128);
    CHECK(first_bit_difference(one, one_in) == -1);
}

TEST_CASE("PortAudio bridge: channel mapping, status counters, C entry point") {
    auto engine = make_engine(Parameters::defaults(), 256, 2);
    const Audio mono = program(1, 256);
    std::vector<float> out(512, 99.0f);
    PortAudioBridge mono_to_stereo(*engine, 1, 2);
    CHECK(idaw_portaudio_callback(mono.channel(0), out.data(), 256, nullptr, kPaInputUnderflow | kPaOutputOverflow,
                                  &mono_to_stereo) == 0);
    for (int i = 0; i < 256; ++i) {
        REQUIRE(out[2 * i] == mono.at(0, i));
        REQUIRE(out[2 * i + 1] == mono.at(0, i));
    }
    CHECK(mono_to_stereo.on_callback(nullptr, out.data(), 100, kPaPrimingOutput) == 0);  // no input: silence
    for (int i = 0; i < 200; ++i) REQUIRE(out[i] == 0.0f);
    const BridgeCounters k = mono_to_stereo.counters();
    CHECK(k.callbacks == 2);
    CHECK(k.frames == 356);
    CHECK(k.last_callback_frames == 100);
    CHECK(k.xruns == 1);  // priming is not an xrun
    CHECK(k.input_underflows == 1);
    CHECK(k.output_overflows == 1);
    CHECK(k.input_overflows == 0);
    CHECK(k.output_underflows == 0);

    std::vector<float> stereo_in(512), stereo_out(512);
    for (int i = 0; i < 512; ++i) stereo_in[i] = 0.001f * static_cast<float>(i % 97);
    PortAudioBridge stereo(*engine, 2, 2);
    CHECK(stereo.on_callback(stereo_in.data(), stereo_out.data(), 256, 0) == 0);
    CHECK(stereo_out == stereo_in);
    CHECK(engine->counters().blocks == 3);
}
