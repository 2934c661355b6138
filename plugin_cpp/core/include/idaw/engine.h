// The real-time engine: input gain -> drive -> 5-band SAFE EQ -> dry/wet -> output gain -> safety limiter.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "idaw/biquad.h"
#include "idaw/compressor.h"
#include "idaw/midi_event.h"
#include "idaw/midi_generator.h"
#include "idaw/parameters.h"
#include "idaw/safety_limiter.h"
#include "idaw/saturation.h"
#include "idaw/smoother.h"
#include "idaw/spsc_ring.h"
#include "idaw/timing_histogram.h"

namespace idaw {

/// Where the engine's sample clock stood when the latest block began, and when (steady_clock, the same clock as
/// CLOCK_MONOTONIC and Python's time.monotonic_ns()): lets a host map sample times to wall-clock times.
struct BlockClock {
    std::uint64_t sample_time = 0;  ///< engine clock at the block's first sample
    std::uint64_t steady_ns = 0;    ///< steady_clock when process() was entered for that block
    std::uint32_t frames = 0;       ///< frames in that call
    std::uint64_t blocks = 0;       ///< process() calls so far (0: none yet, the other fields are meaningless)
};

/// One record per processed block, for whoever watches the engine.
struct BlockTelemetry {
    std::uint64_t block_index = 0;
    std::uint64_t sample_time = 0;  ///< engine clock at the block's first sample
    std::uint32_t frames = 0;
    std::uint32_t cpu_ns = 0;
    std::uint32_t flags = 0;  ///< BlockFlag bits
};

/// Bits of BlockTelemetry::flags.
enum BlockFlag : std::uint32_t {
    kBlockOverBudget = 1u << 0,
    kBlockNonFiniteInput = 1u << 1,
    kBlockLimited = 1u << 2,
    kBlockParamsApplied = 1u << 3,
};

/// Counters that only grow, readable from any thread.
struct EngineCounters {
    std::uint64_t blocks = 0;
    std::uint64_t frames = 0;
    std::uint64_t nonfinite_samples = 0;        ///< NaN/Inf input samples replaced by silence
    std::uint64_t limited_samples = 0;          ///< samples the safety limiter turned down
    std::uint64_t snapshots_applied = 0;        ///< parameter snapshots taken up by the audio thread
    std::uint64_t applied_sequence = 0;         ///< sequence number of the last snapshot taken up
    std::uint64_t telemetry_dropped = 0;        ///< telemetry records lost because nobody drained the ring
    std::uint64_t analysis_dropped = 0;         ///< analysis samples lost because nobody drained the ring
    double compressor_reduction_db = 0.0;       ///< the compressor's gain reduction at the end of the last chunk
    double compressor_peak_reduction_db = 0.0;  ///< its largest gain reduction at a chunk's end since prepare()
};

/// The engine. Call prepare() before processing; process*() are the only methods for the audio thread.
class Engine {
  public:
    /// Maximum channels one engine processes.
    static constexpr int kMaxChannels = 8;
    /// EQ coefficients are recomputed on a fixed grid of the sample clock while parameters move,
    /// so any split of the same audio into blocks gives bit-identical output.
    static constexpr int kCoefficientGrid = 16;
    /// Input samples beyond this magnitude (+36 dBFS) are clamped to it; NaN/Inf become silence.
    static constexpr float kInputClamp = 64.0f;
    /// Safety limiter ceiling (linear, full scale): nothing leaves the engine louder than this, and a neutral
    /// chain leaves everything within it untouched.
    static constexpr double kLimiterCeiling = SafetyLimiter::kCeiling;

    /// Creates the rings (allocates). Not real-time safe.
    Engine();

    /// Allocates everything for a sample rate, largest block and channel count, and resets all state.
    /// Parameters snap to the last values given (no ramp). Not real-time safe; never concurrent with process().
    void prepare(double sample_rate, int max_block, int num_channels);

    /// Control thread: queues a full-state snapshot for the audio thread. Returns false when a value
    /// is out of range (see check_parameters) or the queue is full. Real-time safe (a ring push).
    bool push_parameters(const Parameters& params) noexcept;

    /// Applies a snapshot at once with no ramp. Only while process() is not running.
    void set_parameters_now(const Parameters& params) noexcept;

    /// Audio thread: processes planar channels in place; any frame count (split into max_block chunks).
    /// Real-time safe: no allocation, lock, system call or logging.
    void process(float* const* channels, int num_channels, int num_frames) noexcept;

    /// Audio thread: processes interleaved frames in place. Real-time safe.
    void process_interleaved(float* interleaved, int num_channels, int num_frames) noexcept;

    /// Fraction of the block's duration that counts as over budget (default 0.5). Any thread.
    void set_budget_fraction(double fraction) noexcept { budget_fraction_.store(fraction); }
    /// When on, every block's record is pushed to telemetry_ring() (off by default: someone must drain it).
    void set_telemetry_enabled(bool on) noexcept { telemetry_enabled_.store(on, std::memory_order_relaxed); }
    /// When on, a mono mix of the input is pushed to analysis_ring(). Any thread.
    void set_analysis_enabled(bool on) noexcept { analysis_enabled_.store(on, std::memory_order_relaxed); }

