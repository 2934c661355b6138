#include "sidecar_link_session.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <thread>

#include "zmq_endpoint.h"

namespace idaw::plugin::sidecar {

namespace {

/// A random session id in 1 .. 2^63-1.
std::uint64_t random_session() {
    std::random_device device;
    std::mt19937_64 rng((static_cast<std::uint64_t>(device()) << 32) ^ device() ^
                        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    return (rng() >> 1) | 1u;  // 1 .. 2^63-1
}

/// The protocol name of EQ parameter `i` of EqValues (snapshot_params order).
std::string eq_name(std::size_t i) { return std::string(kParamSpecs[kEqFirstParam + i].name); }

/// A number field the schema has checked (an Int or a Float) as a double.
double number_of(const Value& v) {
    return v.type == Value::Type::Float ? v.number
           : v.negative                 ? static_cast<double>(v.signed_value)
                                        : static_cast<double>(v.unsigned_value);
}

}  // namespace

LinkSession::LinkSession(Link& link)
    : link_(link),
      schema_(Schema::builtin()),
      heartbeat_(static_cast<int>(schema_.timing("heartbeat_interval_ms"))),
      peer_timeout_(static_cast<int>(schema_.timing("peer_timeout_ms"))),
      session_(random_session()),
      heard_count_(link.heard_.count()) {}  // the audio thread compares counts across link restarts: never go back

// ---- Setting up ----------------------------------------------------------------------------------------------------

bool LinkSession::open() {
    // A typo must read as a typo, not as a missing key. The whole endpoint is parsed (zmq_endpoint.h); of libzmq's
    // transports the link's DEALER socket can use tcp, ipc and inproc.
    const ZmqEndpoint parsed = parse_zmq_endpoint(link_.endpoint_);
    if (!parsed.valid || (parsed.transport != "tcp" && parsed.transport != "ipc" && parsed.transport != "inproc"))
        return fail(not_an_endpoint_message(link_.endpoint_));
    // Anything beyond this machine is encrypted and authenticated (PROTOCOL.md): no keys, no connection.
    CurveKeys keys;
    const bool curve = !parsed.loopback;
    if (curve) {
        std::string why;
        if (!load_client_keys(link_.key_dir_, keys, why))
            return fail("refusing " + link_.endpoint_ + " without CURVE keys: " + why);
    }
    with_status([](LinkStatus& status) { status.last_error.clear(); });
    windows_.prepare(static_cast<int>(std::lround(link_.engine_.sample_rate())), schema_);
    return connect(curve ? &keys : nullptr);
}

bool LinkSession::connect(const CurveKeys* keys) {
    try {
        socket_.set(zmq::sockopt::linger, 0);
        socket_.set(zmq::sockopt::immediate, 1);  // nothing queued for a sidecar that is not there
        socket_.set(zmq::sockopt::sndhwm, 16);
        socket_.set(zmq::sockopt::rcvhwm, 256);
        socket_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(schema_.limit("zmq_max_message_bytes")));
        socket_.set(zmq::sockopt::reconnect_ivl, static_cast<int>(schema_.timing("reconnect_interval_ms")));
        socket_.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(schema_.timing("reconnect_interval_max_ms")));
        const std::string monitor_address = "inproc://idaw-sidecar-monitor-" + std::to_string(session_);
        if (zmq_socket_monitor(socket_.handle(), monitor_address.c_str(),
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
            throw zmq::error_t();
        monitor_.connect(monitor_address);
        if (keys != nullptr) {
            socket_.set(zmq::sockopt::curve_serverkey, keys->server_key);
            socket_.set(zmq::sockopt::curve_publickey, keys->public_key);
            socket_.set(zmq::sockopt::curve_secretkey, keys->secret_key);
        }
        socket_.connect(link_.endpoint_);
    } catch (const zmq::error_t& e) {
        return fail("cannot connect to " + link_.endpoint_ + ": " + e.what());
    }
    return true;
}

// ---- The loop ------------------------------------------------------------------------------------------------------

void LinkSession::run() {
    next_pump_ = next_beat_ = Clock::now();
    while (!link_.stop_.load()) {
        try {
            poll_once();
        } catch (const std::exception& e) {  // the link outlives any failure of one step; the audio never notices
            const std::string what = bounded_text(e.what(), kStatusTextBytes);
            with_status([&](LinkStatus& status) {
                ++status.internal_errors;
                status.last_error = what;
            });
        } catch (...) {
            with_status([](LinkStatus& status) {
                ++status.internal_errors;
                status.last_error = "unknown failure in the link thread";
            });
        }
    }
    if (connected()) send_bye();
    zmq_socket_monitor(socket_.handle(), nullptr, 0);
}

void LinkSession::poll_once() {
    const auto wake = std::min(next_beat_, next_pump_);
    const auto wait_ms = std::max<long>(
        0, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count()));
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}, {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(std::min<long>(wait_ms + 1, kMaxPollMs)));
    if (items[1].revents & ZMQ_POLLIN) on_socket_events();
    if (items[0].revents & ZMQ_POLLIN) receive();
    const auto now = Clock::now();
    if (now >= next_pump_) {
        next_pump_ = now + kPumpInterval;
        pump();
    }
    if (now >= next_beat_) {
        next_beat_ = now + heartbeat_;
        beat();
    }
}

