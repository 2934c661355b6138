// idaw_plugin_host: loads the built VST3 through JUCE's hosting classes, the way a DAW does, for the tests in
// tests/test_plugin_host.py. Every command prints one JSON object on stdout; errors go to stderr with exit code 1.
//
//   idaw_plugin_host list   PLUGIN.vst3
//   idaw_plugin_host render PLUGIN.vst3 --in IN.wav --out OUT.wav [--block N|varying] [--max-block N]
//                           [--set name=value ...] [--model-folder DIR] [--automate] [--rtcheck] [--offline]
//                           [--midi-out EVENTS.json]
//   idaw_plugin_host state  PLUGIN.vst3 [--model-folder DIR]
//   idaw_plugin_host restore PLUGIN.vst3 [--seeds N] [--first-seed S]
//   idaw_plugin_host editor PLUGIN.vst3 --png OUT.png [--seconds S] [--model-folder DIR]
//   idaw_plugin_host live   PLUGIN.vst3 [--seconds S] [--report-ms MS] [--set name=value ...] [--rtcheck]
//                           [--commands] [--editor] [--in IN.wav] [--midi-out EVENTS.json]
// Every command that loads the plugin also takes [--sidecar-endpoint E] [--sidecar-keys DIR]: they are written into
// the plugin's saved state (as a host restoring a project would) before it is prepared.
//   idaw_plugin_host decode ROLE PAYLOADS
//
// render: reads a WAV (any rate and channel count the plugin takes: 1 or 2), sets parameters by name (the core's
// names, e.g. low_gain=3) before preparing, processes the file in blocks of N frames (or a fixed pseudo-random
// sequence of sizes from 1 to 1024 with "varying") and writes 32-bit float WAV. It reports the values the plugin
// actually holds (from its saved state). --automate moves parameters between blocks (then the output no longer
// matches a fixed-parameter render). --offline renders as a bounce (setNonRealtime). --midi-out writes the MIDI the
// plugin sent as [[sample, status, data1, data2], ...], sample counted from the file's start. --rtcheck needs
// libidaw_rtcheck.so in LD_PRELOAD and IDAW_RTCHECK=1 (the plugin then installs the checker's hook): it reports the
// allocations and locks made inside the plugin's processBlock, after proving with a deliberate allocation that the
// checker counts.
//
// state: sets every parameter to a different value and the model folder, saves, restores into a new instance and
// compares every parameter and the folder.
//
// restore: a strict host's state restoration (pluginval's "Plugin state restoration", repeated and randomised), for
// each seed S .. S+N-1 on one instance: every automatable parameter (bypass aside) to a random value between its
// steps, in a random order; save; then (a) every parameter to another in-between value, in a random order, and
// restore; (b) one parameter at a time, in a random order, to an in-between value, and restore (pluginval's loop).
// After each restore it compares what the host reads back (getValue(), normalised) with what a fresh instance reads
// back from the same state: a stepped parameter exactly (and that must be the step of the value the host set), a
// continuous one to float precision (the largest difference is reported). It also reports pluginval's own rule (each
// value within 0.1 of the one read before moving it) and how often a stepped parameter was moved within its saved
// step (the case JUCE's value tree does not see as a change).
//
// live: runs the plugin in real time (an audio thread paced like a sound card, 48 kHz, 256-frame blocks, noise in)
// while the main thread runs the message loop; every --report-ms it prints one JSON line with the values the plugin
// holds (from its state) and its sidecar settings, and at the end a summary (with --rtcheck: what the checker
// counted). For the sidecar tests: the plugin's link connects to IDAW_SIDECAR_ENDPOINT. With --commands it reads
// lines "set name=value" from stdin and sets the parameter from the message thread while the audio runs, as a
// host's automation or a user's knob would ("set a=1 b=2" sets several in one go; "quit" ends the run before
// --seconds, so a test runs as long as its steps take, --seconds being only a cap). With --editor it also opens the
// plugin's editor (needs an X display), so the editor's test hooks (IDAW_EDITOR_DESCRIBE, IDAW_EDITOR_ENDPOINT) act
// while the audio runs, and each report line also holds what the editor shows ("editor": its status lines and the
// follow report, which the editor writes to the file IDAW_EDITOR_STATUS names; this command sets it). With --in the
// input is that WAV (48 kHz, mono or stereo), played in a loop, instead of noise. --midi-out writes the MIDI the
// plugin sent, as render's does (the sample counted from the first block, whose first frame is the file's first).
//
// decode: checks sidecar messages with the plugin's own validator (sidecar_protocol.cpp) as ROLE (engine, sidecar
// or client) would; PAYLOADS holds them one after another, each preceded by its length (uint32, little-endian).
// Prints the list of results: the rejection reason, or "ok:" and the message type.
//
// editor: opens the plugin's editor in a window (needs an X display, e.g. Xvfb) while an audio thread processes
// noise; the plugin writes the snapshot itself when IDAW_EDITOR_SNAPSHOT=OUT.png is set (this command sets it).

