// Python extension `idaw_core`: the same engine the plugin runs, driven from outside the audio thread.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "idaw/engine.h"
#include "idaw/midi_generator.h"
#include "idaw/music_theory.h"
#include "idaw/nn/model_loader.h"
#include "idaw/portaudio_bridge.h"
#include "idaw/rt_check.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using Frames = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using Values = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Freqs = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

idaw::Parameters to_parameters(Values values, std::uint64_t sequence) {
    if (values.shape(0) != idaw::kNumParams)
        throw std::invalid_argument("expected " + std::to_string(idaw::kNumParams) + " parameter values, got " +
                                    std::to_string(values.shape(0)));
    idaw::Parameters p;
    for (std::size_t i = 0; i < idaw::kNumParams; ++i) p.values[i] = values(i);
    p.sequence = sequence;
    return p;
}

nb::dict summary_dict(const idaw::TimingSummary& s) {
    nb::dict d;
    d["blocks"] = s.blocks;
    d["over_budget"] = s.over_budget;
    d["p50_us"] = s.p50_us;
    d["p99_us"] = s.p99_us;
    d["max_us"] = s.max_us;
    return d;
}

/// Engine plus the reader-side state of its timing windows (kept off the audio thread).
struct PyEngine {
    idaw::Engine engine;
    idaw::TimingHistogram::Snapshot window_start{};
    std::mutex midi_loader;  // the generator's nets have one loader at a time (install/clear/collect)

    void require_prepared() const {
        if (engine.max_block() == 0) throw std::runtime_error("engine not prepared: call prepare() first");
    }
};

/// Live stream user data: keeps the engine alive for as long as the stream may call back.
struct PyBridge {
    nb::object engine_ref;
    std::unique_ptr<idaw::PortAudioBridge> bridge;
};

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

/// A path argument (str, bytes or os.PathLike) as the bytes the OS sees, as os.fsencode() gives them (a name that
/// is not UTF-8 round-trips through surrogateescape); TypeError for anything else. A NUL byte is kept, so the
/// loader refuses the path in one line rather than opening a shorter one.
std::string fs_path(nb::handle path) {
    nb::object name = nb::steal(PyOS_FSPath(path.ptr()));
    if (!name.is_valid()) throw nb::python_error();
    if (PyUnicode_Check(name.ptr())) {
        name = nb::steal(PyUnicode_EncodeFSDefault(name.ptr()));
        if (!name.is_valid()) throw nb::python_error();
    }
    return std::string(PyBytes_AS_STRING(name.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(name.ptr())));
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

}  // namespace

// Neural network runtime bindings: defined in their own section at the end of this file.
void bind_nn(nb::module_& m);