    /// Block timing histogram (lock-free; see TimingHistogram).
    TimingHistogram& timing() noexcept { return timing_; }
    /// Counters; any thread.
    EngineCounters counters() const noexcept;
    /// Per-block telemetry ring (audio thread -> one reader).
    SpscRing<BlockTelemetry>& telemetry_ring() noexcept { return telemetry_; }
    /// Mono analysis audio at the engine's rate (audio thread -> one reader).
    SpscRing<float>& analysis_ring() noexcept { return analysis_; }
    /// Sample-clock time of the first analysis sample since the copy was last switched on (0 before): the k-th
    /// sample read since then (counting analysis_dropped ones) was the input at analysis_origin() + k. Any thread.
    std::uint64_t analysis_origin() const noexcept { return analysis_origin_.load(std::memory_order_acquire); }
    /// MIDI events generated on the audio thread (audio thread -> one reader). Not in time order: sort them.
    SpscRing<MidiEvent>& midi_ring() noexcept { return midi_; }
    /// The MIDI generator (see midi_generator.h): push_control() from the control thread, install()/clear()/
    /// collect() from one loader thread; process() runs it.
    MidiGenerator& midi_generator() noexcept { return midi_gen_; }
    /// The latest block's start on the sample clock and the steady clock; any thread (a seqlock read, lock-free).
    BlockClock block_clock() const noexcept;

    /// Last snapshot given to push_parameters() or set_parameters_now() (control-thread view).
    const Parameters& requested_parameters() const noexcept { return requested_; }
    double sample_rate() const noexcept { return sample_rate_; }
    int max_block() const noexcept { return max_block_; }
    int num_channels() const noexcept { return num_channels_; }
    /// Processing latency in samples: the chain has no look-ahead.
    int latency_samples() const noexcept { return 0; }
    /// Gain ramp length in samples at the prepared rate (EQ ramps are longer: see engine.cpp).
    int ramp_samples() const noexcept { return ramp_samples_; }
    /// The compressor's gain reduction now, in dB (>= 0; 0 while it is transparent). Audio thread, or while
    /// process() is not running; other threads read it from counters().
    double compressor_reduction_db() const noexcept { return compressor_.reduction_db(); }

  private:
    void apply_snapshot(const Parameters& p, bool snap) noexcept;
    void drain_parameter_queue() noexcept;
    void update_eq_coefficients() noexcept;
    void update_saturation_shape() noexcept;
    void process_chunk(float* const* channels, int num_channels, int num_frames) noexcept;
    void run_eq(float* const* channels, int num_channels, int start, int count) noexcept;
    /// When and where on the sample clock a block began.
    struct BlockStart {
        std::uint64_t ns;
        std::uint64_t sample;
    };
    BlockStart begin_block(int frames) noexcept;
    void finish_block(const BlockStart& block, int frames) noexcept;

    double sample_rate_ = 48000.0;
    int max_block_ = 0;
    int num_channels_ = 0;
    int ramp_samples_ = 960;       // per-sample ramps (gains, mix, drive fade)
    int filter_ramp_steps_ = 150;  // coefficient-grid steps of the EQ and drive-shape ramps

    SpscRing<Parameters> param_queue_;
    SpscRing<BlockTelemetry> telemetry_;
    SpscRing<float> analysis_;
    SpscRing<MidiEvent> midi_;
    MidiGenerator midi_gen_;
    Parameters requested_ = Parameters::defaults();

    // Smoothed values. Per-sample ramps for gains; EQ and drive shape ramps advance on the coefficient grid.
    LinearRamp input_gain_, output_gain_, mix_, drive_blend_;
    std::array<LinearRamp, kNumEqParams> eq_;  // gains in dB, frequencies and Q as natural logs
    LinearRamp drive_gain_, crunch_;
    SaturationShape shape_;
    std::array<BiquadCoefficients, 5> band_coeffs_{};
    std::array<bool, 5> band_active_{};
    std::array<std::array<Biquad, 5>, kMaxChannels> filters_{};
    std::array<double, kMaxChannels> dc_x1_{}, dc_y1_{};
    double dc_pole_ = 0.999;
    Compressor compressor_;
    SafetyLimiter limiter_;

    // Scratch, sized in prepare().
    std::vector<float> dry_;                                     // num_channels * max_block
    std::vector<float> planar_;                                  // num_channels * max_block (interleaved entry point)
    std::vector<double> gain_in_, blend_, mix_gain_, gain_out_;  // max_block each
    std::array<float*, kMaxChannels> planar_ptrs_{};

    std::uint64_t sample_clock_ = 0;
    std::uint64_t block_index_ = 0;
    std::uint32_t chunk_flags_ = 0;
    TimingHistogram timing_;
    std::atomic<double> budget_fraction_{0.5};
    std::atomic<bool> analysis_enabled_{false};
    bool analysis_was_on_ = false;  // audio thread: whether the previous chunk fed the analysis ring
    std::atomic<std::uint64_t> analysis_origin_{0};
    std::atomic<bool> telemetry_enabled_{false};

    std::atomic<std::uint64_t> blocks_{0}, frames_{0}, nonfinite_{0}, limited_{0};
    std::atomic<std::uint64_t> snapshots_applied_{0}, applied_sequence_{0};
    std::atomic<std::uint64_t> telemetry_dropped_{0}, analysis_dropped_{0};
    std::atomic<double> compressor_reduction_db_{0.0}, compressor_peak_reduction_db_{0.0};  // written per chunk
    // block_clock(): a seqlock (odd while the audio thread writes), every field atomic.
    std::atomic<std::uint64_t> clock_seq_{0}, clock_sample_{0}, clock_ns_{0}, clock_frames_{0}, clock_blocks_{0};
};

/// Magnitude response in dB of the EQ section for a snapshot at a sample rate, at the given frequencies.
/// Uses exactly the coefficients the engine uses. Not for the audio thread.
void eq_response_db(const Parameters& params, double sample_rate, const double* freqs_hz, double* out_db,
                    std::size_t count) noexcept;

}  // namespace idaw