#include <juce_audio_formats/juce_audio_formats.h>
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_gui_basics/juce_gui_basics.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "host_support.h"
#include "sidecar_protocol.h"

namespace {

using namespace idaw::plugin_host;  // NOLINT: the helpers are this program's own

/// Command-line options after the command and the plugin path.
struct Options {
    juce::String in, out, png, model_folder, midi_out, block = "512";
    int max_block = 0;
    double seconds = 20.0;
    int report_ms = 100;
    int seeds = 40;              ///< restore: how many seeds
    juce::int64 first_seed = 1;  ///< restore: the first seed
    bool automate = false, rtcheck = false, offline = false, has_model_folder = false, commands = false, editor = false;
    std::vector<std::pair<juce::String, juce::String>> state_attributes;  ///< written into the plugin's state
    std::vector<std::pair<juce::String, juce::String>> sets;
};

Options parse_options(const juce::StringArray& args, int first) {
    Options o;
    for (int i = first; i < args.size(); ++i) {
        const juce::String& a = args[i];
        auto value = [&]() -> juce::String {
            if (i + 1 >= args.size()) fail(a + " needs a value");
            return args[++i];
        };
        if (a == "--in")
            o.in = value();
        else if (a == "--out")
            o.out = value();
        else if (a == "--png")
            o.png = value();
        else if (a == "--block")
            o.block = value();
        else if (a == "--max-block")
            o.max_block = value().getIntValue();
        else if (a == "--seconds")
            o.seconds = value().getDoubleValue();
        else if (a == "--report-ms")
            o.report_ms = value().getIntValue();
        else if (a == "--seeds")
            o.seeds = value().getIntValue();
        else if (a == "--first-seed")
            o.first_seed = value().getLargeIntValue();
        else if (a == "--automate")
            o.automate = true;
        else if (a == "--rtcheck")
            o.rtcheck = true;
        else if (a == "--offline")
            o.offline = true;
        else if (a == "--midi-out")
            o.midi_out = value();
        else if (a == "--commands")
            o.commands = true;
        else if (a == "--editor")
            o.editor = true;
        else if (a == "--sidecar-endpoint")
            o.state_attributes.emplace_back("sidecar_endpoint", value());
        else if (a == "--sidecar-keys")
            o.state_attributes.emplace_back("sidecar_keys", value());
        else if (a == "--model-folder") {
            o.model_folder = value();
            o.has_model_folder = true;
        } else if (a == "--set") {
            const juce::String pair = value();
            if (!pair.contains("=")) fail("--set needs name=value, got " + pair);
            o.sets.emplace_back(pair.upToFirstOccurrenceOf("=", false, false).trim(),
                                pair.fromFirstOccurrenceOf("=", false, false).trim());
        } else {
            fail("unknown option " + a);
        }
    }
    return o;
}

/// Writes the options' state attributes (sidecar endpoint, key folder) into the plugin's state.
void set_state_attributes(juce::AudioPluginInstance& plugin, const Options& o) {
    if (o.state_attributes.empty()) return;
    auto xml = plugin_state_xml(plugin);
    for (const auto& [name, value] : o.state_attributes) xml->setAttribute(name, value);
    set_plugin_state_xml(plugin, *xml);
}

// ---- Commands ------------------------------------------------------------------------------------------------------

/// Block sizes for --block varying: a fixed pseudo-random walk over sizes that stress splitting, 1..1024.
std::vector<int> varying_blocks(int frames) {
    static const int sizes[] = {1,   2,   3,   5,   8,   13,  31,  32,  33,  64,   100,  127,
                                128, 129, 255, 256, 257, 480, 511, 512, 513, 1000, 1023, 1024};
    juce::Random rng(20240611);
    std::vector<int> blocks;
    for (int done = 0; done < frames;) {
        const int n = std::min(sizes[rng.nextInt(static_cast<int>(std::size(sizes)))], frames - done);
        blocks.push_back(n);
        done += n;
    }
    return blocks;
}

juce::var command_list(juce::AudioPluginFormatManager& formats, const juce::String& path) {
    auto plugin = load_plugin(formats, path, 48000.0, 512);
    auto out = std::make_unique<juce::DynamicObject>();
    out->setProperty("name", plugin->getName());
    out->setProperty("latency", plugin->getLatencySamples());
    out->setProperty("accepts_midi", plugin->acceptsMidi());
    out->setProperty("produces_midi", plugin->producesMidi());
    out->setProperty("has_editor", plugin->hasEditor());
    juce::Array<juce::var> params;
    for (auto* p : plugin->getParameters()) {
        auto d = std::make_unique<juce::DynamicObject>();
        d->setProperty("name", p->getName(100));
        d->setProperty("label", p->getLabel());
        d->setProperty("value", p->getValue());
        d->setProperty("default", p->getDefaultValue());
        d->setProperty("text", p->getCurrentValueAsText());
        d->setProperty("automatable", p->isAutomatable());
        params.add(juce::var(d.release()));
    }
    out->setProperty("parameters", params);
    return juce::var(out.release());
}

juce::var command_render(juce::AudioPluginFormatManager& formats, const juce::String& path, const Options& o) {
    juce::AudioFormatManager audio_formats;
    audio_formats.registerBasicFormats();
    std::unique_ptr<juce::AudioFormatReader> reader(audio_formats.createReaderFor(juce::File(o.in)));
    if (reader == nullptr) fail("cannot read " + o.in);
    const int channels = static_cast<int>(reader->numChannels);
    const int frames = static_cast<int>(reader->lengthInSamples);
    const double rate = reader->sampleRate;
    juce::AudioBuffer<float> audio(channels, frames);
    reader->read(&audio, 0, frames, 0, true, true);

    std::vector<int> blocks;
    if (o.block == "varying") {
        blocks = varying_blocks(frames);
    } else {
        const int n = o.block.getIntValue();
        if (n < 1) fail("--block must be a positive number or 'varying'");
        for (int done = 0; done < frames; done += n) blocks.push_back(std::min(n, frames - done));
    }
    int largest = 1;
    for (int n : blocks) largest = std::max(largest, n);
    const int max_block = o.max_block > 0 ? o.max_block : largest;

    auto plugin = load_plugin(formats, path, rate, max_block);
    plugin->releaseResources();
    set_channels(*plugin, channels);
    if (o.has_model_folder) set_model_folder(*plugin, o.model_folder);
    set_state_attributes(*plugin, o);
    for (const auto& [name, text] : o.sets) {
        auto* p = find_parameter(*plugin, name);
        p->setValue(p->getValueForText(text));
    }
    plugin->setNonRealtime(o.offline);
    plugin->prepareToPlay(rate, max_block);
    if (plugin->getLatencySamples() != 0) fail("latency is " + juce::String(plugin->getLatencySamples()));

    RtCheck check;
    unsigned long long control = 0;
    if (o.rtcheck) {
        check = find_rtcheck();
        control = rtcheck_control(check);
    }
    // Parameters --automate moves between blocks, and the values it cycles through.
    std::vector<juce::AudioProcessorParameter*> automated;
    if (o.automate)
        for (const char* name : {"drive", "low_gain", "mid2_freq", "mix", "output_gain", "valence", "midi_key",
                                 "arousal", "midi_scale", "intensity"})
            automated.push_back(find_parameter(*plugin, name));

    juce::MidiBuffer midi;
    midi.ensureSize(4096);
    juce::Array<juce::var> midi_log;
    midi_log.ensureStorageAllocated(65536);
    int midi_events = 0;
    int done = 0;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        if (!automated.empty() && b % 7 == 3) {
            auto* p = automated[(b / 7) % automated.size()];
            p->setValue(static_cast<float>((b * 37 % 101) / 100.0));
        }
        juce::AudioBuffer<float> view(audio.getArrayOfWritePointers(), channels, done, blocks[b]);
        midi.clear();
        plugin->processBlock(view, midi);
        midi_events += midi.getNumEvents();
        if (o.midi_out.isNotEmpty()) {
            for (const auto meta : midi) {
                juce::Array<juce::var> event{done + meta.samplePosition};
                for (int k = 0; k < meta.numBytes; ++k) event.add(static_cast<int>(meta.data[k]));
                midi_log.add(event);
            }
        }
        done += blocks[b];
    }

