// The loader refuses every malformed model with one message naming the layer and the problem, and checks the
// limits before allocating: table-driven over edits of a valid document, plus files and limits.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "nn_test_support.h"
#include "thread_cpu_time.h"

using namespace idaw::nn;
using namespace idaw::nn::test;
using idaw::test::thread_cpu_seconds;

namespace {

/// A valid model with every layer type, small enough to read: input 3.
///   0 dense 3->4 tanh, 1 lstm 4->2, 2 gru 2->3, 3 conv1d 3->2 (K 2, d 1), 4 prelu 2, 5 batchnorm 2, 6 activation 2.
json base_model() {
    Rng rng(7);
    auto v = [&](std::size_t n) { return random_values(rng, n, 0.5); };
    return model_json(3,
                      {dense_json(3, 4, v(12), v(4), "tanh"), lstm_json(4, 2, v(32), v(16), v(8)),
                       gru_json(2, 3, v(18), v(27), v(18)), conv1d_json(3, 2, 2, 1, v(12), v(2)), prelu_json(2, v(2)),
                       batchnorm_json(2, v(2), v(2), v(2), {1.0f, 2.0f}, 1e-5), activation_json(2, "sigmoid")});
}

struct Edit {
    const char* what;
    std::function<void(json&)> apply;
    const char* expected;  // substring of the message
};

/// A string nested `depth` arrays deep.
std::string nested(int depth) {
    return std::string(static_cast<std::size_t>(depth), '[') + std::string(static_cast<std::size_t>(depth), ']');
}

}  // namespace

TEST_CASE("the base model loads") {
    auto model = must_load(base_model());
    CHECK(model->input_size() == 3);
    CHECK(model->output_size() == 2);
    CHECK(model->num_layers() == 7);
    CHECK(model->num_parameters() == 16 + 56 + 63 + 14 + 2 + 8);
}

