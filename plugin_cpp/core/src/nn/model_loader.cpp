// RTNeural JSON loader: reads the text (files only when they are regular, never blocking on a FIFO), parses it
// within bounds enforced while it runs (BoundedTreeBuilder: depth, top-level keys, objects, array length, values,
// and a tree budget proportional to the text read), checks the top level ({"in_shape": [..., N], "layers": [...]})
// and hands each entry of "layers" to its reader (layer_readers.cpp: one per layer type, with the format). Every
// message is one line of valid UTF-8 (printable()).
#include "idaw/nn/model_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "layer_readers.h"
#include "loader_json.h"

namespace idaw::nn {
namespace {

using loader::count_text;
using loader::fail;
using loader::json;
using loader::kind_of;
using loader::LayerTotals;
using loader::LoadError;
using loader::member;
using loader::show;

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

    LayerTotals totals;
    std::vector<std::unique_ptr<Layer>> built;
    built.reserve(layers->size());
    int width = input;
    for (std::size_t i = 0; i < layers->size(); ++i) {
        built.push_back(loader::read_layer((*layers)[i], static_cast<int>(i), width, limits, totals, *k));
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
