#include "idaw/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>

#include "idaw/rt_check.h"

namespace idaw {
namespace {

// The compressor's meter is an atomic double the audio thread stores to: it must never fall back to a lock.
static_assert(std::atomic<double>::is_always_lock_free, "the meter's atomic<double> must be lock-free");

constexpr std::size_t kParamQueueSize = 64;
constexpr std::size_t kTelemetrySize = 4096;
constexpr std::size_t kAnalysisSize = 1u << 19;  // > 5 s of mono at 96 kHz
constexpr std::size_t kMidiSize = 4096;
constexpr double kGainRampSeconds = 0.020;    // gains and mix: per-sample ramps
constexpr double kFilterRampSeconds = 0.050;  // EQ and drive shape: slower, as sweeping filters ring
constexpr double kDcBlockerHz = 10.0;
constexpr double kDriveFadeDb = 6.0;  // drive fades in over its first 6 dB, so turning it on never clicks

bool eq_param_is_log(std::size_t eq_index) noexcept {
    return kParamSpecs[kEqFirstParam + eq_index].scale == ParamScale::Log;
}

/// The five sections for 13 EQ values in natural units (dB, Hz, Q), in series order.
void band_coefficients(const std::array<double, kNumEqParams>& eq, double sr,
                       std::array<BiquadCoefficients, 5>& out) noexcept {
    out[0] = BiquadCoefficients::low_shelf(sr, eq[1], kShelfQ, eq[0]);
    out[1] = BiquadCoefficients::peak(sr, eq[3], eq[4], eq[2]);
    out[2] = BiquadCoefficients::peak(sr, eq[6], eq[7], eq[5]);
    out[3] = BiquadCoefficients::peak(sr, eq[9], eq[10], eq[8]);
    out[4] = BiquadCoefficients::high_shelf(sr, eq[12], kShelfQ, eq[11]);
}

/// Index (within the 13 EQ values) of each band's gain.
constexpr std::array<std::size_t, 5> kBandGainIndex{0, 2, 5, 8, 11};

double drive_blend_for(double drive_db) noexcept { return std::min(1.0, drive_db / kDriveFadeDb); }

std::uint64_t now_ns() noexcept {
    // steady_clock reads the vDSO clock: no system call on Linux.
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

}  // namespace

Engine::Engine()
    : param_queue_(kParamQueueSize), telemetry_(kTelemetrySize), analysis_(kAnalysisSize), midi_(kMidiSize) {
    set_parameters_now(Parameters::defaults());
}

void Engine::prepare(double sample_rate, int max_block, int num_channels) {
    sample_rate_ = sample_rate;
    max_block_ = std::max(1, max_block);
    num_channels_ = std::clamp(num_channels, 1, kMaxChannels);
    ramp_samples_ = std::max(1, static_cast<int>(std::lround(kGainRampSeconds * sample_rate)));
    filter_ramp_steps_ =
        std::max(1, static_cast<int>(std::lround(kFilterRampSeconds * sample_rate / kCoefficientGrid)));
    dc_pole_ = std::exp(-2.0 * M_PI * kDcBlockerHz / sample_rate);
    limiter_.prepare(sample_rate);
    compressor_.prepare(sample_rate, ramp_samples_);

    dry_.assign(static_cast<std::size_t>(num_channels_) * max_block_, 0.0f);
    planar_.assign(static_cast<std::size_t>(num_channels_) * max_block_, 0.0f);
    for (int c = 0; c < num_channels_; ++c) planar_ptrs_[c] = planar_.data() + static_cast<std::size_t>(c) * max_block_;

    Parameters discarded;
    while (param_queue_.pop(discarded)) requested_ = discarded;
    for (auto& channel : filters_)
        for (auto& f : channel) f.reset();
    dc_x1_.fill(0.0);
    dc_y1_.fill(0.0);
    limiter_.reset();
    compressor_.reset();
    compressor_reduction_db_.store(0.0, std::memory_order_relaxed);
    compressor_peak_reduction_db_.store(0.0, std::memory_order_relaxed);
    sample_clock_ = 0;
    block_index_ = 0;
    timing_.clear();
    midi_gen_.prepare(sample_rate);
    clock_blocks_.store(0, std::memory_order_relaxed);
    apply_snapshot(requested_, /*snap=*/true);
}

bool Engine::push_parameters(const Parameters& params) noexcept {
    if (!check_parameters(params).ok()) return false;
    if (!param_queue_.push(params)) return false;
    requested_ = params;
    return true;
}

void Engine::set_parameters_now(const Parameters& params) noexcept {
    if (!check_parameters(params).ok()) return;
    requested_ = params;
    apply_snapshot(params, /*snap=*/true);
}

void Engine::apply_snapshot(const Parameters& p, bool snap) noexcept {
    const int grid_steps = filter_ramp_steps_;
    auto set = [&](LinearRamp& ramp, double value, int steps) {
        if (snap)
            ramp.snap(value);
        else
            ramp.ramp_to(value, steps);
    };
    set(input_gain_, db_to_gain(p[ParamId::InputGainDb]), ramp_samples_);
    set(output_gain_, db_to_gain(p[ParamId::OutputGainDb]), ramp_samples_);
    set(mix_, p[ParamId::Mix], ramp_samples_);
    set(drive_blend_, drive_blend_for(p[ParamId::DriveDb]), ramp_samples_);
    set(drive_gain_, db_to_gain(p[ParamId::DriveDb]), grid_steps);
    set(crunch_, p[ParamId::DriveAsymmetry], grid_steps);
    for (std::size_t i = 0; i < kNumEqParams; ++i) {
        const double v = p.values[kEqFirstParam + i];
        set(eq_[i], eq_param_is_log(i) ? std::log(v) : v, grid_steps);
    }
    compressor_.set({p[ParamId::CompThresholdDb], p[ParamId::CompRatio], p[ParamId::CompKneeDb],
                     p[ParamId::CompAttackMs], p[ParamId::CompReleaseMs], p[ParamId::CompMakeupDb]},
                    snap);
    applied_sequence_.store(p.sequence, std::memory_order_relaxed);
    if (snap) {
        update_eq_coefficients();
        update_saturation_shape();
    }
}

void Engine::drain_parameter_queue() noexcept {
    Parameters latest;
    bool any = false;
    // Full-state snapshots: only the newest matters, older ones are superseded.
    while (param_queue_.pop(latest)) any = true;
    if (!any) return;
    apply_snapshot(latest, /*snap=*/false);
    snapshots_applied_.fetch_add(1, std::memory_order_relaxed);
    chunk_flags_ |= kBlockParamsApplied;
}

void Engine::update_eq_coefficients() noexcept {
    std::array<double, kNumEqParams> eq{};
    for (std::size_t i = 0; i < kNumEqParams; ++i) {
        const double v = eq_[i].value();
        eq[i] = eq_param_is_log(i) ? std::exp(v) : v;
    }
    band_coefficients(eq, sample_rate_, band_coeffs_);
    for (std::size_t b = 0; b < 5; ++b) {
        const LinearRamp& gain = eq_[kBandGainIndex[b]];
        // A band at exactly 0 dB is skipped, so a flat EQ passes audio bit for bit.
        const bool active = gain.value() != 0.0 || gain.ramping();
        if (active && !band_active_[b])
            for (int c = 0; c < num_channels_; ++c) filters_[c][b].reset();
        band_active_[b] = active;
        for (int c = 0; c < num_channels_; ++c) filters_[c][b].set_coefficients(band_coeffs_[b]);
    }
}

void Engine::update_saturation_shape() noexcept {
    shape_ = SaturationShape::make(drive_gain_.value(), crunch_.value());
}

void Engine::process(float* const* channels, int num_channels, int num_frames) noexcept {
    rt::Section section;
    num_frames = std::max(0, num_frames);
    const BlockStart block = begin_block(num_frames);
    const int nch = std::min(num_channels, num_channels_);
    std::array<float*, kMaxChannels> ptrs{};
    for (int done = 0; done < num_frames;) {
        const int n = std::min(max_block_, num_frames - done);
        for (int c = 0; c < nch; ++c) ptrs[c] = channels[c] + done;
        process_chunk(ptrs.data(), nch, n);
        done += n;
    }
    // Channels beyond what was prepared are silenced rather than passed through unprocessed.
    for (int c = nch; c < num_channels; ++c) std::fill(channels[c], channels[c] + num_frames, 0.0f);
    finish_block(block, num_frames);
}

void Engine::process_interleaved(float* interleaved, int num_channels, int num_frames) noexcept {
    rt::Section section;
    num_frames = std::max(0, num_frames);
    const BlockStart block = begin_block(num_frames);
    const int nch = std::min(num_channels, num_channels_);
    for (int done = 0; done < num_frames;) {
        const int n = std::min(max_block_, num_frames - done);
        float* frame = interleaved + static_cast<std::size_t>(done) * num_channels;
        for (int i = 0; i < n; ++i)
            for (int c = 0; c < nch; ++c) planar_ptrs_[c][i] = frame[i * num_channels + c];
        process_chunk(planar_ptrs_.data(), nch, n);
        for (int i = 0; i < n; ++i) {
            for (int c = 0; c < nch; ++c) frame[i * num_channels + c] = planar_ptrs_[c][i];
            for (int c = nch; c < num_channels; ++c) frame[i * num_channels + c] = 0.0f;
        }
        done += n;
    }
    finish_block(block, num_frames);
}

Engine::BlockStart Engine::begin_block(int frames) noexcept {
    const std::uint64_t start_ns = now_ns();
    const std::uint64_t seq = clock_seq_.load(std::memory_order_relaxed);
    clock_seq_.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    clock_sample_.store(sample_clock_, std::memory_order_relaxed);
    clock_ns_.store(start_ns, std::memory_order_relaxed);
    clock_frames_.store(static_cast<std::uint64_t>(frames), std::memory_order_relaxed);
    clock_blocks_.store(block_index_ + 1, std::memory_order_relaxed);
    clock_seq_.store(seq + 2, std::memory_order_release);
    chunk_flags_ = 0;
    drain_parameter_queue();
    midi_gen_.begin_block(sample_clock_, midi_);
    return {start_ns, sample_clock_};
}

BlockClock Engine::block_clock() const noexcept {
    BlockClock c;
    for (;;) {
        const std::uint64_t before = clock_seq_.load(std::memory_order_acquire);
        c.sample_time = clock_sample_.load(std::memory_order_relaxed);
        c.steady_ns = clock_ns_.load(std::memory_order_relaxed);
        c.frames = static_cast<std::uint32_t>(clock_frames_.load(std::memory_order_relaxed));
        c.blocks = clock_blocks_.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if ((before & 1u) == 0 && clock_seq_.load(std::memory_order_relaxed) == before) return c;
    }
}

void Engine::finish_block(const BlockStart& block, int frames) noexcept {
    const std::uint64_t elapsed = now_ns() - block.ns;
    std::uint32_t flags = chunk_flags_;
    const double budget_ns = budget_fraction_.load(std::memory_order_relaxed) * 1e9 * frames / sample_rate_;
    // A zero-frame call (hosts send them to flush parameter changes) has no budget it could overrun.
    if (frames > 0 && static_cast<double>(elapsed) > budget_ns) flags |= kBlockOverBudget;
    timing_.record(elapsed, (flags & kBlockOverBudget) != 0);
    BlockTelemetry t;
    t.block_index = block_index_++;
    t.sample_time = block.sample;
    t.frames = static_cast<std::uint32_t>(frames);
    t.cpu_ns = static_cast<std::uint32_t>(std::min<std::uint64_t>(elapsed, 0xffffffffu));
    t.flags = flags;
    if (telemetry_enabled_.load(std::memory_order_relaxed) && !telemetry_.push(t))
        telemetry_dropped_.fetch_add(1, std::memory_order_relaxed);
    frames_.fetch_add(static_cast<std::uint64_t>(frames), std::memory_order_relaxed);
    blocks_.fetch_add(1, std::memory_order_release);
}

void Engine::process_chunk(float* const* ch, int nch, int n) noexcept {
    const std::size_t stride = static_cast<std::size_t>(max_block_);
    // MIDI first: its steps are due by position on the sample clock, whatever the audio holds.
    midi_gen_.run(sample_clock_, n, midi_);
    // Input sanitising: NaN/Inf become silence and absurd levels are clamped, before they can reach any
    // filter state (one 1e20 sample would otherwise haunt the drive's DC blocker for seconds).
    std::uint64_t nonfinite = 0;
    for (int c = 0; c < nch; ++c) {
        float* x = ch[c];
        float* dry = dry_.data() + c * stride;
        for (int i = 0; i < n; ++i) {
            if (!(std::fabs(x[i]) <= kInputClamp)) {
                if (std::isfinite(x[i])) {
                    x[i] = std::copysign(kInputClamp, x[i]);
                } else {
                    x[i] = 0.0f;
                    ++nonfinite;
                }
            }
            dry[i] = x[i];
        }
    }
    if (nonfinite) {
        nonfinite_.fetch_add(nonfinite, std::memory_order_relaxed);
        chunk_flags_ |= kBlockNonFiniteInput;
    }
    const bool analysing = analysis_enabled_.load(std::memory_order_relaxed);
    if (analysing && !analysis_was_on_)  // the stream (re)starts here: a reader maps its samples to the clock
        analysis_origin_.store(sample_clock_, std::memory_order_release);
    analysis_was_on_ = analysing;
    if (analysing) {
        float mono[64];
        const float scale = 1.0f / static_cast<float>(nch);
        for (int i0 = 0; i0 < n; i0 += 64) {
            const int m = std::min(64, n - i0);
            for (int i = 0; i < m; ++i) {
                float s = 0.0f;
                for (int c = 0; c < nch; ++c) s += dry_[c * stride + i0 + i];
                mono[i] = s * scale;
            }
            const std::size_t pushed = analysis_.push(mono, static_cast<std::size_t>(m));
            if (pushed < static_cast<std::size_t>(m))
                analysis_dropped_.fetch_add(m - pushed, std::memory_order_relaxed);
        }
    }

    // Walk the chunk in segments that end on the coefficient grid of the sample clock.
    for (int seg = 0; seg < n;) {
        const std::uint64_t pos = sample_clock_ + static_cast<std::uint64_t>(seg);
        const int phase = static_cast<int>(pos % kCoefficientGrid);
        if (phase == 0) {
            bool eq_moving = false;
            for (auto& r : eq_)
                if (r.ramping()) {
                    r.advance();
                    eq_moving = true;
                }
            // The step on which a ramp lands also decides whether its band drops back to bypass.
            if (eq_moving) update_eq_coefficients();
            if (drive_gain_.ramping() || crunch_.ramping()) {
                drive_gain_.advance();
                crunch_.advance();
                update_saturation_shape();
            }
        }
        const int len = std::min(n - seg, kCoefficientGrid - phase);
        run_eq(ch, nch, seg, len);
        seg += len;
    }

    // Non-finite values cannot arise from finite input and stable filters; if one ever does, recover.
    for (int i = 0; i < n; ++i) {
        bool finite = true;
        for (int c = 0; c < nch; ++c) finite = finite && std::isfinite(ch[c][i]);
        if (finite) continue;
        for (int c = 0; c < nch; ++c) {
            ch[c][i] = 0.0f;
            for (auto& f : filters_[c]) f.reset();
            dc_x1_[c] = dc_y1_[c] = 0.0;
        }
        compressor_.reset();  // its reduction may have followed the bad samples
        limiter_.reset();
    }
    const std::uint64_t limited = limiter_.process(ch, nch, n);
    if (limited) {
        limited_.fetch_add(limited, std::memory_order_relaxed);
        chunk_flags_ |= kBlockLimited;
    }
    // The compressor's meter for other threads (counters()): one relaxed store per chunk, and one more on a new peak.
    const double reduction = compressor_.reduction_db();
    compressor_reduction_db_.store(reduction, std::memory_order_relaxed);
    if (reduction > compressor_peak_reduction_db_.load(std::memory_order_relaxed))
        compressor_peak_reduction_db_.store(reduction, std::memory_order_relaxed);
    sample_clock_ += static_cast<std::uint64_t>(n);
}

void Engine::run_eq(float* const* ch, int nch, int start, int count) noexcept {
    // Per-sample ramps shared by all channels.
    double gin[kCoefficientGrid], blend[kCoefficientGrid], mix[kCoefficientGrid], gout[kCoefficientGrid];
    for (int i = 0; i < count; ++i) {
        gin[i] = input_gain_.advance();
        blend[i] = drive_blend_.advance();
        mix[i] = mix_.advance();
        gout[i] = output_gain_.advance();
    }
    const bool drive_on = drive_blend_.value() != 0.0 || drive_blend_.ramping() || blend[0] != 0.0;
    int active[5];
    int num_active = 0;
    for (int b = 0; b < 5; ++b)
        if (band_active_[b]) active[num_active++] = b;

    // Input gain, drive and EQ per channel, kept in double until the mix (as one pass per channel did).
    double wet[kMaxChannels][kCoefficientGrid];
    for (int c = 0; c < nch; ++c) {
        const float* x = ch[c] + start;
        auto& f = filters_[c];
        double dc_x1 = dc_x1_[c], dc_y1 = dc_y1_[c];
        for (int i = 0; i < count; ++i) {
            double s = static_cast<double>(x[i]) * gin[i];
            if (drive_on) {
                // Only the distortion residual is DC-blocked, so the clean part keeps its lowest bass.
                const double residual = shape_.apply(s) - s;
                const double hp = residual - dc_x1 + dc_pole_ * dc_y1;
                dc_x1 = residual;
                dc_y1 = hp;
                s += blend[i] * hp;
            }
            for (int k = 0; k < num_active; ++k) s = f[active[k]].process(s);
            wet[c][i] = s;
        }
        if (drive_on) {
            dc_x1_[c] = dc_x1;
            dc_y1_[c] = dc_y1;
        } else {
            dc_x1_[c] = dc_y1_[c] = 0.0;
        }
    }

    // The compressor after the EQ, linked: the loudest channel of each frame sets the gain of all. While it is
    // transparent the wet signal is not touched at all (bit-identical to a chain without it).
    if (!compressor_.transparent()) {
        for (int i = 0; i < count; ++i) {
            double peak = 0.0;
            for (int c = 0; c < nch; ++c) peak = std::max(peak, std::fabs(wet[c][i]));
            const double g = compressor_.gain(peak);
            for (int c = 0; c < nch; ++c) wet[c][i] *= g;
        }
    }

    const std::size_t stride = static_cast<std::size_t>(max_block_);
    for (int c = 0; c < nch; ++c) {
        float* x = ch[c] + start;
        const float* dry = dry_.data() + c * stride + start;
        for (int i = 0; i < count; ++i) {
            const double out = (static_cast<double>(dry[i]) * gin[i] * (1.0 - mix[i]) + wet[c][i] * mix[i]) * gout[i];
            x[i] = static_cast<float>(out);
        }
    }
}

EngineCounters Engine::counters() const noexcept {
    EngineCounters k;
    k.blocks = blocks_.load(std::memory_order_acquire);
    k.frames = frames_.load(std::memory_order_relaxed);
    k.nonfinite_samples = nonfinite_.load(std::memory_order_relaxed);
    k.limited_samples = limited_.load(std::memory_order_relaxed);
    k.snapshots_applied = snapshots_applied_.load(std::memory_order_relaxed);
    k.applied_sequence = applied_sequence_.load(std::memory_order_relaxed);
    k.telemetry_dropped = telemetry_dropped_.load(std::memory_order_relaxed);
    k.analysis_dropped = analysis_dropped_.load(std::memory_order_relaxed);
    k.compressor_reduction_db = compressor_reduction_db_.load(std::memory_order_relaxed);
    k.compressor_peak_reduction_db = compressor_peak_reduction_db_.load(std::memory_order_relaxed);
    return k;
}

void eq_response_db(const Parameters& params, double sample_rate, const double* freqs_hz, double* out_db,
                    std::size_t count) noexcept {
    std::array<double, kNumEqParams> eq{};
    for (std::size_t i = 0; i < kNumEqParams; ++i) eq[i] = params.values[kEqFirstParam + i];
    std::array<BiquadCoefficients, 5> coeffs{};
    band_coefficients(eq, sample_rate, coeffs);
    for (std::size_t k = 0; k < count; ++k) {
        const double w = 2.0 * M_PI * freqs_hz[k] / sample_rate;
        const std::complex<double> z1 = std::polar(1.0, -w), z2 = std::polar(1.0, -2.0 * w);
        double db = 0.0;
        for (std::size_t b = 0; b < 5; ++b) {
            if (eq[kBandGainIndex[b]] == 0.0) continue;  // bypassed, as in the engine
            const auto& c = coeffs[b];
            const std::complex<double> h = (c.b0 + c.b1 * z1 + c.b2 * z2) / (1.0 + c.a1 * z1 + c.a2 * z2);
            db += 20.0 * std::log10(std::abs(h));
        }
        out_db[k] = db;
    }
}

}  // namespace idaw
