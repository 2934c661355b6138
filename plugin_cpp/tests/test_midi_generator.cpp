// The MIDI generator: keys and chords, the step grid (sample-accurate, independent of the block split), every note-on
// with its note-off whatever happens (disable, channel and tempo changes, model swaps from another thread), nothing
// while disabled, audio untouched, and the per-step cost of the real-size nets on the audio thread.
#include <doctest/doctest.h>

#include <algorithm>
#include <bitset>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "idaw/engine.h"
#include "idaw/midi_generator.h"
#include "idaw/music_theory.h"
#include "midi_test_support.h"
#include "test_support.h"

using namespace idaw;
using namespace idaw::test;

namespace {

constexpr double kRate = 48000.0;

/// An engine prepared at 48 kHz with the four nets (seeded) installed.
std::unique_ptr<Engine> engine_with_nets(int max_block, std::uint64_t seed = 7) {
    auto engine = std::make_unique<Engine>();
    engine->prepare(kRate, max_block, 2);
    install_all(*engine, seed);
    return engine;
}

std::vector<MidiEvent> note_ons(const std::vector<MidiEvent>& events) {
    std::vector<MidiEvent> out;
    for (const auto& e : events)
        if (is_on(e)) out.push_back(e);
    return out;
}

}  // namespace

TEST_CASE("keys: masks, membership, minor flag; chords: classes, fit to the key, voicing ranges") {
    using namespace idaw::music;
    const Key c_major{0, 0}, a_minor{9, 1}, d_dorian{2, 4};
    CHECK(key_mask(c_major) == pc_mask({0, 2, 4, 5, 7, 9, 11}));
    CHECK(key_mask(a_minor) == key_mask(c_major));  // relative keys share their notes
    CHECK(key_mask(d_dorian) == key_mask(c_major));
    CHECK(in_key(60, c_major));
    CHECK_FALSE(in_key(61, c_major));
    CHECK(in_key(-12 + 62, d_dorian));
    CHECK_FALSE(key_is_minor(c_major));
    CHECK(key_is_minor(a_minor));
    CHECK(key_mask(Key{7, 0}) == pc_mask({7, 9, 11, 0, 2, 4, 6}));  // G major has F#

    CHECK(chord_mask(0) == pc_mask({0, 4, 7}));           // C:maj
    CHECK(chord_mask(12 + 9) == pc_mask({9, 0, 4}));      // A:min
    CHECK(chord_mask(24 + 7) == pc_mask({7, 11, 2, 5}));  // G:dom7
    CHECK(chord_mask(36 + 11) == pc_mask({11, 2, 5}));    // B:dim
    CHECK(chord_mask(kNoChord) == 0);
    CHECK(chord_in_key(24 + 7, c_major));
    CHECK_FALSE(chord_in_key(4, c_major));  // E:maj has G#
    CHECK(chord_in_key(kNoChord, c_major));
    CHECK_FALSE(chord_in_key(kOtherChord, c_major));

    // choose_chord: the most probable chord that fits; X and reserved never.
    std::array<float, 64> probs{};
    probs[4] = 0.5f;            // E:maj, not in C major
    probs[kOtherChord] = 0.3f;  // X
    probs[12 + 9] = 0.15f;      // A:min
    probs[kNoChord] = 0.05f;
    CHECK(choose_chord(probs.data(), c_major) == 12 + 9);
    probs[12 + 9] = 0.01f;
    CHECK(choose_chord(probs.data(), c_major) == kNoChord);

    // Voicings: root in the bass octave, every chord tone once in the next octave, all below the melody.
    int pitches[kMaxChordVoices];
    for (int chord = 0; chord < kNoChord; ++chord) {
        const int n = voice_chord(chord, pitches);
        REQUIRE(n >= 4);
        CHECK(pitches[0] == kBassLow + chord_root(chord));
        std::uint16_t seen = 0;
        for (int i = 1; i < n; ++i) {
            CHECK(pitches[i] >= kChordLow);
            CHECK(pitches[i] < kChordLow + 12);
            CHECK(pitches[i] < MidiGenerator::kMelodyLow);
            seen = static_cast<std::uint16_t>(seen | (1u << pitch_class(pitches[i])));
        }
        CHECK(seen == chord_mask(chord));
    }
    CHECK(voice_chord(kNoChord, pitches) == 0);
}