TEST_CASE("every malformed edit is refused with a message naming the layer and the problem") {
    const std::vector<Edit> edits{
        // Top level.
        {"array at top level", [](json& d) { d = json::array(); }, "top level must be a JSON object"},
        {"no in_shape", [](json& d) { d.erase("in_shape"); }, "missing \"in_shape\""},
        {"in_shape not array", [](json& d) { d["in_shape"] = 3; }, "\"in_shape\" must be a non-empty array"},
        {"in_shape empty", [](json& d) { d["in_shape"] = json::array(); }, "\"in_shape\" must be a non-empty array"},
        {"in_shape zero",
         [](json& d) {
             d["in_shape"] = {nullptr, nullptr, 0};
         },
         "\"in_shape\" must end with the input width"},
        {"in_shape huge",
         [](json& d) {
             d["in_shape"] = {nullptr, nullptr, 1000000000};
         },
         "1..4096, got 1000000000"},
        {"in_shape float",
         [](json& d) {
             d["in_shape"] = {nullptr, nullptr, 3.5};
         },
         "got 3.5"},
        {"in_shape string",
         [](json& d) {
             d["in_shape"] = {nullptr, nullptr, "3"};
         },
         "got \"3\""},
        {"in_shape 4-d",
         [](json& d) {
             d["in_shape"] = {nullptr, 1, 2, 3};
         },
         "conv2d models) is not supported"},
        {"no layers", [](json& d) { d.erase("layers"); }, "missing \"layers\""},
        {"layers object", [](json& d) { d["layers"] = json::object(); }, "\"layers\" must be an array"},
        {"layers empty", [](json& d) { d["layers"] = json::array(); }, "model has no layers"},
        {"input width does not chain",
         [](json& d) {
             d["in_shape"] = {nullptr, nullptr, 5};
         },
         "layer 0 (dense): weights[0] has 3 rows, expected 5 (input size 5)"},
        // Layer structure.
        {"layer not object", [](json& d) { d["layers"][2] = json::array(); },
         "layer 2 must be a JSON object, got an array"},
        {"no type", [](json& d) { d["layers"][1].erase("type"); }, "layer 1: missing \"type\""},
        {"type number", [](json& d) { d["layers"][1]["type"] = 5; }, "layer 1: \"type\" must be a string, got 5"},
        {"unknown type", [](json& d) { d["layers"][1]["type"] = "transformer"; },
         "layer 1: unknown layer type \"transformer\" (known: dense, lstm, gru, conv1d, prelu, batchnorm, activation)"},
        {"conv2d", [](json& d) { d["layers"][3]["type"] = "conv2d"; },
         "layer 3: layer type \"conv2d\" is not supported"},
        {"no shape", [](json& d) { d["layers"][0].erase("shape"); }, "layer 0 (dense): missing \"shape\""},
        {"shape empty", [](json& d) { d["layers"][0]["shape"] = json::array(); },
         "layer 0 (dense): shape is an empty array"},
        {"shape zero",
         [](json& d) {
             d["layers"][0]["shape"] = {nullptr, nullptr, 0};
         },
         "declares width 0, outside 1..4096"},
        {"shape negative",
         [](json& d) {
             d["layers"][0]["shape"] = {nullptr, nullptr, -4};
         },
         "declares width -4"},
        {"shape 2^63",
         [](json& d) {
             d["layers"][0]["shape"] = {nullptr, nullptr, 9223372036854775808ull};
         },
         "declares width 9223372036854775808, outside 1..4096"},
        {"shape null",
         [](json& d) {
             d["layers"][0]["shape"] = {nullptr, nullptr, nullptr};
         },
         "shape must end with an integer width, got null"},
        {"no weights", [](json& d) { d["layers"][0].erase("weights"); }, "layer 0 (dense): missing \"weights\""},
        {"weights object", [](json& d) { d["layers"][0]["weights"] = json::object(); },
         "\"weights\" must be an array, got an object"},
        {"dense 3 weight arrays", [](json& d) { d["layers"][0]["weights"].push_back(json::array()); },
         "layer 0 (dense): \"weights\" holds 3 arrays, expected 2 (kernel, bias)"},
        // Activations.
        {"unknown activation", [](json& d) { d["layers"][0]["activation"] = "swish"; },
         "layer 0 (dense): unknown activation \"swish\" (known: tanh, relu, sigmoid, softmax, elu)"},
        {"activation not string", [](json& d) { d["layers"][0]["activation"] = nullptr; },
         "\"activation\" must be a string, got null"},
        {"relu on lstm", [](json& d) { d["layers"][1]["activation"] = "relu"; },
         "layer 1 (lstm): \"activation\": \"relu\" would be ignored"},
        {"activation on prelu", [](json& d) { d["layers"][4]["activation"] = "tanh"; },
         "layer 4 (prelu): \"activation\": \"tanh\" would be ignored"},
        {"empty activation layer", [](json& d) { d["layers"][6]["activation"] = ""; },
         "layer 6 (activation): needs a non-empty \"activation\""},
        {"activation layer with weights", [](json& d) { d["layers"][6]["weights"] = {1}; },
         "\"weights\" must be [], got an array"},
        {"activation layer wrong width",
         [](json& d) {
             d["layers"][6]["shape"] = {nullptr, nullptr, 5};
         },
         "layer 6 (activation): shape declares width 5, expected 2"},
        // Dense shapes and values.
        {"dense missing row", [](json& d) { d["layers"][0]["weights"][0].erase(2); },
         "layer 0 (dense): weights[0] has 2 rows, expected 3 (input size 3)"},
        {"dense short row", [](json& d) { d["layers"][0]["weights"][0][1].erase(0); },
         "layer 0 (dense): weights[0][1] has 3 values, expected 4 (output size 4)"},
        {"dense bias long", [](json& d) { d["layers"][0]["weights"][1].push_back(0.0); },
         "layer 0 (dense): weights[1] has 5 values, expected 4 (output size 4)"},
        {"dense NaN string", [](json& d) { d["layers"][0]["weights"][0][1][2] = "NaN"; },
         "layer 0 (dense): weights[0][1][2] is not a number: the string \"NaN\""},
        {"dense null value", [](json& d) { d["layers"][0]["weights"][1][3] = nullptr; },
         "weights[1][3] is not a number: null"},
        {"dense bool value", [](json& d) { d["layers"][0]["weights"][1][3] = true; },
         "weights[1][3] is not a number: a boolean"},
        {"dense nested value", [](json& d) { d["layers"][0]["weights"][1][3] = {1.0}; },
         "weights[1][3] is not a number: an array"},
        {"dense beyond float", [](json& d) { d["layers"][0]["weights"][0][0][0] = 1e39; },
         "layer 0 (dense): weights[0][0][0] = 1e+39 is not a finite float32"},
        {"dense infinity", [](json& d) { d["layers"][0]["weights"][1][0] = std::numeric_limits<double>::infinity(); },
         "weights[1][0]"},
        // LSTM.
        {"lstm recurrent row missing", [](json& d) { d["layers"][1]["weights"][1].erase(1); },
         "layer 1 (lstm): weights[1] has 1 rows, expected 2 (hidden size 2)"},
        {"lstm kernel columns", [](json& d) { d["layers"][1]["weights"][0][0].push_back(0.0); },
         "layer 1 (lstm): weights[0][0] has 9 values, expected 8 (4 x hidden size 2)"},
        {"lstm bias 2 rows (gru style)",
         [](json& d) {
             d["layers"][1]["weights"][2] = json::array({json::array(), json::array()});
         },
         "layer 1 (lstm): weights[2] has 2 values, expected 8"},
        {"lstm 2 weight arrays", [](json& d) { d["layers"][1]["weights"].erase(2); },
         "\"weights\" holds 2 arrays, expected 3"},
        // GRU.
        {"gru one bias row", [](json& d) { d["layers"][2]["weights"][2].erase(1); },
         "layer 2 (gru): weights[2] has 1 rows, expected 2 (input and recurrent bias rows)"},
        {"gru bias row short", [](json& d) { d["layers"][2]["weights"][2][1].erase(0); },
         "layer 2 (gru): weights[2][1] has 8 values, expected 9 (3 x hidden size 3)"},
        // Conv1d.
        {"conv no kernel_size", [](json& d) { d["layers"][3].erase("kernel_size"); },
         "layer 3 (conv1d): missing \"kernel_size\""},
        {"conv kernel_size 0", [](json& d) { d["layers"][3]["kernel_size"] = {0}; },
         "\"kernel_size\" declares value 0, outside 1..256"},
        {"conv kernel_size 2-d",
         [](json& d) {
             d["layers"][3]["kernel_size"] = {2, 2};
         },
         "\"kernel_size\" must hold one integer, got 2 values"},
        {"conv dilation huge", [](json& d) { d["layers"][3]["dilation"] = {1000000}; },
         "\"dilation\" declares value 1000000, outside 1..4096"},
        {"conv groups", [](json& d) { d["layers"][3]["groups"] = 2; }, "\"groups\" = 2 is not supported"},
        {"conv taps missing", [](json& d) { d["layers"][3]["weights"][0].erase(0); },
         "layer 3 (conv1d): weights[0] has 1 taps, expected kernel_size 2"},
        {"conv tap rows", [](json& d) { d["layers"][3]["weights"][0][1].erase(0); },
         "layer 3 (conv1d): weights[0][1] has 2 rows, expected 3 (input size 3)"},
        {"conv value", [](json& d) { d["layers"][3]["weights"][0][1][2][1] = "1.0"; },
         "weights[0][1][2][1] is not a number: the string \"1.0\""},
        // PReLU.
        {"prelu flat weights",
         [](json& d) {
             d["layers"][4]["weights"] = json::array({json::array({0.1, 0.2})});
         },
         "layer 4 (prelu): weights[0] must be an array holding one array of slopes, got 2 entries"},
        {"prelu scalar slope", [](json& d) { d["layers"][4]["weights"] = json::array({json::array({0.1})}); },
         "weights[0][0] must be an array of slopes, got 0.1"},
        {"prelu slope count", [](json& d) { d["layers"][4]["weights"][0][0].push_back(0.3); },
         "layer 4 (prelu): weights[0][0] has 3 slopes, expected 1 or 2 (input size)"},
        {"prelu width",
         [](json& d) {
             d["layers"][4]["shape"] = {nullptr, nullptr, 3};
         },
         "layer 4 (prelu): shape declares width 3, expected 2"},
        // Batchnorm.
        {"batchnorm no epsilon", [](json& d) { d["layers"][5].erase("epsilon"); },
         "layer 5 (batchnorm): missing \"epsilon\""},
        {"batchnorm negative epsilon", [](json& d) { d["layers"][5]["epsilon"] = -1.0; },
         "\"epsilon\" = -1.0 is outside 0..1"},
        {"batchnorm 3 arrays", [](json& d) { d["layers"][5]["weights"].erase(0); },
         "must hold 4 arrays (gamma, beta, running mean, running variance) or 2"},
        {"batchnorm negative variance", [](json& d) { d["layers"][5]["weights"][3][1] = -3.0; },
         "layer 5 (batchnorm): weights[3][1]: running variance + epsilon = -2.99999"},
        {"batchnorm zero variance and epsilon",
         [](json& d) {
             d["layers"][5]["epsilon"] = 0.0;
             d["layers"][5]["weights"][3][0] = 0.0;
         },
         "gives no finite scale"},
    };
    for (const auto& edit : edits) {
        CAPTURE(std::string(edit.what));
        json doc = base_model();
        edit.apply(doc);
        const std::string message = load_error(doc.dump());
        CAPTURE(message);
        CHECK(message.find(edit.expected) != std::string::npos);
        CHECK(message.find('\n') == std::string::npos);  // one line
    }
}

