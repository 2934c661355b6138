// One run of the plugin's link thread (sidecar_link.h): the DEALER socket, its monitor and what the engine knows of
// one sidecar connection, with one method per message the engine receives or sends (idaw/base/protocol/PROTOCOL.md,
// role "engine"). Everything here runs on the link thread; the Link it belongs to is touched only under its mutex,
// except the two snapshot cells, which are made for one writer and one reader.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "analysis_windows.h"
#include "curve_keys.h"
#include "msgpack.h"
#include "sidecar_link.h"
#include "sidecar_protocol.h"

namespace idaw::plugin::sidecar {

/// The link thread's socket and state for one start() .. stop() of a Link. Not real-time safe (none of it runs on
/// the audio thread).
class LinkSession {
  public:
    /// A session for `link` with a fresh random session id; no socket is connected yet.
    explicit LinkSession(Link& link);
    LinkSession(const LinkSession&) = delete;
    LinkSession& operator=(const LinkSession&) = delete;

    /// Checks the link's endpoint and CURVE keys and connects the socket. False, with the link's status saying why
    /// and no longer running, when the endpoint is not one the link can use, keys are missing or ZeroMQ refuses.
    bool open();
    /// Serves the sidecar until the link is asked to stop, then says bye when connected. Call after open().
    void run();

  private:
    using Clock = std::chrono::steady_clock;
    /// A describe request: the words and the intensity 0..1.
    using Request = std::pair<std::vector<std::string>, double>;

    /// Time between two pumps (analysis audio, describe requests): far below hop_s, so a window leaves close to when
    /// it is due and a describe request soon after it is asked for.
    static constexpr std::chrono::milliseconds kPumpInterval{20};
    /// Longest sleep in poll, so a stop request is seen within this time.
    static constexpr long kMaxPollMs = 50;
    /// Messages taken off the socket per wake: a flood must not starve the pump and the heartbeat.
    static constexpr int kMaxReceivesPerWake = 256;
    /// Engine-ring reads per pump (of drained_'s 8192 samples: ~10 s at 48 kHz), so the pump returns under a flood.
    static constexpr int kMaxDrainRounds = 64;

    // ---- Setting up -------------------------------------------------------------------------------------------
    /// Sets the socket's options and monitor and connects it; `keys` (null on loopback) makes it a CURVE client.
    /// False with the status saying why when ZeroMQ refuses.
    bool connect(const CurveKeys* keys);

    // ---- The loop's steps -------------------------------------------------------------------------------------
    /// Waits for a message, a socket event or the next pump/beat (at most kMaxPollMs) and runs what is due.
    void poll_once();
    /// Reads the monitor's events: a connection means a (new) sidecar to say hello to, a disconnection a loss.
    void on_socket_events();
    /// Handles up to kMaxReceivesPerWake waiting messages.
    void receive();
    /// Takes one message off the socket and handles it; false when none was waiting.
    bool receive_one();
    /// Sends the analysis window due now, then the describe requests waiting.
    void pump();
    /// Drains the engine's analysis ring into windows and sends the newest complete one (when connected).
    void pump_audio();
    /// Sends every describe request waiting and the newest mood request, and reports in the status what became of
    /// each.
    void pump_requests();
    /// Tells a connected sidecar follow on or off when the switch differs from what it was last told since its
    /// welcome (nothing while the switch was never on).
    void pump_follow();
    /// Takes the queued describe requests, adding the last description again when the intensity moved since it was
    /// asked for (only the latest value, at most every Link::kResendIntervalMs).
    std::vector<Request> take_requests();
    /// Once per heartbeat interval: declares a silent sidecar lost, heartbeats a connected one, and says hello again
    /// while not welcomed.
    void beat();

    // ---- Messages received (already checked against protocol.json) -------------------------------------------
    /// Notes that the sidecar spoke and hands `message` to its handler.
    void on_message(const Message& message);
    /// welcome: the sidecar took our hello; we are connected to its session.
    void on_welcome(const Value& body);
    /// heartbeat: a sidecar session we have not been welcomed by (it restarted) gets a hello.
    void on_heartbeat(const Value& body);
    /// params: a newer snapshot goes to the audio thread's mailbox; an older or equal one is rejected as stale.
    void on_params(const Value& body);
    /// error: an answer to our latest describe becomes its result; hello_required gets a hello.
    void on_error(const Value& body);
    /// described: the answer to our latest describe becomes its result (answers to older ones are ignored).
    void on_described(const Value& body);
    /// mood_read: the answer to our latest mood request: its valence and arousal go into the status, and the
    /// snapshot callback tells the plugin (answers to older requests are ignored).
    void on_mood_read(const Value& body);
    /// ack: the answer to our latest follow means the sidecar follows (on) or stopped (off).
    void on_ack(const Value& body);
    /// heard: with a beat heard and follow asked for, its values (the beat placed on the engine's sample clock) go to
    /// the audio thread's heard cell; without a beat, or unasked, nothing changes.
    void on_heard(const Value& body);
    /// The sidecar went away (socket disconnected or silent for peer_timeout_ms): a loss, if it was connected.
    void on_lost();

