// One reader per RTNeural layer type, picked from kLayerKinds by the entry's "type". The format, as RTNeural's
// json_parser::parseJson reads it (each entry: {"type", "activation", "shape": [..., width], "weights": [...]}):
//   dense / time-distributed-dense: weights [kernel (in x out), bias (out)], then the "activation" if not "".
//   lstm: [kernel (in x 4H), recurrent (H x 4H), bias (4H)], gate blocks i, f, g, o; "activation" not applied.
//   gru: [kernel (in x 3H), recurrent (H x 3H), bias (2 x 3H)], gate blocks z, r, h; "activation" not applied.
//   conv1d: "kernel_size": [K], "dilation": [d], weights [kernel (K x in x out), bias (out)], then "activation".
//   prelu: weights [[alpha]] with alpha of 1 (shared) or in values.
//   batchnorm: "epsilon", weights [gamma, beta, mean, var] or [mean, var].
//   activation: "activation" in tanh, relu, sigmoid, softmax, elu; weights [].
// Every check RTNeural leaves out (it skips unknown types, crashes on unknown activations, zero-fills missing
// values) is an error here. Each reader checks its fields in the order a message should name the first problem,
// and counts a layer's sizes against the limits (Budget) before allocating anything of that size.
#include "layer_readers.h"

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "idaw/nn/activation_layer.h"
#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/batchnorm.h"
#include "idaw/nn/conv1d.h"
#include "idaw/nn/dense.h"
#include "idaw/nn/gru.h"
#include "idaw/nn/lstm.h"
#include "idaw/nn/prelu.h"

namespace idaw::nn::loader {
namespace {

/// Validation and extraction for one entry of "layers" whose type is known; every message starts with the prefix
/// "layer I (type): ".
class LayerReader {
  public:
    LayerReader(const json& layer, std::string prefix, const LoadLimits& limits)
        : layer_(layer), limits_(limits), prefix_(std::move(prefix)) {}

    /// Throws LoadError with the layer's prefix in front of `message`.
    [[noreturn]] void error(const std::string& message) const { fail(prefix_ + message); }

    /// The width a "shape"-like field declares: its last element (a bare integer is accepted too, as RTNeural's
    /// .back() does), 1..max.
    int width_of(const json& v, const std::string& what, int max, const char* meaning) const {
        const json* last = &v;
        if (v.is_array()) {
            if (v.empty()) error(what + " is an empty array");
            last = &v.back();
        }
        if (!last->is_number_integer()) error(what + " must end with an integer " + meaning + ", got " + show(*last));
        const bool negative = last->is_number_integer() && !last->is_number_unsigned() && last->get<std::int64_t>() < 0;
        const std::uint64_t n = negative ? 0 : last->get<std::uint64_t>();
        if (negative || n < 1 || n > static_cast<std::uint64_t>(max))
            error(what + " declares " + meaning + " " + show(*last) + ", outside 1.." + std::to_string(max));
        return static_cast<int>(n);
    }

    /// Width from "shape" (required, as in RTNeural).
    int shape_width() const {
        const json* shape = member(layer_, "shape");
        if (!shape) error("missing \"shape\"");
        if (!shape->is_array()) error("\"shape\" must be an array, got " + show(*shape));
        return width_of(*shape, "shape", limits_.max_layer_size, "width");
    }

    /// A size field such as "kernel_size": [3] or 3 (one element when an array), 1..max.
    int size_field(const char* key, int max) const {
        const json* v = member(layer_, key);
        if (!v) error(std::string("missing \"") + key + "\"");
        if (v->is_array() && v->size() != 1)
            error(std::string("\"") + key + "\" must hold one integer, got " + std::to_string(v->size()) + " values");
        return width_of(*v, std::string("\"") + key + "\"", max, "value");
    }

    /// The "activation" field: absent means "". Unknown names are errors.
    Activation activation() const {
        const json* v = member(layer_, "activation");
        if (!v) return Activation::None;
        if (!v->is_string()) error("\"activation\" must be a string, got " + show(*v));
        Activation a = Activation::None;
        if (!parse_activation(v->get_ref<const std::string&>(), a))
            error("unknown activation " + show(*v) + " (known: tanh, relu, sigmoid, softmax, elu)");
        return a;
    }

