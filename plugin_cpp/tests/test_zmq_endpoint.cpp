// The plugin's ZeroMQ endpoint parser (plugin_cpp/plugin/source/zmq_endpoint.h) on the table the Python parser is
// tested on too (tests/data/zmq_endpoints.json, tests/test_endpoint.py): both must call the same endpoints valid and
// the same ones loopback.
#include "zmq_endpoint.h"

#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

using idaw::plugin::sidecar::not_an_endpoint_message;
using idaw::plugin::sidecar::parse_zmq_endpoint;

namespace {

/// The shared table's rows.
nlohmann::json table() {
    std::ifstream in(IDAW_ZMQ_ENDPOINTS_JSON);
    REQUIRE_MESSAGE(in.good(), "cannot read " IDAW_ZMQ_ENDPOINTS_JSON);
    return nlohmann::json::parse(in).at("endpoints");
}

}  // namespace

TEST_CASE("every endpoint of the shared table is valid and loopback exactly as the table says") {
    const auto rows = table();
    std::set<std::pair<bool, bool>> kinds;
    for (const auto& row : rows) {
        const std::string endpoint = row.at("endpoint");
        const bool valid = row.at("valid");
        const bool loopback = row.at("loopback");
        kinds.insert({valid, loopback});
        const auto parsed = parse_zmq_endpoint(endpoint);
        INFO("endpoint '", endpoint, "': ", row.at("why").get<std::string>());
        CHECK(parsed.valid == valid);
        CHECK(parsed.loopback == loopback);
        if (parsed.valid) {
            CHECK(endpoint.rfind(parsed.transport + "://", 0) == 0);
        } else {
            CHECK(parsed.transport.empty());
        }
    }
    // Each kind is there (an emptied or truncated table would pass vacuously).
    CHECK(rows.size() >= 80);
    CHECK(kinds == std::set<std::pair<bool, bool>>{{true, true}, {true, false}, {false, false}});
}

TEST_CASE("issue 9's endpoints: a loopback-looking host name and a loopback source before a remote destination") {
    CHECK_FALSE(parse_zmq_endpoint("tcp://127.0.0.1.example.org:47800").loopback);
    CHECK_FALSE(parse_zmq_endpoint("tcp://127.0.0.1:1;192.0.2.1:47800").loopback);
    CHECK_FALSE(parse_zmq_endpoint("tcp://127.0.0.1:47948;0.0.0.0:47949").loopback);
    CHECK(parse_zmq_endpoint("tcp://127.0.0.1:47948;127.0.0.1:47949").loopback);
}

TEST_CASE("a malformed endpoint is one line naming it and what to write") {
    CHECK(not_an_endpoint_message("localhost:47800") ==
          "not a ZeroMQ endpoint: localhost:47800 (write tcp://HOST:PORT or ipc://PATH)");
    // The same text idaw/base/endpoint.py not_an_endpoint() gives (tests/test_endpoint.py checks this one too).
    CHECK(not_an_endpoint_message("tcp://a\nb:1\x7f") ==
          "not a ZeroMQ endpoint: tcp://a\\x0ab:1\\x7f (write tcp://HOST:PORT or ipc://PATH)");
}
