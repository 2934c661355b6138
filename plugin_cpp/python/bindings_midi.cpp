// idaw_core: the MIDI generator (its constants, the emotion map that feeds it, and Engine's MIDI methods).
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "idaw/emotion_map.h"
#include "idaw/midi_generator.h"
#include "idaw/music_theory.h"
#include "idaw/nn/model_loader.h"

namespace idaw::python {
namespace {

using namespace nb::literals;

/// One generated event as drain_midi() returns it: (sample_time, status, data1, data2).
using MidiRecord = std::tuple<std::uint64_t, std::uint8_t, std::uint8_t, std::uint8_t>;
/// The 64-d emotion embedding as a NumPy array.
using Emotion = nb::ndarray<nb::numpy, float, nb::shape<idaw::kEmotionDims>>;

/// The generator slot for a net name: "MelodyTransformer" or "melody", and so on.
idaw::MidiNet midi_net_of(const std::string& name) {
    static const char* const kShort[idaw::kNumMidiNets] = {"melody", "harmony", "dynamics", "groove"};
    for (int i = 0; i < idaw::kNumMidiNets; ++i)
        if (name == idaw::kMidiNetSpecs[static_cast<std::size_t>(i)].name || name == kShort[i])
            return static_cast<idaw::MidiNet>(i);
    throw nb::value_error(("unknown MIDI net '" + name +
                           "'; expected MelodyTransformer, HarmonyPredictor, DynamicsEngine or GroovePredictor")
                              .c_str());
}

/// Loads (GIL released) and installs one net; ValueError with the loader's or the generator's message.
void install_midi_net(PyEngine& e, const std::string& name, const std::string& source, bool is_path) {
    const idaw::MidiNet net = midi_net_of(name);
    std::string error;
    {
        nb::gil_scoped_release release;
        idaw::nn::LoadResult r = is_path ? idaw::nn::load_model_file(source) : idaw::nn::load_model_string(source);
        if (!r.ok()) {
            error = r.error;
        } else {
            std::lock_guard<std::mutex> lock(e.midi_loader);
            error = e.engine.midi_generator().install(net, std::move(r.model));
        }
    }
    if (!error.empty()) throw nb::value_error(error.c_str());
}

nb::dict timing_dict(const idaw::TimingHistogram& h) {
    const auto s = h.snapshot().summarize();
    nb::dict d;
    d["count"] = s.blocks;
    d["p50_us"] = s.p50_us;
    d["p99_us"] = s.p99_us;
    d["max_us"] = s.max_us;
    return d;
}

/// EMOTION_DIMS, MIDI_* and the emotion map.
void bind_constants(nb::module_& m) {
    m.attr("EMOTION_DIMS") = idaw::kEmotionDims;
    m.attr("MIDI_MELODY_RANGE") = nb::make_tuple(idaw::MidiGenerator::kMelodyLow, idaw::MidiGenerator::kMelodyHigh);
    m.attr("MIDI_CHORD_RANGE") = nb::make_tuple(idaw::music::kUpperLow, idaw::music::kUpperHigh);
    m.attr("MIDI_BASS_RANGE") =
        nb::make_tuple(idaw::music::kSeparateRanges.bass_low, idaw::music::kSeparateRanges.bass_high);
    m.attr("MIDI_MIN_TEMPO") = idaw::MidiControl::kMinTempo;
    m.attr("MIDI_MAX_TEMPO") = idaw::MidiControl::kMaxTempo;
    nb::list scales;
    for (const auto& sc : idaw::music::kScales) scales.append(nb::make_tuple(std::string(sc.name), sc.mask));
    m.attr("MIDI_SCALES") = scales;
    nb::list nets;
    for (const auto& n : idaw::kMidiNetSpecs) nets.append(nb::make_tuple(std::string(n.name), n.inputs, n.outputs));
    m.attr("MIDI_NETS") = nets;

    m.def(
        "midi_key_mask",
        [](int tonic, int scale) {
            if (tonic < 0 || tonic > 11 || scale < 0 || scale >= idaw::music::kNumScales)
                throw nb::value_error("tonic must be 0..11 and scale an index into MIDI_SCALES");
            return idaw::music::theory_key_mask(idaw::music::Key{tonic, scale});
        },
        "tonic"_a, "scale"_a,
        "Every pitch class the generator may play in a key, as an absolute 12-bit mask (bit pc): the scale's, plus "
        "the raised leading tone in a major or minor key's minor (the theory layer's dominant chords).");
    m.def(
        "emotion_from_valence_arousal",
        [](double valence, double arousal) {
            auto* out = new float[idaw::kEmotionDims];
            nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<float*>(p); });
            const auto e = idaw::emotion_from_valence_arousal(valence, arousal);
            std::copy(e.begin(), e.end(), out);
            return Emotion(out, {static_cast<std::size_t>(idaw::kEmotionDims)}, owner);
        },
        "valence"_a, "arousal"_a,
        "The 64-d emotion embedding (float32) for a (valence, arousal) point, each clamped to [-1, 1] (NaN counts "
        "as 0): 0 valence, 1 arousal, 2 dominance 0, 3 intensity, 4-11 Plutchik intensities, 12-63 latent 0. The "
        "one home of the map (idaw/emotion_map.h): the training labels, the Python host and the plugin use it.");
}

