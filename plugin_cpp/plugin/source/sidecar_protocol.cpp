#include "sidecar_protocol.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "sidecar_protocol_json.h"

namespace idaw::plugin::sidecar {

// ---- msgpack decoding ----------------------------------------------------------------------------------------------

const Value* Value::find(const std::string& key) const {
    if (type != Type::Map) return nullptr;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
        if (it->first.type == Type::Str && it->first.bytes == key) return &it->second;
    return nullptr;
}

namespace {

/// Containers open at once, at most: msgpack-python's unpacker stack (1024), so both sides refuse the same.
constexpr int kMaxDepth = 1024;

/// True for well-formed UTF-8 (no overlong forms, surrogates or code points beyond U+10FFFF), as Python decodes.
bool valid_utf8(const std::string& s) {
    std::size_t i = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    while (i < s.size()) {
        const unsigned c = p[i];
        int extra;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + static_cast<std::size_t>(extra) >= s.size()) return false;  // truncated sequence
        for (int k = 1; k <= extra; ++k) {
            const unsigned d = p[i + static_cast<std::size_t>(k)];
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return false;
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;
        i += static_cast<std::size_t>(extra) + 1;
    }
    return true;
}

/// Code points of a valid UTF-8 string.
std::vector<std::uint32_t> code_points(const std::string& s) {
    std::vector<std::uint32_t> out;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (std::size_t i = 0; i < s.size();) {
        const unsigned c = p[i];
        int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        std::uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
        for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (p[i + static_cast<std::size_t>(k)] & 0x3F);
        out.push_back(cp);
        i += static_cast<std::size_t>(extra) + 1;
    }
    return out;
}

/// Python's str.isprintable() for the characters a sidecar sends: no control, format, separator (other than the
/// ASCII space) or private-use characters. (Unassigned code points, which Python also refuses, are not known here.)
bool printable(const std::string& s) {
    for (std::uint32_t cp : code_points(s)) {
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
        if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return false;
        if ((cp >= 0x205F && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206F) || cp == 0x3000) return false;
        if (cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xE000 && cp <= 0xF8FF)) return false;
        if (cp >= 0xF0000) return false;  // supplementary private use planes
    }
    return true;
}

/// A msgpack parser over one buffer, with msgpack-python's limits.
class Reader {
  public:
    /// Reads `size` bytes at `data`.
    Reader(const std::uint8_t* data, std::size_t size, const DecodeLimits& limits)
        : p_(data), end_(data + size), limits_(limits) {}

