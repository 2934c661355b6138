// msgpack for the sidecar protocol on the plugin's side: a decoder with msgpack-python's limits and refusals (so both
// sides reject the same bytes) and an encoder that writes the smallest format for each value, as msgpack-python does,
// with maps whose headers count their own fields (MapWriter).
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

class MapWriter;

/// Appends msgpack encodings to a byte buffer (the smallest format for each value, as msgpack-python writes).
/// Maps are best written with write_map(), which counts the entries itself.
class Writer {
  public:
    /// A map header for `count` entries (the caller then writes exactly `count` keys and values).
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
    friend class MapWriter;  // begins and finishes maps in place

    void put(std::uint8_t byte) { out_.push_back(static_cast<char>(byte)); }
    void put_be(std::uint64_t value, int bytes);
    /// The smallest map header for `count` entries (1, 3 or 5 bytes): one home for the choice of format.
    static std::string map_header(std::size_t count);
    std::string out_;
    std::size_t open_maps_ = 0;  // MapWriters begun and not yet finished, the innermost being the only writable one
};

/// The fields of one msgpack map being written into a Writer. The map's header is written when the map is finished,
/// with the number of fields written through it: a field written only on some condition is counted only then, so
/// the header cannot disagree with the fields. Obtained from write_map() or MapWriter::map(), never made directly.
class MapWriter {
  public:
    MapWriter(const MapWriter&) = delete;
    MapWriter& operator=(const MapWriter&) = delete;

    /// The field `key` with an unsigned integer.
    MapWriter& uint(const std::string& key, std::uint64_t value);
    /// The field `key` with a UTF-8 string.
    MapWriter& str(const std::string& key, const std::string& value);
    /// The field `key` with a float64.
    MapWriter& float64(const std::string& key, double value);
    /// The field `key` with raw bytes (bin).
    MapWriter& bin(const std::string& key, const void* data, std::size_t size);
    /// The field `key` with an array of strings.
    MapWriter& strings(const std::string& key, const std::vector<std::string>& items);
    /// The field `key` with a map whose fields `fill` writes through the MapWriter it is given (called once, before
    /// this returns; this map takes no field until it has returned).
    template <class Fill>
    MapWriter& map(const std::string& key, Fill&& fill) {
        field(key);
        MapWriter inner(out_);
        fill(inner);
        inner.finish();
        return *this;
    }
    /// How many fields were written so far.
    std::size_t size() const noexcept { return count_; }

  private:
    template <class Fill>
    friend void write_map(Writer& out, Fill&& fill);

    /// Begins a map at the end of `out`: one placeholder byte, the size of every header below 16 entries.
    explicit MapWriter(Writer& out);
    /// Writes `key` and counts the field whose value follows; throws std::logic_error when a map inside this one is
    /// still open (its fields would be counted in the wrong map).
    Writer& field(const std::string& key);
    /// Puts the header for the fields written in place of the placeholder (widening it from 16 entries on).
    void finish();

    Writer& out_;
    std::size_t at_;     // where the header goes in out_
    std::size_t depth_;  // out_.open_maps_ while this map is the innermost open one
    std::size_t count_ = 0;
};

/// Writes one map to `out`: `fill` writes its fields through the MapWriter it is given, and the map's header then
/// counts them. If `fill` throws, `out` is left unfinished (throw it away).
template <class Fill>
void write_map(Writer& out, Fill&& fill) {
    MapWriter map(out);
    fill(map);
    map.finish();
}

/// Python's str.isprintable() for the characters a sidecar sends (used by the schema's string checks).
bool printable(const std::string& s);

/// True for well-formed UTF-8 (no overlong forms, surrogates or code points beyond U+10FFFF), as Python decodes.
bool valid_utf8(const std::string& s);

}  // namespace idaw::plugin::sidecar