    auto out = std::make_unique<juce::DynamicObject>();
    if (o.rtcheck) out->setProperty("rtcheck", rtcheck_report(check, control));
    plugin->releaseResources();

    if (o.midi_out.isNotEmpty()) juce::File(o.midi_out).replaceWithText(juce::JSON::toString(midi_log, true));
    juce::File(o.out).deleteFile();
    std::unique_ptr<juce::OutputStream> stream = juce::File(o.out).createOutputStream();
    if (stream == nullptr) fail("cannot write " + o.out);
    juce::WavAudioFormat wav;
    std::unique_ptr<juce::AudioFormatWriter> writer(
        wav.createWriterFor(stream.get(), rate, static_cast<unsigned>(channels), 32, {}, 0));
    if (writer == nullptr) fail("cannot write " + o.out);
    stream.release();  // the writer owns it now
    writer->writeFromAudioSampleBuffer(audio, 0, frames);
    writer.reset();

    out->setProperty("frames", frames);
    out->setProperty("channels", channels);
    out->setProperty("rate", rate);
    out->setProperty("blocks", static_cast<int>(blocks.size()));
    out->setProperty("max_block", max_block);
    out->setProperty("latency", plugin->getLatencySamples());
    out->setProperty("midi_events", midi_events);
    out->setProperty("values", plugin_values(*plugin));
    out->setProperty("model_folder", plugin_state_xml(*plugin)->getStringAttribute("model_folder"));
    return juce::var(out.release());
}