NB_MODULE(idaw_core, m) {
    m.doc() = "idaw real-time core: DSP chain, lock-free rings and the native live callback.";

    m.def(
        "param_specs",
        []() {
            nb::list specs;
            for (const auto& s : idaw::kParamSpecs) {
                nb::dict d;
                d["name"] = std::string(s.name);
                d["unit"] = std::string(s.unit);
                d["min"] = s.min_value;
                d["max"] = s.max_value;
                d["default"] = s.default_value;
                d["scale"] = s.scale == idaw::ParamScale::Log ? "log" : "linear";
                specs.append(d);
            }
            return specs;
        },
        "The parameter table: a list of dicts (name, unit, min, max, default, scale) in snapshot order.");

    m.def(
        "check_parameters", [](Values values) { return idaw::check_parameters(to_parameters(values, 0)).bad_index; },
        "values"_a, "Index of the first out-of-range or non-finite value, or -1 when all are valid.");

    m.def(
        "eq_response_db",
        [](Values values, double sample_rate, Freqs freqs) {
            auto p = to_parameters(values, 0);
            auto* out = new double[freqs.shape(0)];
            idaw::eq_response_db(p, sample_rate, freqs.data(), out, freqs.shape(0));
            nb::capsule owner(out, [](void* ptr) noexcept { delete[] static_cast<double*>(ptr); });
            return nb::ndarray<nb::numpy, double, nb::ndim<1>>(out, {freqs.shape(0)}, owner);
        },
        "values"_a, "sample_rate"_a, "freqs"_a,
        "Magnitude response (dB) of the EQ section, from the coefficients the engine uses.");

    m.def(
        "set_rt_section_hook",
        [](std::uintptr_t address) { idaw::rt::set_section_hook(reinterpret_cast<idaw::rt::SectionHook>(address)); },
        "address"_a, "Install a C function void(int entering) called around real-time work (tests only; 0 removes).");

    m.attr("NUM_PARAMS") = idaw::kNumParams;
    m.attr("COEFFICIENT_GRID") = idaw::Engine::kCoefficientGrid;
    m.attr("LIMITER_CEILING") = idaw::SafetyLimiter::kCeiling;
    m.attr("MAX_CHANNELS") = idaw::Engine::kMaxChannels;
    m.attr("EMOTION_DIMS") = idaw::kEmotionDims;
    m.attr("MIDI_MELODY_RANGE") = nb::make_tuple(idaw::MidiGenerator::kMelodyLow, idaw::MidiGenerator::kMelodyHigh);
    m.attr("MIDI_CHORD_RANGE") = nb::make_tuple(idaw::music::kBassLow, idaw::music::kChordLow + 11);
    m.attr("MIDI_MIN_TEMPO") = idaw::MidiControl::kMinTempo;
    m.attr("MIDI_MAX_TEMPO") = idaw::MidiControl::kMaxTempo;
    {
        nb::list scales;
        for (const auto& sc : idaw::music::kScales) scales.append(nb::make_tuple(std::string(sc.name), sc.mask));
        m.attr("MIDI_SCALES") = scales;
        nb::list nets;
        for (const auto& n : idaw::kMidiNetSpecs) nets.append(nb::make_tuple(std::string(n.name), n.inputs, n.outputs));
        m.attr("MIDI_NETS") = nets;
    }
    m.def(
        "steady_ns",
        []() {
            return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::steady_clock::now().time_since_epoch())
                                                  .count());
        },
        "The engine's steady clock in ns (the clock of Engine.block_clock(); CLOCK_MONOTONIC on Linux).");

    nb::class_<PyEngine>(m, "Engine", "The DSP engine. prepare() before processing.")
        .def(nb::init<>())
        .def(
            "prepare",
            [](PyEngine& e, double sample_rate, int max_block, int channels) {
                if (!(sample_rate >= 8000.0 && sample_rate <= 384000.0))
                    throw std::invalid_argument("sample rate must be 8000..384000 Hz");
                if (max_block < 1 || max_block > 65536) throw std::invalid_argument("max_block must be 1..65536");
                if (channels < 1 || channels > idaw::Engine::kMaxChannels)
                    throw std::invalid_argument("channels must be 1.." + std::to_string(idaw::Engine::kMaxChannels));
                e.engine.prepare(sample_rate, max_block, channels);
                e.window_start = e.engine.timing().snapshot();
            },
            "sample_rate"_a, "max_block"_a, "channels"_a, "Allocate for a rate, largest block and channel count.")
        .def(
            "push_parameters",
            [](PyEngine& e, Values values, std::uint64_t sequence) {
                return e.engine.push_parameters(to_parameters(values, sequence));
            },
            "values"_a, "sequence"_a = 0,
            "Queue a full snapshot for the audio thread; False if a value is out of range or the queue is full.")
        .def(
            "set_parameters_now",
            [](PyEngine& e, Values values, std::uint64_t sequence) {
                auto p = to_parameters(values, sequence);
                if (!idaw::check_parameters(p).ok()) throw std::invalid_argument("parameter out of range");
                e.engine.set_parameters_now(p);
            },
            "values"_a, "sequence"_a = 0, "Apply a snapshot immediately with no ramp (only while not streaming).")
        .def(
            "process",
            [](PyEngine& e, Frames block) {
                e.require_prepared();
                const int channels = static_cast<int>(block.shape(1));
                const int frames = static_cast<int>(block.shape(0));
                nb::gil_scoped_release release;
                e.engine.process_interleaved(block.data(), channels, frames);
            },
            "block"_a, "Process one block in place: float32 array (frames, channels), C-contiguous.")
        .def(
            "render",
            [](PyEngine& e, Frames audio, int block_size) {
                e.require_prepared();
                if (block_size < 1) throw std::invalid_argument("block_size must be >= 1");
                const int channels = static_cast<int>(audio.shape(1));
                const std::size_t total = audio.shape(0);
                float* data = audio.data();
                nb::gil_scoped_release release;
                for (std::size_t done = 0; done < total;) {
                    const int n = static_cast<int>(std::min<std::size_t>(block_size, total - done));
                    e.engine.process_interleaved(data + done * channels, channels, n);
                    done += n;
                }
            },
            "audio"_a, "block_size"_a,
            "Process a whole buffer in place, block by block as a stream would (GIL released).")
        .def(
            "timing_summary", [](PyEngine& e) { return summary_dict(e.engine.timing().snapshot().summarize()); },
            "Block CPU time since prepare(): dict(blocks, over_budget, p50_us, p99_us, max_us).")
        .def(
            "timing_window",
            [](PyEngine& e) {
                auto now = e.engine.timing().snapshot();
                now.max_ns = e.engine.timing().take_max();
                auto s = now.summarize(&e.window_start);
                e.window_start = now;
                return summary_dict(s);
            },
            "Block CPU time since the previous timing_window() call (max over that window only).")
        .def(
            "counters",
            [](PyEngine& e) {
                const auto k = e.engine.counters();
                nb::dict d;
                d["blocks"] = k.blocks;
                d["frames"] = k.frames;
                d["nonfinite_samples"] = k.nonfinite_samples;
                d["limited_samples"] = k.limited_samples;
                d["snapshots_applied"] = k.snapshots_applied;
                d["applied_sequence"] = k.applied_sequence;
                d["telemetry_dropped"] = k.telemetry_dropped;
                d["analysis_dropped"] = k.analysis_dropped;
                return d;
            },
            "Engine counters (blocks, frames, nonfinite_samples, limited_samples, snapshots_applied, ...).")
        .def(
            "drain_telemetry",
            [](PyEngine& e) {
                nb::list out;
                idaw::BlockTelemetry t;
                while (e.engine.telemetry_ring().pop(t))
                    out.append(nb::make_tuple(t.block_index, t.sample_time, t.frames, t.cpu_ns, t.flags));
                return out;
            },
            "Pop every queued block record as (block_index, sample_time, frames, cpu_ns, flags).")
        .def(
            "read_analysis",
            [](PyEngine& e, nb::ndarray<float, nb::ndim<1>, nb::c_contig, nb::device::cpu> out) {
                return e.engine.analysis_ring().pop(out.data(), out.shape(0));
            },
            "out"_a, "Pop mono analysis samples into a float32 array; returns how many were written.")
        .def(
            "set_analysis_enabled", [](PyEngine& e, bool on) { e.engine.set_analysis_enabled(on); }, "on"_a)
        .def(
            "set_telemetry_enabled", [](PyEngine& e, bool on) { e.engine.set_telemetry_enabled(on); }, "on"_a,
            "Queue one record per block for drain_telemetry() (off by default).")
        .def(
            "set_budget_fraction", [](PyEngine& e, double f) { e.engine.set_budget_fraction(f); }, "fraction"_a,
            "Share of a block's duration above which the block counts as over budget.")
        .def(
            "set_midi_control",
            [](PyEngine& e, bool enabled, double tempo_bpm, int key_tonic, int scale, int melody_channel,
               int chord_channel, Values emotion, std::uint64_t seed, std::uint64_t sequence) {
                if (emotion.shape(0) != static_cast<std::size_t>(idaw::kEmotionDims))
                    throw nb::value_error(
                        ("emotion must have " + std::to_string(idaw::kEmotionDims) + " values").c_str());
                auto small = [](int v, int hi) { return v >= 0 && v <= hi ? static_cast<std::uint8_t>(v) : 255; };
                idaw::MidiControl c;
                c.enabled = enabled;
                c.tempo_bpm = static_cast<float>(tempo_bpm);
                c.key_tonic = small(key_tonic, 11);
                c.scale = small(scale, idaw::music::kNumScales - 1);
                c.melody_channel = small(melody_channel, 15);
                c.chord_channel = small(chord_channel, 15);
                for (int i = 0; i < idaw::kEmotionDims; ++i) c.emotion[static_cast<std::size_t>(i)] = emotion(i);
                c.seed = seed;
                c.sequence = sequence;
                if (const char* why = idaw::check_midi_control(c)) throw nb::value_error(why);
                return e.engine.midi_generator().push_control(c);
            },
            "enabled"_a, "tempo_bpm"_a, "key_tonic"_a, "scale"_a, "melody_channel"_a, "chord_channel"_a, "emotion"_a,
            "seed"_a = 1, "sequence"_a = 0,
            "Queue the MIDI generator's full control state for the audio thread (taken up at the next block). "
            "ValueError for a value out of range; False when the queue is full.")
        .def(
            "install_midi_net",
            [](PyEngine& e, const std::string& net, nb::handle path) {
                install_midi_net(e, net, fs_path(path), true);
            },
            "net"_a, "path"_a,
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
            "Free nets the audio thread has let go of (installing does this too).")
        .def(
            "drain_midi",
            [](PyEngine& e, std::size_t max_events) {
                nb::list out;
                idaw::MidiEvent ev;
                for (std::size_t i = 0; i < max_events && e.engine.midi_ring().pop(ev); ++i)
                    out.append(nb::make_tuple(ev.sample_time, ev.bytes[0], ev.bytes[1], ev.bytes[2]));
                return out;
            },
            "max_events"_a = 65536,
            "Pop queued MIDI events as (sample_time, status, data1, data2) tuples, in the order the generator "
            "pushed them (not time order). One reader at a time.")
        .def(
            "block_clock",
            [](PyEngine& e) {
                const auto c = e.engine.block_clock();
                return nb::make_tuple(c.sample_time, c.steady_ns, c.frames, c.blocks);
            },
            "(sample_time, steady_ns, frames, blocks) of the latest block's start: where the sample clock stood and "
            "when (steady_ns(), ns) process() began; blocks 0 means none yet.")
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
                d["step_timing"] = timing_dict(e.engine.midi_generator().step_timing());
                d["bar_step_timing"] = timing_dict(e.engine.midi_generator().bar_timing());
                return d;
            },
            "MIDI generator counters, with step_timing and bar_step_timing (count, p50_us, p99_us, max_us): the "
            "audio-thread time of each generated step, and of bar starts (all four nets) alone.")
        .def(
            "midi_lookahead_samples",
            [](PyEngine& e, double tempo_bpm) {
                e.require_prepared();
                return e.engine.midi_generator().lookahead_samples(tempo_bpm);
            },
            "tempo_bpm"_a, "How far ahead of the audio the generator works, in samples, at a tempo.")
        .def_prop_ro("sample_rate", [](PyEngine& e) { return e.engine.sample_rate(); })
        .def_prop_ro("max_block", [](PyEngine& e) { return e.engine.max_block(); })
        .def_prop_ro("channels", [](PyEngine& e) { return e.engine.num_channels(); })
        .def_prop_ro("latency_samples", [](PyEngine& e) { return e.engine.latency_samples(); })
        .def_prop_ro("ramp_samples", [](PyEngine& e) { return e.engine.ramp_samples(); });

    nb::class_<PyBridge>(m, "PortAudioBridge",
                         "User data for the native PortAudio callback: engine + stream channel layout.")
        .def(
            "__init__",
            [](PyBridge* self, nb::object engine, int input_channels, int output_channels) {
                auto& e = nb::cast<PyEngine&>(engine);
                e.require_prepared();
                if (input_channels < 0 || output_channels < 1 || output_channels > e.engine.num_channels())
                    throw std::invalid_argument("output channels must be 1..engine channels");
                new (self) PyBridge{engine,
                                    std::make_unique<idaw::PortAudioBridge>(e.engine, input_channels, output_channels)};
            },
            "engine"_a, "input_channels"_a, "output_channels"_a)
        .def_prop_ro("user_data_address", [](PyBridge& b) { return reinterpret_cast<std::uintptr_t>(b.bridge.get()); })
        .def_prop_ro_static(
            "callback_address", [](nb::handle) { return reinterpret_cast<std::uintptr_t>(&idaw_portaudio_callback); },
            "Address of the PaStreamCallback-compatible C function.")
        .def(
            "counters",
            [](PyBridge& b) {
                const auto k = b.bridge->counters();
                nb::dict d;
                d["callbacks"] = k.callbacks;
                d["frames"] = k.frames;
                d["xruns"] = k.xruns;
                d["input_underflows"] = k.input_underflows;
                d["input_overflows"] = k.input_overflows;
                d["output_underflows"] = k.output_underflows;
                d["output_overflows"] = k.output_overflows;
                d["last_callback_frames"] = k.last_callback_frames;
                return d;
            },
            "Stream counters: callbacks, frames, xruns and each PortAudio status flag seen.");

    bind_nn(m);
}

