// idaw_core: the neural network runtime (idaw/nn): RTNeural JSON models, loaded and validated in C++.
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings.h"
#include "idaw/nn/model_loader.h"

namespace idaw::python {

using namespace nb::literals;

std::string fs_path(nb::handle path) {
    nb::object name = nb::steal(PyOS_FSPath(path.ptr()));
    if (!name.is_valid()) throw nb::python_error();
    if (PyUnicode_Check(name.ptr())) {
        name = nb::steal(PyUnicode_EncodeFSDefault(name.ptr()));
        if (!name.is_valid()) throw nb::python_error();
    }
    return std::string(PyBytes_AS_STRING(name.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(name.ptr())));
}

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

/// The Model class: forward, forward_sequence, reset and what the model is made of.
void bind_model(nb::module_& m) {
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
        .def_prop_ro(
            "input_size", [](PyModel& self) { return self.model->input_size(); }, "Values in one input frame.")
        .def_prop_ro(
            "output_size", [](PyModel& self) { return self.model->output_size(); }, "Values in one output frame.")
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
            nb::sig("def layer_summary(self) -> list[LayerInfo]"),
            "One dict per layer: type, activation, in_size, out_size, parameters (+ kernel_size, dilation).");
}

/// load_model and load_model_from_string.
void bind_loaders(nb::module_& m) {
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
        nb::sig("def load_model(path: str | bytes | os.PathLike[str] | os.PathLike[bytes], isa: str = 'auto') -> "
                "Model"),
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
}

/// nn_time_frames: the benchmark's C++-timed rounds.
void bind_timing(nb::module_& m) {
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

}  // namespace

void bind_nn(nb::module_& m) {
    bind_model(m);
    bind_loaders(m);
    bind_timing(m);
}

}  // namespace idaw::python