juce::var command_state(juce::AudioPluginFormatManager& formats, const juce::String& path, const Options& o) {
    auto first = load_plugin(formats, path, 48000.0, 512);
    // Every parameter to its own value away from the default (normalised 0.05 .. 0.95; switches on, steps exact).
    const auto& params = first->getParameters();
    // An odd spread: no value lands on the middle of a range, where valence and arousal have their defaults.
    const int spread = params.size() | 1;
    for (int i = 0; i < params.size(); ++i) {
        auto* p = params[i];
        if (python_name(*p) == "bypass") continue;
        float v = 0.05f + 0.9f * static_cast<float>((i * 7) % spread) / static_cast<float>(spread);
        if (p->isBoolean()) {
            v = 1.0f;
        } else if (p->isDiscrete() && p->getNumSteps() > 1) {
            const float last = static_cast<float>(p->getNumSteps() - 1);
            v = std::round(v * last) / last;
        }
        p->setValue(v);
    }
    const juce::String folder = o.has_model_folder ? o.model_folder : juce::String("/tmp/idaw models/state test");
    set_model_folder(*first, folder);
    set_state_attributes(*first, o);
    juce::MemoryBlock saved;
    first->getStateInformation(saved);

    auto second = load_plugin(formats, path, 48000.0, 512);
    second->setStateInformation(saved.getData(), static_cast<int>(saved.getSize()));
    juce::MemoryBlock saved_again;
    second->getStateInformation(saved_again);

    auto out = std::make_unique<juce::DynamicObject>();
    juce::Array<juce::var> compared;
    bool all_equal = true;
    const auto& restored = second->getParameters();
    for (int i = 0; i < params.size(); ++i) {
        auto d = std::make_unique<juce::DynamicObject>();
        d->setProperty("name", python_name(*params[i]));
        d->setProperty("set", params[i]->getValue());
        d->setProperty("restored", restored[i]->getValue());
        d->setProperty("set_text", params[i]->getCurrentValueAsText());
        d->setProperty("restored_text", restored[i]->getCurrentValueAsText());
        all_equal = all_equal && params[i]->getValue() == restored[i]->getValue();
        compared.add(juce::var(d.release()));
    }
    out->setProperty("parameters", compared);
    out->setProperty("all_equal", all_equal);
    out->setProperty("model_folder_set", folder);
    out->setProperty("model_folder_restored", plugin_state_xml(*second)->getStringAttribute("model_folder"));
    for (const char* name : {"sidecar_endpoint", "sidecar_keys"}) {
        out->setProperty(juce::String(name) + "_set", plugin_state_xml(*first)->getStringAttribute(name));
        out->setProperty(juce::String(name) + "_restored", plugin_state_xml(*second)->getStringAttribute(name));
    }
    out->setProperty("values_first", plugin_values(*first));
    out->setProperty("values_second", plugin_values(*second));
    out->setProperty("state_bytes_equal", saved == saved_again);
    return juce::var(out.release());
}

/// The indices 0 .. n-1 in a random order (Fisher-Yates with `rng`).
std::vector<int> shuffled(int n, juce::Random& rng) {
    std::vector<int> order(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    for (int i = n - 1; i > 0; --i)
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(rng.nextInt(i + 1))]);
    return order;
}

/// What command_restore counts over all seeds.
struct RestoreTally {
    juce::int64 restores = 0, checks = 0, discrete_checks = 0;
    juce::int64 moved_within_step = 0;  ///< discrete parameters moved to an in-between value of their saved step
    juce::int64 pluginval_rule_failures = 0;
    juce::int64 own_state_mismatches = 0;  ///< restores after which the plugin's own state differs from the saved one
    double worst_continuous = 0.0;
    juce::var worst_continuous_case;
    juce::Array<juce::var> discrete_mismatches;  ///< the first 20
    juce::int64 discrete_mismatch_count = 0;
};

/// One parameter as the host read it back after a restore, against what the state holds.
juce::var restore_case(juce::int64 seed, const char* round, const juce::AudioProcessorParameter& p, float expected,
                       float restored) {
    auto d = std::make_unique<juce::DynamicObject>();
    d->setProperty("seed", seed);
    d->setProperty("round", round);
    d->setProperty("name", python_name(p));
    d->setProperty("expected", expected);
    d->setProperty("restored", restored);
    return juce::var(d.release());
}