// =====================================================================================================================
// Neural network runtime (idaw/nn): RTNeural JSON models, loaded and validated in C++.
// =====================================================================================================================

#include <nanobind/stl/unique_ptr.h>

#include <chrono>
#include <mutex>
#include <string_view>

#include "idaw/nn/model_loader.h"

namespace {

/// A loaded model plus a lock, so two Python threads never run one model's state at once.
struct PyModel {
    std::unique_ptr<idaw::nn::Model> model;
    std::mutex mutex;
};

using NnFrame = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using NnFrames = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

idaw::nn::LoadOptions nn_options(const std::string& isa) {
    idaw::nn::LoadOptions options;
    if (isa == "auto")
        options.isa = idaw::nn::Isa::Auto;
    else if (isa == "sse2")
        options.isa = idaw::nn::Isa::Sse2;
    else if (isa == "avx2")
        options.isa = idaw::nn::Isa::Avx2;
    else
        throw nb::value_error("isa must be 'auto', 'sse2' or 'avx2'");
    return options;
}

std::unique_ptr<PyModel> nn_take(idaw::nn::LoadResult result) {
    if (!result.ok()) throw nb::value_error(result.error.c_str());
    auto py = std::make_unique<PyModel>();
    py->model = std::move(result.model);
    return py;
}

nb::ndarray<nb::numpy, float, nb::ndim<1>> nn_vector(std::size_t n, float** data) {
    auto* out = new float[n > 0 ? n : 1];
    nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<float*>(p); });
    *data = out;
    return nb::ndarray<nb::numpy, float, nb::ndim<1>>(out, {n}, owner);
}