    /// Parses one value (a container at nesting `depth`) into `out`; false with error() set on failure.
    bool value(Value& out, int depth) {
        std::uint8_t c;
        if (!byte(c)) return false;
        if (c <= 0x7F) return set_uint(out, c);
        if (c >= 0xE0) return set_int(out, static_cast<std::int8_t>(c));
        if (c >= 0x80 && c <= 0x8F) return map(out, c & 0x0F, depth);
        if (c >= 0x90 && c <= 0x9F) return array(out, c & 0x0F, depth);
        if (c >= 0xA0 && c <= 0xBF) return str(out, c & 0x1F);
        std::uint64_t n = 0;
        switch (c) {
            case 0xC0:
                out.type = Value::Type::Nil;
                return true;
            case 0xC2:
            case 0xC3:
                out.type = Value::Type::Bool;
                out.boolean = c == 0xC3;
                return true;
            case 0xC4:
                return be(n, 1) && bin(out, n);
            case 0xC5:
                return be(n, 2) && bin(out, n);
            case 0xC6:
                return be(n, 4) && bin(out, n);
            case 0xCA: {
                if (!be(n, 4)) return false;
                const auto bits = static_cast<std::uint32_t>(n);
                float f;
                std::memcpy(&f, &bits, 4);
                out.type = Value::Type::Float;
                out.number = f;
                return true;
            }
            case 0xCB: {
                if (!be(n, 8)) return false;
                double d;
                std::memcpy(&d, &n, 8);
                out.type = Value::Type::Float;
                out.number = d;
                return true;
            }
            case 0xCC:
                return be(n, 1) && set_uint(out, n);
            case 0xCD:
                return be(n, 2) && set_uint(out, n);
            case 0xCE:
                return be(n, 4) && set_uint(out, n);
            case 0xCF:
                return be(n, 8) && set_uint(out, n);
            case 0xD0:
                return be(n, 1) && set_int(out, static_cast<std::int8_t>(n));
            case 0xD1:
                return be(n, 2) && set_int(out, static_cast<std::int16_t>(n));
            case 0xD2:
                return be(n, 4) && set_int(out, static_cast<std::int32_t>(n));
            case 0xD3:
                return be(n, 8) && set_int(out, static_cast<std::int64_t>(n));
            case 0xD9:
                return be(n, 1) && str(out, n);
            case 0xDA:
                return be(n, 2) && str(out, n);
            case 0xDB:
                return be(n, 4) && str(out, n);
            case 0xDC:
                return be(n, 2) && array(out, n, depth);
            case 0xDD:
                return be(n, 4) && array(out, n, depth);
            case 0xDE:
                return be(n, 2) && map(out, n, depth);
            case 0xDF:
                return be(n, 4) && map(out, n, depth);
            default:
                break;
        }
        if ((c >= 0xC7 && c <= 0xC9) || (c >= 0xD4 && c <= 0xD8)) return fail("ext types are not allowed");
        return fail("invalid msgpack byte");
    }

    /// True when every byte was used.
    bool at_end() const { return p_ == end_; }
    /// Why parsing failed.
    const std::string& error() const { return error_; }

  private:
    /// Records the first failure; returns false.
    bool fail(const char* what) {
        if (error_.empty()) error_ = what;
        return false;
    }
    /// The next byte.
    bool byte(std::uint8_t& c) {
        if (p_ >= end_) return fail("truncated");
        c = *p_++;
        return true;
    }
    /// The next `bytes` bytes as a big-endian number.
    bool be(std::uint64_t& n, int bytes) {
        if (end_ - p_ < bytes) return fail("truncated");
        n = 0;
        for (int i = 0; i < bytes; ++i) n = (n << 8) | *p_++;
        return true;
    }
    /// The next `n` bytes.
    bool take(std::string& out, std::uint64_t n) {
        if (static_cast<std::uint64_t>(end_ - p_) < n) return fail("truncated");
        out.assign(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
        p_ += n;
        return true;
    }
    /// `out` becomes the non-negative integer `v`.
    static bool set_uint(Value& out, std::uint64_t v) {
        out.type = Value::Type::Int;
        out.unsigned_value = v;
        return true;
    }
    /// `out` becomes the integer `v`.
    static bool set_int(Value& out, std::int64_t v) {
        out.type = Value::Type::Int;
        if (v < 0) {
            out.negative = true;
            out.signed_value = v;
        } else {
            out.unsigned_value = static_cast<std::uint64_t>(v);
        }
        return true;
    }
    /// A string of `n` bytes (valid UTF-8, within max_str_bytes).
    bool str(Value& out, std::uint64_t n) {
        if (n > limits_.max_str_bytes) return fail("string longer than max_str_bytes");
        out.type = Value::Type::Str;
        if (!take(out.bytes, n)) return false;
        return valid_utf8(out.bytes) || fail("string is not valid UTF-8");
    }
    /// Bin of `n` bytes (within max_bin_bytes).
    bool bin(Value& out, std::uint64_t n) {
        if (n > limits_.max_bin_bytes) return fail("bin longer than max_bin_bytes");
        out.type = Value::Type::Bin;
        return take(out.bytes, n);
    }
    /// An array of `n` items.
    bool array(Value& out, std::uint64_t n, int depth) {
        if (depth >= kMaxDepth) return fail("nesting too deep");
        if (n > limits_.max_array_items) return fail("array longer than max_array_items");
        out.type = Value::Type::Array;
        out.items.resize(static_cast<std::size_t>(n));
        for (auto& item : out.items)
            if (!value(item, depth + 1)) return false;
        return true;
    }
    /// A map of `n` entries with string or bin keys.
    bool map(Value& out, std::uint64_t n, int depth) {
        if (depth >= kMaxDepth) return fail("nesting too deep");
        if (n > limits_.max_map_items) return fail("map longer than max_map_items");
        out.type = Value::Type::Map;
        out.entries.resize(static_cast<std::size_t>(n));
        for (auto& [key, item] : out.entries) {
            if (!value(key, depth + 1)) return false;
            // strict_map_key: only str and bin keys.
            if (key.type != Value::Type::Str && key.type != Value::Type::Bin) return fail("map key is not a string");
            if (!value(item, depth + 1)) return false;
        }
        return true;
    }

    const std::uint8_t* p_;
    const std::uint8_t* end_;
    const DecodeLimits& limits_;
    std::string error_;
};

}  // namespace

bool decode_msgpack(const std::uint8_t* data, std::size_t size, const DecodeLimits& limits, Value& out,
                    std::string& error) {
    Reader reader(data, size, limits);
    out = Value();
    if (!reader.value(out, 0)) {
        error = reader.error();
        return false;
    }
    if (!reader.at_end()) {
        error = "extra data after the value";
        return false;
    }
    return true;
}

// ---- msgpack encoding ----------------------------------------------------------------------------------------------

void Writer::put_be(std::uint64_t value, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) put(static_cast<std::uint8_t>(value >> (8 * i)));
}