TEST_CASE("control snapshots out of range are refused") {
    MidiGenerator gen;
    gen.prepare(kRate);
    MidiControl c = enabled_control();
    CHECK(check_midi_control(c) == nullptr);
    CHECK(gen.push_control(c));
    MidiControl bad = c;
    bad.tempo_bpm = 10.0f;
    CHECK(check_midi_control(bad) != nullptr);
    CHECK_FALSE(gen.push_control(bad));
    bad = c;
    bad.tempo_bpm = std::nanf("");
    CHECK_FALSE(gen.push_control(bad));
    bad = c;
    bad.emotion[5] = 1.5f;
    CHECK_FALSE(gen.push_control(bad));
    bad = c;
    bad.melody_channel = 16;
    CHECK_FALSE(gen.push_control(bad));
    bad = c;
    bad.scale = music::kNumScales;
    CHECK_FALSE(gen.push_control(bad));
    bad = c;
    bad.key_tonic = 12;
    CHECK_FALSE(gen.push_control(bad));
    bad = c;
    bad.chord_plan_bars = MidiControl::kMaxChordPlanBars + 1;
    CHECK_FALSE(gen.push_control(bad));
    for (int chord : {-2, music::kOtherChord, 100}) {
        bad = c;
        bad.chord_plan_bars = 4;
        bad.chord_plan[2] = static_cast<std::int8_t>(chord);
        CHECK_FALSE(gen.push_control(bad));
    }
    bad.chord_plan[2] = -1;  // the nets choose that bar
    CHECK(gen.push_control(bad));
    bad.chord_plan[2] = static_cast<std::int8_t>(music::kNoChord);
    CHECK(gen.push_control(bad));
}

