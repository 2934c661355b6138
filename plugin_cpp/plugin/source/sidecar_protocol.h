// The sidecar protocol on the plugin's side (sidecar/PROTOCOL.md): msgpack encoding and decoding, and the checks
// sidecar/protocol.json defines, applied with the same reasons and in the same order as sidecar/schema.py.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace idaw::plugin::sidecar {

/// One decoded msgpack value.
struct Value {
    enum class Type { Nil, Bool, Int, Float, Str, Bin, Array, Map };
    Type type = Type::Nil;
    bool boolean = false;
    bool negative = false;  ///< Int: the value is `signed_value` (< 0); else `unsigned_value`
    std::uint64_t unsigned_value = 0;
    std::int64_t signed_value = 0;
    double number = 0.0;                           ///< Float
    std::string bytes;                             ///< Str (UTF-8) or Bin
    std::vector<Value> items;                      ///< Array
    std::vector<std::pair<Value, Value>> entries;  ///< Map, in wire order

    /// The entry of a Map whose key is the string `key` (the last one if repeated), or null.
    const Value* find(const std::string& key) const;
};

/// Byte and item limits the decoder enforces (protocol.json "limits").
struct DecodeLimits {
    std::size_t max_str_bytes = 1024;
    std::size_t max_bin_bytes = 262144;
    std::size_t max_array_items = 64;
    std::size_t max_map_items = 64;
};

/// Decodes exactly one msgpack value filling `size` bytes: no ext types, strings valid UTF-8, map keys strings or
/// bin, lengths within `limits`. Returns false (with a short reason in `error`) otherwise.
bool decode_msgpack(const std::uint8_t* data, std::size_t size, const DecodeLimits& limits, Value& out,
                    std::string& error);

/// Appends msgpack encodings to a byte buffer (the smallest format for each value, as msgpack-python writes).
class Writer {
  public:
    /// A map header for `count` entries.
    Writer& map(std::size_t count);
    /// An array header for `count` items.
    Writer& array(std::size_t count);
    /// A UTF-8 string.
    Writer& str(const std::string& text);
    /// An unsigned integer.
    Writer& uint(std::uint64_t value);
    /// A float64.
    Writer& float64(double value);
    /// Raw bytes (bin).
    Writer& bin(const void* data, std::size_t size);
    /// The encoded bytes.
    const std::string& bytes() const noexcept { return out_; }

  private:
    void put(std::uint8_t byte) { out_.push_back(static_cast<char>(byte)); }
    void put_be(std::uint64_t value, int bytes);
    std::string out_;
};

/// Why a message was rejected: one of protocol.json's `reasons`, and a detail for logs.
struct Rejection {
    std::string reason;
    std::string detail;
};

/// A message that passed every check.
struct Message {
    std::string type;
    std::uint64_t seq = 0;
    Value body;  ///< the whole map (envelope included); fields are read with body.find()
};

/// protocol.json, compiled: limits, timing, analysis, message specs and parameter ranges.
class Schema {
  public:
    /// The schema of the protocol.json text built into the plugin. Throws std::runtime_error if it is broken.
    static const Schema& builtin();
    /// Compiles a protocol.json text. Throws std::runtime_error if it is inconsistent.
    explicit Schema(const std::string& json_text);
    ~Schema();
    Schema(const Schema&) = delete;
    Schema& operator=(const Schema&) = delete;

    /// Checks a received payload as `role` ("engine", "sidecar" or "client") would, in protocol.json's order.
    /// On failure returns false with `why`; `seq` is set (and `seq_known` true) when the envelope could be read.
    bool decode(const std::string& payload, const std::string& role, Message& out, Rejection& why,
                std::uint64_t* seq = nullptr, bool* seq_known = nullptr) const;

    /// The protocol version every message carries in `v`.
    int version() const noexcept { return version_; }
    /// Where the sidecar binds by default (tcp://127.0.0.1:47800).
    const std::string& default_endpoint() const noexcept { return default_endpoint_; }
    /// A value of "limits" (e.g. "max_control_bytes"); throws std::out_of_range when unknown.
    double limit(const std::string& name) const;
    /// A value of "timing" (e.g. "heartbeat_interval_ms"); throws std::out_of_range when unknown.
    double timing(const std::string& name) const;
    /// A value of "analysis" (e.g. "rate"); throws std::out_of_range when unknown.
    double analysis(const std::string& name) const;
    /// Names of the parameters a sidecar controls, in protocol order.
    const std::vector<std::string>& snapshot_params() const noexcept { return snapshot_params_; }
    /// Every reason protocol.json defines.
    const std::vector<std::string>& reasons() const noexcept { return reasons_; }
    /// Largest payload any message type allows.
    std::size_t largest_message() const noexcept { return largest_; }

    struct Field;        ///< one compiled field check (sidecar_protocol.cpp)
    struct MessageSpec;  ///< one message type: senders, byte limit, fields

  private:
    int version_ = 0;
    std::string default_endpoint_;
    std::map<std::string, double> limits_, timing_, analysis_;
    std::vector<std::string> snapshot_params_, reasons_;
    std::map<std::string, std::unique_ptr<MessageSpec>> messages_;
    std::size_t largest_ = 0;
    DecodeLimits decode_limits_;
};

}  // namespace idaw::plugin::sidecar
