// RTNeural JSON loader. The format, as RTNeural's json_parser::parseJson reads it:
//   {"in_shape": [null, null, N], "layers": [{"type", "activation", "shape": [..., width], "weights": [...]}]}
//   dense / time-distributed-dense: weights [kernel (in x out), bias (out)], then the "activation" if not "".
//   lstm: [kernel (in x 4H), recurrent (H x 4H), bias (4H)], gate blocks i, f, g, o; "activation" not applied.
//   gru: [kernel (in x 3H), recurrent (H x 3H), bias (2 x 3H)], gate blocks z, r, h; "activation" not applied.
//   conv1d: "kernel_size": [K], "dilation": [d], weights [kernel (K x in x out), bias (out)], then "activation".
//   prelu: weights [[alpha]] with alpha of 1 (shared) or in values.
//   batchnorm: "epsilon", weights [gamma, beta, mean, var] or [mean, var].
//   activation: "activation" in tanh, relu, sigmoid, softmax, elu; weights [].
// Every check RTNeural leaves out (it skips unknown types, crashes on unknown activations, zero-fills missing
// values) is an error here. The parse itself is bounded while it runs (BoundedTreeBuilder: depth, top-level keys,
// objects, array length, values, and a tree budget proportional to the text read), files are read only when they are
// regular (never blocking on a FIFO), and every message is one line of valid UTF-8 (printable()).
#include "idaw/nn/model_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "idaw/nn/activation_layer.h"
#include "idaw/nn/batchnorm.h"
#include "idaw/nn/conv1d.h"
#include "idaw/nn/dense.h"
#include "idaw/nn/gru.h"
#include "idaw/nn/lstm.h"
#include "idaw/nn/prelu.h"

namespace idaw::nn {
namespace {

using json = nlohmann::json;

/// Thrown inside the loader with the final message; caught at the API boundary.
struct LoadError {
    std::string message;
};

[[noreturn]] void fail(std::string message) { throw LoadError{std::move(message)}; }

/// JSON kind of a value, for messages.
const char* kind_of(const json& v) noexcept {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::string:
            return "a string";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
        case json::value_t::number_float:
            return "a number";
        case json::value_t::array:
            return "an array";
        case json::value_t::object:
            return "an object";
        default:
            return "an unsupported value";
    }
}

/// Short printable form of a value: numbers and strings (cut to 40 bytes) as written, containers by kind.
std::string show(const json& v) {
    if (v.is_number() || v.is_boolean() || v.is_null()) return v.dump();
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        const bool cut = s.size() > 40;
        return json(cut ? s.substr(0, 40) : s).dump(-1, ' ', false, json::error_handler_t::replace) +
               (cut ? "..." : "");
    }
    return kind_of(v);
}