void LinkSession::on_socket_events() {
    for (;;) {
        zmq::message_t event;
        if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return;
        std::uint16_t id = 0;
        if (event.size() >= 2) std::memcpy(&id, event.data(), 2);
        while (event.more()) {  // the event's second frame (the address) is not needed
            zmq::message_t rest;
            if (!monitor_.recv(rest, zmq::recv_flags::none) || !rest.more()) break;
        }
        if (id == ZMQ_EVENT_CONNECTED) send_hello();  // a (new) sidecar: introduce ourselves at once
        if (id == ZMQ_EVENT_DISCONNECTED) on_lost();
    }
}

void LinkSession::receive() {
    for (int i = 0; i < kMaxReceivesPerWake; ++i)
        if (!receive_one()) return;
}

bool LinkSession::receive_one() {
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return false;
    if (frame.more()) {
        // The protocol's messages are one frame: the other frames of a multi-frame message are read and dropped,
        // never kept, so thousands of them cost no memory.
        bool more = true;
        while (more) {
            zmq::message_t rest;
            more = socket_.recv(rest, zmq::recv_flags::none) && rest.more();
        }
        count_rejected("frames");
        return true;
    }
    Message message;
    Rejection why;
    if (schema_.decode(frame.to_string(), "engine", message, why))
        on_message(message);
    else
        count_rejected(why.reason);  // the engine never answers a rejected message
    return true;
}

void LinkSession::pump() {
    pump_audio();
    pump_requests();
    pump_follow();
}

void LinkSession::pump_audio() {
    // Drain everything waiting (at most kMaxDrainRounds reads), keep the newest window completed.
    std::uint64_t start = 0;
    std::vector<float> window;
    bool due = false;
    for (int rounds = 0; rounds < kMaxDrainRounds; ++rounds) {
        const std::size_t n = link_.engine_.analysis_ring().pop(drained_.data(), drained_.size());
        if (n == 0) break;
        std::uint64_t s;
        std::vector<float> w;
        if (windows_.feed(drained_.data(), n, s, w)) {
            start = s;
            window.swap(w);
            due = true;
        }
        if (n < drained_.size()) break;
    }
    if (due && connected()) send_audio(start, window);
}

void LinkSession::pump_requests() {
    for (const auto& [words, intensity] : take_requests()) send_describe(words, intensity);
    std::string mood;
    {
        std::lock_guard<std::mutex> lock(link_.mutex_);
        mood.swap(link_.pending_mood_);
    }
    if (!mood.empty()) send_mood(mood);
}

std::vector<LinkSession::Request> LinkSession::take_requests() {
    std::lock_guard<std::mutex> lock(link_.mutex_);
    const auto now = Clock::now();
    if (link_.intensity_ != nullptr && link_.requests_.empty() && !link_.last_words_.empty() &&
        now - resent_at_ >= std::chrono::milliseconds(Link::kResendIntervalMs)) {
        const double intensity = std::clamp(static_cast<double>(link_.intensity_->load()), 0.0, 1.0);
        if (intensity != link_.last_intensity_) {
            link_.requests_.emplace_back(link_.last_words_, intensity);
            link_.last_intensity_ = intensity;
            resent_at_ = now;
        }
    }
    std::vector<Request> requests(link_.requests_.begin(), link_.requests_.end());
    link_.requests_.clear();
    return requests;
}

