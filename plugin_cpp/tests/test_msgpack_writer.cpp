// The plugin's msgpack maps that count their own fields (plugin_cpp/plugin/source/msgpack.h, MapWriter): whatever
// fields are written, on whatever condition, the header says how many, in the smallest format (the bytes the
// hand-counted Writer::map() wrote before), and the plugin's own decoder (the one that checks the sidecar's messages)
// reads the map back whole.
#include "msgpack.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

using idaw::plugin::sidecar::decode_msgpack;
using idaw::plugin::sidecar::DecodeLimits;
using idaw::plugin::sidecar::MapWriter;
using idaw::plugin::sidecar::Value;
using idaw::plugin::sidecar::write_map;
using idaw::plugin::sidecar::Writer;

namespace {

/// `bytes` decoded by the plugin's decoder with `limits`; fails the test when it refuses them.
Value decode(const std::string& bytes, const DecodeLimits& limits = DecodeLimits()) {
    Value value;
    std::string error;
    const bool ok =
        decode_msgpack(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), limits, value, error);
    INFO("decoder: " << error);
    REQUIRE(ok);
    return value;
}

/// The map's unsigned integer field `key`; fails the test when it is missing or not one.
std::uint64_t uint_field(const Value& map, const std::string& key) {
    const Value* v = map.find(key);
    REQUIRE(v != nullptr);
    REQUIRE(v->type == Value::Type::Int);
    return v->unsigned_value;
}

}  // namespace

TEST_CASE("fields written on a condition are counted only when written, in the bytes a hand count gives") {
    const std::string optional[] = {"a", "bb", "ccc", "dddd"};
    for (unsigned mask = 0; mask < 16; ++mask) {
        CAPTURE(mask);
        Writer counted;
        write_map(counted, [&](MapWriter& map) {
            map.str("type", "probe");
            for (unsigned i = 0; i < 4; ++i)
                if (mask & (1u << i)) map.uint(optional[i], 100 + i);
        });
        std::size_t expected = 1;
        for (unsigned i = 0; i < 4; ++i) expected += (mask >> i) & 1u;

        Writer by_hand;
        by_hand.map(expected).str("type").str("probe");
        for (unsigned i = 0; i < 4; ++i)
            if (mask & (1u << i)) by_hand.str(optional[i]).uint(100 + i);
        CHECK(counted.bytes() == by_hand.bytes());

        const Value value = decode(counted.bytes());
        REQUIRE(value.type == Value::Type::Map);
        CHECK(value.entries.size() == expected);
        for (unsigned i = 0; i < 4; ++i) {
            if (mask & (1u << i))
                CHECK(uint_field(value, optional[i]) == 100 + i);
            else
                CHECK(value.find(optional[i]) == nullptr);
        }
    }
}

TEST_CASE("a nested map of 16 or more fields widens its header and the enclosing map still counts right") {
    // 16 fields need map16's 3-byte header: the fields written before the inner map was finished move up by two
    // bytes, and the outer map's header (written last) must still land in its own place.
    for (std::size_t inner_fields : {std::size_t{13}, std::size_t{15}, std::size_t{16}, std::size_t{300}}) {
        CAPTURE(inner_fields);
        const std::vector<std::string> words = {"warm", "bright"};
        Writer counted;
        write_map(counted, [&](MapWriter& map) {
            map.uint("v", 1).map("values", [&](MapWriter& values) {
                for (std::size_t i = 0; i < inner_fields; ++i) values.float64("p" + std::to_string(i), 0.5 * i);
            });
            map.strings("words", words).bin("samples", "\x01\x02\x03\x04", 4).uint("seq", 7);
        });

        Writer by_hand;
        by_hand.map(5).str("v").uint(1).str("values").map(inner_fields);
        for (std::size_t i = 0; i < inner_fields; ++i) by_hand.str("p" + std::to_string(i)).float64(0.5 * i);
        by_hand.str("words").array(2).str("warm").str("bright").str("samples").bin("\x01\x02\x03\x04", 4);
        by_hand.str("seq").uint(7);
        CHECK(counted.bytes() == by_hand.bytes());

        DecodeLimits limits;
        limits.max_map_items = 1000;
        const Value value = decode(counted.bytes(), limits);
        REQUIRE(value.entries.size() == 5);
        CHECK(uint_field(value, "v") == 1);
        CHECK(uint_field(value, "seq") == 7);
        const Value* values = value.find("values");
        REQUIRE(values != nullptr);
        REQUIRE(values->type == Value::Type::Map);
        REQUIRE(values->entries.size() == inner_fields);
        const Value* last = values->find("p" + std::to_string(inner_fields - 1));
        REQUIRE(last != nullptr);
        CHECK(last->number == 0.5 * static_cast<double>(inner_fields - 1));
        const Value* listed = value.find("words");
        REQUIRE(listed != nullptr);
        REQUIRE(listed->items.size() == 2);
        CHECK(listed->items[1].bytes == "bright");
        CHECK(value.find("samples")->bytes == std::string("\x01\x02\x03\x04", 4));
    }
}

TEST_CASE("a map of 65536 fields gets map32's header") {
    Writer counted;
    write_map(counted, [](MapWriter& map) {
        for (std::uint64_t i = 0; i < 65536; ++i) map.uint(std::to_string(i), i);
    });
    REQUIRE(!counted.bytes().empty());
    CHECK(static_cast<std::uint8_t>(counted.bytes()[0]) == 0xDF);
    DecodeLimits limits;
    limits.max_map_items = 65536;
    const Value value = decode(counted.bytes(), limits);
    CHECK(value.entries.size() == 65536);
    CHECK(uint_field(value, "65535") == 65535);
}

TEST_CASE("a map with no fields is the empty map") {
    Writer counted;
    write_map(counted, [](MapWriter& map) { map.map("nothing", [](MapWriter&) {}); });
    CHECK(counted.bytes() == std::string("\x81\xA7nothing\x80"));
    const Value value = decode(counted.bytes());
    REQUIRE(value.find("nothing") != nullptr);
    CHECK(value.find("nothing")->type == Value::Type::Map);
    CHECK(value.find("nothing")->entries.empty());
}

TEST_CASE("a field written to the enclosing map while a nested one is open is refused, not miscounted") {
    Writer counted;
    CHECK_THROWS_AS(write_map(counted,
                              [](MapWriter& outer) {
                                  outer.map("inner", [&](MapWriter& inner) {
                                      inner.uint("fine", 1);
                                      outer.uint("misplaced", 2);  // would land inside "inner", counted in "outer"
                                  });
                              }),
                    std::logic_error);
}