/// Thousands-separated integer, for limits in messages.
std::string count_text(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

/// The parse error's text without nlohmann's "[json.exception.parse_error.101] " tag.
std::string parse_error_text(const char* what) {
    std::string s = what;
    if (!s.empty() && s[0] == '[') {
        const auto end = s.find("] ");
        if (end != std::string::npos) s.erase(0, end + 2);
    }
    return s;
}

/// The keys a model's top-level object may hold: what RTNeural's parseJson reads and every exporter writes (ours,
/// RTNeural's Keras model_utils.py). Anything else is refused by name, before its value is parsed.
constexpr const char* kTopLevelKeys[] = {"in_shape", "layers"};

/// Estimated bytes one JSON value takes in nlohmann's tree (libstdc++, 64-bit), used by the parse budget: every value
/// has a 16-byte slot in its parent; an array adds its heap std::vector, an object its std::map, each object member a
/// map node holding the key, a string its heap std::string. Allocator headers are included.
constexpr std::size_t kValueBytes = 16, kArrayBytes = 32, kObjectBytes = 64, kMemberBytes = 96, kStringBytes = 48;

/// Walks the text for nlohmann's parser (a plain forward iterator) and publishes how far the parser has read, so the
/// tree builder can hold the tree to a budget proportional to the text read so far.
class TextCursor {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;

    TextCursor() = default;
    TextCursor(const char* at, const char** progress) : at_(at), progress_(progress) {}
    reference operator*() const { return *at_; }
    TextCursor& operator++() {
        *progress_ = ++at_;
        return *this;
    }
    TextCursor operator++(int) {
        TextCursor before = *this;
        ++*this;
        return before;
    }
    bool operator==(const TextCursor& other) const { return at_ == other.at_; }
    bool operator!=(const TextCursor& other) const { return at_ != other.at_; }

  private:
    const char* at_ = nullptr;
    const char** progress_ = nullptr;
};

/// nlohmann SAX handler that builds the tree while enforcing, at every event, what a model within the limits can
/// contain, so a hostile file is refused after parsing little more than a valid one of its size would need:
///   - nesting at most max_json_depth levels;
///   - only kTopLevelKeys at the top level (checked when the key is read, before its value);
///   - at most 1 + max_layers objects (the top level and one per layer);
///   - no array longer than the longest a model has (4 x max_layer_size: an LSTM's gate rows; at least max_layers);
///   - at most max_parameters * 17/16 + 65,536 values in all;
///   - the tree's estimated size (kValueBytes etc.) at most max_tree_bytes_per_text_byte per byte of text read so
///     far, plus tree_bytes_allowance. A model's JSON is mostly numbers of 2 or more bytes each ("0,"), 16 bytes of
///     tree each, so a valid file stays under 8 per byte (rows of one short number, "[0],", cost 16 per byte: the
///     allowance covers tens of thousands of them); structure without numbers ({} costs 80 bytes for 3 of text,
///     [] 48) runs out of budget within about a megabyte.
class BoundedTreeBuilder {
  public:
    BoundedTreeBuilder(json& root, const char* text, const char* const* progress, const LoadLimits& limits)
        : root_(root), text_(text), progress_(progress), limits_(limits) {
        max_objects_ = 1 + static_cast<std::uint64_t>(std::max(limits.max_layers, 0));
        max_array_ = std::max<std::uint64_t>({4 * static_cast<std::uint64_t>(std::max(limits.max_layer_size, 0)),
                                              static_cast<std::uint64_t>(std::max(limits.max_layers, 0)), 16});
        max_values_ = limits.max_parameters + (limits.max_parameters >> 4) + 65536;
    }

    bool null() { return add(json(nullptr), kValueBytes); }
    bool boolean(bool value) { return add(json(value), kValueBytes); }
    bool number_integer(json::number_integer_t value) { return add(json(value), kValueBytes); }
    bool number_unsigned(json::number_unsigned_t value) { return add(json(value), kValueBytes); }
    bool number_float(json::number_float_t value, const json::string_t& /*text*/) {
        return add(json(value), kValueBytes);
    }
    bool string(json::string_t& value) {
        const std::size_t bytes = kValueBytes + kStringBytes + value.size();
        return add(json(std::move(value)), bytes);
    }
    bool binary(json::binary_t& /*value*/) { fail("invalid JSON: binary values are not JSON"); }

    bool start_object(std::size_t /*size*/) {
        if (++objects_ > max_objects_)
            fail("JSON holds more than " + count_text(max_objects_) +
                 " objects; a model has one at the top level and one per layer (at most " +
                 std::to_string(limits_.max_layers) + " layers)");
        open(json::object(), kValueBytes + kObjectBytes);
        return true;
    }
    bool key(json::string_t& name) {
        if (stack_.size() == 1) {
            bool known = false;
            std::string allowed;
            for (const char* k : kTopLevelKeys) {
                known = known || name == k;
                allowed += (allowed.empty() ? "\"" : ", \"") + std::string(k) + "\"";
            }
            if (!known) fail("unknown top-level key " + show(json(name)) + " (allowed: " + allowed + ")");
        }
        charge(kMemberBytes + name.size());
        key_ = std::move(name);
        return true;
    }
    bool end_object() {
        stack_.pop_back();
        return true;
    }
    bool start_array(std::size_t /*size*/) {
        open(json::array(), kValueBytes + kArrayBytes);
        return true;
    }
    bool end_array() {
        stack_.pop_back();
        return true;
    }
    bool parse_error(std::size_t /*position*/, const std::string& /*token*/, const json::exception& e) {
        fail("invalid JSON: " + parse_error_text(e.what()));
    }

  private:
    /// Adds `bytes` to the tree's estimate and checks the budget against the text read so far.
    void charge(std::size_t bytes) {
        tree_bytes_ += bytes;
        const auto read = static_cast<std::uint64_t>(*progress_ - text_);
        if (tree_bytes_ > limits_.max_tree_bytes_per_text_byte * read + limits_.tree_bytes_allowance)
            fail("JSON structure too dense for a model: " + count_text(read) + " bytes of text would take over " +
                 count_text(tree_bytes_) + " bytes to parse (the limit is " +
                 std::to_string(limits_.max_tree_bytes_per_text_byte) + " per byte of text plus " +
                 count_text(limits_.tree_bytes_allowance) + "; a model's JSON is mostly numbers)");
    }

    /// Puts `value` into the container being built (or makes it the root); returns where it now lives.
    json* place(json value, std::size_t bytes) {
        if (++values_ > max_values_)
            fail("JSON holds more than " + count_text(max_values_) + " values, more than a model within the limit of " +
                 count_text(limits_.max_parameters) + " parameters can");
        charge(bytes);
        if (stack_.empty()) {
            root_ = std::move(value);
            return &root_;
        }
        json& parent = *stack_.back();
        if (parent.is_object()) return &(parent[key_] = std::move(value));
        if (parent.size() >= max_array_)
            fail("JSON array of more than " + count_text(max_array_) +
                 " values; no array of a model within the limits is longer (an LSTM's gate rows are 4 x " +
                 std::to_string(limits_.max_layer_size) + ")");
        parent.push_back(std::move(value));
        return &parent.back();
    }

    bool add(json value, std::size_t bytes) {
        place(std::move(value), bytes);
        return true;
    }

    /// Starts a container: checks the depth, places it and makes it the one being built. The pointers on the stack
    /// stay valid: a container only grows while it is the one on top.
    void open(json container, std::size_t bytes) {
        if (stack_.size() + 1 > static_cast<std::size_t>(std::max(limits_.max_json_depth, 0)))
            fail("JSON nested deeper than " + std::to_string(limits_.max_json_depth) + " levels");
        stack_.push_back(place(std::move(container), bytes));
    }

    json& root_;
    const char* text_;
    const char* const* progress_;
    const LoadLimits& limits_;
    std::vector<json*> stack_;
    std::string key_;
    std::uint64_t objects_ = 0, values_ = 0, tree_bytes_ = 0;
    std::uint64_t max_objects_ = 0, max_array_ = 0, max_values_ = 0;
};

/// Parses `text` into a tree within the limits BoundedTreeBuilder enforces.
json parse_bounded(std::string_view text, const LoadLimits& limits) {
    json root;
    const char* progress = text.data();
    BoundedTreeBuilder builder(root, text.data(), &progress, limits);
    json::sax_parse(TextCursor(text.data(), &progress), TextCursor(text.data() + text.size(), &progress), &builder);
    return root;
}

const json* member(const json& object, const char* key) {
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

/// The RTNeural types this runtime builds.
enum class Kind { Dense, Lstm, Gru, Conv1d, Prelu, BatchNorm, Activation };

/// Validation and extraction for one entry of "layers"; every message starts with "layer I (type): ".
class LayerReader {
  public:
    LayerReader(const json& layer, int index, const LoadLimits& limits) : layer_(layer), limits_(limits) {
        prefix_ = "layer " + std::to_string(index);
        if (!layer.is_object()) fail(prefix_ + " must be a JSON object, got " + std::string(kind_of(layer)));
        const json* type = member(layer, "type");
        if (!type) fail(prefix_ + ": missing \"type\"");
        if (!type->is_string()) fail(prefix_ + ": \"type\" must be a string, got " + show(*type));
        const auto& name = type->get_ref<const std::string&>();
        if (name == "dense" || name == "time-distributed-dense")
            kind_ = Kind::Dense;
        else if (name == "lstm")
            kind_ = Kind::Lstm;
        else if (name == "gru")
            kind_ = Kind::Gru;
        else if (name == "conv1d")
            kind_ = Kind::Conv1d;
        else if (name == "prelu")
            kind_ = Kind::Prelu;
        else if (name == "batchnorm")
            kind_ = Kind::BatchNorm;
        else if (name == "activation")
            kind_ = Kind::Activation;
        else if (name == "conv2d" || name == "batchnorm2d")
            fail(prefix_ + ": layer type \"" + name + "\" is not supported by this runtime");
        else
            fail(prefix_ + ": unknown layer type " + show(*type) +
                 " (known: dense, lstm, gru, conv1d, prelu, batchnorm, activation)");
        prefix_ += " (" + name + "): ";
    }

    Kind kind() const noexcept { return kind_; }

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

    /// A size field such as "kernel_size": [3] or 3 (one element when an array).
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
    Kind kind_ = Kind::Dense;
};

/// Tracks the totals the limits bound, across layers.
struct Budget {
    const LoadLimits& limits;
    std::uint64_t parameters = 0;
    std::uint64_t history = 0;

    std::uint64_t stored = 0;

    /// Counts floats the packed (padded) weights of a layer will take; padding to whole SIMD chunks can multiply
    /// small widths by up to 8, so this is bounded too (twice the parameter limit), before anything is allocated.
    void add_storage(const LayerReader& r, std::uint64_t floats) {
        stored += floats;
        const std::uint64_t limit = 2 * static_cast<std::uint64_t>(limits.max_parameters);
        if (stored > limit)
            r.error("padded weights bring the model to " + count_text(stored) + " floats, above the limit of " +
                    count_text(limit));
    }

    void add_parameters(const LayerReader& r, std::uint64_t n) {
        parameters += n;
        if (parameters > limits.max_parameters)
            r.error(count_text(n) + " parameters bring the model to " + count_text(parameters) +
                    ", above the limit of " + count_text(limits.max_parameters));
    }
};

std::string sizes(const char* what, int n) { return std::string(what) + " " + std::to_string(n); }

/// `n` rounded up to whole SIMD chunks, as the packed matrices store it.
std::uint64_t padded(std::uint64_t n) { return round_up(n, kChunk); }

std::unique_ptr<Layer> read_layer(const LayerReader& r, int in, Budget& budget, const Kernels& k) {
    const LoadLimits& limits = budget.limits;
    const std::size_t n_in = static_cast<std::size_t>(in);
    switch (r.kind()) {
        case Kind::Dense: {
            const int out = r.shape_width();
            const Activation act = r.activation();
            const std::size_t n_out = static_cast<std::size_t>(out);
            const json& w = r.weights(2, "kernel, bias");
            budget.add_parameters(r, n_in * n_out + n_out);
            budget.add_storage(r, padded(n_out) * padded(n_in));
            std::vector<float> kernel(n_in * n_out), bias(n_out);
            r.matrix(w[0], "weights[0]", n_in, sizes("input size", in), n_out, sizes("output size", out),
                     kernel.data());
            r.vector(w[1], "weights[1]", n_out, sizes("output size", out), bias.data());
            return std::make_unique<Dense>(k, in, out, kernel.data(), bias.data(), act);
        }
        case Kind::Lstm:
        case Kind::Gru: {
            const bool lstm = r.kind() == Kind::Lstm;
            const int hidden = r.shape_width();
            // RTNeural applies no activation after a recurrent layer; "tanh" names the cell's own and is accepted.
            const Activation act = r.activation();
            if (act != Activation::None && act != Activation::Tanh)
                r.error(std::string("\"activation\": \"") + activation_name(act) +
                        "\" would be ignored (RTNeural applies none after a recurrent layer); add an "
                        "\"activation\" layer instead");
            const std::size_t h = static_cast<std::size_t>(hidden), gates = (lstm ? 4 : 3) * h;
            const std::string gate_meaning = (lstm ? "4 x hidden size " : "3 x hidden size ") + std::to_string(hidden);
            const json& w = r.weights(3, "kernel, recurrent kernel, bias");
            const std::size_t bias_rows = lstm ? 1 : 2;
            budget.add_parameters(r, (n_in + h + bias_rows) * gates);
            budget.add_storage(r, lstm ? padded(gates) * (padded(n_in) + padded(h))
                                       : padded(2 * h) * (padded(n_in) + padded(h)) + padded(h) * padded(n_in) +
                                             padded(h) * padded(h));
            std::vector<float> kernel(n_in * gates), recurrent(h * gates), bias(bias_rows * gates);
            r.matrix(w[0], "weights[0]", n_in, sizes("input size", in), gates, gate_meaning, kernel.data());
            r.matrix(w[1], "weights[1]", h, sizes("hidden size", hidden), gates, gate_meaning, recurrent.data());
            if (lstm) {
                r.vector(w[2], "weights[2]", gates, gate_meaning, bias.data());
                return std::make_unique<Lstm>(k, in, hidden, kernel.data(), recurrent.data(), bias.data());
            }
            r.matrix(w[2], "weights[2]", 2, "input and recurrent bias rows", gates, gate_meaning, bias.data());
            return std::make_unique<Gru>(k, in, hidden, kernel.data(), recurrent.data(), bias.data());
        }
        case Kind::Conv1d: {
            const int out = r.shape_width();
            const Activation act = r.activation();
            const int taps = r.size_field("kernel_size", limits.max_kernel_size);
            const int dilation = r.size_field("dilation", limits.max_dilation);
            if (const json* groups = member(r.object(), "groups")) {
                if (!(groups->is_number_integer() && groups->get<std::int64_t>() == 1))
                    r.error("\"groups\" = " + show(*groups) + " is not supported (only 1)");
            }
            const std::uint64_t frames = static_cast<std::uint64_t>(taps - 1) * dilation + 1;
            budget.history += frames * (n_in + kChunk);
            if (budget.history > limits.max_history_floats)
                r.error("kernel_size " + std::to_string(taps) + " and dilation " + std::to_string(dilation) +
                        " need a history of " + count_text(frames) + " frames, above the limit of " +
                        count_text(limits.max_history_floats) + " floats of convolution history");
            const std::size_t n_out = static_cast<std::size_t>(out), n_taps = static_cast<std::size_t>(taps);
            const json& w = r.weights(2, "kernel, bias");
            budget.add_parameters(r, n_taps * n_in * n_out + n_out);
            budget.add_storage(r, padded(n_out) * n_taps * padded(n_in));
            std::vector<float> kernel(n_taps * n_in * n_out), bias(n_out);
            const json& w0 = w[0];
            if (!w0.is_array())
                r.error("weights[0] must be an array of " + std::to_string(taps) + " taps, got " + show(w0));
            if (w0.size() != n_taps)
                r.error("weights[0] has " + std::to_string(w0.size()) + " taps, expected " +
                        sizes("kernel_size", taps));
            for (std::size_t t = 0; t < n_taps; ++t)
                r.matrix(w0[t], "weights[0][" + std::to_string(t) + "]", n_in, sizes("input size", in), n_out,
                         sizes("output size", out), kernel.data() + t * n_in * n_out);
            r.vector(w[1], "weights[1]", n_out, sizes("output size", out), bias.data());
            return std::make_unique<Conv1d>(k, in, out, taps, dilation, kernel.data(), bias.data(), act);
        }
        case Kind::Prelu:
        case Kind::BatchNorm:
        case Kind::Activation: {
            const int width = r.shape_width();
            if (width != in)
                r.error("shape declares width " + std::to_string(width) + ", expected " + std::to_string(in) +
                        " (input size; the layer keeps its width)");
            const Activation act = r.activation();
            if (r.kind() == Kind::Activation) {
                if (act == Activation::None) r.error("needs a non-empty \"activation\"");
                const json* w = member(r.object(), "weights");
                if (!w) r.error("missing \"weights\"");
                if (!w->is_array() || !w->empty()) r.error("\"weights\" must be [], got " + show(*w));
                return std::make_unique<ActivationLayer>(k, in, act);
            }
            if (act != Activation::None)
                r.error(std::string("\"activation\": \"") + activation_name(act) +
                        "\" would be ignored (RTNeural applies none after this layer type); add an \"activation\" "
                        "layer instead");
            if (r.kind() == Kind::Prelu) {
                const json& w = r.weights(1, "[alpha]");
                if (!w[0].is_array() || w[0].size() != 1)
                    r.error("weights[0] must be an array holding one array of slopes, got " +
                            (w[0].is_array() ? std::to_string(w[0].size()) + " entries" : show(w[0])));
                const json& alpha_json = w[0][0];
                if (!alpha_json.is_array())
                    r.error("weights[0][0] must be an array of slopes, got " + show(alpha_json));
                const std::size_t count = alpha_json.size();
                if (count != 1 && count != n_in)
                    r.error("weights[0][0] has " + std::to_string(count) + " slopes, expected 1 or " +
                            std::to_string(in) + " (input size)");
                budget.add_parameters(r, count);
                std::vector<float> alpha(count);
                r.vector(alpha_json, "weights[0][0]", count, "slopes", alpha.data());
                if (count == 1) alpha.assign(n_in, alpha[0]);
                return std::make_unique<Prelu>(k, in, alpha.data(), count);
            }
            // Batch normalisation.
            const json* eps_json = member(r.object(), "epsilon");
            if (!eps_json) r.error("missing \"epsilon\"");
            if (!eps_json->is_number()) r.error("\"epsilon\" must be a number, got " + show(*eps_json));
            const double eps_d = eps_json->get<double>();
            if (!(eps_d >= 0.0 && eps_d <= 1.0)) r.error("\"epsilon\" = " + show(*eps_json) + " is outside 0..1");
            const float eps = static_cast<float>(eps_d);
            const json* w = member(r.object(), "weights");
            if (!w) r.error("missing \"weights\"");
            if (!w->is_array() || (w->size() != 4 && w->size() != 2))
                r.error(
                    "\"weights\" must hold 4 arrays (gamma, beta, running mean, running variance) or 2 (running "
                    "mean, running variance), got " +
                    (w->is_array() ? std::to_string(w->size()) : show(*w)));
            const bool affine = w->size() == 4;
            budget.add_parameters(r, n_in * w->size());
            std::vector<float> gamma(affine ? n_in : 0), beta(affine ? n_in : 0), mean(n_in), var(n_in);
            const std::string meaning = sizes("input size", in);
            std::size_t next = 0;
            if (affine) {
                r.vector((*w)[0], "weights[0]", n_in, meaning, gamma.data());
                r.vector((*w)[1], "weights[1]", n_in, meaning, beta.data());
                next = 2;
            }
            r.vector((*w)[next], "weights[" + std::to_string(next) + "]", n_in, meaning, mean.data());
            r.vector((*w)[next + 1], "weights[" + std::to_string(next + 1) + "]", n_in, meaning, var.data());
            for (std::size_t i = 0; i < n_in; ++i) {
                const float denom = var[i] + eps;
                const float m = (affine ? gamma[i] : 1.0f) / std::sqrt(denom);
                if (!(denom > 0.0f) || !std::isfinite(m))
                    r.error("weights[" + std::to_string(next + 1) + "][" + std::to_string(i) +
                            "]: running variance + epsilon = " + std::to_string(denom) +
                            " gives no finite scale (must be positive)");
            }
            return std::make_unique<BatchNorm>(k, in, affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr,
                                               mean.data(), var.data(), eps);
        }
    }
    r.error("unhandled layer type");
}

std::unique_ptr<Model> build(const json& root, const LoadOptions& options) {
    const LoadLimits& limits = options.limits;
    const Kernels* k = kernels_for(options.isa);
    if (!k) fail("the requested kernel set is not supported by this CPU");
    if (!root.is_object())
        fail(std::string("top level must be a JSON object with \"in_shape\" and \"layers\", got ") + kind_of(root));
    const json* in_shape = member(root, "in_shape");
    if (!in_shape) fail("missing \"in_shape\"");
    if (!in_shape->is_array() || in_shape->empty())
        fail("\"in_shape\" must be a non-empty array, got " + show(*in_shape));
    if (in_shape->size() == 4) fail("4-dimensional \"in_shape\" (conv2d models) is not supported");
    const json& in_last = in_shape->back();
    if (!in_last.is_number_integer() || in_last.get<std::int64_t>() < 1 ||
        in_last.get<std::int64_t>() > limits.max_layer_size)
        fail("\"in_shape\" must end with the input width, an integer 1.." + std::to_string(limits.max_layer_size) +
             ", got " + show(in_last));
    const int input = static_cast<int>(in_last.get<std::int64_t>());

    const json* layers = member(root, "layers");
    if (!layers) fail("missing \"layers\"");
    if (!layers->is_array()) fail("\"layers\" must be an array, got " + show(*layers));
    if (layers->empty()) fail("model has no layers");
    if (layers->size() > static_cast<std::size_t>(limits.max_layers))
        fail("model has " + std::to_string(layers->size()) + " layers, above the limit of " +
             std::to_string(limits.max_layers));

    Budget budget{limits};
    std::vector<std::unique_ptr<Layer>> built;
    built.reserve(layers->size());
    int width = input;
    for (std::size_t i = 0; i < layers->size(); ++i) {
        const LayerReader reader((*layers)[i], static_cast<int>(i), limits);
        built.push_back(read_layer(reader, width, budget, *k));
        width = built.back()->out_size();
    }
    return std::make_unique<Model>(*k, input, std::move(built));
}

/// Checks the size and parses `text` within the limits (see BoundedTreeBuilder).
json parse_text(std::string_view text, const LoadLimits& limits) {
    if (text.size() > limits.max_file_bytes)
        fail("JSON text is " + count_text(text.size()) + " bytes, above the limit of " +
             count_text(limits.max_file_bytes));
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) fail("empty JSON text");
    return parse_bounded(text, limits);
}

/// `text` as one line of valid UTF-8: well-formed UTF-8 sequences are kept, control characters and every byte that
/// is not part of one are written as \xNN. Messages quote paths and file content, and must stay decodable.
std::string printable(std::string_view text) {
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const auto escape = [&](unsigned char c) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    };
    for (std::size_t i = 0; i < text.size();) {
        const unsigned char c = byte(i);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                escape(c);
            else
                out += static_cast<char>(c);
            ++i;
            continue;
        }
        // Length and the allowed range of the second byte (excludes overlong forms, surrogates, > U+10FFFF).
        std::size_t n = 0;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        }
        bool ok = n > 0 && i + n <= text.size() && byte(i + 1) >= lo && byte(i + 1) <= hi;
        for (std::size_t k = 2; ok && k < n; ++k) ok = byte(i + k) >= 0x80 && byte(i + k) <= 0xbf;
        if (ok) {
            out.append(text.substr(i, n));
            i += n;
        } else {
            escape(c);
            ++i;
        }
    }
    return out;
}