TEST_CASE(
    "a chord plan fixes the chords of its bars, voiced on the chord and bass tracks; -1 leaves a bar to the nets") {
    // C major: I, vi, IV, V7, then a bar the nets choose; repeated over 10 bars.
    const std::vector<int> plan{0, 12 + 9, 5, 24 + 7, -1};
    MidiControl control = enabled_control(120.0f, 0, 0);
    control.chord_plan_bars = static_cast<std::uint8_t>(plan.size());
    for (std::size_t i = 0; i < plan.size(); ++i) control.chord_plan[i] = static_cast<std::int8_t>(plan[i]);
    auto engine = engine_with_nets(1024, 5);
    REQUIRE(engine->midi_generator().push_control(control));
    std::vector<MidiEvent> events;
    const int bars = 10;
    const double step = engine->midi_generator().step_samples(120.0);
    const double origin = engine->midi_generator().lookahead_samples(120.0);  // the grid started at block 0
    run_silence(*engine, static_cast<std::uint64_t>(origin + step * 16 * bars), {1024}, events);
    // Pitch classes struck on the chord (1) and bass (2) channels within half a step of each bar line.
    std::vector<std::uint16_t> struck(bars, 0);
    std::vector<int> bass_at_bar(bars, -1);
    for (const auto& e : note_ons(events)) {
        const int channel = e.bytes[0] & 0x0F;
        if (channel != 1 && channel != 2) continue;
        const double into = (static_cast<double>(e.sample_time) - origin) / (16.0 * step);
        const int bar = static_cast<int>(std::floor(into + 0.5 / 16.0));
        if (bar < 0 || bar >= bars || std::fabs(into - bar) > 0.5 / 16.0) continue;
        struck[static_cast<std::size_t>(bar)] |= static_cast<std::uint16_t>(1u << music::pitch_class(e.bytes[1]));
        if (channel == 2) bass_at_bar[static_cast<std::size_t>(bar)] = music::pitch_class(e.bytes[1]);
    }
    for (int bar = 0; bar < bars; ++bar) {
        CAPTURE(bar);
        const int chord = plan[static_cast<std::size_t>(bar) % plan.size()];
        if (chord < 0) continue;
        const std::uint16_t mask = music::chord_mask(chord);
        const std::uint16_t got = struck[static_cast<std::size_t>(bar)];
        CHECK((got & ~mask) == 0);                               // nothing outside the planned chord
        CHECK(((got >> music::chord_root(chord)) & 1u) != 0);    // its root sounds
        CHECK(std::bitset<12>(got).count() >= 3);                // a full triad at least
        CHECK(bass_at_bar[static_cast<std::size_t>(bar)] >= 0);  // and the bass plays it
    }
    // A grid started with a start voicing leads its first chord from it, as the theory layer leads one bar from the
    // last: here from a C major voicing to the plan's first chord.
    MidiControl carried = control;
    carried.start_bass = 36;
    carried.start_upper = {52, 55, 60};
    carried.start_melody = 67;
    carried.chord_plan[0] = static_cast<std::int8_t>(24 + 7);  // G7
    auto second = engine_with_nets(1024, 5);
    REQUIRE(second->midi_generator().push_control(carried));
    std::vector<MidiEvent> carried_events;
    run_silence(*second, static_cast<std::uint64_t>(origin + step * 16), {1024}, carried_events);
    music::Voicing before;
    before.bass = 36, before.upper[0] = 52, before.upper[1] = 55, before.upper[2] = 60, before.count = 3;
    const music::Voicing expected = music::lead_voices(24 + 7, before, music::kSeparateRanges);
    std::vector<int> upper, bass;
    for (const auto& e : note_ons(carried_events)) {
        const double into = (static_cast<double>(e.sample_time) - origin) / step;
        if (std::fabs(into) > 0.5) continue;  // the first bar line only
        if ((e.bytes[0] & 0x0F) == 1) upper.push_back(e.bytes[1]);
        if ((e.bytes[0] & 0x0F) == 2) bass.push_back(e.bytes[1]);
    }
    std::sort(upper.begin(), upper.end());
    std::vector<int> wanted{expected.upper[0], expected.upper[1], expected.upper[2]};
    std::sort(wanted.begin(), wanted.end());
    CHECK(upper == wanted);
    CHECK(bass == std::vector<int>{expected.bass});
    CHECK_FALSE(music::parallel_perfect(before.bass, before.upper[2], expected.bass, expected.upper[2]));
    MidiControl bad = carried;
    bad.start_upper[1] = -1;  // a bass without its three upper voices
    CHECK(check_midi_control(bad) != nullptr);
    // Only the bars left to the nets count as their choices.
    const auto k = engine->midi_generator().counters();
    CHECK(k.chord_choices == static_cast<std::uint64_t>(bars / static_cast<int>(plan.size())));
    CHECK(check_notes(events).on_while_on == 0);
}

TEST_CASE("a net of the wrong shape is refused with a message naming the role") {
    MidiGenerator gen;
    gen.prepare(kRate);
    const std::string error = gen.install(MidiNet::Melody, make_net(MidiNet::Harmony, 1));
    CHECK(error.find("MelodyTransformer needs 64 inputs and 128 outputs") != std::string::npos);
    CHECK(gen.install(MidiNet::Harmony, make_net(MidiNet::Harmony, 1)).empty());
}

