// msgpack for the sidecar protocol on the plugin's side: a decoder with msgpack-python's limits and refusals (so both
// sides reject the same bytes) and an encoder that writes the smallest format for each value, as msgpack-python does.
#pragma once

#include <cstddef>
#include <cstdint>
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

/// Python's str.isprintable() for the characters a sidecar sends (used by the schema's string checks).
bool printable(const std::string& s);

/// True for well-formed UTF-8 (no overlong forms, surrogates or code points beyond U+10FFFF), as Python decodes.
bool valid_utf8(const std::string& s);

}  // namespace idaw::plugin::sidecar
