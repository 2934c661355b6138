// Helpers for the MIDI generator tests: the four nets with seeded random weights (built layer by layer, the shapes of
// realtime/nets/architectures.py), draining and checking the event stream, and a threaded swap workout.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "idaw/engine.h"
#include "idaw/midi_generator.h"
#include "idaw/music_theory.h"
#include "idaw/nn/activation_layer.h"
#include "idaw/nn/dense.h"
#include "idaw/nn/lstm.h"
#include "idaw/nn/model.h"
#include "idaw/rt_check.h"
#include "idaw/theory_layer.h"
#include "test_support.h"

namespace idaw::test {

/// `n` values uniform in +-scale.
inline std::vector<float> uniform_values(Rng& rng, std::size_t n, double scale) {
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(rng.uniform(-scale, scale));
    return v;
}

/// Builds a net of the given role with weights uniform in +-gain/sqrt(fan-in) (PyTorch's default init at gain 1).
inline std::unique_ptr<nn::Model> make_net(MidiNet net, std::uint64_t seed, double gain = 1.5) {
    using nn::Activation;
    const nn::Kernels& k = nn::best_kernels();
    Rng rng(seed * 7919 + static_cast<std::uint64_t>(net));
    std::vector<std::unique_ptr<nn::Layer>> layers;
    auto dense = [&](int in, int out, Activation act) {
        const double s = gain / std::sqrt(static_cast<double>(in));
        const auto w = uniform_values(rng, static_cast<std::size_t>(in) * out, s);
        const auto b = uniform_values(rng, static_cast<std::size_t>(out), s);
        layers.push_back(std::make_unique<nn::Dense>(k, in, out, w.data(), b.data(), act));
    };
    auto lstm = [&](int in, int hidden) {
        const double s = gain / std::sqrt(static_cast<double>(hidden));
        const auto w = uniform_values(rng, static_cast<std::size_t>(in) * 4 * hidden, s);
        const auto u = uniform_values(rng, static_cast<std::size_t>(hidden) * 4 * hidden, s);
        const auto b = uniform_values(rng, static_cast<std::size_t>(4 * hidden), s);
        layers.push_back(std::make_unique<nn::Lstm>(k, in, hidden, w.data(), u.data(), b.data()));
    };
    int inputs = 0;
    switch (net) {
        case MidiNet::Melody:
            inputs = 64;
            dense(64, 256, Activation::Relu);
            lstm(256, 256);
            dense(256, 256, Activation::Relu);
            dense(256, 128, Activation::Sigmoid);
            break;
        case MidiNet::Harmony:
            inputs = 128;
            dense(128, 256, Activation::Tanh);
            dense(256, 128, Activation::Tanh);
            dense(128, 64, Activation::Softmax);
            break;
        case MidiNet::Dynamics:
            inputs = 32;
            dense(32, 128, Activation::Relu);
            dense(128, 64, Activation::Relu);
            dense(64, 16, Activation::Sigmoid);
            break;
        case MidiNet::Groove:
            inputs = 64;
            dense(64, 128, Activation::Tanh);
            dense(128, 64, Activation::Tanh);
            dense(64, 32, Activation::Tanh);
            break;
    }
    return std::make_unique<nn::Model>(k, inputs, std::move(layers));
}

/// Installs all four nets (seeded) into an engine's generator; fails the test on a refusal.
inline void install_all(Engine& engine, std::uint64_t seed) {
    for (int i = 0; i < kNumMidiNets; ++i) {
        const auto role = static_cast<MidiNet>(i);
        const std::string error = engine.midi_generator().install(role, make_net(role, seed));
        REQUIRE(error.empty());
    }
}

/// A control with the generator on, at a tempo and key, with a fixed emotion.
inline MidiControl enabled_control(float bpm = 120.0f, int tonic = 0, int scale = 0, std::uint64_t seq = 1) {
    MidiControl c;
    c.enabled = true;
    c.tempo_bpm = bpm;
    c.key_tonic = static_cast<std::uint8_t>(tonic);
    c.scale = static_cast<std::uint8_t>(scale);
    c.melody_channel = 0;
    c.chord_channel = 1;
    c.bass_channel = 2;
    c.drum_channel = 9;
    c.emotion[0] = 0.6f;  // valence
    c.emotion[1] = 0.3f;  // arousal
    c.emotion[3] = 0.2f;  // intensity
    c.emotion[4] = 0.5f;  // joy
    c.seed = 42;
    c.sequence = seq;
    return c;
}

/// The drum numbers the generator plays (General MIDI): kick, snare, closed hi-hat, crash, toms.
inline bool is_generator_drum(int pitch) {
    for (int d : {36, 38, 42, 49, 50, 47, 45, 41})
        if (pitch == d) return true;
    return false;
}

/// Checks one note-on of enabled_control()'s four tracks (channels 0 melody, 1 chords, 2 bass, 9 drums): pitched
/// notes in the key (the raised leading tone included in minor) and in their track's range, drums on the
/// generator's numbers.
inline void check_track_note(int channel, int pitch, music::Key key) {
    CAPTURE(channel);
    CAPTURE(pitch);
    if (channel != 9) CHECK(((music::theory_key_mask(key) >> music::pitch_class(pitch)) & 1u) != 0);
    if (channel == 0) {
        CHECK(pitch >= MidiGenerator::kMelodyLow);
        CHECK(pitch <= MidiGenerator::kMelodyHigh);
    } else if (channel == 1) {
        CHECK(pitch >= music::kUpperLow);
        CHECK(pitch <= music::kUpperHigh);
    } else if (channel == 2) {
        CHECK(pitch >= music::kBassFloor);
        CHECK(pitch <= music::kSeparateRanges.bass_high);
    } else {
        REQUIRE(channel == 9);
        CHECK(is_generator_drum(pitch));
    }
}

/// Pops every queued event.
inline void drain(Engine& engine, std::vector<MidiEvent>& into) {
    MidiEvent ev;
    while (engine.midi_ring().pop(ev)) into.push_back(ev);
}

inline bool is_on(const MidiEvent& e) { return (e.bytes[0] & 0xF0) == kMidiNoteOn && e.bytes[2] > 0; }
inline bool is_off(const MidiEvent& e) {
    return (e.bytes[0] & 0xF0) == kMidiNoteOff || ((e.bytes[0] & 0xF0) == kMidiNoteOn && e.bytes[2] == 0);
}

/// What check_notes() found.
struct NoteCheck {
    std::size_t ons = 0, offs = 0;
    std::size_t off_without_on = 0;    ///< a note-off with nothing sounding at that key
    std::size_t on_while_on = 0;       ///< a note-on while the same key still sounded
    std::size_t off_pushed_first = 0;  ///< a note-off that reached the ring before its note-on
    std::size_t zero_length = 0;       ///< note-off at or before its note-on time
    std::size_t hanging = 0;           ///< notes still on at the end
};

/// Sorts the events by time (ring order breaks ties) and walks every (channel, pitch): each note-on must be
/// followed by exactly one note-off, later in time and later in the ring.
inline NoteCheck check_notes(const std::vector<MidiEvent>& events) {
    std::vector<std::size_t> order(events.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return events[a].sample_time < events[b].sample_time; });
    NoteCheck r;
    std::map<int, std::pair<std::uint64_t, std::size_t>> sounding;  // key -> (on time, ring index)
    for (std::size_t i : order) {
        const MidiEvent& e = events[i];
        const int key = (e.bytes[0] & 0x0F) * 128 + e.bytes[1];
        if (is_on(e)) {
            ++r.ons;
            if (sounding.count(key)) ++r.on_while_on;
            sounding[key] = {e.sample_time, i};
        } else if (is_off(e)) {
            ++r.offs;
            auto it = sounding.find(key);
            if (it == sounding.end()) {
                ++r.off_without_on;
                continue;
            }
            if (i < it->second.second) ++r.off_pushed_first;
            if (e.sample_time <= it->second.first) ++r.zero_length;
            sounding.erase(it);
        }
    }
    r.hanging = sounding.size();
    return r;
}