    /// The "weights" array, which must hold exactly `count` entries (`what` names them).
    const json& weights(std::size_t count, const char* what) const {
        const json* w = member(layer_, "weights");
        if (!w) error("missing \"weights\"");
        if (!w->is_array()) error("\"weights\" must be an array, got " + show(*w));
        if (w->size() != count)
            error("\"weights\" holds " + std::to_string(w->size()) + " arrays, expected " + std::to_string(count) +
                  " (" + what + ")");
        return *w;
    }

    /// One finite float32 from a JSON number; subnormals are flushed to zero.
    float number(const json& v, const std::string& path, std::size_t i) const {
        if (!v.is_number())
            error(path + "[" + std::to_string(i) +
                  "] is not a number: " + (v.is_string() ? "the string " + show(v) : std::string(kind_of(v))));
        const double d = v.get<double>();
        if (!(std::fabs(d) <= static_cast<double>(FLT_MAX)))
            error(path + "[" + std::to_string(i) + "] = " + show(v) + " is not a finite float32");
        const float f = static_cast<float>(d);
        return std::fabs(f) < FLT_MIN ? 0.0f : f;
    }

    /// Exactly `n` numbers into out[0, n).
    void vector(const json& v, const std::string& path, std::size_t n, const std::string& meaning, float* out) const {
        if (!v.is_array()) error(path + " must be an array of " + std::to_string(n) + " numbers, got " + show(v));
        if (v.size() != n)
            error(path + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n) + " (" +
                  meaning + ")");
        for (std::size_t i = 0; i < n; ++i) out[i] = number(v[i], path, i);
    }

    /// rows x cols numbers, row-major, into out.
    void matrix(const json& v, const std::string& path, std::size_t rows, const std::string& row_meaning,
                std::size_t cols, const std::string& col_meaning, float* out) const {
        if (!v.is_array()) error(path + " must be an array of " + std::to_string(rows) + " rows, got " + show(v));
        if (v.size() != rows)
            error(path + " has " + std::to_string(v.size()) + " rows, expected " + std::to_string(rows) + " (" +
                  row_meaning + ")");
        for (std::size_t r = 0; r < rows; ++r)
            vector(v[r], path + "[" + std::to_string(r) + "]", cols, col_meaning, out + r * cols);
    }

    /// The layer's JSON object.
    const json& object() const noexcept { return layer_; }

  private:
    const json& layer_;
    const LoadLimits& limits_;
    std::string prefix_;
};

/// Counts a layer's sizes into the model's totals; each fails, naming the layer, once a total passes its limit.
struct Budget {
    const LoadLimits& limits;
    LayerTotals& totals;

    /// Counts floats the packed (padded) weights of a layer will take; padding to whole SIMD chunks can multiply
    /// small widths by up to 8, so this is bounded too (twice the parameter limit), before anything is allocated.
    void add_storage(const LayerReader& r, std::uint64_t floats) const {
        totals.stored += floats;
        const std::uint64_t limit = 2 * static_cast<std::uint64_t>(limits.max_parameters);
        if (totals.stored > limit)
            r.error("padded weights bring the model to " + count_text(totals.stored) + " floats, above the limit of " +
                    count_text(limit));
    }

    /// Counts `n` numbers of weights.
    void add_parameters(const LayerReader& r, std::uint64_t n) const {
        totals.parameters += n;
        if (totals.parameters > limits.max_parameters)
            r.error(count_text(n) + " parameters bring the model to " + count_text(totals.parameters) +
                    ", above the limit of " + count_text(limits.max_parameters));
    }

