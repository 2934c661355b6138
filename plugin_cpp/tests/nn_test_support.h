// Helpers shared by the network runtime tests (test_nn_*.cpp): RTNeural JSON builders, seeded weights, loading.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "idaw/nn/kernels.h"
#include "idaw/nn/model_loader.h"
#include "test_support.h"

namespace idaw::nn::test {

using json = nlohmann::json;
using idaw::test::Rng;

/// `n` values uniform in [-scale, scale).
inline std::vector<float> random_values(Rng& rng, std::size_t n, double scale) {
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(rng.uniform(-scale, scale));
    return v;
}

/// Flat values as a JSON array.
inline json vector_json(const std::vector<float>& v) {
    json a = json::array();
    for (float x : v) a.push_back(x);
    return a;
}

/// Row-major rows x cols values as a JSON array of rows.
inline json matrix_json(const std::vector<float>& v, std::size_t rows, std::size_t cols) {
    json a = json::array();
    for (std::size_t r = 0; r < rows; ++r) {
        json row = json::array();
        for (std::size_t c = 0; c < cols; ++c) row.push_back(v[r * cols + c]);
        a.push_back(std::move(row));
    }
    return a;
}

/// A layer object with RTNeural's common fields.
inline json layer_json(const std::string& type, int width, json weights, const std::string& activation = "") {
    return json{{"type", type},
                {"activation", activation},
                {"shape", json::array({nullptr, nullptr, width})},
                {"weights", std::move(weights)}};
}

/// Dense: kernel in x out, bias out.
inline json dense_json(int in, int out, const std::vector<float>& kernel, const std::vector<float>& bias,
                       const std::string& activation = "") {
    return layer_json("dense", out, json::array({matrix_json(kernel, in, out), vector_json(bias)}), activation);
}

/// LSTM: kernel in x 4H, recurrent H x 4H, bias 4H.
inline json lstm_json(int in, int hidden, const std::vector<float>& kernel, const std::vector<float>& recurrent,
                      const std::vector<float>& bias) {
    return layer_json("lstm", hidden,
                      json::array({matrix_json(kernel, in, 4 * hidden), matrix_json(recurrent, hidden, 4 * hidden),
                                   vector_json(bias)}));
}

/// GRU: kernel in x 3H, recurrent H x 3H, bias 2 x 3H.
inline json gru_json(int in, int hidden, const std::vector<float>& kernel, const std::vector<float>& recurrent,
                     const std::vector<float>& bias) {
    return layer_json("gru", hidden,
                      json::array({matrix_json(kernel, in, 3 * hidden), matrix_json(recurrent, hidden, 3 * hidden),
                                   matrix_json(bias, 2, 3 * hidden)}));
}

/// Conv1d: kernel K x in x out (JSON order), bias out.
inline json conv1d_json(int in, int out, int taps, int dilation, const std::vector<float>& kernel,
                        const std::vector<float>& bias, const std::string& activation = "") {
    json k = json::array();
    for (int t = 0; t < taps; ++t) {
        const std::vector<float> tap(kernel.begin() + static_cast<long>(t) * in * out,
                                     kernel.begin() + static_cast<long>(t + 1) * in * out);
        k.push_back(matrix_json(tap, static_cast<std::size_t>(in), static_cast<std::size_t>(out)));
    }
    json layer = layer_json("conv1d", out, json::array({std::move(k), vector_json(bias)}), activation);
    layer["kernel_size"] = json::array({taps});
    layer["dilation"] = json::array({dilation});
    return layer;
}

/// PReLU over `width` features with 1 or `width` slopes.
inline json prelu_json(int width, const std::vector<float>& alpha) {
    return layer_json("prelu", width, json::array({json::array({vector_json(alpha)})}));
}

/// BatchNorm: [gamma, beta, mean, var] when gamma is not empty, else [mean, var].
inline json batchnorm_json(int width, const std::vector<float>& gamma, const std::vector<float>& beta,
                           const std::vector<float>& mean, const std::vector<float>& var, double epsilon) {
    json w = gamma.empty() ? json::array({vector_json(mean), vector_json(var)})
                           : json::array({vector_json(gamma), vector_json(beta), vector_json(mean), vector_json(var)});
    json layer = layer_json("batchnorm", width, std::move(w));
    layer["epsilon"] = epsilon;
    return layer;
}

/// An activation-only layer.
inline json activation_json(int width, const std::string& activation) {
    return layer_json("activation", width, json::array(), activation);
}

/// A whole document.
inline json model_json(int input, std::vector<json> layers) {
    json doc{{"in_shape", json::array({nullptr, nullptr, input})}, {"layers", json::array()}};
    for (auto& l : layers) doc["layers"].push_back(std::move(l));
    return doc;
}

/// The kernel sets this CPU can run (always SSE2; AVX2+FMA when present).
inline std::vector<Isa> test_isas() {
    std::vector<Isa> isas{Isa::Sse2};
    if (kernels_for(Isa::Avx2) != nullptr) isas.push_back(Isa::Avx2);
    return isas;
}

/// Name of a kernel set, for messages.
inline std::string isa_name(Isa isa) { return isa == Isa::Avx2 ? "avx2" : isa == Isa::Sse2 ? "sse2" : "auto"; }

/// Loads a document with one kernel set; fails the test case with the loader's message when it is refused.
inline std::unique_ptr<Model> must_load(const json& doc, Isa isa = Isa::Auto) {
    LoadOptions options;
    options.isa = isa;
    LoadResult r = load_model_string(doc.dump(), options);
    INFO("load error: " << r.error);
    REQUIRE(r.ok());
    REQUIRE(r.error.empty());
    return std::move(r.model);
}

/// True when `s` is well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most U+10FFFF) without control
/// characters (so no line break): what every loader message must be. Decodes code points, independently of how the
/// loader escapes.
inline bool one_line_utf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        const std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        std::uint32_t cp = n == 1 ? b : b & (0x7fu >> n);
        for (std::size_t k = 1; k < n; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c >> 6) != 0x2) return false;
            cp = (cp << 6) | (c & 0x3fu);
        }
        static const std::uint32_t kLeast[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kLeast[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        if (cp < 0x20 || cp == 0x7f) return false;
        i += n;
    }
    return true;
}

/// The loader's message for a document that must be refused (empty string, and a failed check, if it loads); every
/// message is checked to be one line of valid UTF-8.
inline std::string load_error(const std::string& text, const LoadOptions& options = LoadOptions()) {
    LoadResult r = load_model_string(text, options);
    CHECK_FALSE(r.ok());
    CHECK_FALSE(r.error.empty());
    INFO("message: " << r.error);
    CHECK(one_line_utf8(r.error));
    return r.error;
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace idaw::nn::test