Writer& Writer::map(std::size_t count) {
    if (count < 16) {
        put(static_cast<std::uint8_t>(0x80 | count));
    } else if (count <= 0xFFFF) {
        put(0xDE);
        put_be(count, 2);
    } else {
        put(0xDF);
        put_be(count, 4);
    }
    return *this;
}

Writer& Writer::array(std::size_t count) {
    if (count < 16) {
        put(static_cast<std::uint8_t>(0x90 | count));
    } else if (count <= 0xFFFF) {
        put(0xDC);
        put_be(count, 2);
    } else {
        put(0xDD);
        put_be(count, 4);
    }
    return *this;
}

Writer& Writer::str(const std::string& text) {
    const std::size_t n = text.size();
    if (n < 32) {
        put(static_cast<std::uint8_t>(0xA0 | n));
    } else if (n <= 0xFF) {
        put(0xD9);
        put_be(n, 1);
    } else if (n <= 0xFFFF) {
        put(0xDA);
        put_be(n, 2);
    } else {
        put(0xDB);
        put_be(n, 4);
    }
    out_ += text;
    return *this;
}

Writer& Writer::uint(std::uint64_t value) {
    if (value < 128) {
        put(static_cast<std::uint8_t>(value));
    } else if (value <= 0xFF) {
        put(0xCC);
        put_be(value, 1);
    } else if (value <= 0xFFFF) {
        put(0xCD);
        put_be(value, 2);
    } else if (value <= 0xFFFFFFFFull) {
        put(0xCE);
        put_be(value, 4);
    } else {
        put(0xCF);
        put_be(value, 8);
    }
    return *this;
}

Writer& Writer::float64(double value) {
    std::uint64_t bits;
    std::memcpy(&bits, &value, 8);
    put(0xCB);
    put_be(bits, 8);
    return *this;
}

Writer& Writer::bin(const void* data, std::size_t size) {
    if (size <= 0xFF) {
        put(0xC4);
        put_be(size, 1);
    } else if (size <= 0xFFFF) {
        put(0xC5);
        put_be(size, 2);
    } else {
        put(0xC6);
        put_be(size, 4);
    }
    out_.append(static_cast<const char*>(data), size);
    return *this;
}

