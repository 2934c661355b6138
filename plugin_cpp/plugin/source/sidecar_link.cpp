#include "sidecar_link.h"

#include <soxr.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <zmq.hpp>

#include "curve_keys.h"
#include "sidecar_protocol.h"
#include "zmq_endpoint.h"

namespace idaw::plugin::sidecar {

// ---- SnapshotCell (a seqlock: odd sequence while the writer is busy) -----------------------------------------------

void SnapshotCell::write(std::uint64_t snapshot, const EqValues& values) noexcept {
    const std::uint64_t s = sequence_.load(std::memory_order_relaxed);
    sequence_.store(s + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (std::size_t i = 0; i < values.size(); ++i) values_[i].store(values[i], std::memory_order_relaxed);
    snapshot_.store(snapshot, std::memory_order_relaxed);
    sequence_.store(s + 2, std::memory_order_release);
}

bool SnapshotCell::read(std::uint64_t& snapshot, EqValues& values) const noexcept {
    const std::uint64_t before = sequence_.load(std::memory_order_acquire);
    if (before & 1u) return false;
    EqValues v;
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = values_[i].load(std::memory_order_relaxed);
    const std::uint64_t n = snapshot_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (sequence_.load(std::memory_order_relaxed) != before) return false;
    snapshot = n;
    values = v;
    return true;
}

// ---- Analysis windows ----------------------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

/// Streaming resampling to the analysis rate with libsoxr's HQ recipe: what the Python host's soxr.ResampleStream
/// does, so the plugin and the Python host send the sidecar the same windows (flat to 91 % of the new Nyquist, where
/// the audio encoder's bands end). Runs on the link thread only.
class Decimator {
  public:
    /// From `in_rate` to `out_rate` (<= in_rate) Hz; false (and no output later) when libsoxr refuses the rates.
    bool prepare(double in_rate, double out_rate) {
        soxr_.reset();
        pass_ = std::abs(in_rate - out_rate) < 1e-9;
        ratio_ = out_rate / in_rate;
        if (pass_) return true;
        const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
        soxr_error_t error = nullptr;
        soxr_.reset(soxr_create(in_rate, out_rate, 1, &error, &io, &quality, nullptr));
        if (error != nullptr) soxr_.reset();
        return soxr_ != nullptr;
    }

    /// Appends the output for `n` more input samples to `out` (non-finite input samples count as 0).
    void process(const float* in, std::size_t n, std::vector<float>& out) {
        input_.assign(in, in + n);
        for (float& x : input_)
            if (!std::isfinite(x)) x = 0.0f;
        if (pass_) {
            out.insert(out.end(), input_.begin(), input_.end());
            return;
        }
        if (!soxr_) return;
        std::size_t offset = 0;
        while (offset < n) {
            const std::size_t begin = out.size();
            out.resize(begin + static_cast<std::size_t>(std::ceil(static_cast<double>(n - offset) * ratio_)) + 64);
            std::size_t used = 0, produced = 0;
            if (soxr_process(soxr_.get(), input_.data() + offset, n - offset, &used, out.data() + begin,
                             out.size() - begin, &produced) != nullptr) {
                out.resize(begin);
                return;
            }
            out.resize(begin + produced);
            offset += used;
            if (used == 0 && produced == 0) return;
        }
    }

  private:
    struct Deleter {
        void operator()(soxr_t s) const { soxr_delete(s); }
    };
    std::unique_ptr<struct soxr, Deleter> soxr_;
    std::vector<float> input_;
    double ratio_ = 1.0;
    bool pass_ = true;
};

/// sidecar/analysis.py WindowMaker: the newest window_s seconds every hop_s seconds.
class Windows {
  public:
    /// Sizes for an engine at `engine_rate` Hz and the protocol's analysis settings.
    void prepare(int engine_rate, const Schema& schema) {
        rate_ = std::min(static_cast<int>(schema.analysis("rate")), engine_rate);
        window_n_ = static_cast<std::size_t>(rate_ * schema.analysis("window_s"));
        hop_n_ = std::max<std::size_t>(1, static_cast<std::size_t>(rate_ * schema.analysis("hop_s")));
        decimator_.prepare(engine_rate, rate_);
        buffer_.clear();
        scratch_.clear();
    }

    /// Feeds engine-rate samples; true (with start and samples) when a hop completed.
    bool feed(const float* in, std::size_t n, std::uint64_t& start, std::vector<float>& window) {
        if (n == 0) return false;
        scratch_.clear();
        decimator_.process(in, n, scratch_);
        buffer_.insert(buffer_.end(), scratch_.begin(), scratch_.end());
        if (buffer_.size() > window_n_) buffer_.erase(buffer_.begin(), buffer_.end() - static_cast<long>(window_n_));
        total_out_ += scratch_.size();
        since_hop_ += scratch_.size();
        if (since_hop_ < hop_n_ || buffer_.size() < hop_n_) return false;
        since_hop_ = 0;
        start = total_out_ - buffer_.size();
        window = buffer_;
        return true;
    }

    /// The analysis rate (Hz).
    int rate() const { return rate_; }

  private:
    Decimator decimator_;
    std::vector<float> buffer_, scratch_;
    std::size_t window_n_ = 0, hop_n_ = 1, since_hop_ = 0;
    std::uint64_t total_out_ = 0;
    int rate_ = 0;
};

/// A random session id in 1 .. 2^63-1.
std::uint64_t random_session() {
    std::random_device device;
    std::mt19937_64 rng((static_cast<std::uint64_t>(device()) << 32) ^ device() ^
                        static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
    return (rng() >> 1) | 1u;  // 1 .. 2^63-1
}

}  // namespace

// ---- The link thread -----------------------------------------------------------------------------------------------

/// Everything only the link thread touches.
struct Link::Impl {
    const Schema& schema = Schema::builtin();
    zmq::context_t context{1};
    zmq::socket_t socket{context, zmq::socket_type::dealer};
    zmq::socket_t monitor{context, zmq::socket_type::pair};
    Windows windows;
    std::uint64_t session = random_session();
    std::uint64_t seq = 0;
    std::uint64_t offered = 0;  // newest snapshot put into the mailbox
    EqValues offered_values{};
    Clock::time_point hello_at = Clock::time_point::min();
    Clock::time_point last_heard{};
    std::uint64_t describe_seq = 0;
    Clock::time_point resent_at{};  // the clock's epoch: long past
    std::vector<float> drained = std::vector<float>(8192);
};

Link::Link(Engine& engine, std::string endpoint, std::string key_dir, std::string name, SnapshotCallback on_snapshot,
           void* context)
    : engine_(engine),
      endpoint_(std::move(endpoint)),
      key_dir_(std::move(key_dir)),
      name_(std::move(name)),
      on_snapshot_(on_snapshot),
      context_(context) {
    status_.endpoint = endpoint_;
}

Link::~Link() { stop(); }

void Link::start() {
    if (thread_.joinable()) return;
    stop_.store(false);
    engine_.set_analysis_enabled(true);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.running = true;
    }
    thread_ = std::thread([this] { run(); });
}

void Link::stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    engine_.set_analysis_enabled(false);
    std::lock_guard<std::mutex> lock(mutex_);
    status_.running = false;
    status_.connected = false;
}

