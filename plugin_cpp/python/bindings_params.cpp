// idaw_core: the engine's parameter table (idaw/parameters.h) and constants, and the EQ's response.
#include <nanobind/stl/string.h>

#include <stdexcept>
#include <string>

#include "bindings.h"
#include "idaw/engine.h"
#include "idaw/parameters.h"
#include "idaw/safety_limiter.h"

namespace idaw::python {

using namespace nb::literals;

idaw::Parameters to_parameters(Values values, std::uint64_t sequence) {
    if (values.shape(0) != idaw::kNumParams)
        throw std::invalid_argument("expected " + std::to_string(idaw::kNumParams) + " parameter values, got " +
                                    std::to_string(values.shape(0)));
    idaw::Parameters p;
    for (std::size_t i = 0; i < idaw::kNumParams; ++i) p.values[i] = values(i);
    p.sequence = sequence;
    return p;
}

void bind_params(nb::module_& m) {
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
        nb::sig("def param_specs() -> list[ParamSpecDict]"),
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

    m.attr("NUM_PARAMS") = idaw::kNumParams;
    m.attr("COEFFICIENT_GRID") = idaw::Engine::kCoefficientGrid;
    m.attr("LIMITER_CEILING") = idaw::SafetyLimiter::kCeiling;
    m.attr("MAX_CHANNELS") = idaw::Engine::kMaxChannels;
}

}  // namespace idaw::python