/// Moves `p` to an in-between value; counts the moves that stay within the saved step `saved` (a value tree that
/// stores steps sees no change there, so only a restore that pushes every value brings the step back).
void move_in_between(juce::AudioProcessorParameter& p, float saved, juce::Random& rng, RestoreTally& t) {
    const float v = random_in_between(p, rng);
    if (is_stepped(p) && nearest_step(p, v) == saved) ++t.moved_within_step;
    p.setValue(v);
}

/// Compares every parameter the host reads with `expected` (the saved state, normalised) after a restore.
void check_restored(const juce::Array<juce::AudioProcessorParameter*>& params, const std::vector<float>& expected,
                    juce::int64 seed, const char* round, RestoreTally& t) {
    ++t.restores;
    for (int i = 0; i < params.size(); ++i) {
        const auto& p = *params[i];
        const float want = expected[static_cast<std::size_t>(i)], got = p.getValue();
        ++t.checks;
        if (is_stepped(p)) {  // exactly its saved step
            ++t.discrete_checks;
            if (got != want && ++t.discrete_mismatch_count <= 20)
                t.discrete_mismatches.add(restore_case(seed, round, p, want, got));
            continue;
        }
        const double error = std::abs(static_cast<double>(got) - want);
        if (t.worst_continuous_case.isVoid() || error > t.worst_continuous) {
            t.worst_continuous = error;
            t.worst_continuous_case = restore_case(seed, round, p, want, got);
        }
    }
}

juce::var command_restore(juce::AudioPluginFormatManager& formats, const juce::String& path, const Options& o) {
    if (o.seeds < 1) fail("--seeds must be at least 1");
    auto plugin = load_plugin(formats, path, 48000.0, 512);
    const auto params = non_bypass_automatable(*plugin);
    const int n = params.size();
    RestoreTally t;
    for (juce::int64 seed = o.first_seed; seed < o.first_seed + o.seeds; ++seed) {
        juce::Random rng(seed);
        for (int i : shuffled(n, rng)) params[i]->setValue(random_in_between(*params[i], rng));
        juce::MemoryBlock saved;
        plugin->getStateInformation(saved);
        // What the saved state means: the values a fresh instance (a new session opening the project) reads back.
        // Its parameters start on their defaults, so no value the host left in between can linger there.
        auto fresh = load_plugin(formats, path, 48000.0, 512);
        fresh->setStateInformation(saved.getData(), static_cast<int>(saved.getSize()));
        const auto fresh_params = non_bypass_automatable(*fresh);
        std::vector<float> expected;
        for (int i = 0; i < n; ++i) {
            expected.push_back(fresh_params[i]->getValue());
            // A parameter the host knows as stepped holds the step of the value the host set.
            if (is_stepped(*params[i]) && expected.back() != nearest_step(*params[i], params[i]->getValue()))
                fail("seed " + juce::String(seed) + ": a fresh instance restores " + python_name(*params[i]) + " to " +
                     juce::String(expected.back()) + ", not the step of " + juce::String(params[i]->getValue()));
        }
        const juce::String saved_values = juce::JSON::toString(plugin_values(*plugin), true);
        const auto restore = [&] { plugin->setStateInformation(saved.getData(), static_cast<int>(saved.getSize())); };

        // (a) Everything moved, in a random order, then the saved state restored.
        for (int i : shuffled(n, rng)) move_in_between(*params[i], expected[static_cast<std::size_t>(i)], rng, t);
        restore();
        check_restored(params, expected, seed, "all moved", t);
        if (juce::JSON::toString(plugin_values(*plugin), true) != saved_values) ++t.own_state_mismatches;

        // (b) pluginval's loop: one parameter moved, the saved state restored, the value read before compared.
        for (int i : shuffled(n, rng)) {
            const float before = params[i]->getValue();
            move_in_between(*params[i], expected[static_cast<std::size_t>(i)], rng, t);
            restore();
            check_restored(params, expected, seed, "one moved", t);
            if (std::abs(params[i]->getValue() - before) > 0.1f) ++t.pluginval_rule_failures;
        }
    }
    auto out = std::make_unique<juce::DynamicObject>();
    juce::Array<juce::var> names;
    for (auto* p : params) names.add(python_name(*p));
    out->setProperty("parameters", names);
    out->setProperty("seeds", o.seeds);
    out->setProperty("restores", t.restores);
    out->setProperty("checks", t.checks);
    out->setProperty("discrete_checks", t.discrete_checks);
    out->setProperty("moved_within_step", t.moved_within_step);
    out->setProperty("discrete_mismatch_count", t.discrete_mismatch_count);
    out->setProperty("discrete_mismatches", t.discrete_mismatches);
    out->setProperty("worst_continuous", t.worst_continuous);
    out->setProperty("worst_continuous_case", t.worst_continuous_case);
    out->setProperty("pluginval_rule_failures", t.pluginval_rule_failures);
    out->setProperty("own_state_mismatches", t.own_state_mismatches);
    return juce::var(out.release());
}