// ---- The schema and its field checks (sidecar/schema.py) ----------------------------------------------------------

struct Schema::Field {
    enum class Kind { Uint, Float, Str, Bin, List, Map, Object, Params };
    Kind kind = Kind::Uint;
    std::string where;
    std::uint64_t umin = 0, umax = std::numeric_limits<std::uint64_t>::max();
    double fmin = -std::numeric_limits<double>::infinity(), fmax = std::numeric_limits<double>::infinity();
    std::size_t min_bytes = 0, max_bytes = 0, multiple_of = 1, min_items = 0, max_items = 0;
    bool finite_f32 = false;
    std::unique_ptr<Field> item;                                         // List items, Map values
    std::vector<std::pair<std::string, std::unique_ptr<Field>>> fields;  // Object
    std::vector<std::string> params;                                     // Params: snapshot_params, in order
    std::vector<std::pair<double, double>> bounds;                       // Params: float32 range of each
};

struct Schema::MessageSpec {
    std::set<std::string> senders;
    std::size_t max_bytes = 0;
    std::vector<std::pair<std::string, std::unique_ptr<Field>>> fields;
};

namespace {

using Field = Schema::Field;
using Json = nlohmann::json;

/// The check of one field spec of protocol.json (schema.py compile_field); `where` names it in details.
std::unique_ptr<Field> compile(const Json& spec, const std::string& where, const Json& schema);

/// The checks of every field of one message type or object, in protocol.json's order.
std::vector<std::pair<std::string, std::unique_ptr<Field>>> compile_fields(const Json& specs, const std::string& where,
                                                                           const Json& schema) {
    std::vector<std::pair<std::string, std::unique_ptr<Field>>> out;
    for (auto it = specs.begin(); it != specs.end(); ++it)
        out.emplace_back(it.key(), compile(it.value(), where + "." + it.key(), schema));
    return out;
}

std::unique_ptr<Field> compile(const Json& spec, const std::string& where, const Json& schema) {
    auto f = std::make_unique<Field>();
    f->where = where;
    const std::string kind = spec.at("type").get<std::string>();
    if (kind == "uint") {
        f->kind = Field::Kind::Uint;
        f->umin = spec.value("min", std::uint64_t{0});
        f->umax = spec.value("max", std::numeric_limits<std::uint64_t>::max());
    } else if (kind == "float") {
        f->kind = Field::Kind::Float;
        if (spec.contains("min")) f->fmin = spec["min"].get<double>();
        if (spec.contains("max")) f->fmax = spec["max"].get<double>();
    } else if (kind == "str") {
        f->kind = Field::Kind::Str;
        f->min_bytes = spec.value("min_bytes", std::size_t{0});
        f->max_bytes = spec.at("max_bytes").get<std::size_t>();
    } else if (kind == "bin") {
        f->kind = Field::Kind::Bin;
        f->min_bytes = spec.value("min_bytes", std::size_t{0});
        f->max_bytes = spec.at("max_bytes").get<std::size_t>();
        f->multiple_of = spec.value("multiple_of", std::size_t{1});
        f->finite_f32 = spec.value("finite_f32", false);
    } else if (kind == "list") {
        f->kind = Field::Kind::List;
        f->min_items = spec.value("min_items", std::size_t{0});
        f->max_items = spec.at("max_items").get<std::size_t>();
        f->item = compile(spec.at("items"), where + "[]", schema);
    } else if (kind == "map") {
        f->kind = Field::Kind::Map;
        f->max_items = spec.at("max_items").get<std::size_t>();
        f->item = compile(spec.at("values"), where + "{}", schema);
    } else if (kind == "object") {
        f->kind = Field::Kind::Object;
        f->fields = compile_fields(spec.at("fields"), where, schema);
    } else if (kind == "params") {
        f->kind = Field::Kind::Params;
        for (const auto& name : schema.at("snapshot_params")) {
            f->params.push_back(name.get<std::string>());
            bool found = false;
            for (const auto& p : schema.at("parameters")) {
                if (p.at("name") != name) continue;
                // Compared as float32, the engine's type.
                f->bounds.emplace_back(static_cast<float>(p.at("min").get<double>()),
                                       static_cast<float>(p.at("max").get<double>()));
                found = true;
            }
            if (!found) throw std::runtime_error("protocol.json: snapshot_params names an unknown parameter");
        }
    } else {
        throw std::runtime_error("protocol.json: unknown field type " + kind + " at " + where);
    }
    return f;
}

/// Fills `why`; returns false.
bool reject(Rejection& why, const char* reason, const std::string& detail) {
    why.reason = reason;
    why.detail = detail;
    return false;
}

/// A finite number from an Int or Float value (schema.py _number).
bool number(const Value& v, const std::string& where, double& out, Rejection& why) {
    if (v.type == Value::Type::Float) {
        out = v.number;
    } else if (v.type == Value::Type::Int) {
        // Python: float(value) only when abs(value) < 2**63.
        if ((!v.negative && v.unsigned_value >= (std::uint64_t{1} << 63)) ||
            (v.negative && v.signed_value == std::numeric_limits<std::int64_t>::min()))
            return reject(why, "out_of_range", where + " is too large");
        out = v.negative ? static_cast<double>(v.signed_value) : static_cast<double>(v.unsigned_value);
    } else {
        return reject(why, "wrong_type", where + " must be a number");
    }
    if (!std::isfinite(out)) return reject(why, "non_finite", where + " is not finite");
    return true;
}

/// Checks one value against its field spec (schema.py's validators, same reasons).
bool check(const Field& f, const Value& v, Rejection& why);

/// Every field of `fields` present in the map `v`, and no other (schema.py check_fields).
bool check_fields(const std::vector<std::pair<std::string, std::unique_ptr<Field>>>& fields, const Value& v,
                  const std::string& where, const std::set<std::string>& skip, Rejection& why) {
    for (const auto& [key, item] : v.entries) {
        const std::string name = key.bytes;
        if (key.type == Value::Type::Str && skip.count(name)) continue;
        bool known = false;
        for (const auto& [field_name, spec] : fields)
            known = known || (key.type == Value::Type::Str && name == field_name);
        if (!known) return reject(why, "unknown_field", where + " has no field '" + name.substr(0, 40) + "'");
    }
    for (const auto& [name, spec] : fields) {
        const Value* item = v.find(name);
        if (item == nullptr) return reject(why, "missing_field", where + "." + name + " is missing");
        if (!check(*spec, *item, why)) return false;
    }
    return true;
}

bool check(const Field& f, const Value& v, Rejection& why) {
    switch (f.kind) {
        case Field::Kind::Uint: {
            if (v.type != Value::Type::Int) return reject(why, "wrong_type", f.where + " must be an unsigned integer");
            if (v.negative || v.unsigned_value < f.umin || v.unsigned_value > f.umax)
                return reject(why, "out_of_range", f.where + " is out of range");
            return true;
        }
        case Field::Kind::Float: {
            double x;
            if (!number(v, f.where, x, why)) return false;
            if (!(x >= f.fmin && x <= f.fmax)) return reject(why, "out_of_range", f.where + " is out of range");
            return true;
        }
        case Field::Kind::Str: {
            if (v.type != Value::Type::Str) return reject(why, "wrong_type", f.where + " must be a string");
            if (v.bytes.size() < f.min_bytes || v.bytes.size() > f.max_bytes)
                return reject(why, "out_of_range", f.where + " has a wrong length");
            if (!printable(v.bytes)) return reject(why, "out_of_range", f.where + " holds control characters");
            return true;
        }
        case Field::Kind::Bin: {
            if (v.type != Value::Type::Bin) return reject(why, "wrong_type", f.where + " must be bin");
            if (v.bytes.size() < f.min_bytes || v.bytes.size() > f.max_bytes || v.bytes.size() % f.multiple_of)
                return reject(why, "out_of_range", f.where + " has a wrong length");
            if (f.finite_f32) {
                for (std::size_t i = 0; i + 4 <= v.bytes.size(); i += 4) {
                    float s;
                    std::memcpy(&s, v.bytes.data() + i, 4);  // little-endian, as x86 and ARM are
                    if (!std::isfinite(s)) return reject(why, "non_finite", f.where + " holds NaN or Inf samples");
                }
            }
            return true;
        }
        case Field::Kind::List: {
            if (v.type != Value::Type::Array) return reject(why, "wrong_type", f.where + " must be an array");
            if (v.items.size() < f.min_items || v.items.size() > f.max_items)
                return reject(why, "out_of_range", f.where + " has a wrong number of items");
            for (const Value& item : v.items)
                if (!check(*f.item, item, why)) return false;
            return true;
        }
        case Field::Kind::Map: {
            if (v.type != Value::Type::Map) return reject(why, "wrong_type", f.where + " must be a map");
            std::set<std::string> keys;
            for (const auto& entry : v.entries) keys.insert(entry.first.bytes);
            if (keys.size() > f.max_items) return reject(why, "out_of_range", f.where + " has too many items");
            for (const auto& [key, item] : v.entries) {
                if (key.type != Value::Type::Str) return reject(why, "wrong_type", f.where + " key must be a string");
                if (key.bytes.empty() || key.bytes.size() > 64 || !printable(key.bytes))
                    return reject(why, "out_of_range", f.where + " has a bad key");
                if (!check(*f.item, item, why)) return false;
            }
            return true;
        }
        case Field::Kind::Object: {
            if (v.type != Value::Type::Map) return reject(why, "wrong_type", f.where + " must be a map");
            return check_fields(f.fields, v, f.where, {}, why);
        }
        case Field::Kind::Params: {
            if (v.type != Value::Type::Map)
                return reject(why, "wrong_type", f.where + " must be a map of parameter values");
            std::set<std::string> keys;
            bool non_str_key = false;
            for (const auto& entry : v.entries) {
                keys.insert(entry.first.bytes);
                non_str_key = non_str_key || entry.first.type != Value::Type::Str;
            }
            const std::set<std::string> expected(f.params.begin(), f.params.end());
            if (non_str_key || keys != expected)
                return reject(why, "bad_params",
                              f.where +
                                  " does not hold exactly "
                                  "the snapshot parameters");
            for (std::size_t i = 0; i < f.params.size(); ++i) {
                double x;
                if (!number(*v.find(f.params[i]), f.where + "." + f.params[i], x, why)) return false;
                const double as_float = static_cast<float>(x);
                if (std::fabs(x) > FLT_MAX || !(as_float >= f.bounds[i].first && as_float <= f.bounds[i].second))
                    return reject(why, "out_of_range", f.where + "." + f.params[i] + " is out of range");
            }
            return true;
        }
    }
    return reject(why, "wrong_type", f.where);
}

}  // namespace

