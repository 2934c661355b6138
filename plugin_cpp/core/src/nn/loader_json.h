// What the model loader's parts share (model_loader.cpp: parsing, limits and files; layer_readers.cpp: one reader
// per layer type): the one error they throw, and how values and numbers are written in their messages. Internal to
// the core; the API is idaw/nn/model_loader.h.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace idaw::nn::loader {

using json = nlohmann::json;

/// Thrown inside the loader with the final message; caught at the API boundary (load_model_string/_file).
struct LoadError {
    std::string message;
};

/// Throws LoadError carrying `message`.
[[noreturn]] void fail(std::string message);

/// JSON kind of a value, for messages: "null", "a boolean", "a string", "a number", "an array" or "an object".
const char* kind_of(const json& v) noexcept;

/// Short printable form of a value: numbers and strings (cut to 40 bytes, then "...") as written, containers by
/// kind.
std::string show(const json& v);

/// `n` with thousands separators ("16,777,216"), for limits in messages.
std::string count_text(std::uint64_t n);

/// The member `key` of the JSON object `object`, or null when it has none.
const json* member(const json& object, const char* key);

}  // namespace idaw::nn::loader