TEST_CASE("nothing is generated while disabled, and nothing after a disable once the frontier has passed") {
    auto engine = engine_with_nets(512);
    std::vector<MidiEvent> events;
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 10), {512, 100, 7}, events);
    CHECK(events.empty());
    CHECK(engine->midi_generator().counters().steps == 0);

    REQUIRE(engine->midi_generator().push_control(enabled_control()));
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 4), {512}, events);
    REQUIRE_FALSE(events.empty());
    MidiControl off = enabled_control();
    off.enabled = false;
    REQUIRE(engine->midi_generator().push_control(off));
    const std::size_t before = events.size();
    const std::uint64_t disabled_at = engine->counters().frames;
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 6), {512}, events);
    // The disable ends sounding notes at the frontier (within the lookahead); no note-on comes after it.
    const double lookahead = engine->midi_generator().lookahead_samples(120.0);
    for (std::size_t i = before; i < events.size(); ++i) {
        CHECK(is_off(events[i]));
        CHECK(static_cast<double>(events[i].sample_time) <= static_cast<double>(disabled_at) + lookahead + 512);
    }
    const std::size_t after_disable = events.size();
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 5), {512}, events);
    CHECK(events.size() == after_disable);
    const NoteCheck notes = check_notes(events);
    CHECK(notes.hanging == 0);
    CHECK(notes.off_without_on == 0);
    CHECK(engine->midi_generator().sounding_notes() == 0);
}

TEST_CASE("the step grid is sample-accurate and the events do not depend on the block split") {
    const std::uint64_t frames = static_cast<std::uint64_t>(kRate * 20);
    const std::vector<std::vector<int>> splits{{4096},    {256}, {64}, {1000}, {7, 4096, 1, 333, 2048, 13},
                                               {1, 3, 2}, {64}};
    std::vector<MidiEvent> reference;
    MidiGeneratorCounters reference_counters{};
    for (std::size_t s = 0; s < splits.size(); ++s) {
        CAPTURE(s);
        // The largest block the engine is prepared for does not matter either (the last split: 64).
        auto engine = engine_with_nets(s + 1 == splits.size() ? 64 : 4096);
        // The control is queued before the first block, so the grid starts at sample 0 for every split.
        REQUIRE(engine->midi_generator().push_control(enabled_control(133.0f, 2, 4)));
        std::vector<MidiEvent> events;
        // Block size 1 for 20 s is slow in sanitizer builds: the shortest splits run 2 s.
        const std::uint64_t n = splits[s].size() == 3 && splits[s][0] == 1 ? frames / 10 : frames;
        run_silence(*engine, n, splits[s], events);
        const auto counters = engine->midi_generator().counters();
        if (s == 0) {
            reference = events;
            reference_counters = counters;
            continue;
        }
        if (n != frames) {  // compare the events generated within the shorter run
            std::size_t i = 0;
            // Field by field: MidiEvent has padding bytes, whose contents are whatever the stack held.
            for (; i < events.size() && i < reference.size(); ++i)
                if (events[i].sample_time != reference[i].sample_time || events[i].size != reference[i].size ||
                    std::memcmp(events[i].bytes, reference[i].bytes, sizeof(events[i].bytes)) != 0)
                    break;
            CHECK(i == events.size());
            continue;
        }
        REQUIRE(events.size() == reference.size());
        for (std::size_t i = 0; i < events.size(); ++i) {
            CAPTURE(i);
            CHECK(events[i].sample_time == reference[i].sample_time);
            CHECK(std::memcmp(events[i].bytes, reference[i].bytes, 3) == 0);
        }
        CHECK(counters.steps == reference_counters.steps);
    }

    // The grid: step t starts at lookahead + t * step (a control taken up in the first block starts it at 0), and
    // every onset lies within 0.4 step of its step's start.
    auto engine = engine_with_nets(4096);
    const double step = engine->midi_generator().step_samples(133.0);
    const double lookahead = engine->midi_generator().lookahead_samples(133.0);
    CHECK(step == doctest::Approx(kRate * 60.0 / 133.0 / 4.0));
    const std::uint64_t steps = reference_counters.steps;
    // Steps due in 20 s: those whose start minus the lookahead lies before the end.
    CHECK(steps == static_cast<std::uint64_t>(std::ceil((static_cast<double>(frames) - 0.0) / step)));
    const auto ons = note_ons(reference);
    REQUIRE(ons.size() > 50);
    for (const auto& e : ons) {
        const double t = (static_cast<double>(e.sample_time) - lookahead) / step;
        if ((e.bytes[0] & 0x0F) != 1) {  // melody, bass and drums: on a step
            CHECK(t - std::round(t) >= -0.4 - 1e-9);
            CHECK(t - std::round(t) <= 0.4 + 1e-9);
        } else {  // chord notes: struck at bar starts, rolled by up to a quarter step after the onset
            const double d = t - 16.0 * std::round(t / 16.0);
            CHECK(d >= -0.4 - 1e-9);
            CHECK(d <= 0.65 + 1e-9);
        }
    }
}

