// What the sidecar's follower heard in the plugin's input (the protocol's `heard` message, PROTOCOL.md), on its way
// from the link thread to the audio thread: the values the MIDI generator follows when the plugin's `midi_follow`
// switch is on (realtime/follow.py LiveFollow does the same for the Python host).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace idaw::plugin::sidecar {

/// One heard message as the audio thread uses it. Only messages with a heard beat (tempo_bpm > 0) are handed on:
/// until the sidecar hears a beat the generator keeps the host's tempo and the plugin's key (as the Python host).
struct HeardValues {
    std::uint64_t count = 0;        ///< how many heard messages the link has handed on (0: none yet)
    float tempo_bpm = 0.0f;         ///< the heard tempo, 20..300 once clamped (never 0 in a handed-on message)
    std::uint64_t beat_anchor = 0;  ///< engine sample time of the heard beat (MidiControl::beat_anchor), >= 1
    bool has_key = false;           ///< a key was heard (key_tonic 0..11)
    std::uint8_t key_tonic = 0;     ///< pitch class 0 (C) .. 11 (B)
    bool key_minor = false;         ///< minor, else major
    bool has_emotion = false;       ///< the adapter heard an emotion (valence and arousal mean something)
    float valence = 0.0f;           ///< -1..1
    float arousal = 0.0f;           ///< -1..1
};

/// The engine sample time of index `index` of the analysis stream the link sends (at `window_rate` Hz): the stream
/// started at the engine's analysis_origin() and lost `dropped` samples (Engine counters' analysis_dropped) to a full
/// ring. The formula of realtime/follow.py LiveFollow.engine_time. Real-time safe.
inline std::uint64_t engine_time(std::uint64_t index, double engine_rate, double window_rate, std::uint64_t origin,
                                 std::uint64_t dropped) noexcept {
    const double scaled = std::round(static_cast<double>(index) * engine_rate / window_rate);
    // Indices come from the peer (any uint64): beyond 2^63 engine samples (millions of years) the time saturates.
    constexpr double kMax = 9.2e18;
    return origin + dropped + static_cast<std::uint64_t>(std::clamp(scaled, 0.0, kMax));
}

/// HeardValues handed from one writer (the link thread) to one reader (the audio thread) without locks: a seqlock,
/// as SnapshotCell (sidecar_link.h); a read that overlaps a write fails and is tried again at the next block.
class HeardCell {
  public:
    /// Writer: publishes `v`. Real-time safe.
    void write(const HeardValues& v) noexcept {
        const std::uint64_t s = sequence_.load(std::memory_order_relaxed);
        sequence_.store(s + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        tempo_.store(v.tempo_bpm, std::memory_order_relaxed);
        anchor_.store(v.beat_anchor, std::memory_order_relaxed);
        key_.store(static_cast<std::uint32_t>(v.key_tonic) | (v.has_key ? kHasKey : 0u) | (v.key_minor ? kMinor : 0u) |
                       (v.has_emotion ? kHasEmotion : 0u),
                   std::memory_order_relaxed);
        valence_.store(v.valence, std::memory_order_relaxed);
        arousal_.store(v.arousal, std::memory_order_relaxed);
        count_.store(v.count, std::memory_order_relaxed);
        sequence_.store(s + 2, std::memory_order_release);
    }
    /// Reader: the last published values; false when a write was in progress (`out` is unchanged then). Real-time
    /// safe.
    bool read(HeardValues& out) const noexcept {
        const std::uint64_t before = sequence_.load(std::memory_order_acquire);
        if (before & 1u) return false;
        HeardValues v;
        v.tempo_bpm = tempo_.load(std::memory_order_relaxed);
        v.beat_anchor = anchor_.load(std::memory_order_relaxed);
        const std::uint32_t key = key_.load(std::memory_order_relaxed);
        v.key_tonic = static_cast<std::uint8_t>(key & 0xffu);
        v.has_key = (key & kHasKey) != 0;
        v.key_minor = (key & kMinor) != 0;
        v.has_emotion = (key & kHasEmotion) != 0;
        v.valence = valence_.load(std::memory_order_relaxed);
        v.arousal = arousal_.load(std::memory_order_relaxed);
        v.count = count_.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (sequence_.load(std::memory_order_relaxed) != before) return false;
        out = v;
        return true;
    }
    /// How many heard messages were published (the count of the last one; may be newer than a concurrent read()).
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_acquire); }

  private:
    static constexpr std::uint32_t kHasKey = 1u << 8, kMinor = 1u << 9, kHasEmotion = 1u << 10;
    std::atomic<std::uint64_t> sequence_{0};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> anchor_{0};
    std::atomic<float> tempo_{0.0f}, valence_{0.0f}, arousal_{0.0f};
    std::atomic<std::uint32_t> key_{0};
};

}  // namespace idaw::plugin::sidecar