/// set_midi_control(): the generator's whole control state.
void bind_control(EngineClass& c) {
    c.def(
        "set_midi_control",
        [](PyEngine& e, bool enabled, double tempo_bpm, int key_tonic, int scale, int melody_channel, int chord_channel,
           Values emotion, std::uint64_t seed, std::uint64_t sequence, int bass_channel, int drum_channel, bool theory,
           std::uint64_t beat_anchor, const std::vector<int>& chord_plan, const std::vector<int>& start_voicing,
           int start_melody) {
            if (emotion.shape(0) != static_cast<std::size_t>(idaw::kEmotionDims))
                throw nb::value_error(("emotion must have " + std::to_string(idaw::kEmotionDims) + " values").c_str());
            auto small = [](int v, int hi) { return v >= 0 && v <= hi ? static_cast<std::uint8_t>(v) : 255; };
            idaw::MidiControl control;
            control.enabled = enabled;
            control.tempo_bpm = static_cast<float>(tempo_bpm);
            control.key_tonic = small(key_tonic, 11);
            control.scale = small(scale, idaw::music::kNumScales - 1);
            control.melody_channel = small(melody_channel, 15);
            control.chord_channel = small(chord_channel, 15);
            control.bass_channel = small(bass_channel, 15);
            control.drum_channel = small(drum_channel, 15);
            control.theory = theory;
            for (int i = 0; i < idaw::kEmotionDims; ++i)
                control.emotion[static_cast<std::size_t>(i)] = emotion(static_cast<std::size_t>(i));
            control.seed = seed;
            control.sequence = sequence;
            control.beat_anchor = beat_anchor;
            if (chord_plan.size() > static_cast<std::size_t>(idaw::MidiControl::kMaxChordPlanBars))
                throw nb::value_error("chord plan longer than 16 bars");
            control.chord_plan_bars = static_cast<std::uint8_t>(chord_plan.size());
            for (std::size_t i = 0; i < chord_plan.size(); ++i) {
                const int chord = chord_plan[i];
                control.chord_plan[i] =
                    static_cast<std::int8_t>(chord >= -1 && chord <= idaw::music::kNoChord ? chord : -2);
            }
            if (!start_voicing.empty() && start_voicing.size() != 4)
                throw nb::value_error("start voicing needs a bass and three upper pitches (0..127)");
            auto pitch = [](int p) { return static_cast<std::int8_t>(p >= -1 && p <= 127 ? p : -2); };
            if (!start_voicing.empty()) {
                control.start_bass = pitch(start_voicing[0]);
                for (std::size_t i = 0; i < 3; ++i) control.start_upper[i] = pitch(start_voicing[i + 1]);
            }
            control.start_melody = pitch(start_melody);
            if (const char* why = idaw::check_midi_control(control)) throw nb::value_error(why);
            return e.engine.midi_generator().push_control(control);
        },
        "enabled"_a, "tempo_bpm"_a, "key_tonic"_a, "scale"_a, "melody_channel"_a, "chord_channel"_a, "emotion"_a,
        "seed"_a = 1, "sequence"_a = 0, "bass_channel"_a = 2, "drum_channel"_a = 9, "theory"_a = true,
        "beat_anchor"_a = 0, "chord_plan"_a = std::vector<int>{}, "start_voicing"_a = std::vector<int>{},
        "start_melody"_a = -1,
        "Queue the MIDI generator's full control state for the audio thread (taken up at the next block): channels "
        "0..15 of the four tracks, and whether the theory layer filters the nets' choices. A key change applies "
        "from the next bar start. beat_anchor: the engine sample time of a heard beat the grid locks its beats to "
        "(0: none). chord_plan: up to 16 chord classes (quality * 12 + root, 60 = no chord, -1 = the nets choose) "
        "that bar b of the grid plays as chord_plan[b % len]. start_voicing (bass and three upper pitches) and "
        "start_melody: what sounded on the bar line before a grid this control starts, which its first bar leads "
        "from. ValueError for a value out of range; False when the queue is full.");
}