Schema::Schema(const std::string& json_text) {
    Json raw;
    try {
        raw = Json::parse(json_text);
        version_ = raw.at("version").get<int>();
        default_endpoint_ = raw.at("default_endpoint").get<std::string>();
        for (auto it = raw.at("limits").begin(); it != raw.at("limits").end(); ++it) limits_[it.key()] = it.value();
        for (auto it = raw.at("timing").begin(); it != raw.at("timing").end(); ++it) timing_[it.key()] = it.value();
        for (auto it = raw.at("analysis").begin(); it != raw.at("analysis").end(); ++it)
            analysis_[it.key()] = it.value();
        for (const auto& name : raw.at("snapshot_params")) snapshot_params_.push_back(name.get<std::string>());
        for (auto it = raw.at("reasons").begin(); it != raw.at("reasons").end(); ++it) reasons_.push_back(it.key());
        const Json& messages = raw.at("messages");
        for (auto it = messages.begin(); it != messages.end(); ++it) {
            auto spec = std::make_unique<MessageSpec>();
            for (const auto& sender : it.value().at("from")) spec->senders.insert(sender.get<std::string>());
            const std::string limit_name = it.value().value("max_bytes_limit", std::string("max_control_bytes"));
            spec->max_bytes = static_cast<std::size_t>(limits_.at(limit_name));
            spec->fields = compile_fields(it.value().at("fields"), it.key(), raw);
            largest_ = std::max(largest_, spec->max_bytes);
            messages_[it.key()] = std::move(spec);
        }
        decode_limits_.max_str_bytes = static_cast<std::size_t>(limits_.at("max_str_bytes"));
        decode_limits_.max_bin_bytes = static_cast<std::size_t>(limits_.at("max_bin_bytes"));
        decode_limits_.max_array_items = static_cast<std::size_t>(limits_.at("max_array_items"));
        decode_limits_.max_map_items = static_cast<std::size_t>(limits_.at("max_map_items"));
    } catch (const Json::exception& e) {
        throw std::runtime_error(std::string("protocol.json: ") + e.what());
    }
}

