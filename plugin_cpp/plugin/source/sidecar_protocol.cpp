#include "sidecar_protocol.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "sidecar_protocol_json.h"

namespace idaw::plugin::sidecar {

// ---- The schema and its field checks (idaw/base/protocol/schema.py) ----------------------------------------------

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
        // "max_limit" names one of the limits (e.g. max_snapshot): one home for a bound many fields share.
        if (spec.contains("max_limit"))
            f->umax = schema.at("limits").at(spec["max_limit"].get<std::string>()).get<std::uint64_t>();
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
        if (!known) return reject(why, "unknown_field", where + " has no field '" + bounded_text(name, 40) + "'");
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

std::uint64_t next_seq(std::uint64_t seq) noexcept {
    return seq == std::numeric_limits<std::uint64_t>::max() ? 1 : seq + 1;
}

std::string bounded_text(const std::string& text, std::size_t max_bytes) {
    static const std::string kEllipsis = "\xe2\x80\xa6";  // U+2026, three bytes
    std::string clean;
    for (std::size_t i = 0; i < text.size() && clean.size() <= max_bytes;) {
        const auto c = static_cast<unsigned char>(text[i]);
        const std::size_t length = c < 0x80             ? 1
                                   : (c & 0xE0) == 0xC0 ? 2
                                   : (c & 0xF0) == 0xE0 ? 3
                                   : (c & 0xF8) == 0xF0 ? 4
                                                        : 0;
        const std::string piece = length != 0 && i + length <= text.size() ? text.substr(i, length) : std::string();
        if (piece.empty() || !valid_utf8(piece)) {  // not UTF-8: one byte becomes '?', then resynchronise
            clean += '?';
            ++i;
            continue;
        }
        clean += printable(piece) ? piece : std::string("?");
        i += length;
    }
    if (clean.size() <= max_bytes) return clean;
    // Cut at a character boundary with room for the ellipsis (clean is valid UTF-8 now: a byte 10xxxxxx continues
    // the character before it).
    const bool mark = max_bytes >= kEllipsis.size();
    std::size_t end = mark ? max_bytes - kEllipsis.size() : max_bytes;
    while (end > 0 && (static_cast<unsigned char>(clean[end]) & 0xC0) == 0x80) --end;
    clean.resize(end);
    return mark ? clean + kEllipsis : clean;
}

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
    if (spec == messages_.end())
        return reject(why, "unknown_type", "unknown message type " + bounded_text(type.bytes, 32));
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