void LinkSession::pump_follow() {
    if (link_.follow_ == nullptr || !connected()) return;
    const bool on = link_.follow_->load(std::memory_order_relaxed) >= 0.5f;
    // A sidecar follows nobody unasked: an off switch that was never on has nothing to say.
    if (static_cast<int>(on) == follow_told_ || (!on && !follow_ever_on_)) return;
    send_follow(on);  // when the socket cannot take it now, the next pump tries again
}

void LinkSession::beat() {
    const auto now = Clock::now();
    if (connected() && now - last_heard_ > peer_timeout_) on_lost();
    if (connected())
        send_heartbeat();
    else if (hello_at_ == Clock::time_point::min() || now - hello_at_ >= heartbeat_)
        send_hello();  // not welcomed yet: ask again, once per interval
}

// ---- Messages received ---------------------------------------------------------------------------------------------

void LinkSession::on_message(const Message& message) {
    last_heard_ = Clock::now();
    count_received(message.type);
    const Value& body = message.body;
    if (message.type == "welcome")
        on_welcome(body);
    else if (message.type == "heartbeat")
        on_heartbeat(body);
    else if (message.type == "params")
        on_params(body);
    else if (message.type == "error")
        on_error(body);
    else if (message.type == "described")
        on_described(body);
    else if (message.type == "ack")
        on_ack(body);
    else if (message.type == "mood_read")
        on_mood_read(body);
    else if (message.type == "heard")
        on_heard(body);
}

void LinkSession::on_welcome(const Value& body) {
    with_status([&](LinkStatus& status) {
        status.connected = true;
        status.sidecar_session = body.find("session")->unsigned_value;
        status.handler = bounded_text(body.find("handler")->bytes, kStatusTextBytes);
        ++status.welcomes;
        status.following = false;
    });
    follow_told_ = -1;  // a (restarted) sidecar may have forgotten: tell it again at the next pump
}

void LinkSession::on_heartbeat(const Value& body) {
    const std::uint64_t session = body.find("session")->unsigned_value;
    const bool ours =
        with_status([&](const LinkStatus& status) { return status.connected && session == status.sidecar_session; });
    if (!ours) send_hello();  // a sidecar we have not introduced ourselves to (it restarted)
}

void LinkSession::on_params(const Value& body) {
    const std::uint64_t snapshot = body.find("snapshot")->unsigned_value;
    if (snapshot <= offered_) {
        count_rejected("stale");
        return;
    }
    const Value& values = *body.find("values");
    EqValues eq{};
    for (std::size_t i = 0; i < eq.size(); ++i) eq[i] = static_cast<float>(number_of(*values.find(eq_name(i))));
    offered_ = snapshot;
    offered_values_ = eq;
    link_.mailbox_.write(snapshot, eq);
    with_status([&](LinkStatus& status) { status.snapshot = snapshot; });
    if (link_.on_snapshot_ != nullptr) link_.on_snapshot_(link_.context_);
}

void LinkSession::on_error(const Value& body) {
    const std::string code = body.find("code")->bytes;
    if (body.find("re")->unsigned_value == describe_seq_ && describe_seq_ != 0) {
        const std::string result =
            bounded_text("refused (" + code + "): " + body.find("detail")->bytes, kStatusTextBytes);
        with_status([&](LinkStatus& status) { status.describe_result = result; });
    }
    if (body.find("re")->unsigned_value == mood_seq_ && mood_seq_ != 0) {
        const std::string result =
            bounded_text("refused (" + code + "): " + body.find("detail")->bytes, kStatusTextBytes);
        with_status([&](LinkStatus& status) { status.mood_result = result; });
    }
    if (follow_seq_ != 0 && body.find("re")->unsigned_value == follow_seq_) {
        const std::string refused = bounded_text(code + ": " + body.find("detail")->bytes, kStatusTextBytes);
        with_status([&](LinkStatus& status) {
            ++status.follow_refusals;
            status.follow_refused = refused;
            status.following = false;
        });
        follow_seq_ = 0;  // asked again after the next welcome, or when the switch moves
    }
    if (code == "hello_required") send_hello();
}