    // ---- Messages sent ----------------------------------------------------------------------------------------
    /// Sends one message of `type`: the envelope (v, type, the next seq) and the fields `fields` writes. Returns
    /// false, without sending, when the sidecar would reject it (the status says why) or the socket cannot take it
    /// now (counted as send_dropped).
    bool send(const std::string& type, const std::function<void(MapWriter&)>& fields);
    /// hello: our session, name, analysis rate and the snapshot we hold; remembers when, to repeat it per interval.
    void send_hello();
    /// heartbeat: our session and the snapshot we hold.
    void send_heartbeat();
    /// audio: one analysis window starting at sample `start` of the analysis-rate stream; counted in windows_sent.
    void send_audio(std::uint64_t start, const std::vector<float>& window);
    /// follow: on (1) or off (0); its seq becomes the one whose answer (ack or error) is awaited.
    bool send_follow(bool on);
    /// describe: `words` at `intensity`; its seq becomes the one whose answer is awaited.
    void send_describe(const std::vector<std::string>& words, double intensity);
    /// Puts what became of a request (sent, or why not) into the status field `result`.
    void report_sent(bool ok, std::string LinkStatus::*result);
    /// mood: `text`; its seq becomes the one whose answer is awaited.
    void send_mood(const std::string& text);
    /// bye: our session; the socket then lingers a little so the bye can leave before it closes.
    void send_bye();

    // ---- Shared state -----------------------------------------------------------------------------------------
    /// The snapshot (number and EQ values) the audio thread holds, or the newer one still waiting in the mailbox.
    void held(std::uint64_t& snapshot, EqValues& values) const;
    /// Runs `change` on the link's status under the link's lock and returns what it returns.
    template <class Change>
    auto with_status(Change&& change) const {
        std::lock_guard<std::mutex> lock(link_.mutex_);
        return change(link_.status_);
    }
    /// Counts one more valid message of `type` in the status.
    void count_received(const std::string& type) const;
    /// Counts one more message rejected for `reason` in the status.
    void count_rejected(const std::string& reason) const;
    /// True while welcomed by a sidecar that has not gone away.
    bool connected() const;
    /// The link cannot run: records `why` and stops counting as running. Returns false (for open()'s callers).
    bool fail(const std::string& why) const;

    Link& link_;
    const Schema& schema_;
    const std::chrono::milliseconds heartbeat_;     // heartbeat_interval_ms
    const std::chrono::milliseconds peer_timeout_;  // peer_timeout_ms
    zmq::context_t context_{1};
    zmq::socket_t socket_{context_, zmq::socket_type::dealer};
    zmq::socket_t monitor_{context_, zmq::socket_type::pair};
    Windows windows_;
    const std::uint64_t session_;
    std::uint64_t heard_count_ = 0;  // heard messages handed to the audio thread (by this link, over all its sessions)
    std::uint64_t seq_ = 0;
    std::uint64_t offered_ = 0;  // newest snapshot put into the mailbox
    EqValues offered_values_{};
    Clock::time_point hello_at_ = Clock::time_point::min();  // last hello sent (min: none yet)
    Clock::time_point last_heard_{};
    std::uint64_t describe_seq_ = 0;  // seq of the describe whose answer is awaited (0: none)
    std::uint64_t mood_seq_ = 0;      // seq of the mood request whose answer is awaited (0: none)
    int follow_told_ = -1;            // what this sidecar was last told since its welcome: 0 off, 1 on, -1 nothing
    bool follow_ever_on_ = false;     // the switch was on at some time (else an off switch sends nothing)
    std::uint64_t follow_seq_ = 0;    // seq of the follow whose answer is awaited (0: none)
    Clock::time_point resent_at_{};   // the clock's epoch: long past
    Clock::time_point next_pump_{}, next_beat_{};
    std::vector<float> drained_ = std::vector<float>(8192);
};

}  // namespace idaw::plugin::sidecar