TEST_CASE("a recurrent layer may say activation \"tanh\" or \"\" (the cell's own), as RTNeural's exporters write") {
    json doc = base_model();
    doc["layers"][1]["activation"] = "tanh";
    doc["layers"][2].erase("activation");
    auto model = must_load(doc);
    CHECK(model->layer(1).info().activation == Activation::None);
}

TEST_CASE("text that is not JSON, or too deep, or too large, is refused before building anything") {
    CHECK(load_error("").find("empty JSON text") != std::string::npos);
    CHECK(load_error("  \n").find("empty JSON text") != std::string::npos);
    CHECK(load_error("{\"in_shape\": [null, null, 3], \"layers\": [").find("invalid JSON: parse error") !=
          std::string::npos);
    CHECK(load_error("{\"in_shape\": NaN}").find("invalid JSON") != std::string::npos);
    CHECK(load_error("{\"in_shape\": 1} trailing").find("invalid JSON") != std::string::npos);
    CHECK(load_error("{\"in_shape\": \"\xff\xfe\"}").find("invalid JSON") != std::string::npos);  // not UTF-8
    // Deep nesting is caught while parsing, at the 17th level, before the parser allocates a node per level.
    const std::string deep = "{\"in_shape\": [null, null, 3], \"layers\": " + nested(200000) + "}";
    // Measured on this thread's CPU time, not wall time (a busy machine stretches the latter, not the former). The
    // refusal reads 17 levels, a few microseconds; a parser that went through all 200,000 levels once would still
    // use only milliseconds, but one quadratic in the depth (2e10 steps) takes seconds on any CPU: 2 s of CPU catches
    // that with a wide margin on both sides, sanitizers included.
    const double cpu_before = thread_cpu_seconds();
    CHECK(load_error(deep).find("JSON nested deeper than 16 levels") != std::string::npos);
    CHECK(thread_cpu_seconds() - cpu_before < 2.0);
    // Brackets inside strings do not count (a layer may carry keys the loader does not read).
    json doc = base_model();
    doc["layers"][0]["note"] = nested(100);
    must_load(doc);

    LoadOptions small;
    small.limits.max_file_bytes = 100;
    CHECK(load_error(base_model().dump(), small).find("above the limit of 100") != std::string::npos);
}