void LinkSession::on_described(const Value& body) {
    if (body.find("re")->unsigned_value != describe_seq_) return;  // the answer to a request since replaced
    std::string used;
    for (const Value& word : body.find("used")->items) used += (used.empty() ? "" : ", ") + word.bytes;
    const std::uint64_t snapshot = body.find("snapshot")->unsigned_value;
    const std::string result = snapshot == 0 ? std::string("no word the sidecar knows")
                                             : "snapshot " + std::to_string(snapshot) + " from: " + used;
    with_status([&](LinkStatus& status) { status.describe_result = result; });
}

void LinkSession::on_mood_read(const Value& body) {
    if (mood_seq_ == 0 || body.find("re")->unsigned_value != mood_seq_) return;  // an answer to a replaced request
    mood_seq_ = 0;
    // The schema has checked both are finite and within -1..1.
    const auto valence = static_cast<float>(number_of(*body.find("valence")));
    const auto arousal = static_cast<float>(number_of(*body.find("arousal")));
    char text[64];
    std::snprintf(text, sizeof text, "valence %+.2f, arousal %+.2f", valence, arousal);
    with_status([&](LinkStatus& status) {
        status.mood_valence = valence;
        status.mood_arousal = arousal;
        ++status.moods_read;
        status.mood_result = text;
    });
    if (link_.on_snapshot_ != nullptr) link_.on_snapshot_(link_.context_);
}

void LinkSession::on_ack(const Value& body) {
    if (follow_seq_ == 0 || body.find("re")->unsigned_value != follow_seq_) return;  // feedback, or an older follow
    follow_seq_ = 0;
    const bool on = follow_told_ == 1;
    with_status([&](LinkStatus& status) {
        status.following = on;
        if (on) status.follow_refused.clear();
    });
}

void LinkSession::on_heard(const Value& body) {
    // The schema has checked every field's type and range. A heard that comes after an off (or before any follow:
    // a peer we never asked) changes nothing.
    if (follow_told_ != 1) return;
    const double tempo = number_of(*body.find("tempo_bpm"));
    if (!(tempo > 0.0)) return;  // no beat heard yet: the generator keeps the host's tempo and the plugin's key
    const std::uint64_t tonic = body.find("key_tonic")->unsigned_value;
    const std::string& emotion = body.find("emotion")->bytes;
    HeardValues v;
    v.count = ++heard_count_;
    v.tempo_bpm = std::clamp(static_cast<float>(tempo), MidiControl::kMinTempo, MidiControl::kMaxTempo);
    // The beat's index in the stream we sent, on the engine's sample clock (>= 1: 0 means no anchor).
    const Engine& engine = link_.engine_;
    v.beat_anchor = std::max<std::uint64_t>(
        1, engine_time(body.find("beat")->unsigned_value, engine.sample_rate(), static_cast<double>(windows_.rate()),
                       engine.analysis_origin(), engine.counters().analysis_dropped));
    v.has_key = tonic < 12;
    v.key_tonic = static_cast<std::uint8_t>(v.has_key ? tonic : 0);
    v.key_minor = body.find("key_minor")->unsigned_value != 0;
    v.has_emotion = !emotion.empty();
    v.valence = static_cast<float>(number_of(*body.find("valence")));
    v.arousal = static_cast<float>(number_of(*body.find("arousal")));
    link_.heard_.write(v);
    const std::string shown = bounded_text(emotion, kStatusTextBytes);
    with_status([&](LinkStatus& status) {
        status.heard_used = v.count;
        status.heard_tempo_bpm = v.tempo_bpm;
        status.heard_key_tonic = v.has_key ? v.key_tonic : 12;
        status.heard_key_minor = v.key_minor;
        status.heard_emotion = shown;
    });
}

void LinkSession::on_lost() {
    with_status([](LinkStatus& status) {
        if (status.connected) ++status.losses;
        status.connected = false;
        status.following = false;
    });
}

// ---- Messages sent -------------------------------------------------------------------------------------------------

bool LinkSession::send(const std::string& type, const std::function<void(MapWriter&)>& fields) {
    seq_ = next_seq(seq_);
    Writer w;
    write_map(w, [&](MapWriter& message) {
        message.uint("v", static_cast<std::uint64_t>(schema_.version())).str("type", type).uint("seq", seq_);
        fields(message);
    });
    // We never send what the sidecar would reject: check our own message as the sidecar will.
    Message check_message;
    Rejection why;
    if (!schema_.decode(w.bytes(), "sidecar", check_message, why)) {
        const std::string error = bounded_text("not sent (" + why.reason + "): " + why.detail, kStatusTextBytes);
        with_status([&](LinkStatus& status) { status.last_error = error; });
        return false;
    }
    if (!socket_.send(zmq::buffer(w.bytes()), zmq::send_flags::dontwait)) {
        with_status([](LinkStatus& status) { ++status.send_dropped; });
        return false;
    }
    return true;
}