Schema::~Schema() = default;

const Schema& Schema::builtin() {
    static const Schema schema(kProtocolJson);
    return schema;
}

double Schema::limit(const std::string& name) const { return limits_.at(name); }
double Schema::timing(const std::string& name) const { return timing_.at(name); }
double Schema::analysis(const std::string& name) const { return analysis_.at(name); }

bool Schema::decode(const std::string& payload, const std::string& role, Message& out, Rejection& why,
                    std::uint64_t* seq, bool* seq_known) const {
    if (seq_known != nullptr) *seq_known = false;
    if (payload.size() > largest_) return reject(why, "oversized", "larger than any message type allows");
    Value value;
    std::string error;
    if (!decode_msgpack(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size(), decode_limits_, value,
                        error))
        return reject(why, "undecodable", error);
    if (value.type != Value::Type::Map) return reject(why, "not_a_map", "the top-level value is not a map");
    for (const char* key : {"v", "type", "seq"})
        if (value.find(key) == nullptr) return reject(why, "missing_field", std::string("envelope field ") + key);
    const Value& v = *value.find("v");
    const Value& type = *value.find("type");
    const Value& s = *value.find("seq");
    if (v.type != Value::Type::Int) return reject(why, "wrong_type", "v must be an unsigned integer");
    if (s.type != Value::Type::Int || s.negative) return reject(why, "wrong_type", "seq must be an unsigned integer");
    if (seq != nullptr) *seq = s.unsigned_value;
    if (seq_known != nullptr) *seq_known = true;
    if (v.negative || v.unsigned_value != static_cast<std::uint64_t>(version_))
        return reject(why, "version", "unsupported protocol version");
    if (type.type != Value::Type::Str) return reject(why, "wrong_type", "type must be a string");
    const auto spec = messages_.find(type.bytes);
    if (spec == messages_.end()) return reject(why, "unknown_type", "unknown message type " + type.bytes.substr(0, 32));
    if (payload.size() > spec->second->max_bytes) return reject(why, "oversized", type.bytes + " over its limit");
    // The sidecar takes what engines and clients send; engines and clients take what the sidecar sends.
    const auto& senders = spec->second->senders;
    const bool accepted =
        role == "sidecar" ? (senders.count("engine") || senders.count("client")) : senders.count("sidecar") != 0;
    if (!accepted) return reject(why, "direction", role + " does not accept " + type.bytes);
    if (!check_fields(spec->second->fields, value, type.bytes, {"v", "type", "seq"}, why)) return false;
    out.type = type.bytes;
    out.seq = s.unsigned_value;
    out.body = std::move(value);
    return true;
}

}  // namespace idaw::plugin::sidecar