TEST_CASE("declared sizes beyond the limits are refused before allocation") {
    LoadOptions options;
    options.limits.max_parameters = 1000;
    // A dense layer declaring 4096 x 4096 weights with an empty kernel: refused on the count, not on the rows.
    json doc = model_json(4096, {layer_json("dense", 4096, json::array({json::array(), json::array()}))});
    CHECK(load_error(doc.dump(), options).find("parameters bring the model to 16,781,312, above the limit of 1,000") !=
          std::string::npos);
    // Convolution history: kernel 256, dilation 4096 on 4096 channels would be ~4e9 floats.
    json conv = conv1d_json(8, 8, 2, 1, std::vector<float>(128, 0.0f), std::vector<float>(8, 0.0f));
    conv["kernel_size"] = {256};
    conv["dilation"] = {4096};
    CHECK(load_error(model_json(8, {conv}).dump()).find("above the limit of 4,194,304 floats of convolution history") !=
          std::string::npos);
    // Padding amplification: one input channel is stored as a whole chunk of 8, so a conv1d 1 -> 512 with 256 taps
    // (131,584 parameters) needs 1,048,576 padded floats.
    LoadOptions padding;
    padding.limits.max_parameters = 200000;
    json wide = conv1d_json(1, 512, 1, 1, std::vector<float>(512, 0.0f), std::vector<float>(512, 0.0f));
    wide["kernel_size"] = {256};
    CHECK(load_error(model_json(1, {wide}).dump(), padding)
              .find("padded weights bring the model to 1,048,576 floats, above the limit of 400,000") !=
          std::string::npos);
    // Layer count: layer objects are counted while parsing (one object per layer plus the top level), other entries
    // when the model is built.
    LoadOptions few;
    few.limits.max_layers = 3;
    CHECK(load_error(base_model().dump(), few)
              .find("JSON holds more than 4 objects; a model has one at the top level and one per layer (at most 3 "
                    "layers)") != std::string::npos);
    CHECK(load_error(R"({"in_shape": [null, null, 1], "layers": [1, 2, 3, 4]})", few)
              .find("model has 4 layers, above the limit of 3") != std::string::npos);
    // Many values with little structure: counted while parsing.
    LoadOptions tiny;
    tiny.limits.max_parameters = 10;
    std::string many = "{\"in_shape\": [null, null, 1], \"layers\": [[0";
    for (int i = 1; i < 80000; ++i) many += i % 10000 == 0 ? "], [0" : ", 0";
    many += "]]}";
    CHECK(load_error(many, tiny)
              .find("JSON holds more than 65,546 values, more than a model within the limit of 10 "
                    "parameters can") != std::string::npos);
}

