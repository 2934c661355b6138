// idaw_core: the Engine class (prepare, parameters, processing, counters, timing, telemetry, analysis), the
// engine's steady clock and the real-time checker's hook.
#include <nanobind/stl/tuple.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "idaw/engine.h"
#include "idaw/rt_check.h"

namespace idaw::python {
namespace {

using namespace nb::literals;

nb::dict summary_dict(const idaw::TimingSummary& s) {
    nb::dict d;
    d["blocks"] = s.blocks;
    d["over_budget"] = s.over_budget;
    d["p50_us"] = s.p50_us;
    d["p99_us"] = s.p99_us;
    d["max_us"] = s.max_us;
    return d;
}

/// One block record as drain_telemetry() returns it.
using TelemetryRecord = std::tuple<std::uint64_t, std::uint64_t, std::uint32_t, std::uint64_t, std::uint32_t>;

/// The engine's clock, steady_ns() and the real-time checker's hook.
void bind_clock(nb::module_& m) {
    m.def(
        "set_rt_section_hook",
        [](std::uintptr_t address) { idaw::rt::set_section_hook(reinterpret_cast<idaw::rt::SectionHook>(address)); },
        "address"_a, "Install a C function void(int entering) called around real-time work (tests only; 0 removes).");

    m.def(
        "steady_ns",
        []() {
            return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::steady_clock::now().time_since_epoch())
                                                  .count());
        },
        "The engine's steady clock in ns (the clock of Engine.block_clock(); CLOCK_MONOTONIC on Linux).");
}

/// prepare() and the two ways of handing the engine a parameter snapshot.
void bind_setup(EngineClass& c) {
    c.def(nb::init<>())
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
            "values"_a, "sequence"_a = 0, "Apply a snapshot immediately with no ramp (only while not streaming).");
}

/// process() and render(): audio through the chain, in place.
void bind_processing(EngineClass& c) {
    c.def(
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
            "Process a whole buffer in place, block by block as a stream would (GIL released).");
}

/// Timing, counters, telemetry, analysis and the block clock: what the engine reports.
void bind_reports(EngineClass& c) {
    c.def(
         "timing_summary", [](PyEngine& e) { return summary_dict(e.engine.timing().snapshot().summarize()); },
         nb::sig("def timing_summary(self) -> TimingSummary"),
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
            nb::sig("def timing_window(self) -> TimingSummary"),
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
                d["compressor_reduction_db"] = k.compressor_reduction_db;
                d["compressor_peak_reduction_db"] = k.compressor_peak_reduction_db;
                return d;
            },
            nb::sig("def counters(self) -> EngineCounters"),
            "Engine counters (blocks, frames, nonfinite_samples, limited_samples, snapshots_applied, ...).")
        .def(
            "drain_telemetry",
            [](PyEngine& e) {
                nb::typed<nb::list, TelemetryRecord> out;
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
            "analysis_origin", [](PyEngine& e) { return e.engine.analysis_origin(); },
            "Sample-clock time of the first analysis sample since the copy was last switched on (0 before): the "
            "k-th sample read since then, counting analysis_dropped ones, was the input at analysis_origin() + k.")
        .def(
            "set_telemetry_enabled", [](PyEngine& e, bool on) { e.engine.set_telemetry_enabled(on); }, "on"_a,
            "Queue one record per block for drain_telemetry() (off by default).")
        .def(
            "set_budget_fraction", [](PyEngine& e, double f) { e.engine.set_budget_fraction(f); }, "fraction"_a,
            "Share of a block's duration above which the block counts as over budget.")
        .def(
            "block_clock",
            [](PyEngine& e) {
                const auto c = e.engine.block_clock();
                return std::make_tuple(c.sample_time, c.steady_ns, c.frames, c.blocks);
            },
            "(sample_time, steady_ns, frames, blocks) of the latest block's start: where the sample clock stood and "
            "when (steady_ns(), ns) process() began; blocks 0 means none yet.");
}

/// Read-only properties: what prepare() set up.
void bind_properties(EngineClass& c) {
    c.def_prop_ro(
         "sample_rate", [](PyEngine& e) { return e.engine.sample_rate(); }, "Sample rate (Hz) of prepare().")
        .def_prop_ro(
            "max_block", [](PyEngine& e) { return e.engine.max_block(); }, "Largest block of prepare() (0 before).")
        .def_prop_ro(
            "channels", [](PyEngine& e) { return e.engine.num_channels(); }, "Channels of prepare().")
        .def_prop_ro(
            "latency_samples", [](PyEngine& e) { return e.engine.latency_samples(); },
            "Processing latency in samples (0: the chain has no look-ahead).")
        .def_prop_ro(
            "ramp_samples", [](PyEngine& e) { return e.engine.ramp_samples(); },
            "Gain ramp length in samples at the prepared rate (EQ ramps are longer).");
}

}  // namespace

EngineClass bind_engine(nb::module_& m) {
    bind_clock(m);
    EngineClass c(m, "Engine", "The DSP engine. prepare() before processing.");
    bind_setup(c);
    bind_processing(c);
    bind_reports(c);
    bind_properties(c);
    return c;
}

}  // namespace idaw::python