nb::ndarray<nb::numpy, float, nb::ndim<2>> nn_matrix(std::size_t rows, std::size_t cols, float** data) {
    auto* out = new float[rows * cols > 0 ? rows * cols : 1];
    nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<float*>(p); });
    *data = out;
    return nb::ndarray<nb::numpy, float, nb::ndim<2>>(out, {rows, cols}, owner);
}

void nn_check_width(const PyModel& m, std::size_t width) {
    if (width != static_cast<std::size_t>(m.model->input_size()))
        throw nb::value_error(
            ("expected frames of " + std::to_string(m.model->input_size()) + " values, got " + std::to_string(width))
                .c_str());
}

}  // namespace

void bind_nn(nb::module_& m) {
    nb::class_<PyModel>(m, "Model",
                        "A network loaded from RTNeural JSON; runs one frame per call (batch 1), carrying state.")
        .def(
            "forward",
            [](PyModel& self, NnFrame frame) {
                nn_check_width(self, frame.shape(0));
                float* out = nullptr;
                auto result = nn_vector(static_cast<std::size_t>(self.model->output_size()), &out);
                std::lock_guard<std::mutex> lock(self.mutex);
                self.model->forward(frame.data(), out);
                return result;
            },
            "frame"_a, "Run one frame: float32 [input_size] -> float32 [output_size]; the state carries on.")
        .def(
            "forward_sequence",
            [](PyModel& self, NnFrames frames) {
                nn_check_width(self, frames.shape(1));
                const std::size_t count = frames.shape(0), in = frames.shape(1);
                const std::size_t out_width = static_cast<std::size_t>(self.model->output_size());
                float* out = nullptr;
                auto result = nn_matrix(count, out_width, &out);
                const float* in_data = frames.data();
                nb::gil_scoped_release release;
                std::lock_guard<std::mutex> lock(self.mutex);
                for (std::size_t t = 0; t < count; ++t) self.model->forward(in_data + t * in, out + t * out_width);
                return result;
            },
            "frames"_a, "Run frames [T, input_size] one by one (state carried); returns float32 [T, output_size].")
        .def(
            "reset",
            [](PyModel& self) {
                std::lock_guard<std::mutex> lock(self.mutex);
                self.model->reset();
            },
            "Zero every recurrent and convolution state, as after loading.")
        .def_prop_ro("input_size", [](PyModel& self) { return self.model->input_size(); })
        .def_prop_ro("output_size", [](PyModel& self) { return self.model->output_size(); })
        .def_prop_ro(
            "num_parameters", [](PyModel& self) { return self.model->num_parameters(); },
            "Numbers in the weights, as the JSON holds them (an LSTM has one summed bias vector).")
        .def_prop_ro(
            "kernel", [](PyModel& self) { return std::string(self.model->kernel_name()); },
            "Kernel set in use: 'avx2+fma', 'sse2' or 'scalar'.")
        .def(
            "layer_summary",
            [](PyModel& self) {
                nb::list layers;
                for (std::size_t i = 0; i < self.model->num_layers(); ++i) {
                    const auto& info = self.model->layer(i).info();
                    nb::dict d;
                    d["type"] = std::string(idaw::nn::layer_type_name(info.type));
                    d["activation"] = std::string(idaw::nn::activation_name(info.activation));
                    d["in_size"] = info.in_size;
                    d["out_size"] = info.out_size;
                    d["parameters"] = info.parameters;
                    if (info.type == idaw::nn::LayerType::Conv1d) {
                        d["kernel_size"] = info.kernel_size;
                        d["dilation"] = info.dilation;
                    }
                    layers.append(d);
                }
                return layers;
            },
            "One dict per layer: type, activation, in_size, out_size, parameters (+ kernel_size, dilation).");

    m.def(
        "load_model",
        [](nb::handle path, const std::string& isa) {
            const auto options = nn_options(isa);
            const std::string name = fs_path(path);
            idaw::nn::LoadResult result;
            {
                nb::gil_scoped_release release;
                result = idaw::nn::load_model_file(name, options);
            }
            return nn_take(std::move(result));
        },
        "path"_a, "isa"_a = "auto",
        "Load an RTNeural JSON file (path: str, bytes or os.PathLike); ValueError in one line naming the layer and the "
        "problem when it is not a valid model, or when the path is no regular file (a FIFO is refused at once) or "
        "holds a NUL byte.");

    m.def(
        "load_model_from_string",
        [](const std::string& text, const std::string& isa) {
            const auto options = nn_options(isa);
            idaw::nn::LoadResult result;
            {
                nb::gil_scoped_release release;
                result = idaw::nn::load_model_string(text, options);
            }
            return nn_take(std::move(result));
        },
        "json_text"_a, "isa"_a = "auto", "Load a model from RTNeural JSON text (see load_model).");

    m.def(
        "nn_time_frames",
        [](std::vector<PyModel*> models, std::vector<NnFrame> inputs, int iterations) {
            if (models.size() != inputs.size()) throw nb::value_error("need one input frame per model");
            if (iterations < 1) throw nb::value_error("iterations must be >= 1");
            std::size_t widest = 1;
            for (std::size_t i = 0; i < models.size(); ++i) {
                if (models[i] == nullptr) throw nb::value_error("models must not hold None");
                nn_check_width(*models[i], inputs[i].shape(0));
                widest = std::max<std::size_t>(widest, static_cast<std::size_t>(models[i]->model->output_size()));
            }
            std::vector<float> out(widest);
            auto* durations = new std::int64_t[static_cast<std::size_t>(iterations)];
            nb::capsule owner(durations, [](void* p) noexcept { delete[] static_cast<std::int64_t*>(p); });
            {
                nb::gil_scoped_release release;
                for (int it = 0; it < iterations; ++it) {
                    const auto start = std::chrono::steady_clock::now();
                    for (std::size_t i = 0; i < models.size(); ++i)
                        models[i]->model->forward(inputs[i].data(), out.data());
                    const auto stop = std::chrono::steady_clock::now();
                    durations[it] = std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count();
                }
            }
            return nb::ndarray<nb::numpy, std::int64_t, nb::ndim<1>>(durations, {static_cast<std::size_t>(iterations)},
                                                                     owner);
        },
        "models"_a, "inputs"_a, "iterations"_a,
        "Benchmark helper: run every model once on its frame, `iterations` times; returns the ns of each round, "
        "timed in C++ (state carries on).");
}
