// idaw_core: the mastering stage's processors (idaw/true_peak_limiter.h), for offline renders.
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "idaw/true_peak_limiter.h"

namespace idaw::python {

using namespace nb::literals;

namespace {

/// Planar audio processed in place: float32 (channels, frames), C-contiguous.
using Planar = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

}  // namespace

void bind_master(nb::module_& m) {
    nb::class_<idaw::TruePeakLimiter>(
        m, "TruePeakLimiter",
        "Look-ahead true-peak limiter (4x oversampled detection, ITU-R BS.1770-4 Annex 2): the output is the input "
        "delayed by `latency` frames, turned down where its true peak would pass the ceiling. Keeps its state "
        "between calls, so a long file can go through in pieces.")
        .def(
            "__init__",
            [](idaw::TruePeakLimiter* self, double sample_rate, int channels, double ceiling_dbtp, double lookahead_ms,
               double release_ms) {
                if (!(sample_rate >= 1000.0 && sample_rate <= 768000.0))
                    throw nb::value_error("sample_rate must be within 1000..768000 Hz");
                if (channels < 1 || channels > idaw::TruePeakLimiter::kMaxChannels)
                    throw nb::value_error(
                        ("channels must be within 1.." + std::to_string(idaw::TruePeakLimiter::kMaxChannels)).c_str());
                new (self) idaw::TruePeakLimiter();
                self->prepare(sample_rate, channels, {ceiling_dbtp, lookahead_ms, release_ms});
            },
            "sample_rate"_a, "channels"_a, "ceiling_dbtp"_a = -1.0, "lookahead_ms"_a = 2.0, "release_ms"_a = 100.0,
            "Settings beyond what it can do are clamped: ceiling -60..0 dBTP, look-ahead 0.1..50 ms, release "
            "1..5000 ms.")
        .def(
            "process",
            [](idaw::TruePeakLimiter& self, Planar audio) {
                if (static_cast<int>(audio.shape(0)) != self.channels())
                    throw nb::value_error(("audio must have shape (channels, frames) with " +
                                           std::to_string(self.channels()) + " channels, got " +
                                           std::to_string(audio.shape(0)))
                                              .c_str());
                const float* data = audio.data();
                for (std::size_t i = 0, n = audio.size(); i < n; ++i)
                    if (!std::isfinite(data[i]))
                        throw nb::value_error(
                            "audio holds NaN or infinite samples; the limiter takes finite audio only");
                float* ch[idaw::TruePeakLimiter::kMaxChannels] = {};
                for (std::size_t c = 0; c < audio.shape(0); ++c) ch[c] = audio.data() + c * audio.shape(1);
                nb::gil_scoped_release unlocked;
                self.process(ch, static_cast<int>(audio.shape(1)));
            },
            "audio"_a, "Limits planar float32 audio of shape (channels, frames) in place (finite samples only).")
        .def("reset", &idaw::TruePeakLimiter::reset, "Back to silence and unity gain.")
        .def_prop_ro("channels", &idaw::TruePeakLimiter::channels, "Channels per frame.")
        .def_prop_ro("latency", &idaw::TruePeakLimiter::latency, "Frames between an input sample and its output.")
        .def_prop_ro("ceiling", &idaw::TruePeakLimiter::ceiling, "The ceiling as a linear amplitude.")
        .def_prop_ro("gain", &idaw::TruePeakLimiter::gain, "The gain of the last output frame (1.0 when idle).")
        .def_prop_ro("peak_reduction_db", &idaw::TruePeakLimiter::peak_reduction_db,
                     "The largest gain reduction so far, in dB (>= 0).");
}

}  // namespace idaw::python