void LinkSession::send_hello() {
    std::uint64_t snapshot;
    EqValues values;
    held(snapshot, values);
    const bool ok = send("hello", [&](MapWriter& message) {
        message.uint("session", session_).str("name", link_.name_).uint("rate", windows_.rate());
        message.uint("snapshot", snapshot).map("values", [&](MapWriter& map) {
            for (std::size_t i = 0; i < values.size(); ++i) map.float64(eq_name(i), values[i]);
        });
    });
    if (ok) hello_at_ = Clock::now();
}

void LinkSession::send_heartbeat() {
    std::uint64_t snapshot;
    EqValues values;
    held(snapshot, values);
    send("heartbeat", [&](MapWriter& message) { message.uint("session", session_).uint("snapshot", snapshot); });
}

void LinkSession::send_audio(std::uint64_t start, const std::vector<float>& window) {
    const bool ok = send("audio", [&](MapWriter& message) {
        message.uint("rate", windows_.rate()).uint("start", start);
        message.bin("samples", window.data(), window.size() * sizeof(float));
    });
    if (ok) with_status([](LinkStatus& status) { ++status.windows_sent; });
}

bool LinkSession::send_follow(bool on) {
    if (!send("follow", [&](MapWriter& message) { message.uint("on", on ? 1u : 0u); })) return false;
    follow_told_ = on ? 1 : 0;
    follow_ever_on_ = follow_ever_on_ || on;
    follow_seq_ = seq_;
    with_status([&](LinkStatus& status) {
        ++status.follow_sent;
        if (!on) status.following = false;
    });
    return true;
}

void LinkSession::send_describe(const std::vector<std::string>& words, double intensity) {
    const bool ok =
        send("describe", [&](MapWriter& message) { message.strings("words", words).float64("intensity", intensity); });
    if (ok) describe_seq_ = seq_;
    report_sent(ok, &LinkStatus::describe_result);
}

void LinkSession::report_sent(bool ok, std::string LinkStatus::*result) {
    with_status([&](LinkStatus& status) {
        if (ok)
            status.*result = "sent, waiting for the sidecar";
        else
            status.*result = status.connected ? "not sent (the sidecar is not reading)"
                                              : "not sent: no sidecar at " + link_.endpoint_;
    });
}

void LinkSession::send_mood(const std::string& text) {
    const bool ok = send("mood", [&](MapWriter& message) { message.str("text", text); });
    if (ok) mood_seq_ = seq_;
    report_sent(ok, &LinkStatus::mood_result);
}

void LinkSession::send_bye() {
    send("bye", [&](MapWriter& message) { message.uint("session", session_); });
    socket_.set(zmq::sockopt::linger, 200);  // let the bye leave before the socket closes
}

// ---- Shared state --------------------------------------------------------------------------------------------------

void LinkSession::held(std::uint64_t& snapshot, EqValues& values) const {
    std::uint64_t n = 0;
    EqValues v{};
    // The audio thread writes only when its EQ changes, so a read rarely has to be repeated.
    for (int tries = 0; tries < 1000 && !link_.held_.read(n, v); ++tries) std::this_thread::yield();
    if (offered_ > n) {  // a newer snapshot still waits for the audio thread in the mailbox
        snapshot = offered_;
        values = offered_values_;
    } else {
        snapshot = n;
        values = v;
    }
}

void LinkSession::count_received(const std::string& type) const {
    with_status([&](LinkStatus& status) { ++status.received[type]; });
}

void LinkSession::count_rejected(const std::string& reason) const {
    with_status([&](LinkStatus& status) { ++status.rejected[reason]; });
}

bool LinkSession::connected() const {
    return with_status([](const LinkStatus& status) { return status.connected; });
}

bool LinkSession::fail(const std::string& why) const {
    with_status([&](LinkStatus& status) {
        status.last_error = why;
        status.running = false;
    });
    return false;
}

}  // namespace idaw::plugin::sidecar