/// Processes `frames` of silence through the engine in blocks of the given sizes (cycled), draining MIDI as it goes.
inline void run_silence(Engine& engine, std::uint64_t frames, const std::vector<int>& sizes,
                        std::vector<MidiEvent>& events, int channels = 2) {
    std::vector<float> buffer(static_cast<std::size_t>(channels) * 65536, 0.0f);
    std::size_t which = 0;
    for (std::uint64_t done = 0; done < frames;) {
        const int n =
            static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(sizes[which]), frames - done));
        which = (which + 1) % sizes.size();
        std::fill(buffer.begin(), buffer.begin() + static_cast<long>(n) * channels, 0.0f);
        engine.process_interleaved(buffer.data(), channels, n);
        done += static_cast<std::uint64_t>(n);
        drain(engine, events);
    }
}

/// What a swap workout must reach before it ends. Counts, never a time: on a loaded machine the workout only takes
/// longer (each thread's share of the cores decides how long, not what is checked).
struct SwapGoals {
    std::uint64_t audio_frames = 48000 * 90;  ///< audio the audio thread processes at least
    std::uint64_t installs = 20;              ///< nets the loader installs
    std::uint64_t swaps = 10;                 ///< blocks in which the audio thread took up a new net (model_swaps)
    std::uint64_t steps = 100;                ///< grid steps the generator makes
    std::uint64_t note_ons = 50;              ///< note-ons the generator sends
    /// Loader rounds (each sleeps 0.2 to 1 ms) before giving up: thousands of times what the goals need, so the cap
    /// is met only when one thread makes no progress at all.
    std::uint64_t max_loader_rounds = 200000;
};

