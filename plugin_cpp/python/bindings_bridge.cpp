// idaw_core: PortAudioBridge, the user data of the native live callback (idaw/portaudio_bridge.h).
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "bindings.h"
#include "idaw/portaudio_bridge.h"

namespace idaw::python {
namespace {

using namespace nb::literals;

/// Live stream user data: keeps the engine alive for as long as the stream may call back.
struct PyBridge {
    nb::object engine_ref;
    std::unique_ptr<idaw::PortAudioBridge> bridge;
};

}  // namespace

void bind_bridge(nb::module_& m) {
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
            "engine"_a, "input_channels"_a, "output_channels"_a,
            nb::sig("def __init__(self, engine: Engine, input_channels: int, output_channels: int) -> None"),
            "Bind a prepared engine to a stream of input_channels in and output_channels (1..engine channels) out.")
        .def_prop_ro(
            "user_data_address", [](PyBridge& b) { return reinterpret_cast<std::uintptr_t>(b.bridge.get()); },
            "Address of the bridge, the callback's user data.")
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
            nb::sig("def counters(self) -> BridgeCounters"),
            "Stream counters: callbacks, frames, xruns and each PortAudio status flag seen.");
}

}  // namespace idaw::python