juce::var command_editor(juce::AudioPluginFormatManager& formats, const juce::String& path, const Options& o) {
    if (o.png.isEmpty()) fail("editor needs --png");
    const juce::File png(o.png);
    const juce::File info(o.png + ".json");
    png.deleteFile();
    info.deleteFile();
    setenv("IDAW_EDITOR_SNAPSHOT", o.png.toRawUTF8(), 1);

    constexpr double kRate = 48000.0;
    constexpr int kBlock = 256;
    auto plugin = load_plugin(formats, path, kRate, kBlock);
    plugin->releaseResources();
    set_channels(*plugin, 2);
    if (o.has_model_folder) set_model_folder(*plugin, o.model_folder);
    set_state_attributes(*plugin, o);
    for (const auto& [name, text] : o.sets) {
        auto* p = find_parameter(*plugin, name);
        p->setValue(p->getValueForText(text));
    }
    plugin->prepareToPlay(kRate, kBlock);

    // An audio thread, so the editor has a load to show.
    std::atomic<bool> stop{false};
    std::thread audio([&] {
        juce::AudioBuffer<float> buffer(2, kBlock);
        juce::MidiBuffer midi;
        midi.ensureSize(4096);
        juce::Random rng(7);
        while (!stop.load()) {
            for (int c = 0; c < 2; ++c)
                for (int i = 0; i < kBlock; ++i) buffer.setSample(c, i, 0.1f * (rng.nextFloat() * 2.0f - 1.0f));
            midi.clear();
            plugin->processBlock(buffer, midi);
            std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int>(1e6 * kBlock / kRate)));
        }
    });

    std::unique_ptr<juce::AudioProcessorEditor> editor(plugin->createEditorIfNeeded());
    if (editor == nullptr) {
        stop = true;
        audio.join();
        fail("the plugin created no editor");
    }
    auto window = std::make_unique<EditorWindow>(*editor);
    const auto start = juce::Time::getMillisecondCounterHiRes();
    while (!info.existsAsFile() && juce::Time::getMillisecondCounterHiRes() - start < 1000.0 * o.seconds)
        juce::MessageManager::getInstance()->runDispatchLoopUntil(50);
    const double waited_ms = juce::Time::getMillisecondCounterHiRes() - start;
    // A sidecar snapshot reaches the parameters through the message thread: let it through before reading them.
    juce::MessageManager::getInstance()->runDispatchLoopUntil(300);
    const juce::var values = plugin_values(*plugin);
    const auto state = plugin_state_xml(*plugin);
    window.reset();
    editor.reset();
    stop = true;
    audio.join();
    plugin->releaseResources();
    if (!info.existsAsFile()) fail("the editor wrote no snapshot within " + juce::String(o.seconds) + " s");

    auto out = std::make_unique<juce::DynamicObject>();
    out->setProperty("png", png.getFullPathName());
    out->setProperty("waited_ms", waited_ms);
    out->setProperty("editor", juce::JSON::parse(info));
    out->setProperty("values", values);
    out->setProperty("sidecar_endpoint", state->getStringAttribute("sidecar_endpoint"));
    out->setProperty("sidecar_keys", state->getStringAttribute("sidecar_keys"));
    out->setProperty("state_xml", state->toString());
    return juce::var(out.release());
}

/// The most MIDI events live --midi-out keeps (about an hour of the generator's output).
constexpr std::size_t kMaxLiveMidiEvents = 1 << 20;

/// The live command's --in file: 48 kHz (the rate it runs at), one or two channels; fail() otherwise.
juce::AudioBuffer<float> read_live_input(const juce::String& path, double rate) {
    juce::AudioFormatManager audio_formats;
    audio_formats.registerBasicFormats();
    std::unique_ptr<juce::AudioFormatReader> reader(audio_formats.createReaderFor(juce::File(path)));
    if (reader == nullptr) fail("cannot read " + path);
    if (reader->sampleRate != rate || reader->numChannels < 1 || reader->numChannels > 2 ||
        reader->lengthInSamples < 1 || reader->lengthInSamples > (1 << 28))
        fail("--in needs a WAV at " + juce::String(rate) + " Hz with 1 or 2 channels: " + path);
    juce::AudioBuffer<float> audio(static_cast<int>(reader->numChannels), static_cast<int>(reader->lengthInSamples));
    reader->read(&audio, 0, audio.getNumSamples(), 0, true, true);
    return audio;
}

