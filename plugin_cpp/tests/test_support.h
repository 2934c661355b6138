// Helpers shared by the C++ tests: a reproducible generator, planar audio, offline rendering, bit comparison.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "idaw/engine.h"
#include "idaw/parameters.h"

namespace idaw::test {

/// Reads an unsigned count from the environment, or returns `fallback` when unset or unparsable.
inline std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    const double value = std::strtod(text, &end);  // strtod so "1e7" works as well as "10000000"
    if (end == text || *end != '\0' || !(value >= 1.0)) return fallback;
    return static_cast<std::uint64_t>(value);
}

/// True in builds instrumented by ThreadSanitizer (every atomic access becomes a call: budgets shrink).
inline constexpr bool kThreadSanitizer =
#if defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif

/// True in builds instrumented by AddressSanitizer.
inline constexpr bool kAddressSanitizer =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

/// splitmix64: tiny, fast and seeded, so every failure reproduces exactly.
class Rng {
  public:
    explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}
    /// Next 64 random bits.
    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, 1).
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }
    /// Uniform integer in [0, n).
    int below(int n) noexcept { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }

  private:
    std::uint64_t state_;
};

/// Planar audio: `channels` runs of `frames` samples, one after the other.
struct Audio {
    int channels = 0;
    int frames = 0;
    std::vector<float> samples;

    Audio(int num_channels, int num_frames)
        : channels(num_channels), frames(num_frames), samples(static_cast<std::size_t>(num_channels) * num_frames) {}
    /// First sample of a channel.
    float* channel(int c) noexcept { return samples.data() + static_cast<std::size_t>(c) * frames; }
    /// First sample of a channel (read-only).
    const float* channel(int c) const noexcept { return samples.data() + static_cast<std::size_t>(c) * frames; }
    /// One sample.
    float& at(int c, int i) noexcept { return channel(c)[i]; }
    /// One sample (read-only).
    float at(int c, int i) const noexcept { return channel(c)[i]; }
};

/// Fills every channel with `gen(channel, frame)`.
template <typename Gen>
Audio make_audio(int channels, int frames, Gen gen) {
    Audio a(channels, frames);
    for (int c = 0; c < channels; ++c)
        for (int i = 0; i < frames; ++i) a.at(c, i) = static_cast<float>(gen(c, i));
    return a;
}

/// Sine at `hz` and `amplitude`, phase offset per channel so channels differ.
inline Audio sine(int channels, int frames, double hz, double amplitude, double sample_rate = 48000.0) {
    return make_audio(channels, frames,
                      [&](int c, int i) { return amplitude * std::sin(2.0 * M_PI * hz * i / sample_rate + 0.7 * c); });
}

/// Uniform white noise in [-amplitude, amplitude), independent per channel.
inline Audio noise(int channels, int frames, double amplitude, std::uint64_t seed) {
    Rng rng(seed);
    Audio a(channels, frames);
    for (float& s : a.samples) s = static_cast<float>(rng.uniform(-amplitude, amplitude));
    return a;
}

/// A snapshot that the block starting at `frame` takes up (render() ends a block there).
struct ParamEvent {
    int frame = 0;
    Parameters params;
};

/// A freshly constructed and prepared engine holding `params` (no ramp).
inline std::unique_ptr<Engine> make_engine(const Parameters& params, int max_block = 512, int channels = 2,
                                           double sample_rate = 48000.0) {
    auto engine = std::make_unique<Engine>();
    engine->set_parameters_now(params);
    engine->prepare(sample_rate, max_block, channels);
    return engine;
}

/// Processes `input` through `engine` in blocks whose sizes cycle through `sizes`, cut short so that each event
/// lands on a block start, planar or interleaved. Returns the output; `push_failures` counts rejected events.
inline Audio render(Engine& engine, const Audio& input, const std::vector<int>& sizes,
                    const std::vector<ParamEvent>& events = {}, bool interleaved = false,
                    int* push_failures = nullptr) {
    Audio out = input;
    std::vector<float*> ptrs(static_cast<std::size_t>(out.channels));
    std::vector<float> frames_buf;
    std::size_t next_event = 0, next_size = 0;
    for (int pos = 0; pos < out.frames;) {
        for (; next_event < events.size() && events[next_event].frame <= pos; ++next_event)
            if (!engine.push_parameters(events[next_event].params) && push_failures) ++*push_failures;
        int n = std::min(sizes[next_size++ % sizes.size()], out.frames - pos);
        if (next_event < events.size()) n = std::min(n, events[next_event].frame - pos);
        if (interleaved) {
            frames_buf.resize(static_cast<std::size_t>(n) * out.channels);
            for (int i = 0; i < n; ++i)
                for (int c = 0; c < out.channels; ++c) frames_buf[i * out.channels + c] = out.at(c, pos + i);
            engine.process_interleaved(frames_buf.data(), out.channels, n);
            for (int i = 0; i < n; ++i)
                for (int c = 0; c < out.channels; ++c) out.at(c, pos + i) = frames_buf[i * out.channels + c];
        } else {
            for (int c = 0; c < out.channels; ++c) ptrs[c] = out.channel(c) + pos;
            engine.process(ptrs.data(), out.channels, n);
        }
        pos += n;
    }
    return out;
}

/// Index of the first sample whose bit pattern differs (NaN payloads and the sign of zero count), or -1.
inline long first_bit_difference(const Audio& a, const Audio& b) {
    if (a.samples.size() != b.samples.size()) return 0;
    for (std::size_t i = 0; i < a.samples.size(); ++i) {
        std::uint32_t x, y;
        std::memcpy(&x, &a.samples[i], sizeof x);
        std::memcpy(&y, &b.samples[i], sizeof y);
        if (x != y) return static_cast<long>(i);
    }
    return -1;
}

/// Human-readable location of a flat sample index, for failure messages.
inline std::string where(const Audio& a, long flat) {
    if (flat < 0) return "none";
    const long c = flat / a.frames, i = flat % a.frames;
    return "channel " + std::to_string(c) + " frame " + std::to_string(i);
}

/// Largest |x[i] - x[i-1]| over frames [begin, end) of every channel.
inline double max_step(const Audio& a, int begin, int end) {
    double worst = 0.0;
    for (int c = 0; c < a.channels; ++c)
        for (int i = std::max(begin, 1); i < end; ++i)
            worst = std::max(worst, std::fabs(static_cast<double>(a.at(c, i)) - a.at(c, i - 1)));
    return worst;
}

/// A random snapshot with every value inside its range (log-scaled ones drawn geometrically).
inline Parameters random_parameters(Rng& rng) {
    Parameters p = Parameters::defaults();
    for (std::size_t i = 0; i < kNumParams; ++i) {
        const ParamSpec& s = kParamSpecs[i];
        double v = s.scale == ParamScale::Log ? std::exp(rng.uniform(std::log(static_cast<double>(s.min_value)),
                                                                     std::log(static_cast<double>(s.max_value))))
                                              : rng.uniform(s.min_value, s.max_value);
        // Rounding to float may step just outside the range; clamp so check_parameters() accepts it.
        p.values[i] = std::clamp(static_cast<float>(v), s.min_value, s.max_value);
    }
    return p;
}

}  // namespace idaw::test