    /// Counts the history a conv1d with `taps` taps `dilation` apart keeps of an input `n_in` wide.
    void add_history(const LayerReader& r, std::size_t n_in, int taps, int dilation) const {
        const std::uint64_t frames = static_cast<std::uint64_t>(taps - 1) * dilation + 1;
        totals.history += frames * (n_in + kChunk);
        if (totals.history > limits.max_history_floats)
            r.error("kernel_size " + std::to_string(taps) + " and dilation " + std::to_string(dilation) +
                    " need a history of " + count_text(frames) + " frames, above the limit of " +
                    count_text(limits.max_history_floats) + " floats of convolution history");
    }
};

/// What a reader builds its layer on, besides the layer's JSON.
struct LayerContext {
    int in;            ///< width of the layer's input (the previous layer's output, or the model's input)
    std::size_t n_in;  ///< the same, as a count
    Budget budget;     ///< the model's totals and limits
    const Kernels& kernels;
};

/// "what n", for the meaning of a size in messages ("input size 16").
std::string sizes(const char* what, int n) { return std::string(what) + " " + std::to_string(n); }

/// `n` rounded up to whole SIMD chunks, as the packed matrices store it.
std::uint64_t padded(std::uint64_t n) { return round_up(n, kChunk); }

/// dense / time-distributed-dense: kernel (in x out) and bias (out), then its "activation", fused.
std::unique_ptr<Layer> read_dense(const LayerReader& r, const LayerContext& x) {
    const int out = r.shape_width();
    const Activation act = r.activation();
    const std::size_t n_out = static_cast<std::size_t>(out);
    const json& w = r.weights(2, "kernel, bias");
    x.budget.add_parameters(r, x.n_in * n_out + n_out);
    x.budget.add_storage(r, padded(n_out) * padded(x.n_in));
    std::vector<float> kernel(x.n_in * n_out), bias(n_out);
    r.matrix(w[0], "weights[0]", x.n_in, sizes("input size", x.in), n_out, sizes("output size", out), kernel.data());
    r.vector(w[1], "weights[1]", n_out, sizes("output size", out), bias.data());
    return std::make_unique<Dense>(x.kernels, x.in, out, kernel.data(), bias.data(), act);
}

/// What LSTM and GRU layers share before their sizes are counted: hidden size, gate width, the weights array.
struct RecurrentShape {
    int hidden;                ///< from "shape"
    std::size_t h;             ///< the same, as a count
    std::size_t gates;         ///< gate blocks x hidden size: the columns of every weight row
    std::string gate_meaning;  ///< "4 x hidden size 32", for messages
    const json& w;             ///< [kernel, recurrent kernel, bias]
};

/// Reads the hidden size, checks the "activation" and finds the three weights of a recurrent layer with
/// `gate_blocks` gate blocks (LSTM 4, GRU 3).
RecurrentShape recurrent_shape(const LayerReader& r, std::size_t gate_blocks) {
    const int hidden = r.shape_width();
    // RTNeural applies no activation after a recurrent layer; "tanh" names the cell's own and is accepted.
    const Activation act = r.activation();
    if (act != Activation::None && act != Activation::Tanh)
        r.error(std::string("\"activation\": \"") + activation_name(act) +
                "\" would be ignored (RTNeural applies none after a recurrent layer); add an "
                "\"activation\" layer instead");
    const std::size_t h = static_cast<std::size_t>(hidden);
    std::string gate_meaning = std::to_string(gate_blocks) + " x hidden size " + std::to_string(hidden);
    const json& w = r.weights(3, "kernel, recurrent kernel, bias");
    return RecurrentShape{hidden, h, gate_blocks * h, std::move(gate_meaning), w};
}

/// Reads a recurrent layer's input kernel (in x gates) and recurrent kernel (hidden x gates).
void read_recurrent_kernels(const LayerReader& r, const LayerContext& x, const RecurrentShape& s, float* kernel,
                            float* recurrent) {
    r.matrix(s.w[0], "weights[0]", x.n_in, sizes("input size", x.in), s.gates, s.gate_meaning, kernel);
    r.matrix(s.w[1], "weights[1]", s.h, sizes("hidden size", s.hidden), s.gates, s.gate_meaning, recurrent);
}

/// lstm: kernel, recurrent kernel and one bias row, gate blocks i, f, g, o.
std::unique_ptr<Layer> read_lstm(const LayerReader& r, const LayerContext& x) {
    const RecurrentShape s = recurrent_shape(r, 4);
    x.budget.add_parameters(r, (x.n_in + s.h + 1) * s.gates);
    x.budget.add_storage(r, padded(s.gates) * (padded(x.n_in) + padded(s.h)));
    std::vector<float> kernel(x.n_in * s.gates), recurrent(s.h * s.gates), bias(s.gates);
    read_recurrent_kernels(r, x, s, kernel.data(), recurrent.data());
    r.vector(s.w[2], "weights[2]", s.gates, s.gate_meaning, bias.data());
    return std::make_unique<Lstm>(x.kernels, x.in, s.hidden, kernel.data(), recurrent.data(), bias.data());
}

/// gru: kernel, recurrent kernel and two bias rows (input, recurrent), gate blocks z, r, h.
std::unique_ptr<Layer> read_gru(const LayerReader& r, const LayerContext& x) {
    const RecurrentShape s = recurrent_shape(r, 3);
    x.budget.add_parameters(r, (x.n_in + s.h + 2) * s.gates);
    // The z and r gates are packed together, the candidate's input and recurrent parts apart.
    x.budget.add_storage(
        r, padded(2 * s.h) * (padded(x.n_in) + padded(s.h)) + padded(s.h) * padded(x.n_in) + padded(s.h) * padded(s.h));
    std::vector<float> kernel(x.n_in * s.gates), recurrent(s.h * s.gates), bias(2 * s.gates);
    read_recurrent_kernels(r, x, s, kernel.data(), recurrent.data());
    r.matrix(s.w[2], "weights[2]", 2, "input and recurrent bias rows", s.gates, s.gate_meaning, bias.data());
    return std::make_unique<Gru>(x.kernels, x.in, s.hidden, kernel.data(), recurrent.data(), bias.data());
}

/// Refuses a conv1d "groups" other than 1 (absent means 1).
void require_one_group(const LayerReader& r) {
    if (const json* groups = member(r.object(), "groups")) {
        if (!(groups->is_number_integer() && groups->get<std::int64_t>() == 1))
            r.error("\"groups\" = " + show(*groups) + " is not supported (only 1)");
    }
}

/// Reads a conv1d kernel, `taps` matrices of in x out, into out[taps * in * out].
void read_taps(const LayerReader& r, const LayerContext& x, const json& w0, int taps, int out, float* kernel) {
    const std::size_t n_taps = static_cast<std::size_t>(taps), n_out = static_cast<std::size_t>(out);
    if (!w0.is_array()) r.error("weights[0] must be an array of " + std::to_string(taps) + " taps, got " + show(w0));
    if (w0.size() != n_taps)
        r.error("weights[0] has " + std::to_string(w0.size()) + " taps, expected " + sizes("kernel_size", taps));
    for (std::size_t t = 0; t < n_taps; ++t)
        r.matrix(w0[t], "weights[0][" + std::to_string(t) + "]", x.n_in, sizes("input size", x.in), n_out,
                 sizes("output size", out), kernel + t * x.n_in * n_out);
}

/// conv1d: "kernel_size" taps "dilation" frames apart, kernel (taps x in x out) and bias (out), then its
/// "activation", fused.
std::unique_ptr<Layer> read_conv1d(const LayerReader& r, const LayerContext& x) {
    const int out = r.shape_width();
    const Activation act = r.activation();
    const int taps = r.size_field("kernel_size", x.budget.limits.max_kernel_size);
    const int dilation = r.size_field("dilation", x.budget.limits.max_dilation);
    require_one_group(r);
    x.budget.add_history(r, x.n_in, taps, dilation);
    const std::size_t n_out = static_cast<std::size_t>(out), n_taps = static_cast<std::size_t>(taps);
    const json& w = r.weights(2, "kernel, bias");
    x.budget.add_parameters(r, n_taps * x.n_in * n_out + n_out);
    x.budget.add_storage(r, padded(n_out) * n_taps * padded(x.n_in));
    std::vector<float> kernel(n_taps * x.n_in * n_out), bias(n_out);
    read_taps(r, x, w[0], taps, out, kernel.data());
    r.vector(w[1], "weights[1]", n_out, sizes("output size", out), bias.data());
    return std::make_unique<Conv1d>(x.kernels, x.in, out, taps, dilation, kernel.data(), bias.data(), act);
}

/// For the layers that keep their width (prelu, batchnorm, activation): checks that "shape" declares the input
/// width; returns the "activation" field.
Activation width_kept_activation(const LayerReader& r, const LayerContext& x) {
    const int width = r.shape_width();
    if (width != x.in)
        r.error("shape declares width " + std::to_string(width) + ", expected " + std::to_string(x.in) +
                " (input size; the layer keeps its width)");
    return r.activation();
}

/// Refuses an "activation" after prelu and batchnorm, which RTNeural would silently drop.
void refuse_activation(const LayerReader& r, Activation act) {
    if (act != Activation::None)
        r.error(std::string("\"activation\": \"") + activation_name(act) +
                "\" would be ignored (RTNeural applies none after this layer type); add an \"activation\" "
                "layer instead");
}

/// activation: a non-empty "activation" and "weights": [].
std::unique_ptr<Layer> read_activation(const LayerReader& r, const LayerContext& x) {
    const Activation act = width_kept_activation(r, x);
    if (act == Activation::None) r.error("needs a non-empty \"activation\"");
    const json* w = member(r.object(), "weights");
    if (!w) r.error("missing \"weights\"");
    if (!w->is_array() || !w->empty()) r.error("\"weights\" must be [], got " + show(*w));
    return std::make_unique<ActivationLayer>(x.kernels, x.in, act);
}

/// The array of slopes in a prelu's weights, [[alpha]].
const json& slopes_of(const LayerReader& r, const json& w) {
    if (!w[0].is_array() || w[0].size() != 1)
        r.error("weights[0] must be an array holding one array of slopes, got " +
                (w[0].is_array() ? std::to_string(w[0].size()) + " entries" : show(w[0])));
    const json& alpha = w[0][0];
    if (!alpha.is_array()) r.error("weights[0][0] must be an array of slopes, got " + show(alpha));
    return alpha;
}

/// prelu: one slope shared by every input, or one per input.
std::unique_ptr<Layer> read_prelu(const LayerReader& r, const LayerContext& x) {
    refuse_activation(r, width_kept_activation(r, x));
    const json& alpha_json = slopes_of(r, r.weights(1, "[alpha]"));
    const std::size_t count = alpha_json.size();
    if (count != 1 && count != x.n_in)
        r.error("weights[0][0] has " + std::to_string(count) + " slopes, expected 1 or " + std::to_string(x.in) +
                " (input size)");
    x.budget.add_parameters(r, count);
    std::vector<float> alpha(count);
    r.vector(alpha_json, "weights[0][0]", count, "slopes", alpha.data());
    if (count == 1) alpha.assign(x.n_in, alpha[0]);
    return std::make_unique<Prelu>(x.kernels, x.in, alpha.data(), count);
}

/// A batchnorm's "epsilon": a number in 0..1.
float epsilon_of(const LayerReader& r) {
    const json* eps = member(r.object(), "epsilon");
    if (!eps) r.error("missing \"epsilon\"");
    if (!eps->is_number()) r.error("\"epsilon\" must be a number, got " + show(*eps));
    const double value = eps->get<double>();
    if (!(value >= 0.0 && value <= 1.0)) r.error("\"epsilon\" = " + show(*eps) + " is outside 0..1");
    return static_cast<float>(value);
}

/// A batchnorm's "weights": 4 arrays (affine) or 2.
const json& batchnorm_weights(const LayerReader& r) {
    const json* w = member(r.object(), "weights");
    if (!w) r.error("missing \"weights\"");
    if (!w->is_array() || (w->size() != 4 && w->size() != 2))
        r.error(
            "\"weights\" must hold 4 arrays (gamma, beta, running mean, running variance) or 2 (running "
            "mean, running variance), got " +
            (w->is_array() ? std::to_string(w->size()) : show(*w)));
    return *w;
}

/// Refuses running variances (weights[var_index]) that give no finite scale gamma / sqrt(var + eps); `gamma` is
/// null without one (a scale of 1).
void check_scales(const LayerReader& r, const float* gamma, const std::vector<float>& var, float eps,
                  std::size_t var_index) {
    for (std::size_t i = 0; i < var.size(); ++i) {
        const float denom = var[i] + eps;
        const float m = (gamma ? gamma[i] : 1.0f) / std::sqrt(denom);
        if (!(denom > 0.0f) || !std::isfinite(m))
            r.error("weights[" + std::to_string(var_index) + "][" + std::to_string(i) +
                    "]: running variance + epsilon = " + std::to_string(denom) +
                    " gives no finite scale (must be positive)");
    }
}

/// batchnorm: "epsilon", then [gamma, beta, running mean, running variance] or [running mean, running variance].
std::unique_ptr<Layer> read_batchnorm(const LayerReader& r, const LayerContext& x) {
    refuse_activation(r, width_kept_activation(r, x));
    const float eps = epsilon_of(r);
    const json& w = batchnorm_weights(r);
    const bool affine = w.size() == 4;
    x.budget.add_parameters(r, x.n_in * w.size());
    std::vector<float> gamma(affine ? x.n_in : 0), beta(affine ? x.n_in : 0), mean(x.n_in), var(x.n_in);
    const std::string meaning = sizes("input size", x.in);
    const std::size_t next = affine ? 2 : 0;  // where the running statistics start
    if (affine) {
        r.vector(w[0], "weights[0]", x.n_in, meaning, gamma.data());
        r.vector(w[1], "weights[1]", x.n_in, meaning, beta.data());
    }
    r.vector(w[next], "weights[" + std::to_string(next) + "]", x.n_in, meaning, mean.data());
    r.vector(w[next + 1], "weights[" + std::to_string(next + 1) + "]", x.n_in, meaning, var.data());
    check_scales(r, affine ? gamma.data() : nullptr, var, eps, next + 1);
    return std::make_unique<BatchNorm>(x.kernels, x.in, affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr,
                                       mean.data(), var.data(), eps);
}

/// Builds a layer from its validated entry.
using ReadLayer = std::unique_ptr<Layer> (*)(const LayerReader&, const LayerContext&);

/// One RTNeural "type" and its reader.
struct LayerKind {
    const char* type;
    ReadLayer read;
    bool listed;  ///< named in the "known" list of messages (an alias is not)
};

/// The types this runtime builds.
constexpr LayerKind kLayerKinds[] = {
    {"dense", read_dense, true},         {"time-distributed-dense", read_dense, false},
    {"lstm", read_lstm, true},           {"gru", read_gru, true},
    {"conv1d", read_conv1d, true},       {"prelu", read_prelu, true},
    {"batchnorm", read_batchnorm, true}, {"activation", read_activation, true},
};

/// RTNeural types this runtime knows but does not build.
constexpr const char* kUnsupportedTypes[] = {"conv2d", "batchnorm2d"};

/// "dense, lstm, ...": the listed types, for messages.
std::string known_types() {
    std::string names;
    for (const LayerKind& kind : kLayerKinds)
        if (kind.listed) names += (names.empty() ? "" : ", ") + std::string(kind.type);
    return names;
}

/// The entry's "type", a string; fails (prefix `where`, "layer I") when the entry is not an object or has none.
const json& type_of(const json& layer, const std::string& where) {
    if (!layer.is_object()) fail(where + " must be a JSON object, got " + std::string(kind_of(layer)));
    const json* type = member(layer, "type");
    if (!type) fail(where + ": missing \"type\"");
    if (!type->is_string()) fail(where + ": \"type\" must be a string, got " + show(*type));
    return *type;
}

/// The kLayerKinds entry for `type`; fails for a type this runtime does not build, naming the ones it does.
const LayerKind& kind_for(const json& type, const std::string& where) {
    const auto& name = type.get_ref<const std::string&>();
    for (const LayerKind& kind : kLayerKinds)
        if (name == kind.type) return kind;
    for (const char* unsupported : kUnsupportedTypes)
        if (name == unsupported) fail(where + ": layer type \"" + name + "\" is not supported by this runtime");
    fail(where + ": unknown layer type " + show(type) + " (known: " + known_types() + ")");
}

}  // namespace

std::unique_ptr<Layer> read_layer(const json& layer, int index, int in, const LoadLimits& limits, LayerTotals& totals,
                                  const Kernels& kernels) {
    const std::string where = "layer " + std::to_string(index);
    const json& type = type_of(layer, where);
    const LayerKind& kind = kind_for(type, where);
    const LayerReader reader(layer, where + " (" + type.get_ref<const std::string&>() + "): ", limits);
    const LayerContext context{in, static_cast<std::size_t>(in), Budget{limits, totals}, kernels};
    return kind.read(reader, context);
}

}  // namespace idaw::nn::loader
