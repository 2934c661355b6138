// Internal to the Python extension idaw_core: what its binding files share. One bind_* per domain, each in its own
// bindings_<domain>.cpp; bindings_module.cpp defines the module and calls them in an order where every class is
// registered before a signature names it (so the generated stub, idaw_core.pyi, names Python types, not C++ ones).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

#include "idaw/engine.h"
#include "idaw/timing_histogram.h"

namespace idaw::python {

namespace nb = nanobind;

/// An audio buffer processed in place: float32 (frames, channels), C-contiguous.
using Frames = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
/// A read-only float32 vector (a parameter snapshot, an emotion embedding, a model's input frame).
using Values = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
/// A read-only float64 vector (frequencies in Hz).
using Freqs = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

/// Engine plus the reader-side state of its timing windows (kept off the audio thread).
struct PyEngine {
    idaw::Engine engine;
    idaw::TimingHistogram::Snapshot window_start{};
    std::mutex midi_loader;  // the generator's nets have one loader at a time (install/clear/collect)

    /// RuntimeError unless prepare() ran.
    void require_prepared() const {
        if (engine.max_block() == 0) throw std::runtime_error("engine not prepared: call prepare() first");
    }
};

/// The Python class of PyEngine, so another domain can add its methods.
using EngineClass = nb::class_<PyEngine>;

/// A full parameter snapshot from kNumParams float32 values; std::invalid_argument (ValueError) for another count.
idaw::Parameters to_parameters(Values values, std::uint64_t sequence);

/// A path argument (str, bytes or os.PathLike) as the bytes the OS sees, as os.fsencode() gives them (a name that
/// is not UTF-8 round-trips through surrogateescape); TypeError for anything else. A NUL byte is kept, so the
/// loader refuses the path in one line rather than opening a shorter one.
std::string fs_path(nb::handle path);

/// param_specs, check_parameters, eq_response_db and the engine's constants (NUM_PARAMS, LIMITER_CEILING, ...).
void bind_params(nb::module_& m);
/// The Engine class (prepare, parameters, process/render, counters, timing, telemetry, analysis) and the
/// engine's clock (steady_ns) and real-time checker hook; returns the class for bind_midi().
EngineClass bind_engine(nb::module_& m);
/// The MIDI generator: its constants (scales, nets, ranges), the emotion map, and Engine's MIDI methods.
void bind_midi(nb::module_& m, EngineClass& engine);
/// PortAudioBridge: the native live callback's user data.
void bind_bridge(nb::module_& m);
/// The neural network runtime: Model, load_model, load_model_from_string, nn_time_frames.
void bind_nn(nb::module_& m);
/// The mastering stage's processors (bindings_master.cpp).
void bind_master(nb::module_& m);

}  // namespace idaw::python
