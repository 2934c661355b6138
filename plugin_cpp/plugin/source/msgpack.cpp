#include "msgpack.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace idaw::plugin::sidecar {

// ---- msgpack decoding ----------------------------------------------------------------------------------------------

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

const Value* Value::find(const std::string& key) const {
    if (type != Type::Map) return nullptr;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
        if (it->first.type == Type::Str && it->first.bytes == key) return &it->second;
    return nullptr;
}

namespace {

/// Containers open at once, at most: msgpack-python's unpacker stack (1024), so both sides refuse the same.
constexpr int kMaxDepth = 1024;

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

}  // namespace

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

namespace {

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

std::string Writer::map_header(std::size_t count) {
    Writer header;
    if (count < 16) {
        header.put(static_cast<std::uint8_t>(0x80 | count));
    } else if (count <= 0xFFFF) {
        header.put(0xDE);
        header.put_be(count, 2);
    } else {
        header.put(0xDF);
        header.put_be(count, 4);
    }
    return header.out_;
}

Writer& Writer::map(std::size_t count) {
    out_ += map_header(count);
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

// ---- Maps that count their own fields -------------------------------------------------------------------------------

MapWriter::MapWriter(Writer& out) : out_(out), at_(out.out_.size()), depth_(++out.open_maps_) {
    out_.put(0x80);  // the header of an empty map; finish() puts the real one here
}

Writer& MapWriter::field(const std::string& key) {
    if (out_.open_maps_ != depth_)
        throw std::logic_error("msgpack: a field written to a map while a map in it is open");
    ++count_;
    return out_.str(key);
}

void MapWriter::finish() {
    // Below 16 entries the header is one byte and overwrites the placeholder in place (every protocol message);
    // from 16 on the map16/map32 header is wider and the fields move up by 2 or 4 bytes.
    out_.out_.replace(at_, 1, Writer::map_header(count_));
    --out_.open_maps_;
}

MapWriter& MapWriter::uint(const std::string& key, std::uint64_t value) {
    field(key).uint(value);
    return *this;
}

MapWriter& MapWriter::str(const std::string& key, const std::string& value) {
    field(key).str(value);
    return *this;
}

MapWriter& MapWriter::float64(const std::string& key, double value) {
    field(key).float64(value);
    return *this;
}

MapWriter& MapWriter::bin(const std::string& key, const void* data, std::size_t size) {
    field(key).bin(data, size);
    return *this;
}

MapWriter& MapWriter::strings(const std::string& key, const std::vector<std::string>& items) {
    Writer& out = field(key).array(items.size());
    for (const std::string& item : items) out.str(item);
    return *this;
}

}  // namespace idaw::plugin::sidecar