/// install/clear/collect: the generator's nets.
void bind_nets(EngineClass& c) {
    c.def(
         "install_midi_net",
         [](PyEngine& e, const std::string& net, nb::handle path) { install_midi_net(e, net, fs_path(path), true); },
         "net"_a, "path"_a,
         nb::sig("def install_midi_net(self, net: str, path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) "
                 "-> None"),
         "Load an RTNeural JSON file off the audio thread and offer it to the generator (taken up at a block "
         "boundary). net: MelodyTransformer/melody, HarmonyPredictor/harmony, DynamicsEngine/dynamics, "
         "GroovePredictor/groove. ValueError when the file is not a valid model of that shape.")
        .def(
            "install_midi_net_json",
            [](PyEngine& e, const std::string& net, const std::string& text) { install_midi_net(e, net, text, false); },
            "net"_a, "json_text"_a, "As install_midi_net, from JSON text.")
        .def(
            "clear_midi_net",
            [](PyEngine& e, const std::string& net) {
                const idaw::MidiNet which = midi_net_of(net);
                std::lock_guard<std::mutex> lock(e.midi_loader);
                e.engine.midi_generator().clear(which);
            },
            "net"_a, "Ask the audio thread to drop a net (its fixed stand-in takes over).")
        .def(
            "collect_midi_nets",
            [](PyEngine& e) {
                std::lock_guard<std::mutex> lock(e.midi_loader);
                e.engine.midi_generator().collect();
            },
            "Free nets the audio thread has let go of (installing does this too).");
}

/// drain_midi, midi_counters, midi_lookahead_samples: what the generator did and will do.
void bind_output(EngineClass& c) {
    c.def(
         "drain_midi",
         [](PyEngine& e, std::size_t max_events) {
             nb::typed<nb::list, MidiRecord> out;
             idaw::MidiEvent ev;
             for (std::size_t i = 0; i < max_events && e.engine.midi_ring().pop(ev); ++i)
                 out.append(nb::make_tuple(ev.sample_time, ev.bytes[0], ev.bytes[1], ev.bytes[2]));
             return out;
         },
         "max_events"_a = 65536,
         "Pop queued MIDI events as (sample_time, status, data1, data2) tuples, in the order the generator "
         "pushed them (not time order). One reader at a time.")
        .def(
            "midi_counters",
            [](PyEngine& e) {
                const auto k = e.engine.midi_generator().counters();
                nb::dict d;
                d["steps"] = k.steps;
                d["note_ons"] = k.note_ons;
                d["note_offs"] = k.note_offs;
                d["dropped_notes"] = k.dropped_notes;
                d["backlog"] = k.backlog;
                d["controls_applied"] = k.controls_applied;
                d["applied_sequence"] = k.applied_sequence;
                d["model_swaps"] = k.model_swaps;
                d["step_ns_total"] = k.step_ns_total;
                d["step_ns_max"] = k.step_ns_max;
                d["chord_choices"] = k.chord_choices;
                d["chords_kept"] = k.chords_kept;
                d["melody_choices"] = k.melody_choices;
                d["melody_kept"] = k.melody_kept;
                d["key_changes"] = k.key_changes;
                d["phase_locks"] = k.phase_locks;
                d["last_phase_shift"] = k.last_phase_shift;
                d["step_timing"] = timing_dict(e.engine.midi_generator().step_timing());
                d["bar_step_timing"] = timing_dict(e.engine.midi_generator().bar_timing());
                return d;
            },
            nb::sig("def midi_counters(self) -> MidiCounters"),
            "MIDI generator counters, with step_timing and bar_step_timing (count, p50_us, p99_us, max_us): the "
            "audio-thread time of each generated step, and of bar starts (all four nets) alone.")
        .def(
            "midi_lookahead_samples",
            [](PyEngine& e, double tempo_bpm) {
                e.require_prepared();
                return e.engine.midi_generator().lookahead_samples(tempo_bpm);
            },
            "tempo_bpm"_a, "How far ahead of the audio the generator works, in samples, at a tempo.");
}

}  // namespace

void bind_midi(nb::module_& m, EngineClass& engine) {
    bind_constants(m);
    bind_control(engine);
    bind_nets(engine);
    bind_output(engine);
}

}  // namespace idaw::python