TEST_CASE("four tracks: every pitch in the key and its track's range; drums on General MIDI numbers") {
    for (int scale : {0, 1, 4, 9, 11}) {
        for (int tonic : {0, 3, 7, 10}) {
            CAPTURE(scale);
            CAPTURE(tonic);
            auto engine = engine_with_nets(1024, static_cast<std::uint64_t>(scale * 12 + tonic + 1));
            REQUIRE(engine->midi_generator().push_control(enabled_control(160.0f, tonic, scale)));
            std::vector<MidiEvent> events;
            run_silence(*engine, static_cast<std::uint64_t>(kRate * 8), {1024}, events);
            const music::Key key{tonic, scale};
            std::size_t count[16] = {};
            for (const auto& e : note_ons(events)) {
                const int channel = e.bytes[0] & 0x0F;
                ++count[channel];
                check_track_note(channel, e.bytes[1], key);
                CHECK(e.bytes[2] >= 1);
                CHECK(e.bytes[2] <= 127);
            }
            // Chords (and with them the bass) in every major or minor key; in the other scales the untrained
            // nets may find no chord that fits.
            for (int channel : {0, 1, 2, 9}) {
                CAPTURE(channel);
                if (channel == 0 || channel == 9 || music::is_functional(key)) CHECK(count[channel] > 0);
            }
            CHECK(count[0] + count[1] + count[2] + count[9] == check_notes(events).ons);
        }
    }
}

TEST_CASE("every note-on has its note-off through toggles, tempo, key and channel changes and swaps") {
    auto engine = engine_with_nets(512, 3);
    std::vector<MidiEvent> events;
    Rng rng(11);
    std::uint64_t seq = 1;
    for (int round = 0; round < 60; ++round) {
        MidiControl c = enabled_control(static_cast<float>(rng.uniform(40.0, 300.0)), rng.below(12),
                                        rng.below(music::kNumScales), seq++);
        c.enabled = rng.below(4) != 0;
        c.melody_channel = static_cast<std::uint8_t>(rng.below(2));
        c.chord_channel = static_cast<std::uint8_t>(rng.below(2));
        c.bass_channel = static_cast<std::uint8_t>(rng.below(3));
        c.drum_channel = static_cast<std::uint8_t>(rng.below(2) != 0 ? 9 : rng.below(3));
        c.theory = rng.below(3) != 0;
        REQUIRE(engine->midi_generator().push_control(c));
        if (rng.below(3) == 0) {
            const auto role = static_cast<MidiNet>(rng.below(kNumMidiNets));
            REQUIRE(engine->midi_generator().install(role, make_net(role, rng.next())).empty());
        }
        if (rng.below(8) == 0) engine->midi_generator().clear(static_cast<MidiNet>(rng.below(kNumMidiNets)));
        engine->midi_generator().collect();
        run_silence(*engine, static_cast<std::uint64_t>(rng.uniform(0.05, 1.5) * kRate), {rng.below(512) + 1, 512},
                    events);
    }
    MidiControl off;
    off.sequence = seq;
    REQUIRE(engine->midi_generator().push_control(off));
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 4), {512}, events);
    const NoteCheck r = check_notes(events);
    CHECK(r.ons > 100);
    CHECK(r.ons == r.offs);
    CHECK(r.off_without_on == 0);
    CHECK(r.on_while_on == 0);
    CHECK(r.off_pushed_first == 0);
    CHECK(r.zero_length == 0);
    CHECK(r.hanging == 0);
    const auto k = engine->midi_generator().counters();
    CHECK(k.note_ons == r.ons);
    CHECK(k.note_offs == r.offs);
    CHECK(k.dropped_notes == 0);
    CHECK(k.model_swaps > 5);
    CHECK(k.applied_sequence == seq);
    CHECK(engine->midi_generator().sounding_notes() == 0);
}

