// A two-thread workout of the engine: an audio thread processes blocks of awkward sizes (planar, interleaved and
// through the PortAudio bridge) while a control thread pushes random snapshots, toggles analysis, reads the
// counters and drains the rings. Used by test_engine_threads (under the sanitizers) and test_realtime_safety
// (under the allocation/lock checker).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "idaw/engine.h"
#include "idaw/portaudio_bridge.h"
#include "idaw/rt_check.h"
#include "test_support.h"

namespace idaw::test {

/// One stress run.
struct StressConfig {
    int max_block = 512;
    int channels = 2;
    std::uint64_t frames = 1'000'000;  ///< frames the audio thread runs at least (then on to kMinSnapshotsApplied)
    std::uint64_t seed = 1;
};

/// Snapshots the audio thread must have taken up before it stops, besides running the planned frames: the control
/// thread's progress is a precondition the run waits for, not a race the control thread may lose on a busy machine.
inline constexpr std::uint64_t kMinSnapshotsApplied = 100;

/// How long the audio thread goes on past its planned frames while fewer than kMinSnapshotsApplied snapshots were
/// taken up: a guard against a control thread that makes no progress at all (a hang), not a measure of anything.
inline constexpr std::chrono::seconds kSnapshotWaitCap{120};

/// What both threads observed; the caller asserts on it.
struct StressResult {
    std::uint64_t calls = 0;             ///< blocks the audio thread processed (one engine block each)
    std::uint64_t frames = 0;            ///< frames it processed
    std::uint64_t bad_output = 0;        ///< output samples not finite or above the limiter ceiling
    std::uint64_t nan_inputs = 0;        ///< NaN samples the audio thread fed in on purpose
    std::uint64_t snapshots_pushed = 0;  ///< snapshots the engine accepted
    std::uint64_t last_sequence_pushed = 0;
    std::uint64_t analysis_toggles = 0;
    std::uint64_t analysis_read = 0;
    std::uint64_t telemetry_read = 0;
    std::uint64_t telemetry_skipped = 0;     ///< block indices missing from the telemetry stream
    std::uint64_t telemetry_disordered = 0;  ///< records whose index or sample clock went backwards
    std::uint64_t reader_regressions = 0;    ///< counters that a concurrent reader saw decrease
    EngineCounters counters{};
    std::uint64_t timing_blocks = 0;
};

/// Runs the workout on a freshly prepared engine. The audio thread wraps each call in an rt::Section of its own, so
/// with a checker installed the bridge's code counts as real-time too (the engine's sections nest inside it).
inline StressResult run_engine_stress(const StressConfig& cfg) {
    auto engine = std::make_unique<Engine>();
    engine->prepare(48000.0, cfg.max_block, cfg.channels);
    engine->set_telemetry_enabled(true);               // the control thread drains it, so exercise the push path too
    PortAudioBridge bridge(*engine, 1, cfg.channels);  // mono in, every output channel fed from it

    const int sizes[] = {1, 7, 64, 256, 1024, cfg.max_block * 2 + 3};  // the last always exceeds max_block
    const int largest = *std::max_element(std::begin(sizes), std::end(sizes));
    // The source material, allocated up front: a sine-plus-noise loop, loud enough to engage the limiter at times.
    const int loop = 1 << 15;
    const Audio source = make_audio(cfg.channels, loop + largest, [&](int c, int i) {
        return 0.7 * std::sin(2.0 * M_PI * 220.0 * i / 48000.0 + c) + 0.3 * std::sin(0.37 * i * (c + 1));
    });

    StressResult r;
    std::atomic<bool> audio_done{false};
    std::thread audio([&] {
        std::vector<float> planar(static_cast<std::size_t>(cfg.channels) * largest);
        std::vector<float> interleaved(static_cast<std::size_t>(cfg.channels) * largest);
        std::vector<float> mono(static_cast<std::size_t>(largest));
        std::vector<float*> ptrs(static_cast<std::size_t>(cfg.channels));
        for (int c = 0; c < cfg.channels; ++c) ptrs[c] = planar.data() + static_cast<std::size_t>(c) * largest;
        const float ceiling = static_cast<float>(Engine::kLimiterCeiling);  // exact: full scale
        const float kNaN = std::numeric_limits<float>::quiet_NaN();
        Rng rng(cfg.seed);
        std::uint64_t offset = 0;
        // Runs until both counts are reached (the planned frames and the snapshots taken up), whatever the threads'
        // relative speed; the cap only ends a run whose control thread never pushes.
        std::chrono::steady_clock::time_point planned_done{};
        const auto keep_going = [&] {
            if (r.frames < cfg.frames) return true;
            if (engine->counters().snapshots_applied >= kMinSnapshotsApplied) return false;
            const auto now = std::chrono::steady_clock::now();
            if (planned_done == std::chrono::steady_clock::time_point{}) planned_done = now;
            return now - planned_done < kSnapshotWaitCap;
        };
        while (keep_going()) {
            const int n = sizes[rng.below(static_cast<int>(std::size(sizes)))];
            const int path = static_cast<int>(r.calls % 3);
            const int start = static_cast<int>(offset % loop);
            offset += static_cast<std::uint64_t>(n);
            const bool poison = rng.below(50) == 0;  // now and then a NaN, to run the sanitising path
            const int poison_at = rng.below(n);
            if (path == 0) {
                for (int c = 0; c < cfg.channels; ++c) std::copy_n(source.channel(c) + start, n, ptrs[c]);
                if (poison) ptrs[0][poison_at] = kNaN;
                rt::Section section;
                engine->process(ptrs.data(), cfg.channels, n);
            } else if (path == 1) {
                for (int i = 0; i < n; ++i)
                    for (int c = 0; c < cfg.channels; ++c)
                        interleaved[static_cast<std::size_t>(i) * cfg.channels + c] = source.at(c, start + i);
                if (poison) interleaved[static_cast<std::size_t>(poison_at) * cfg.channels] = kNaN;
                rt::Section section;
                engine->process_interleaved(interleaved.data(), cfg.channels, n);
            } else {
                std::copy_n(source.channel(0) + start, n, mono.data());
                if (poison) mono[poison_at] = kNaN;
                rt::Section section;
                idaw_portaudio_callback(mono.data(), interleaved.data(), static_cast<unsigned long>(n), nullptr, 0,
                                        &bridge);
            }
            // The bridge copies mono to every channel, so one poisoned input sample counts once per channel.
            if (poison) r.nan_inputs += path == 2 ? static_cast<std::uint64_t>(cfg.channels) : 1;
            const float* out = path == 0 ? nullptr : interleaved.data();
            for (int c = 0; c < cfg.channels; ++c)
                for (int i = 0; i < n; ++i) {
                    const float y = out ? out[static_cast<std::size_t>(i) * cfg.channels + c] : ptrs[c][i];
                    if (!(std::fabs(y) <= ceiling)) ++r.bad_output;  // NaN fails the comparison too
                }
            r.frames += static_cast<std::uint64_t>(n);
            ++r.calls;
        }
        audio_done.store(true, std::memory_order_release);
    });

    // Control thread (this one).
    Rng rng(cfg.seed ^ 0x9e3779b97f4a7c15ull);
    std::vector<float> analysis(1 << 14);
    std::uint64_t sequence = 0, next_index = 0, last_sample_time = 0;
    bool have_previous = false, analysis_on = false;
    EngineCounters previous_counters{};
    auto drain = [&] {
        BlockTelemetry t;
        while (engine->telemetry_ring().pop(t)) {
            ++r.telemetry_read;
            if (t.block_index < next_index || (have_previous && t.sample_time <= last_sample_time)) {
                ++r.telemetry_disordered;
            } else {
                r.telemetry_skipped += t.block_index - next_index;
            }
            next_index = t.block_index + 1;
            last_sample_time = t.sample_time;
            have_previous = true;
        }
        for (std::size_t n; (n = engine->analysis_ring().pop(analysis.data(), analysis.size())) > 0;)
            r.analysis_read += n;
    };
    for (std::uint64_t iteration = 0;; ++iteration) {
        const bool finished = audio_done.load(std::memory_order_acquire);
        Parameters p = random_parameters(rng);
        p.sequence = ++sequence;
        if (engine->push_parameters(p)) {
            ++r.snapshots_pushed;
            r.last_sequence_pushed = p.sequence;
        }
        if (rng.below(8) == 0) {
            analysis_on = !analysis_on;
            engine->set_analysis_enabled(analysis_on);
            ++r.analysis_toggles;
        }
        // One iteration in eight leaves the rings alone, so they fill up now and then and the drop paths run.
        if (iteration % 8 != 7) drain();
        const EngineCounters k = engine->counters();
        if (k.blocks < previous_counters.blocks || k.frames < previous_counters.frames ||
            k.snapshots_applied < previous_counters.snapshots_applied)
            ++r.reader_regressions;
        previous_counters = k;
        (void)engine->timing().snapshot().summarize();  // a concurrent reader of the histogram
        if (finished) break;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    audio.join();
    drain();
    r.counters = engine->counters();
    r.timing_blocks = engine->timing().snapshot().blocks;
    return r;
}

/// Frames per stress run: IDAW_STRESS_FRAMES when set, else 2M (300k under the sanitizers, which are 5-20x slower).
inline std::uint64_t stress_frames() {
    constexpr std::uint64_t kDefault = kThreadSanitizer || kAddressSanitizer ? 300'000 : 2'000'000;
    return env_u64("IDAW_STRESS_FRAMES", kDefault);
}

/// The assertions every stress run must pass, whatever else the caller checks.
inline void check_stress_result(const StressConfig& cfg, const StressResult& r) {
    INFO("max_block " << cfg.max_block << ", " << r.calls << " blocks, " << r.frames << " frames");
    CHECK(r.frames >= cfg.frames);
    CHECK(r.bad_output == 0);  // finite and under the ceiling, with random snapshots landing all the time
    // Every block is counted once, by the counters, the histogram and the telemetry stream (read or dropped).
    CHECK(r.counters.blocks == r.calls);
    CHECK(r.counters.frames == r.frames);
    CHECK(r.timing_blocks == r.calls);
    CHECK(r.telemetry_disordered == 0);
    CHECK(r.telemetry_read + r.telemetry_skipped == r.calls);
    CHECK(r.telemetry_skipped == r.counters.telemetry_dropped);
    CHECK(r.counters.nonfinite_samples == r.nan_inputs);
    // Snapshots arrived (the run waits for them), the newest-wins rule never went back to an older one than was last
    // pushed.
    CHECK(r.counters.snapshots_applied >= kMinSnapshotsApplied);
    CHECK(r.counters.snapshots_applied <= r.snapshots_pushed);
    CHECK(r.counters.applied_sequence > 0);
    CHECK(r.counters.applied_sequence <= r.last_sequence_pushed);
    CHECK(r.reader_regressions == 0);
    MESSAGE("max_block " << cfg.max_block << ": " << r.calls << " blocks, " << r.snapshots_pushed
                         << " snapshots pushed, " << r.counters.snapshots_applied << " applied, " << r.analysis_toggles
                         << " analysis toggles, " << r.analysis_read << " analysis samples read, "
                         << r.counters.analysis_dropped << " dropped, " << r.telemetry_read
                         << " telemetry records read, " << r.counters.telemetry_dropped << " dropped");
}

}  // namespace idaw::test