/// Result of run_swap_workout().
struct SwapWorkout {
    std::vector<MidiEvent> events;
    std::uint64_t installs = 0, clears = 0, controls = 0, blocks = 0, audio_frames = 0, loader_rounds = 0;
    bool reached = false;  ///< every goal was reached before the cap
    MidiGeneratorCounters counters{};
};

/// True once `w` (so far) and the generator's counters `k` meet every goal.
inline bool swap_goals_met(const SwapGoals& g, const SwapWorkout& w, const MidiGeneratorCounters& k,
                           std::uint64_t audio_frames) {
    return audio_frames >= g.audio_frames && w.installs >= g.installs && k.model_swaps >= g.swaps &&
           k.steps >= g.steps && k.note_ons >= g.note_ons;
}

/// An audio thread processes blocks (each inside an rt::Section of its own, so with a checker installed everything
/// it does counts) with the generator enabled, while this thread installs freshly built nets and clears them, pushes
/// controls (tempo, key, channels, on/off) and drains the MIDI ring, until every goal is met (or the cap: then
/// `reached` is false). Ends disabled, so every note must be ended.
inline SwapWorkout run_swap_workout(const SwapGoals& goals, int max_block, std::uint64_t seed) {
    auto engine = std::make_unique<Engine>();
    engine->prepare(48000.0, max_block, 2);
    install_all(*engine, seed);
    REQUIRE(engine->midi_generator().push_control(enabled_control(180.0f)));
    SwapWorkout w;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> blocks{0}, frames{0};
    std::thread audio([&] {
        std::vector<float> buffer(static_cast<std::size_t>(2) * max_block, 0.0f);
        const int sizes[] = {max_block, 1, 37, max_block / 2, 256, 3};
        std::size_t which = 0;
        while (!stop.load(std::memory_order_acquire)) {
            const int n = sizes[which++ % 6];
            idaw::rt::Section section;
            engine->process_interleaved(buffer.data(), 2, n);
            frames.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
            blocks.fetch_add(1, std::memory_order_relaxed);
        }
    });
    Rng rng(seed);
    std::uint64_t seq = 2;
    for (; w.loader_rounds < goals.max_loader_rounds; ++w.loader_rounds) {
        if (swap_goals_met(goals, w, engine->midi_generator().counters(), frames.load(std::memory_order_relaxed))) {
            w.reached = true;
            break;
        }
        const int action = rng.below(10);
        if (action < 5) {
            const auto role = static_cast<MidiNet>(rng.below(kNumMidiNets));
            REQUIRE(engine->midi_generator().install(role, make_net(role, rng.next())).empty());
            ++w.installs;
        } else if (action == 5) {
            engine->midi_generator().clear(static_cast<MidiNet>(rng.below(kNumMidiNets)));
            ++w.clears;
        } else if (action < 9) {
            MidiControl c = enabled_control(static_cast<float>(rng.uniform(60.0, 300.0)), rng.below(12),
                                            rng.below(music::kNumScales), seq++);
            c.enabled = rng.below(5) != 0;
            c.melody_channel = static_cast<std::uint8_t>(rng.below(3));
            c.chord_channel = static_cast<std::uint8_t>(rng.below(3));
            c.bass_channel = static_cast<std::uint8_t>(rng.below(3));
            c.drum_channel = static_cast<std::uint8_t>(rng.below(2) != 0 ? 9 : rng.below(3));
            c.theory = rng.below(3) != 0;
            if (engine->midi_generator().push_control(c)) ++w.controls;
        }
        engine->midi_generator().collect();
        drain(*engine, w.events);
        std::this_thread::sleep_for(std::chrono::microseconds(200 + rng.below(800)));
    }
    stop.store(true, std::memory_order_release);
    audio.join();
    // Switch off and let the frontier pass: every note must now be ended.
    MidiControl off = enabled_control();
    off.enabled = false;
    off.sequence = seq++;
    REQUIRE(engine->midi_generator().push_control(off));
    drain(*engine, w.events);
    run_silence(*engine, 48000 * 3, {max_block}, w.events);
    engine->midi_generator().collect();
    w.blocks = blocks.load();
    w.audio_frames = frames.load();
    w.counters = engine->midi_generator().counters();
    return w;
}

}  // namespace idaw::test