TEST_CASE("files: missing, directory, oversized, valid") {
    CHECK(load_model_file("/nonexistent/model.json").error ==
          "/nonexistent/model.json: cannot open: No such file or directory");
    CHECK(load_model_file("/tmp").error == "/tmp: not a regular file (a directory); a model is a regular JSON file");
    char name[] = "/tmp/idaw_nn_loader_XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    { std::ofstream(name) << base_model().dump(); }
    LoadResult ok = load_model_file(name);
    CHECK(ok.ok());
    CHECK(ok.error.empty());
    LoadOptions small;
    small.limits.max_file_bytes = 10;
    const LoadResult big = load_model_file(name, small);
    CHECK_FALSE(big.ok());
    CHECK(big.error.find(std::string(name) + ": file is ") == 0);
    { std::ofstream(name) << "{\"in_shape\": [null, null, 2], \"layers\": [{\"type\": \"lstm\"}]}"; }
    CHECK(load_model_file(name).error == std::string(name) + ": layer 0 (lstm): missing \"shape\"");
    std::remove(name);
}

TEST_CASE("the requested kernel set is honoured") {
    LoadOptions sse2;
    sse2.isa = Isa::Sse2;
    LoadResult r = load_model_string(base_model().dump(), sse2);
    REQUIRE(r.ok());
    CHECK(std::string(r.model->kernel_name()) != "avx2+fma");
    if (kernels_for(Isa::Avx2)) {
        LoadOptions avx2;
        avx2.isa = Isa::Avx2;
        LoadResult a = load_model_string(base_model().dump(), avx2);
        REQUIRE(a.ok());
        CHECK(std::string(a.model->kernel_name()) == "avx2+fma");
    }
}

