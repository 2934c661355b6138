// Nets the loader accepts (every weight a finite float32) can still compute NaN or infinity: weights near float32's
// limit overflow. The MIDI generator must never let such an output into a note (issue 9, finding 5): every event stays
// a valid note-on/off (channel, pitch in the key and its range, velocity 1..127) and every note-on gets its note-off.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "idaw/engine.h"
#include "idaw/midi_generator.h"
#include "idaw/music_theory.h"
#include "midi_test_support.h"
#include "nn_test_support.h"

namespace {

using idaw::Engine;
using idaw::MidiEvent;
using idaw::MidiGenerator;
using idaw::MidiNet;
using idaw::nn::test::json;

constexpr double kRate = 48000.0;

/// What every output of a net is.
enum class Output { NaN, PlusInf, MinusInf };

std::string output_name(Output o) { return o == Output::NaN ? "NaN" : o == Output::PlusInf ? "+inf" : "-inf"; }

/// A net of `role`'s shape, loaded from RTNeural JSON with finite weights, whose every output is `o` for any input:
/// a dense layer with zero kernel and bias 3e38 (every value 3e38), then one whose rows of +-10 overflow (+inf and
/// -inf summed: NaN), no activation.
std::unique_ptr<idaw::nn::Model> overflowing_net(MidiNet role, Output o) {
    using namespace idaw::nn::test;
    const auto& spec = idaw::kMidiNetSpecs[static_cast<std::size_t>(role)];
    constexpr int kHidden = 8;
    std::vector<float> rows(static_cast<std::size_t>(kHidden) * static_cast<std::size_t>(spec.outputs));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const bool even_row = (i / static_cast<std::size_t>(spec.outputs)) % 2 == 0;
        rows[i] = o == Output::PlusInf ? 10.0f : o == Output::MinusInf ? -10.0f : even_row ? 10.0f : -10.0f;
    }
    const std::size_t in = static_cast<std::size_t>(spec.inputs), out = static_cast<std::size_t>(spec.outputs);
    const json saturate = dense_json(spec.inputs, kHidden, std::vector<float>(in * kHidden, 0.0f),
                                     std::vector<float>(kHidden, 3e38f), "");
    const json overflow = dense_json(kHidden, spec.outputs, rows, std::vector<float>(out, 0.0f), "");
    const json doc = model_json(spec.inputs, {saturate, overflow});
    auto model = must_load(doc);
    // The premise: every output is the non-finite value asked for.
    std::vector<float> x(in, 0.25f), y(out);
    model->forward(x.data(), y.data());
    for (float v : y) {
        if (o == Output::NaN)
            REQUIRE(std::isnan(v));
        else
            REQUIRE(v == (o == Output::PlusInf ? INFINITY : -INFINITY));
    }
    model->reset();
    return model;
}

/// Runs the generator 6 s (mixed block sizes), switches it off, runs 2 s more, and checks every event: a valid
/// note-on/off on one of the four tracks' channels, each note-on in the key and its track's range with velocity
/// 1..127, and every note-on with exactly one later note-off. Returns the note-ons.
std::size_t run_and_check(Engine& engine) {
    REQUIRE(engine.midi_generator().push_control(idaw::test::enabled_control(150.0f, 2, 1)));
    std::vector<MidiEvent> events;
    idaw::test::run_silence(engine, static_cast<std::uint64_t>(kRate * 6), {512, 64, 333}, events);
    idaw::MidiControl off = idaw::test::enabled_control(150.0f, 2, 1, 2);
    off.enabled = false;
    REQUIRE(engine.midi_generator().push_control(off));
    idaw::test::run_silence(engine, static_cast<std::uint64_t>(kRate * 2), {512}, events);
    const idaw::music::Key key{2, 1};
    std::size_t ons = 0;
    for (const MidiEvent& e : events) {
        CHECK(e.size == 3);
        CHECK((idaw::test::is_on(e) || idaw::test::is_off(e)));
        const int channel = e.bytes[0] & 0x0F, pitch = e.bytes[1];
        CHECK((channel <= 2 || channel == 9));
        CHECK(pitch <= 127);
        CHECK(e.bytes[2] <= 127);
        if (!idaw::test::is_on(e)) continue;
        ++ons;
        CHECK(e.bytes[2] >= 1);
        idaw::test::check_track_note(channel, pitch, key);
    }
    const auto notes = idaw::test::check_notes(events);
    CHECK(notes.ons == ons);
    CHECK(notes.offs == ons);
    CHECK(notes.off_without_on == 0);
    CHECK(notes.on_while_on == 0);
    CHECK(notes.zero_length == 0);
    CHECK(notes.hanging == 0);
    return ons;
}

}  // namespace

TEST_CASE("nets that output NaN or infinity never put a bad value into a note") {
    for (Output o : {Output::NaN, Output::PlusInf, Output::MinusInf}) {
        CAPTURE(output_name(o));
        // All four nets at once.
        {
            Engine engine;
            engine.prepare(kRate, 512, 2);
            for (int i = 0; i < idaw::kNumMidiNets; ++i) {
                const auto role = static_cast<MidiNet>(i);
                REQUIRE(engine.midi_generator().install(role, overflowing_net(role, o)).empty());
            }
            const std::size_t ons = run_and_check(engine);
            // +inf saturates every probability and expression value, which still makes notes.
            if (o == Output::PlusInf) CHECK(ons > 0);
            MESSAGE(output_name(o) << " from all four nets: " << ons << " notes");
        }
        // One net at a time among seeded working ones (the others keep making notes around it).
        for (int bad = 0; bad < idaw::kNumMidiNets; ++bad) {
            CAPTURE(std::string(idaw::kMidiNetSpecs[static_cast<std::size_t>(bad)].name));
            Engine engine;
            engine.prepare(kRate, 512, 2);
            for (int i = 0; i < idaw::kNumMidiNets; ++i) {
                const auto role = static_cast<MidiNet>(i);
                auto net = i == bad ? overflowing_net(role, o) : idaw::test::make_net(role, 11);
                REQUIRE(engine.midi_generator().install(role, std::move(net)).empty());
            }
            const std::size_t ons = run_and_check(engine);
            MESSAGE(output_name(o) << " from " << idaw::kMidiNetSpecs[static_cast<std::size_t>(bad)].name << ": " << ons
                                   << " notes");
        }
    }
}