TEST_CASE("a full MIDI ring drops note-ons, never note-offs, and catches up once drained") {
    auto engine = engine_with_nets(512, 5);
    REQUIRE(engine->midi_generator().push_control(enabled_control(300.0f)));
    std::vector<float> buffer(2 * 512, 0.0f);
    // Nobody drains: the ring fills up (at most 20 minutes of music).
    for (int i = 0; i < 48000 * 1200 / 512 && engine->midi_generator().counters().dropped_notes == 0; ++i)
        engine->process_interleaved(buffer.data(), 2, 512);
    CHECK(engine->midi_generator().counters().dropped_notes > 0);
    std::vector<MidiEvent> events;
    drain(*engine, events);
    CHECK(events.size() == engine->midi_ring().capacity());
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 2), {512}, events);  // notes start again
    MidiControl off;
    REQUIRE(engine->midi_generator().push_control(off));
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 4), {512}, events);
    const NoteCheck r = check_notes(events);
    CHECK(r.ons == r.offs);
    CHECK(r.hanging == 0);
    CHECK(r.off_without_on == 0);
    CHECK(r.on_while_on == 0);
    CHECK(engine->midi_generator().counters().backlog == 0);
    CHECK(engine->midi_generator().counters().note_ons == r.ons);
}

TEST_CASE("the audio is bit-identical with the generator running, nets swapping, or off") {
    const int frames = 48000 * 6, block = 256;
    Rng rng(99);
    std::vector<float> input(static_cast<std::size_t>(frames) * 2);
    for (float& x : input) x = static_cast<float>(rng.uniform(-0.5, 0.5));
    Parameters p = Parameters::defaults();
    p[ParamId::DriveDb] = 8.0f;
    p[ParamId::Peak2GainDb] = 5.0f;

    auto render = [&](bool midi) {
        auto engine = engine_with_nets(block, 1);
        engine->set_parameters_now(p);
        if (midi) REQUIRE(engine->midi_generator().push_control(enabled_control()));
        std::vector<float> audio = input;
        std::vector<MidiEvent> events;
        for (int done = 0, i = 0; done < frames; done += block, ++i) {
            if (midi && i % 50 == 25) {
                const auto role = static_cast<MidiNet>(i % kNumMidiNets);
                REQUIRE(engine->midi_generator().install(role, make_net(role, static_cast<std::uint64_t>(i))).empty());
            }
            engine->process_interleaved(audio.data() + static_cast<std::size_t>(done) * 2, 2, block);
            drain(*engine, events);
            engine->midi_generator().collect();
        }
        if (midi) CHECK(engine->midi_generator().counters().model_swaps >= 10);
        if (midi) CHECK_FALSE(events.empty());
        return audio;
    };
    const auto with_midi = render(true);
    const auto without = render(false);
    CHECK(std::memcmp(with_midi.data(), without.data(), with_midi.size() * sizeof(float)) == 0);
}

