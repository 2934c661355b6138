// The sidecar protocol on the plugin's side (idaw/base/protocol/PROTOCOL.md): the checks protocol.json (beside it)
// defines, applied with the same reasons and in the same order as idaw/base/protocol/schema.py, on values decoded by
// msgpack.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "msgpack.h"

namespace idaw::plugin::sidecar {

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

/// The envelope seq after `seq`: one more, and 1 again after 2^64-1 (PROTOCOL.md, "Sequence numbers"). Real-time
/// safe.
std::uint64_t next_seq(std::uint64_t seq) noexcept;

/// `text` made fit for at most `max_bytes` bytes of printable UTF-8 (idaw/base/protocol/schema.py printable_text):
/// characters that are not printable, and bytes that are not UTF-8, become '?'; a longer text is cut at a character
/// boundary and ends in U+2026. For text from a peer that goes into the link's status or into rejection details.
std::string bounded_text(const std::string& text, std::size_t max_bytes);

}  // namespace idaw::plugin::sidecar
