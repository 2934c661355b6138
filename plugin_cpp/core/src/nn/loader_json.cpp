// Errors and message text shared by the model loader's parts (see loader_json.h).
#include "loader_json.h"

#include <cstddef>
#include <string>
#include <utility>

namespace idaw::nn::loader {

void fail(std::string message) { throw LoadError{std::move(message)}; }

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

std::string count_text(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

const json* member(const json& object, const char* key) {
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

}  // namespace idaw::nn::loader