/// What a non-regular file is, for the message refusing it.
const char* file_kind(mode_t mode) noexcept {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a plain file";
}

[[noreturn]] void fail_not_regular(mode_t mode) {
    fail(std::string("not a regular file (") + file_kind(mode) + "); a model is a regular JSON file");
}

/// Reads the regular file at `path` (at most max_file_bytes), never blocking on a FIFO or device: the path is
/// checked with stat() (symlinks followed: a link to a model is fine), opened non-blocking and checked again on
/// the open descriptor, so a file swapped in between is caught too.
std::string read_model_file(const std::string& path, const LoadLimits& limits) {
    if (path.empty()) fail("empty path; a model is a regular JSON file");
    if (path.find('\0') != std::string::npos) fail("the path contains a NUL byte; a path is text without NUL");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) fail(std::string("cannot open: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail_not_regular(st.st_mode);
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    if (::fstat(fd, &st) != 0) fail(std::string("cannot stat: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail_not_regular(st.st_mode);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > limits.max_file_bytes)
        fail("file is " + count_text(size) + " bytes, above the limit of " + count_text(limits.max_file_bytes));
    std::string text(static_cast<std::size_t>(size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t got = ::read(fd, text.data() + done, text.size() - done);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(std::string("read error: ") + std::strerror(errno));
        if (got == 0) fail("read error (file changed while loading?)");
        done += static_cast<std::size_t>(got);
    }
    return text;
}

/// Runs `body`, turning every failure into LoadResult::error with `prefix` in front.
template <typename Body>
LoadResult guarded(const std::string& prefix, Body&& body) noexcept {
    LoadResult failed;
    try {
        return body();
    } catch (const LoadError& e) {
        try {
            failed.error = prefix + e.message;
        } catch (...) {
        }
    } catch (const std::bad_alloc&) {
        try {
            failed.error = prefix + "out of memory while loading the model";
        } catch (...) {
        }
    } catch (const std::exception& e) {
        try {
            failed.error = prefix + "invalid model: " + parse_error_text(e.what());
        } catch (...) {
        }
    } catch (...) {
        try {
            failed.error = prefix + "unknown error while loading the model";
        } catch (...) {
        }
    }
    if (failed.error.empty()) {
        // Even the message could not be allocated; a static string never fails.
        static const char kFallback[] = "model load failed";
        try {
            failed.error = kFallback;
        } catch (...) {
        }
    }
    try {
        failed.error = printable(failed.error);
    } catch (...) {
    }
    failed.model.reset();
    return failed;
}

}  // namespace

LoadResult load_model_string(std::string_view json_text, const LoadOptions& options) noexcept {
    return guarded("", [&] {
        LoadResult result;
        result.model = build(parse_text(json_text, options.limits), options);
        return result;
    });
}

LoadResult load_model_file(const std::string& path, const LoadOptions& options) noexcept {
    std::string prefix;
    try {
        if (!path.empty()) prefix = path + ": ";
    } catch (...) {
    }
    return guarded(prefix, [&] {
        json root;
        {
            const std::string text = read_model_file(path, options.limits);
            root = parse_text(text, options.limits);
        }  // the text is freed before the model is built
        LoadResult result;
        result.model = build(root, options);
        return result;
    });
}

}  // namespace idaw::nn