// ---- Hostile files (issue 9, finding 5): refused by name, early, in one line of UTF-8, never blocking. ----

namespace {

/// A fresh path under /tmp for this test (removed by the caller); `suffix` names the case.
std::string temp_path(const std::string& suffix) {
    return "/tmp/idaw_nn_loader_" + std::to_string(::getpid()) + "_" + suffix;
}

/// Writes `text` to `path`.
void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

/// The number in "JSON structure too dense for a model: N bytes of text ...": how far the parser read.
std::uint64_t bytes_read_before_refusal(const std::string& message) {
    const std::string head = "JSON structure too dense for a model: ";
    const auto at = message.find(head);
    REQUIRE(at != std::string::npos);
    std::string digits;
    for (std::size_t i = at + head.size(); i < message.size() && message[i] != ' '; ++i)
        if (message[i] != ',') digits += message[i];
    return std::stoull(digits);
}

/// `unit` repeated `count` times, comma-separated.
std::string repeated(const std::string& unit, std::size_t count) {
    std::string out;
    out.reserve(count * (unit.size() + 1));
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) out += ',';
        out += unit;
    }
    return out;
}

}  // namespace

TEST_CASE("an unknown top-level key is refused by name before its value is parsed") {
    json doc = base_model();
    doc["metadata"] = {{"name", "x"}};
    CHECK(load_error(doc.dump()) == "unknown top-level key \"metadata\" (allowed: \"in_shape\", \"layers\")");
    // The 51 MB file of the issue in small: a million {} under an unknown key, after a valid model. The refusal comes
    // at the key: a value that is not even JSON after it is never reached.
    const std::string model = base_model().dump();
    const std::string bomb = model.substr(0, model.size() - 1) + ",\"junk\":[" + repeated("{}", 1000000) + "]}";
    CHECK(load_error(bomb) == "unknown top-level key \"junk\" (allowed: \"in_shape\", \"layers\")");
    CHECK(load_error(model.substr(0, model.size() - 1) + ",\"junk\": not JSON at all") ==
          "unknown top-level key \"junk\" (allowed: \"in_shape\", \"layers\")");
    // A long key is cut in the message.
    CHECK(load_error("{\"" + std::string(100, 'k') + "\": 1}") ==
          "unknown top-level key \"" + std::string(40, 'k') + "\"... (allowed: \"in_shape\", \"layers\")");
    // The files RTNeural's parser loads keep loading: RTNeural's Keras exporter writes exactly these two keys, with
    // json.dump(indent=4) (whitespace, one number per line, rows of one number).
    auto model_loaded = must_load(json::parse(base_model().dump(4)));
    CHECK(model_loaded->num_layers() == 7);
}

