#include "sidecar_link.h"

#include "sidecar_link_session.h"
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

// ---- Link: the public face; the link thread itself is a LinkSession ------------------------------------------------

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
    // Samples an earlier run left in the ring belong to the old stream: the new one starts at the engine's
    // analysis_origin(), where heard beats are placed (follow_heard.h). No link thread runs now: this is the reader.
    std::vector<float> stale(4096);
    while (engine_.analysis_ring().pop(stale.data(), stale.size()) == stale.size()) {
    }
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
    status_.following = false;
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

void Link::mood(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_mood_ = text;
    status_.mood_result = "sending...";
}

LinkStatus Link::status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
}

bool Link::is_local_endpoint(const std::string& endpoint) {
    return parse_zmq_endpoint(endpoint).loopback;  // the whole endpoint, as libzmq reads it (zmq_endpoint.h)
}

void Link::run() {
    LinkSession session(*this);
    if (session.open()) session.run();
}

}  // namespace idaw::plugin::sidecar
