// The plugin's link to the sidecar (idaw/base/protocol/PROTOCOL.md, role "engine"): one ZeroMQ DEALER owned by one
// non-audio thread, as realtime/sidecar_link/link.py does it for the Python host.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "follow_heard.h"
#include "idaw/engine.h"

namespace idaw::plugin::sidecar {

class LinkSession;

/// The 13 EQ values of the protocol's snapshot_params, in the engine's (SAFE-DB) order.
using EqValues = std::array<float, kNumEqParams>;

/// A snapshot number and EQ values handed between two threads without locks: one writer, one reader; a read that
/// overlaps a write reports failure (try again later) instead of returning a mix.
class SnapshotCell {
  public:
    /// Writer: publishes `snapshot` and `values`. Real-time safe.
    void write(std::uint64_t snapshot, const EqValues& values) noexcept;
    /// Reader: the last published pair; false when a write was in progress (nothing is changed then).
    /// Real-time safe.
    bool read(std::uint64_t& snapshot, EqValues& values) const noexcept;
    /// The last published snapshot number (may be newer than the values a concurrent read() returns).
    std::uint64_t snapshot() const noexcept { return snapshot_.load(std::memory_order_acquire); }

  private:
    std::atomic<std::uint64_t> sequence_{0};
    std::atomic<std::uint64_t> snapshot_{0};
    std::array<std::atomic<float>, kNumEqParams> values_{};
};

/// What the link knows, for the editor and for tests. A copy.
struct LinkStatus {
    bool running = false;
    bool connected = false;  ///< welcomed by a sidecar that has not gone quiet since
    std::string endpoint;
    std::string handler;  ///< the sidecar's describe handler (from welcome)
    std::uint64_t sidecar_session = 0;
    std::uint64_t snapshot = 0;  ///< newest sidecar snapshot handed to the audio thread (0: none)
    std::uint64_t welcomes = 0, losses = 0, windows_sent = 0, send_dropped = 0;
    std::uint64_t internal_errors = 0;              ///< failures of one step of the link thread (it went on)
    std::map<std::string, std::uint64_t> received;  ///< valid messages by type
    std::map<std::string, std::uint64_t> rejected;  ///< rejected messages by reason
    std::string last_error;                         ///< why the link cannot run (bad endpoint), or ""
    std::string describe_result;                    ///< what the last describe request came to
    std::string mood_result;                        ///< what the last mood request came to
    std::uint64_t moods_read = 0;                   ///< mood_read answers to our latest mood requests
    float mood_valence = 0.0f;                      ///< the newest of them: valence -1..1
    float mood_arousal = 0.0f;                      ///< ... and arousal -1..1

    // Following (the midi_follow switch; the protocol's follow, ack and heard messages).
    bool following = false;             ///< the sidecar acknowledged follow on, and was not told off or lost since
    std::uint64_t follow_sent = 0;      ///< follow messages sent (on or off)
    std::uint64_t follow_refusals = 0;  ///< error answers to a follow (e.g. 'full': the sidecar follows enough)
    std::string follow_refused;         ///< the last refusal ("full: ..."), "" after a follow was acknowledged
    std::uint64_t heard_used = 0;       ///< heard messages with a beat, handed to the audio thread
    float heard_tempo_bpm = 0.0f;       ///< the newest of those: tempo
    int heard_key_tonic = 12;           ///< ... key's tonic (12: no key heard)
    bool heard_key_minor = false;       ///< ... minor key
    std::string heard_emotion;          ///< ... the adapter's emotion ("" = none)
};

/// The most bytes of text from a message (or an error) the link keeps in its status (cut at a UTF-8 boundary).
constexpr std::size_t kStatusTextBytes = 256;

/// Connects one engine to a sidecar. The link thread drains the engine's analysis ring and sends windows, answers
/// hello/heartbeat/params as PROTOCOL.md says, and hands each newer `params` snapshot to the audio thread through
/// mailbox(); the audio thread reports what it applied through held(). With the follow switch on (watch_follow()) it
/// asks the sidecar to follow and hands what it hears to the audio thread through heard(). Without a sidecar nothing
/// changes for the audio, and ZeroMQ keeps trying to connect (every 50..200 ms).
class Link {
  public:
    /// Called on the link thread when a new snapshot is in the mailbox (the plugin then updates its parameters on
    /// the message thread).
    using SnapshotCallback = void (*)(void* context);