TEST_CASE("node bombs are refused while parsing, after little more text than the bomb's start") {
    const std::string head = R"({"in_shape": [null, null, 1], "layers": [{"type": "dense", "activation": "", )"
                             R"("shape": [null, null, 1], )";
    const std::string tail = R"("weights": [[[0.5]], [0]]}]})";
    // Sanity: the frame around the bombs is a valid model.
    CHECK(load_model_string(head + tail).ok());
    // Objects: a model has one at the top level and one per layer.
    CHECK(load_error(head + "\"junk\": [" + repeated("{}", 1000000) + "], " + tail) ==
          "JSON holds more than 257 objects; a model has one at the top level and one per layer (at most 256 layers)");
    // Arrays longer than any a model has (an LSTM's gate rows: 4 x 4096).
    CHECK(load_error(head + "\"weights\": [[" + repeated("[]", 20000) + "], [0]]}]}")
              .find("JSON array of more than 16,384 values; no array of a model within the limits is longer") !=
          std::string::npos);
    CHECK(load_error(head + "\"weights\": [[[" + repeated("0", 20000) + "]], [0]]}]}")
              .find("JSON array of more than 16,384 values") != std::string::npos);
    // Empty arrays in arrays of legal length: 48 bytes of tree for 3 of text. The budget (8 bytes of tree per byte
    // read, plus 1 MiB) runs out within the first megabyte of a 3.6 MB bomb.
    const std::string arrays = "[" + repeated("[" + repeated("[]", 16000) + "]", 75) + "]";  // 75 lists of 16,000
    const std::string dense_arrays = load_error(head + "\"junk\": " + arrays + ", " + tail);
    CAPTURE(dense_arrays);
    CHECK(dense_arrays.find("bytes to parse (the limit is 8 per byte of text plus 1,048,576; a model's JSON is mostly "
                            "numbers)") != std::string::npos);
    CHECK(bytes_read_before_refusal(dense_arrays) < std::uint64_t{1} << 20);
    CHECK(arrays.size() > std::size_t{3} << 20);
    // Keys: a map node per member, 96 bytes for 7 of text ("k1":0,).
    std::string keys;
    for (int i = 0; i < 500000; ++i) keys += "\"k" + std::to_string(i) + "\":0,";
    const std::string dense_keys = load_error(head + keys + tail);
    CAPTURE(dense_keys);
    CHECK(bytes_read_before_refusal(dense_keys) < std::uint64_t{1} << 20);
    // Deep nesting at the 17th level, however deep it goes on.
    CHECK(load_error(head + "\"junk\": " + nested(1000000) + ", " + tail) == "JSON nested deeper than 16 levels");
}

TEST_CASE("the parse budget admits the densest valid models") {
    // Numbers cannot be denser than "0," (16 bytes of tree for 2 of text): a 1024 x 1024 dense layer of zeros loads.
    const std::vector<float> zeros(1024 * 1024, 0.0f), bias(1024, 0.0f);
    auto wide = must_load(model_json(1024, {dense_json(1024, 1024, zeros, bias, "")}));
    CHECK(wide->num_parameters() == 1024 * 1024 + 1024);
    // Nor rows shorter than [0] (a dense layer with one output): 4096 of them load, within the 1 MiB allowance.
    auto narrow = must_load(model_json(4096, {dense_json(4096, 1, std::vector<float>(4096, 0.0f), {0.0f}, "")}));
    CHECK(narrow->num_parameters() == 4097);
}