juce::var command_live(juce::AudioPluginFormatManager& formats, const juce::String& path, const Options& o) {
    constexpr double kRate = 48000.0;
    constexpr int kBlock = 256;
    auto plugin = load_plugin(formats, path, kRate, kBlock);
    plugin->releaseResources();
    set_channels(*plugin, 2);
    set_state_attributes(*plugin, o);
    for (const auto& [name, text] : o.sets) {
        auto* p = find_parameter(*plugin, name);
        p->setValue(p->getValueForText(text));
    }
    plugin->prepareToPlay(kRate, kBlock);
    const juce::AudioBuffer<float> input = o.in.isEmpty() ? juce::AudioBuffer<float>() : read_live_input(o.in, kRate);
    // --editor: the editor writes its status here at every tick; each report line carries the latest.
    const juce::File editor_status = juce::File::createTempFile(".json");
    if (o.editor) setenv("IDAW_EDITOR_STATUS", editor_status.getFullPathName().toRawUTF8(), 1);
    // --commands: stdin lines, read on their own thread (a blocking read), applied on the message thread below.
    struct Inbox {
        std::mutex mutex;
        std::vector<std::string> lines;
    };
    auto inbox = std::make_shared<Inbox>();  // shared: the reader may outlive this function
    if (o.commands) {
        std::thread([inbox] {
            for (std::string line; std::getline(std::cin, line);) {
                std::lock_guard<std::mutex> lock(inbox->mutex);
                inbox->lines.push_back(line);
            }
        }).detach();  // blocked in getline until stdin closes; the process may end first
    }
    RtCheck check;
    unsigned long long control = 0;
    if (o.rtcheck) {
        check = find_rtcheck();
        control = rtcheck_control(check);
    }

    std::atomic<bool> stop{false};
    std::atomic<long long> blocks{0};
    // --midi-out: the MIDI the plugin sent, as (frame since the start, three bytes); filled by the audio thread,
    // read after it stopped. Reserved up front: the host's own thread, but no need to grow it while the audio runs.
    std::vector<std::array<int, 4>> midi_log;
    if (o.midi_out.isNotEmpty()) midi_log.reserve(kMaxLiveMidiEvents);
    std::thread audio([&] {
        juce::AudioBuffer<float> buffer(2, kBlock);
        juce::MidiBuffer midi;
        midi.ensureSize(4096);
        juce::Random rng(11);
        const auto period = std::chrono::duration<double>(kBlock / kRate);
        auto next = std::chrono::steady_clock::now();
        int played = 0;  // --in: the next frame of the file
        while (!stop.load()) {
            if (input.getNumSamples() == 0) {
                for (int c = 0; c < 2; ++c)
                    for (int i = 0; i < kBlock; ++i) buffer.setSample(c, i, 0.1f * (rng.nextFloat() * 2.0f - 1.0f));
            } else {
                for (int i = 0; i < kBlock; ++i, played = (played + 1) % input.getNumSamples())
                    for (int c = 0; c < 2; ++c)
                        buffer.setSample(c, i, input.getSample(std::min(c, input.getNumChannels() - 1), played));
            }
            midi.clear();
            plugin->processBlock(buffer, midi);
            for (const auto meta : midi)
                if (o.midi_out.isNotEmpty() && meta.numBytes == 3 && midi_log.size() < kMaxLiveMidiEvents)
                    midi_log.push_back({static_cast<int>(blocks.load() * kBlock + meta.samplePosition), meta.data[0],
                                        meta.data[1], meta.data[2]});
            blocks.fetch_add(1);
            next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
            std::this_thread::sleep_until(next);
        }
    });
    std::unique_ptr<juce::AudioProcessorEditor> editor;
    std::unique_ptr<EditorWindow> window;
    if (o.editor) {
        editor.reset(plugin->createEditorIfNeeded());
        if (editor == nullptr) fail("the plugin created no editor");
        window = std::make_unique<EditorWindow>(*editor);
    }
    const double start = juce::Time::getMillisecondCounterHiRes();
    double next_report = start;
    bool quit = false;  // --commands: "quit" ends the run before --seconds
    while (!quit && juce::Time::getMillisecondCounterHiRes() - start < 1000.0 * o.seconds) {
        juce::MessageManager::getInstance()->runDispatchLoopUntil(10);
        std::vector<std::string> todo;
        {
            std::lock_guard<std::mutex> lock(inbox->mutex);
            todo.swap(inbox->lines);
        }
        for (const std::string& command : todo) {
            const juce::String line = juce::String(command).trim();
            if (line == "quit") quit = true;
            if (quit) break;
            if (!line.startsWith("set ") || !line.contains("=")) fail("unknown command on stdin: " + line);
            // "set a=1 b=2 ...": every assignment of the line in one go, as one automation step.
            for (const juce::String& pair : juce::StringArray::fromTokens(line.substring(4), " ", "")) {
                if (pair.isEmpty()) continue;
                if (!pair.contains("=")) fail("unknown command on stdin: " + line);
                auto* p = find_parameter(*plugin, pair.upToFirstOccurrenceOf("=", false, false).trim());
                p->setValueNotifyingHost(p->getValueForText(pair.fromFirstOccurrenceOf("=", false, false).trim()));
            }
        }
        const double now = juce::Time::getMillisecondCounterHiRes();
        if (now < next_report) continue;
        next_report = now + o.report_ms;
        auto line = std::make_unique<juce::DynamicObject>();
        line->setProperty("t", (now - start) / 1000.0);
        line->setProperty("blocks", static_cast<juce::int64>(blocks.load()));
        line->setProperty("values", plugin_values(*plugin));
        if (o.editor && editor_status.existsAsFile()) line->setProperty("editor", juce::JSON::parse(editor_status));
        std::cout << juce::JSON::toString(juce::var(line.release()), true).toStdString() << std::endl;
    }
    window.reset();
    editor.reset();
    stop = true;
    audio.join();
    auto out = std::make_unique<juce::DynamicObject>();
    out->setProperty("done", true);
    out->setProperty("blocks", static_cast<juce::int64>(blocks.load()));
    if (o.rtcheck) out->setProperty("rtcheck", rtcheck_report(check, control));
    plugin->releaseResources();
    editor_status.deleteFile();
    if (o.midi_out.isNotEmpty()) {
        juce::Array<juce::var> events;
        for (const auto& e : midi_log) events.add(juce::Array<juce::var>{e[0], e[1], e[2], e[3]});
        juce::File(o.midi_out).replaceWithText(juce::JSON::toString(events, true));
        out->setProperty("midi_events", static_cast<int>(midi_log.size()));
    }
    return juce::var(out.release());
}