    /// A link for `engine` (already prepared) to `endpoint`, introducing itself as `name`; a non-loopback endpoint
    /// takes its CURVE keys from `key_dir` (curve_keys.h). Nothing runs yet.
    Link(Engine& engine, std::string endpoint, std::string key_dir, std::string name, SnapshotCallback on_snapshot,
         void* context);
    /// Says bye (when connected) and stops the thread.
    ~Link();
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    /// Starts the link thread and the engine's analysis copy. Not real-time safe.
    void start();
    /// Stops the thread (bye first when connected) and the analysis copy. Not real-time safe.
    void stop();
    /// Points the link at another endpoint / key folder: stops the thread and starts it again if it was running
    /// (the new sidecar gets a hello with the snapshot the audio thread holds). Message thread, never audio.
    void reconnect(std::string endpoint, std::string key_dir);
    /// Lets the link thread watch the intensity parameter: when it moves after a description was sent, the last
    /// description is sent again with the new value, at most every kResendInterval, only the latest value. Set
    /// before start(); `value` must outlive the link.
    void watch_intensity(const std::atomic<float>* value) noexcept { intensity_ = value; }
    /// Lets the link thread watch the follow switch (>= 0.5: on): while a sidecar has welcomed the plugin it is told
    /// follow on or off whenever the switch moves, and again after each welcome (a restarted sidecar forgets); its
    /// heard messages reach the audio thread through heard(). Off and never on: nothing is sent. Set before start();
    /// `value` must outlive the link.
    void watch_follow(const std::atomic<float>* value) noexcept { follow_ = value; }
    /// Shortest time between two describe requests that re-send the last description for a new intensity.
    static constexpr int kResendIntervalMs = 100;
    /// Describe requests kept while the link thread does not take them (e.g. it is stopped); the oldest go first.
    static constexpr std::size_t kMaxQueuedRequests = 16;

    /// Queues a describe request (words, intensity 0..1) for the link thread. Any non-audio thread.
    void describe(const std::vector<std::string>& words, double intensity);
    /// The most bytes of a mood text (protocol.json: mood.text).
    static constexpr std::size_t kMaxMoodBytes = 500;
    /// Queues a mood request (1..kMaxMoodBytes bytes of UTF-8) for the link thread; a newer one replaces one not yet
    /// sent. Its answer counts in LinkStatus::moods_read and calls the snapshot callback. Any non-audio thread.
    void mood(const std::string& text);
    /// A copy of the status. Any non-audio thread.
    LinkStatus status() const;

    /// Sidecar snapshots for the audio thread (written by the link thread only).
    const SnapshotCell& mailbox() const noexcept { return mailbox_; }
    /// What the audio thread runs: it writes here after taking up a snapshot or a change of the host's EQ.
    SnapshotCell& held() noexcept { return held_; }
    /// What the sidecar heard, for the audio thread (written by the link thread only; see follow_heard.h).
    const HeardCell& heard() const noexcept { return heard_; }

    /// True for ipc://, inproc:// and tcp:// to a loopback address or localhost (no CURVE needed, PROTOCOL.md).
    static bool is_local_endpoint(const std::string& endpoint);

  private:
    friend class LinkSession;  ///< the link thread's body: its socket and state (sidecar_link_session.h)
    /// The link thread: one LinkSession, from connecting to bye.
    void run();

    Engine& engine_;
    std::string endpoint_;  // changed only while the thread is stopped
    std::string key_dir_;   // likewise
    const std::string name_;
    SnapshotCallback on_snapshot_;
    void* context_;
    SnapshotCell mailbox_;
    SnapshotCell held_;
    HeardCell heard_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    mutable std::mutex mutex_;  // guards status_ and requests_ (never taken by the audio thread)
    LinkStatus status_;
    std::deque<std::pair<std::vector<std::string>, double>> requests_;
    std::string pending_mood_;             // the mood text waiting for the link thread ("" = none)
    std::vector<std::string> last_words_;  // the last description asked for (re-sent when the intensity moves)
    double last_intensity_ = 0.0;          // the intensity it was last asked for with
    const std::atomic<float>* intensity_ = nullptr;
    const std::atomic<float>* follow_ = nullptr;
};

}  // namespace idaw::plugin::sidecar