TEST_CASE("messages are one line of valid UTF-8, whatever bytes the file holds") {
    // Invalid UTF-8 in a layer's type and in its name: the parser refuses the string; the message quotes the bytes
    // escaped.
    const std::string bad_type = load_error(
        "{\"in_shape\": [null, null, 1], \"layers\": [{\"type\": \"d\xff\xfe"
        "ense\", \"shape\": [1], \"weights\": []}]}");
    CHECK(bad_type.find("invalid JSON: parse error") == 0);
    CHECK(bad_type.find("\\xff") != std::string::npos);
    const std::string bad_name =
        load_error("{\"in_shape\": [null, null, 1], \"layers\": [{\"name\": \"\xc3\x28\", \"type\": \"dense\"}]}");
    CHECK(bad_name.find("invalid JSON: parse error") == 0);
    // A truncated sequence, an overlong '/', a surrogate, a code point above U+10FFFF.
    for (const char* bytes : {"\xe2\x82", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
        CAPTURE(std::string(bytes));
        load_error(std::string("{\"in_shape\": [null, null, 1], \"layers\": [{\"type\": \"") + bytes + "\"}]}");
    }
    // Valid UTF-8 is quoted as it is, and control characters in a quoted value are escaped by JSON itself.
    CHECK(load_error(R"({"in_shape": [null, null, 1], "layers": [{"type": "dénse"}]})")
              .find("unknown layer type \"dénse\"") != std::string::npos);
    CHECK(load_error("{\"in_shape\": [null, null, 1], \"layers\": [{\"type\": \"a\\nb\"}]}")
              .find("unknown layer type \"a\\nb\"") != std::string::npos);
    // Raw control bytes in the text (not allowed in JSON strings) are escaped in the parser's message.
    const std::string raw = load_error("{\"in_shape\": [null, null, 1], \"layers\": [{\"type\": \"a\nb\"}]}");
    CHECK(raw.find("invalid JSON") == 0);
    // A path with a line break and a byte that is not UTF-8 is escaped where the message quotes it.
    const std::string path = temp_path("line\nbreak\xff.json");
    const LoadResult missing = load_model_file(path);
    CHECK(one_line_utf8(missing.error));
    CHECK(missing.error.find("line\\x0abreak\\xff.json: cannot open: No such file or directory") != std::string::npos);
}

TEST_CASE("a path holding a NUL byte is refused, not cut short") {
    const std::string real = temp_path("nul.json");
    write_file(real, base_model().dump());
    REQUIRE(load_model_file(real).ok());  // the path before the NUL is a valid model
    const std::string with_nul = real + std::string(1, '\0') + "junk";
    const LoadResult r = load_model_file(with_nul);
    CHECK_FALSE(r.ok());
    CHECK(r.error == real + "\\x00junk: the path contains a NUL byte; a path is text without NUL");
    CHECK(load_model_file("").error == "empty path; a model is a regular JSON file");
    std::remove(real.c_str());
}

TEST_CASE("a FIFO, a device or a directory is refused at once; a symlink to a model loads") {
    const std::string fifo = temp_path("fifo.json");
    std::remove(fifo.c_str());
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Each load runs on another thread, so that a loader that blocks in open() (waiting for a writer) fails the check
    // instead of hanging the test: after the wait, a writer is opened and closed, which lets such a loader return.
    const auto load_at_once = [&](const std::string& path) {
        auto pending = std::async(std::launch::async, [path] { return load_model_file(path); });
        // 60 s: a guard against a loader blocked in open() only (a refusal takes microseconds even on a busy
        // machine); nothing is measured.
        const bool returned = pending.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
        CHECK(returned);
        if (!returned) {
            const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
            if (writer >= 0) ::close(writer);
        }
        return pending.get().error;
    };
    CHECK(load_at_once(fifo) == fifo + ": not a regular file (a FIFO); a model is a regular JSON file");
    // Through a symlink too (links are followed: a link to a model is fine, a link to a FIFO is not).
    const std::string link = temp_path("link.json"), model = temp_path("model.json");
    write_file(model, base_model().dump());
    std::remove(link.c_str());
    REQUIRE(::symlink(fifo.c_str(), link.c_str()) == 0);
    CHECK(load_at_once(link) == link + ": not a regular file (a FIFO); a model is a regular JSON file");
    std::remove(link.c_str());
    REQUIRE(::symlink(model.c_str(), link.c_str()) == 0);
    CHECK(load_model_file(link).ok());
    CHECK(load_model_file("/dev/null").error ==
          "/dev/null: not a regular file (a character device); a model is a regular JSON file");
    CHECK(load_model_file("/tmp").error == "/tmp: not a regular file (a directory); a model is a regular JSON file");
    for (const std::string& p : {fifo, link, model}) std::remove(p.c_str());
}