TEST_CASE("the block clock reports each block's start on the sample clock and the steady clock") {
    Engine engine;
    engine.prepare(kRate, 256, 2);
    CHECK(engine.block_clock().blocks == 0);
    std::vector<float> buffer(2 * 300, 0.0f);
    const auto before = std::chrono::steady_clock::now().time_since_epoch();
    engine.process_interleaved(buffer.data(), 2, 300);
    engine.process_interleaved(buffer.data(), 2, 100);
    const auto after = std::chrono::steady_clock::now().time_since_epoch();
    const BlockClock c = engine.block_clock();
    CHECK(c.blocks == 2);
    CHECK(c.sample_time == 300);
    CHECK(c.frames == 100);
    CHECK(c.steady_ns >= static_cast<std::uint64_t>(std::chrono::nanoseconds(before).count()));
    CHECK(c.steady_ns <= static_cast<std::uint64_t>(std::chrono::nanoseconds(after).count()));
}

TEST_CASE("model swaps from a loader thread while the audio thread generates: notes stay balanced") {
    // Runs until the loader has installed 20 nets, the audio thread has taken up 10 of them and made 100 steps and 50
    // notes over at least 90 s of audio (20 s under a sanitizer): how long that takes depends on the machine, what is
    // checked does not.
    SwapGoals goals;
    goals.audio_frames = kThreadSanitizer || kAddressSanitizer ? 48000 * 20 : 48000 * 90;
    const SwapWorkout w = run_swap_workout(goals, 512, 21);
    const NoteCheck r = check_notes(w.events);
    MESSAGE("workout: " << w.installs << " installs, " << w.clears << " clears, " << w.controls << " controls, "
                        << w.counters.model_swaps << " swap blocks, " << r.ons << " notes, " << w.audio_frames
                        << " frames, " << w.loader_rounds << " loader rounds");
    REQUIRE_MESSAGE(w.reached, "no progress in " << w.loader_rounds << " loader rounds");
    CHECK(w.installs >= goals.installs);
    CHECK(w.counters.model_swaps >= goals.swaps);
    CHECK(w.audio_frames >= goals.audio_frames);
    CHECK(r.ons >= goals.note_ons);
    CHECK(r.ons == r.offs);
    CHECK(r.off_without_on == 0);
    CHECK(r.on_while_on == 0);
    CHECK(r.off_pushed_first == 0);
    CHECK(r.zero_length == 0);
    CHECK(r.hanging == 0);
}

TEST_CASE("per-step cost of the real-size nets on the audio thread") {
    auto engine = engine_with_nets(256, 2);
    REQUIRE(engine->midi_generator().push_control(enabled_control(240.0f)));
    std::vector<MidiEvent> events;
    run_silence(*engine, static_cast<std::uint64_t>(kRate * 30), {256}, events);
    const auto k = engine->midi_generator().counters();
    REQUIRE(k.steps > 400);
    REQUIRE(k.bar_steps > 20);
    const double mean_us = 1e-3 * static_cast<double>(k.step_ns_total) / static_cast<double>(k.steps);
    const auto all = engine->midi_generator().step_timing().snapshot().summarize();
    const auto bars = engine->midi_generator().bar_timing().snapshot().summarize();
    MESSAGE("MIDI step cost over " << k.steps << " steps: mean " << mean_us << " us, p50 " << all.p50_us << " us, p99 "
                                   << all.p99_us << " us, max " << all.max_us << " us; bar starts (all four nets) p50 "
                                   << bars.p50_us << " us, p99 " << bars.p99_us << " us");
    CHECK(all.blocks == k.steps);
    CHECK(bars.blocks == k.bar_steps);
    if (!kThreadSanitizer && !kAddressSanitizer) {
        // A 256-frame block at 48 kHz lasts 5333 us; a bar-start step is a small part of it (p50: robust to a
        // preemption on a shared machine).
        CHECK(bars.p50_us < 500.0);
    }
}