void Link::reconnect(std::string endpoint, std::string key_dir) {
    const bool was_running = thread_.joinable();
    stop();
    endpoint_ = std::move(endpoint);
    key_dir_ = std::move(key_dir);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.endpoint = endpoint_;
        status_.last_error.clear();
        status_.handler.clear();
    }
    if (was_running) start();
}

void Link::describe(const std::vector<std::string>& words, double intensity) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (requests_.size() >= kMaxQueuedRequests) requests_.pop_front();  // the link thread is not taking them
    requests_.emplace_back(words, intensity);
    last_words_ = words;
    last_intensity_ = intensity;
    status_.describe_result = "sending...";
}

LinkStatus Link::status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
}

bool Link::is_local_endpoint(const std::string& endpoint) {
    return parse_zmq_endpoint(endpoint).loopback;  // the whole endpoint, as libzmq reads it (zmq_endpoint.h)
}

void Link::run() {
    Impl m;
    const Schema& schema = m.schema;
    const auto heartbeat = std::chrono::milliseconds(static_cast<int>(schema.timing("heartbeat_interval_ms")));
    const auto peer_timeout = std::chrono::milliseconds(static_cast<int>(schema.timing("peer_timeout_ms")));
    const auto pump_interval = std::chrono::milliseconds(20);
    auto fail = [this](const std::string& why) {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.last_error = why;
        status_.running = false;
    };
    auto count = [this](std::map<std::string, std::uint64_t> LinkStatus::*table, const std::string& key) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++(status_.*table)[key];
    };
    auto connected = [this] {
        std::lock_guard<std::mutex> lock(mutex_);
        return status_.connected;
    };
    // A typo must read as a typo, not as a missing key. The whole endpoint is parsed (zmq_endpoint.h); of libzmq's
    // transports the link's DEALER socket can use tcp, ipc and inproc.
    const ZmqEndpoint parsed = parse_zmq_endpoint(endpoint_);
    if (!parsed.valid || (parsed.transport != "tcp" && parsed.transport != "ipc" && parsed.transport != "inproc")) {
        fail(not_an_endpoint_message(endpoint_));
        return;
    }
    // Anything beyond this machine is encrypted and authenticated (PROTOCOL.md): no keys, no connection.
    CurveKeys keys;
    const bool curve = !parsed.loopback;
    if (curve) {
        std::string why;
        if (!load_client_keys(key_dir_, keys, why)) {
            fail("refusing " + endpoint_ + " without CURVE keys: " + why);
            return;
        }
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.last_error.clear();
    }
    m.windows.prepare(static_cast<int>(std::lround(engine_.sample_rate())), schema);
    try {
        m.socket.set(zmq::sockopt::linger, 0);
        m.socket.set(zmq::sockopt::immediate, 1);  // nothing queued for a sidecar that is not there
        m.socket.set(zmq::sockopt::sndhwm, 16);
        m.socket.set(zmq::sockopt::rcvhwm, 256);
        m.socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(schema.limit("zmq_max_message_bytes")));
        m.socket.set(zmq::sockopt::reconnect_ivl, static_cast<int>(schema.timing("reconnect_interval_ms")));
        m.socket.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(schema.timing("reconnect_interval_max_ms")));
        const std::string monitor_address = "inproc://idaw-sidecar-monitor-" + std::to_string(m.session);
        if (zmq_socket_monitor(m.socket.handle(), monitor_address.c_str(),
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
            throw zmq::error_t();
        m.monitor.connect(monitor_address);
        if (curve) {
            m.socket.set(zmq::sockopt::curve_serverkey, keys.server_key);
            m.socket.set(zmq::sockopt::curve_publickey, keys.public_key);
            m.socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
        }
        m.socket.connect(endpoint_);
    } catch (const zmq::error_t& e) {
        fail("cannot connect to " + endpoint_ + ": " + e.what());
        return;
    }

    auto send = [&](const std::string& type, const std::function<void(Writer&)>& fields, std::size_t count_fields) {
        Writer w;
        w.map(3 + count_fields).str("v").uint(static_cast<std::uint64_t>(schema.version()));
        m.seq = next_seq(m.seq);
        w.str("type").str(type).str("seq").uint(m.seq);
        fields(w);
        // We never send what the sidecar would reject: check our own message as the sidecar will.
        Message check_message;
        Rejection why;
        if (!schema.decode(w.bytes(), "sidecar", check_message, why)) {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.last_error = bounded_text("not sent (" + why.reason + "): " + why.detail, kStatusTextBytes);
            return false;
        }
        const auto sent = m.socket.send(zmq::buffer(w.bytes()), zmq::send_flags::dontwait);
        if (!sent) {
            std::lock_guard<std::mutex> lock(mutex_);
            ++status_.send_dropped;
            return false;
        }
        return true;
    };
    auto held = [&](std::uint64_t& snapshot, EqValues& values) {
        // The audio thread's view, unless a newer snapshot still waits for it in the mailbox.
        std::uint64_t n = 0;
        EqValues v{};
        // The audio thread writes only when its EQ changes, so a read rarely has to be repeated.
        for (int tries = 0; tries < 1000 && !held_.read(n, v); ++tries) std::this_thread::yield();
        if (m.offered > n) {
            snapshot = m.offered;
            values = m.offered_values;
        } else {
            snapshot = n;
            values = v;
        }
    };
    auto write_values = [&](Writer& w, const EqValues& values) {
        w.map(values.size());
        for (std::size_t i = 0; i < values.size(); ++i)
            w.str(std::string(kParamSpecs[kEqFirstParam + i].name)).float64(values[i]);
    };
    auto hello = [&] {
        std::uint64_t snapshot;
        EqValues values;
        held(snapshot, values);
        const bool ok = send(
            "hello",
            [&](Writer& w) {
                w.str("session").uint(m.session).str("name").str(name_).str("rate").uint(m.windows.rate());
                w.str("snapshot").uint(snapshot).str("values");
                write_values(w, values);
            },
            5);
        if (ok) m.hello_at = Clock::now();
    };
    auto lost = [&] {
        std::lock_guard<std::mutex> lock(mutex_);
        if (status_.connected) ++status_.losses;
        status_.connected = false;
    };
    auto dispatch = [&](const Message& message) {
        const Value& b = message.body;
        m.last_heard = Clock::now();
        count(&LinkStatus::received, message.type);
        if (message.type == "welcome") {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.connected = true;
            status_.sidecar_session = b.find("session")->unsigned_value;
            status_.handler = bounded_text(b.find("handler")->bytes, kStatusTextBytes);
            ++status_.welcomes;
        } else if (message.type == "heartbeat") {
            bool ours;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                ours = status_.connected && b.find("session")->unsigned_value == status_.sidecar_session;
            }
            if (!ours) hello();  // a sidecar we have not introduced ourselves to (it restarted)
        } else if (message.type == "params") {
            const std::uint64_t snapshot = b.find("snapshot")->unsigned_value;
            if (snapshot <= m.offered) {
                count(&LinkStatus::rejected, "stale");
                return;
            }
            const Value& values = *b.find("values");
            EqValues eq{};
            for (std::size_t i = 0; i < eq.size(); ++i) {
                const Value& v = *values.find(std::string(kParamSpecs[kEqFirstParam + i].name));
                eq[i] = static_cast<float>(v.type == Value::Type::Float ? v.number
                                           : v.negative                 ? static_cast<double>(v.signed_value)
                                                                        : static_cast<double>(v.unsigned_value));
            }
            m.offered = snapshot;
            m.offered_values = eq;
            mailbox_.write(snapshot, eq);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                status_.snapshot = snapshot;
            }
            if (on_snapshot_ != nullptr) on_snapshot_(context_);
        } else if (message.type == "error") {
            const std::string code = b.find("code")->bytes;
            if (b.find("re")->unsigned_value == m.describe_seq && m.describe_seq != 0) {
                std::lock_guard<std::mutex> lock(mutex_);
                status_.describe_result =
                    bounded_text("refused (" + code + "): " + b.find("detail")->bytes, kStatusTextBytes);
            }
            if (code == "hello_required") hello();
        } else if (message.type == "described" && b.find("re")->unsigned_value == m.describe_seq) {
            std::string used;
            for (const Value& word : b.find("used")->items) used += (used.empty() ? "" : ", ") + word.bytes;
            const std::uint64_t snapshot = b.find("snapshot")->unsigned_value;
            std::lock_guard<std::mutex> lock(mutex_);
            status_.describe_result = snapshot == 0 ? std::string("no word the sidecar knows")
                                                    : "snapshot " + std::to_string(snapshot) + " from: " + used;
        }
    };
    auto receive = [&] {
        for (int i = 0; i < 256; ++i) {
            zmq::message_t frame;
            if (!m.socket.recv(frame, zmq::recv_flags::dontwait)) return;
            const std::string payload = frame.to_string();
            bool more = frame.more();  // the other frames of a multi-frame message are read and dropped, not kept
            const bool single = !more;
            while (more) {
                zmq::message_t rest;
                more = m.socket.recv(rest, zmq::recv_flags::none) && rest.more();
            }
            if (!single) {
                count(&LinkStatus::rejected, "frames");
                continue;
            }
            Message message;
            Rejection why;
            if (schema.decode(payload, "engine", message, why))
                dispatch(message);
            else
                count(&LinkStatus::rejected, why.reason);  // the engine never answers a rejected message
        }
    };
    auto socket_events = [&] {
        for (;;) {
            zmq::message_t event;
            if (!m.monitor.recv(event, zmq::recv_flags::dontwait)) return;
            std::uint16_t id = 0;
            if (event.size() >= 2) std::memcpy(&id, event.data(), 2);
            while (event.more()) {
                zmq::message_t rest;
                if (!m.monitor.recv(rest, zmq::recv_flags::none) || !rest.more()) break;
            }
            if (id == ZMQ_EVENT_CONNECTED) hello();  // a (new) sidecar: introduce ourselves at once
            if (id == ZMQ_EVENT_DISCONNECTED) lost();
        }
    };
    auto pump = [&] {
        // Analysis windows: drain everything waiting (at most ~10 s), send the window due now.
        std::uint64_t start = 0;
        std::vector<float> window;
        bool due = false;
        for (int rounds = 0; rounds < 64; ++rounds) {
            const std::size_t n = engine_.analysis_ring().pop(m.drained.data(), m.drained.size());
            if (n == 0) break;
            std::uint64_t s;
            std::vector<float> w;
            if (m.windows.feed(m.drained.data(), n, s, w)) {
                start = s;
                window.swap(w);
                due = true;
            }
            if (n < m.drained.size()) break;
        }
        if (due && connected()) {
            const bool ok = send(
                "audio",
                [&](Writer& w) {
                    w.str("rate").uint(m.windows.rate()).str("start").uint(start);
                    w.str("samples").bin(window.data(), window.size() * sizeof(float));
                },
                3);
            if (ok) {
                std::lock_guard<std::mutex> lock(mutex_);
                ++status_.windows_sent;
            }
        }
        // Describe requests from the editor, and the last description again when the intensity moved since it
        // was asked for (only the latest value, at most every kResendIntervalMs).
        std::vector<std::pair<std::vector<std::string>, double>> requests;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto now = Clock::now();
            if (intensity_ != nullptr && requests_.empty() && !last_words_.empty() &&
                now - m.resent_at >= std::chrono::milliseconds(kResendIntervalMs)) {
                const double intensity = std::clamp(static_cast<double>(intensity_->load()), 0.0, 1.0);
                if (intensity != last_intensity_) {
                    requests_.emplace_back(last_words_, intensity);
                    last_intensity_ = intensity;
                    m.resent_at = now;
                }
            }
            requests.assign(requests_.begin(), requests_.end());
            requests_.clear();
        }
        for (const auto& [words, intensity] : requests) {
            const bool ok = send(
                "describe",
                [&](Writer& w) {
                    w.str("words").array(words.size());
                    for (const auto& word : words) w.str(word);
                    w.str("intensity").float64(intensity);
                },
                2);
            std::lock_guard<std::mutex> lock(mutex_);
            if (ok) {
                m.describe_seq = m.seq;
                status_.describe_result = "sent, waiting for the sidecar";
            } else {
                status_.describe_result = status_.connected ? "not sent (the sidecar is not reading)"
                                                            : "not sent: no sidecar at " + endpoint_;
            }
        }
    };
    auto beat = [&] {
        const auto now = Clock::now();
        if (connected() && now - m.last_heard > peer_timeout) lost();
        if (connected()) {
            std::uint64_t snapshot;
            EqValues values;
            held(snapshot, values);
            send(
                "heartbeat", [&](Writer& w) { w.str("session").uint(m.session).str("snapshot").uint(snapshot); }, 2);
        } else if (m.hello_at == Clock::time_point::min() || now - m.hello_at >= heartbeat) {
            hello();  // not welcomed yet: ask again, once per interval
        }
    };

    auto next_beat = Clock::now(), next_pump = Clock::now();
    while (!stop_.load()) {
        const auto wake = std::min(next_beat, next_pump);
        const auto wait_ms = std::max<long>(
            0, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count()));
        zmq::pollitem_t items[] = {{m.socket.handle(), 0, ZMQ_POLLIN, 0}, {m.monitor.handle(), 0, ZMQ_POLLIN, 0}};
        try {
            zmq::poll(items, 2, std::chrono::milliseconds(std::min<long>(wait_ms + 1, 50)));
            if (items[1].revents & ZMQ_POLLIN) socket_events();
            if (items[0].revents & ZMQ_POLLIN) receive();
            const auto now = Clock::now();
            if (now >= next_pump) {
                next_pump = now + pump_interval;
                pump();
            }
            if (now >= next_beat) {
                next_beat = now + heartbeat;
                beat();
            }
        } catch (const std::exception& e) {  // the link outlives any failure of one step; the audio never notices
            std::lock_guard<std::mutex> lock(mutex_);
            ++status_.internal_errors;
            status_.last_error = bounded_text(e.what(), kStatusTextBytes);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            ++status_.internal_errors;
            status_.last_error = "unknown failure in the link thread";
        }
    }
    if (connected()) {
        send(
            "bye", [&](Writer& w) { w.str("session").uint(m.session); }, 1);
        m.socket.set(zmq::sockopt::linger, 200);  // let the bye leave before the socket closes
    }
    zmq_socket_monitor(m.socket.handle(), nullptr, 0);
}

}  // namespace idaw::plugin::sidecar