juce::var command_decode(const juce::String& role, const juce::String& path) {
    juce::MemoryBlock data;
    if (!juce::File(path).loadFileAsData(data)) fail("cannot read " + path);
    const auto& schema = idaw::plugin::sidecar::Schema::builtin();
    const auto* bytes = static_cast<const std::uint8_t*>(data.getData());
    juce::Array<juce::var> results;
    for (std::size_t at = 0; at + 4 <= data.getSize();) {
        const std::uint32_t size =
            bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | static_cast<std::uint32_t>(bytes[at + 3]) << 24;
        at += 4;
        if (at + size > data.getSize()) fail("truncated payload file");
        const std::string payload(reinterpret_cast<const char*>(bytes + at), size);
        at += size;
        idaw::plugin::sidecar::Message message;
        idaw::plugin::sidecar::Rejection why;
        if (schema.decode(payload, role.toStdString(), message, why))
            results.add(juce::String("ok:" + message.type));
        else
            results.add(juce::String(why.reason));
    }
    return results;
}

int run(const juce::StringArray& args) {
    if (args.size() < 2) fail("usage: idaw_plugin_host list|render|state|restore|editor|live PLUGIN.vst3 [options]");
    const juce::String command = args[0];
    if (command == "decode") {  // no plugin involved
        if (args.size() < 3) fail("usage: idaw_plugin_host decode ROLE PAYLOADS");
        std::cout << juce::JSON::toString(command_decode(args[1], args[2]), true).toStdString() << std::endl;
        return 0;
    }
    const juce::String path = juce::File::getCurrentWorkingDirectory().getChildFile(args[1]).getFullPathName();
    const Options options = parse_options(args, 2);
    juce::AudioPluginFormatManager formats;
    formats.addFormat(new juce::VST3PluginFormat());
    juce::var result;
    if (command == "list")
        result = command_list(formats, path);
    else if (command == "render")
        result = command_render(formats, path, options);
    else if (command == "state")
        result = command_state(formats, path, options);
    else if (command == "restore")
        result = command_restore(formats, path, options);
    else if (command == "editor")
        result = command_editor(formats, path, options);
    else if (command == "live")
        result = command_live(formats, path, options);
    else
        fail("unknown command " + command);
    std::cout << juce::JSON::toString(result, true).toStdString() << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
    try {
        // Before JUCE connects to the X server: it looks the atoms up once, when it starts.
        bool editor = argc > 1 && std::strcmp(argv[1], "editor") == 0;
        for (int i = 2; i < argc; ++i) editor = editor || std::strcmp(argv[i], "--editor") == 0;
        if (editor) intern_window_manager_atoms();
        juce::ScopedJuceInitialiser_GUI juce_runtime;  // the main thread is the message thread, as hosts require
        juce::StringArray args;
        for (int i = 1; i < argc; ++i) args.add(juce::String::fromUTF8(argv[i]));
        return run(args);
    } catch (const idaw::plugin_host::HostError& e) {
        std::cerr << "idaw_plugin_host: " << e.message.toStdString() << std::endl;
        return 1;
    }
}
