#include "idaw/midi_generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace idaw {
namespace {

constexpr std::size_t kControlQueueSize = 16;
constexpr int kMaxStepsPerChunk = 64;     // a bound on one chunk's work; later steps follow in the next chunk
constexpr float kSoundingMass = 0.5f;     // a melody note sounds when the range's probabilities sum to this
constexpr float kCandidateShare = 0.15f;  // candidate pitches have at least this share of the best one's
constexpr float kCandidateFloor = 0.01f;  // ... and at least this probability
constexpr float kOnsetGate = 0.35f;       // groove onset probability a new melody onset needs
constexpr float kRestrikeGate = 0.65f;    // ... and a repeated pitch needs to be struck again
constexpr double kMaxTimingSteps = 0.4;   // onsets stay within +-0.4 step of the grid
constexpr double kMaxRollSteps = 0.25;    // a rolled chord spreads over at most a quarter step
constexpr double kMinLengthSteps = 0.05;  // shortest note

/// Expression used while no DynamicsEngine is installed (README decoding: velocity ~70, light accents, legato-ish).
constexpr std::array<float, 16> kDefaultExpression{0.55f, 0.1f, 0.25f, 0.05f, 0.5f, 0.8f, 0.1f, 0.5f,
                                                   0.1f,  0.5f, 0.0f,  0.6f,  0.1f, 0.0f, 0.0f, 0.0f};
/// Onset probability per step while no GroovePredictor is installed: beats, then eighths, then sixteenths.
constexpr float default_onset(int k) noexcept { return k % 4 == 0 ? 1.0f : (k % 2 == 0 ? 0.6f : 0.4f); }

std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

float clip(float v, float lo, float hi) noexcept { return std::min(hi, std::max(lo, v)); }

std::uint64_t to_time(double t) noexcept { return t <= 0.0 ? 0 : static_cast<std::uint64_t>(std::llround(t)); }

bool finite_in(float v, float lo, float hi) noexcept { return v >= lo && v <= hi; }  // false for NaN

}  // namespace

const char* check_midi_control(const MidiControl& c) noexcept {
    if (c.melody_channel > 15 || c.chord_channel > 15) return "channel out of range (0..15)";
    if (c.key_tonic > 11) return "key tonic out of range (0..11)";
    if (c.scale >= music::kNumScales) return "unknown scale";
    if (!finite_in(c.tempo_bpm, MidiControl::kMinTempo, MidiControl::kMaxTempo)) return "tempo out of range (20..300)";
    for (float e : c.emotion)
        if (!finite_in(e, -1.0f, 1.0f)) return "emotion value out of range (-1..1)";
    return nullptr;
}

MidiGenerator::MidiGenerator() : controls_(kControlQueueSize) {}

void MidiGenerator::prepare(double sample_rate) {
    sample_rate_ = sample_rate;
    lead_ = kLeadSeconds * sample_rate_;
    MidiControl latest;
    while (controls_.pop(latest)) control_ = latest;
    running_ = false;
    start_pending_ = control_.enabled;
    backlog_count_ = 0;
    backlog_now_.store(0, std::memory_order_relaxed);
    melody_ = Note{};
    chord_notes_.fill(Note{});
    last_off_ = 0;
    min_onset_ = 0;
    key_free_at_.fill(0);
    next_step_start_ = 0.0;
    step_index_ = 0;
    reset_music();
    step_ns_max_.store(0, std::memory_order_relaxed);
    step_timing_.clear();
    bar_timing_.clear();
}

bool MidiGenerator::push_control(const MidiControl& control) noexcept {
    if (check_midi_control(control) != nullptr) return false;
    return controls_.push(control);
}

std::string MidiGenerator::install(MidiNet net, std::unique_ptr<nn::Model> model) {
    const auto& spec = kMidiNetSpecs[static_cast<std::size_t>(net)];
    if (!model) return std::string(spec.name) + ": no model";
    if (model->input_size() != spec.inputs || model->output_size() != spec.outputs)
        return std::string(spec.name) + " needs " + std::to_string(spec.inputs) + " inputs and " +
               std::to_string(spec.outputs) + " outputs, the model has " + std::to_string(model->input_size()) +
               " and " + std::to_string(model->output_size());
    slots_[static_cast<std::size_t>(net)].install(std::move(model));
    return {};
}

void MidiGenerator::clear(MidiNet net) { slots_[static_cast<std::size_t>(net)].clear(); }

void MidiGenerator::collect() {
    for (auto& slot : slots_) slot.collect();
}

double MidiGenerator::lookahead_samples(double tempo_bpm) const noexcept {
    return 1.5 * step_samples(tempo_bpm) + lead_;
}

MidiGeneratorCounters MidiGenerator::counters() const noexcept {
    MidiGeneratorCounters k;
    k.steps = steps_.load(std::memory_order_relaxed);
    k.note_ons = note_ons_.load(std::memory_order_relaxed);
    k.note_offs = note_offs_.load(std::memory_order_relaxed);
    k.dropped_notes = dropped_.load(std::memory_order_relaxed);
    k.backlog = backlog_now_.load(std::memory_order_relaxed);
    k.controls_applied = controls_applied_.load(std::memory_order_relaxed);
    k.applied_sequence = applied_sequence_.load(std::memory_order_relaxed);
    k.model_swaps = swaps_.load(std::memory_order_relaxed);
    k.step_ns_total = step_ns_total_.load(std::memory_order_relaxed);
    k.step_ns_max = step_ns_max_.load(std::memory_order_relaxed);
    k.bar_steps = bar_steps_.load(std::memory_order_relaxed);
    k.bar_step_ns_total = bar_ns_total_.load(std::memory_order_relaxed);
    return k;
}

int MidiGenerator::sounding_notes() const noexcept {
    int n = melody_.active ? 1 : 0;
    for (const Note& note : chord_notes_) n += note.active ? 1 : 0;
    return n;
}

// ---- audio thread ---------------------------------------------------------------------------------------------------

void MidiGenerator::begin_block(std::uint64_t block_start, SpscRing<MidiEvent>& out) noexcept {
    bool swapped = false;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        nn::Model* m = slots_[i].acquire();
        if (m != nets_[i]) {
            nets_[i] = m;
            swapped = true;
        }
    }
    if (swapped) {
        swaps_.fetch_add(1, std::memory_order_relaxed);
        if (running_) {
            end_all_at_frontier(out);
            // The new net starts from zero state; the musical context it needs is computed afresh at the next step.
            need_groove_ = need_harmony_ = need_dynamics_ = true;
        }
    }
    MidiControl latest;
    bool any = false;
    while (controls_.pop(latest)) any = true;  // full-state snapshots: only the newest matters
    if (any) apply_control(latest, block_start, out);
    if (start_pending_) {
        start_pending_ = false;
        if (control_.enabled && !running_) start_grid(block_start);
    }
}

void MidiGenerator::apply_control(const MidiControl& next, std::uint64_t block_start,
                                  SpscRing<MidiEvent>& out) noexcept {
    const MidiControl previous = control_;
    control_ = next;
    if (!next.enabled) {
        if (running_) end_all_at_frontier(out);
        running_ = false;
    } else if (!running_) {
        start_grid(block_start);
    } else {
        if (next.melody_channel != previous.melody_channel || next.chord_channel != previous.chord_channel)
            end_all_at_frontier(out);
        if (next.tempo_bpm != previous.tempo_bpm) {
            step_samples_ = step_samples(next.tempo_bpm);
            lookahead_ = lookahead_samples(next.tempo_bpm);
            // A slower tempo lengthens the lookahead: move the grid so the next step is still that far ahead.
            next_step_start_ = std::max(next_step_start_, static_cast<double>(block_start) + lookahead_);
        }
    }
    controls_applied_.fetch_add(1, std::memory_order_relaxed);
    applied_sequence_.store(next.sequence, std::memory_order_relaxed);
}

void MidiGenerator::start_grid(std::uint64_t block_start) noexcept {
    step_samples_ = step_samples(control_.tempo_bpm);
    lookahead_ = lookahead_samples(control_.tempo_bpm);
    // Step 0's earliest onset (0.4 step early) must come after every note-off of an earlier grid.
    const double after_last = static_cast<double>(last_off_) + 1.0 + 0.5 * step_samples_;
    next_step_start_ = std::max(static_cast<double>(block_start) + lookahead_, last_off_ ? after_last : 0.0);
    step_index_ = 0;
    rng_state_ = control_.seed;
    for (nn::Model* m : nets_)
        if (m != nullptr) m->reset();
    reset_music();
    running_ = true;
}

void MidiGenerator::reset_music() noexcept {
    chord_ = music::kNoChord;
    prev_chord_ = -1;
    chord_changed_ = false;
    need_groove_ = need_harmony_ = need_dynamics_ = true;
    for (int k = 0; k < 16; ++k) {
        groove_onset_[static_cast<std::size_t>(k)] = default_onset(k);
        groove_timing_[static_cast<std::size_t>(k)] = 0.0f;
    }
    expression_ = kDefaultExpression;
    history_pitch_.fill(-1);
    history_onset_.fill(0);
    last_pitch_ = -1;
}

void MidiGenerator::end_all_at_frontier(SpscRing<MidiEvent>& out) noexcept {
    const std::uint64_t frontier = to_time(std::ceil(next_step_start_));
    const std::uint64_t min_len = to_time(std::max(1.0, kMinLengthSteps * step_samples_));
    auto end = [&](Note& note) {
        if (!note.active) return;
        push_off(note, std::max(frontier, note.on_time + min_len), out);
        note.active = false;
    };
    end(melody_);
    for (Note& note : chord_notes_) end(note);
    // The next step's onsets (up to 0.4 step early) must not come before these note-offs.
    min_onset_ = std::max(min_onset_, last_off_ + 1);
}

void MidiGenerator::run(std::uint64_t chunk_start, int frames, SpscRing<MidiEvent>& out) noexcept {
    flush_backlog(out);
    if (!running_) return;
    const double end = static_cast<double>(chunk_start + static_cast<std::uint64_t>(std::max(0, frames)));
    for (int n = 0; running_ && n < kMaxStepsPerChunk && next_step_start_ - lookahead_ < end; ++n) generate_step(out);
}

void MidiGenerator::generate_step(SpscRing<MidiEvent>& out) noexcept {
    const std::uint64_t began = now_ns();
    const int k = static_cast<int>(step_index_ % kStepsPerBar);
    const bool bar_start = k == 0;
    bool strike = false;
    if (bar_start || need_groove_) run_groove();
    if (bar_start || need_harmony_) {
        run_harmony();
        strike = true;
    }
    if (k % kStepsPerBeat == 0 || need_dynamics_) run_dynamics();

    const std::uint64_t onset = std::max(to_time(next_step_start_ + onset_offset(k)), min_onset_);
    if (strike) strike_chord(onset, k, out);
    const int pitch = choose_melody_pitch();
    update_melody(pitch, onset, k, out);
    flush_backlog(out);

    next_step_start_ += step_samples_;
    ++step_index_;
    const std::uint64_t took = now_ns() - began;
    steps_.fetch_add(1, std::memory_order_relaxed);
    step_ns_total_.fetch_add(took, std::memory_order_relaxed);
    if (took > step_ns_max_.load(std::memory_order_relaxed)) step_ns_max_.store(took, std::memory_order_relaxed);
    step_timing_.record(took, false);
    if (bar_start) {
        bar_steps_.fetch_add(1, std::memory_order_relaxed);
        bar_ns_total_.fetch_add(took, std::memory_order_relaxed);
        bar_timing_.record(took, false);
    }
}

void MidiGenerator::run_groove() noexcept {
    need_groove_ = false;
    nn::Model* net = nets_[static_cast<std::size_t>(MidiNet::Groove)];
    if (net == nullptr) {
        for (int k = 0; k < 16; ++k) {
            groove_onset_[static_cast<std::size_t>(k)] = default_onset(k);
            groove_timing_[static_cast<std::size_t>(k)] = 0.0f;
        }
        return;
    }
    std::copy(control_.emotion.begin(), control_.emotion.end(), in_.begin());
    net->forward(in_.data(), out_.data());
    for (std::size_t k = 0; k < 16; ++k) {
        groove_onset_[k] = (clip(out_[k], -1.0f, 1.0f) + 1.0f) * 0.5f;  // README: (y + 1) / 2
        groove_timing_[k] = clip(out_[16 + k], -1.0f, 1.0f);            // offset y / 2 sixteenths
    }
}

void MidiGenerator::run_harmony() noexcept {
    need_harmony_ = false;
    const int bar = static_cast<int>(step_index_ / kStepsPerBar);
    // A new bar: the chord that was current becomes the previous one (mid-bar re-runs keep the bar's "previous").
    if (step_index_ % kStepsPerBar == 0) prev_chord_ = step_index_ == 0 ? -1 : chord_;
    nn::Model* net = nets_[static_cast<std::size_t>(MidiNet::Harmony)];
    const int before = chord_;
    if (net == nullptr) {
        chord_ = music::kNoChord;
    } else {
        const music::Key key{control_.key_tonic, control_.scale};
        float* x = in_.data();
        std::fill(in_.begin(), in_.end(), 0.0f);
        std::copy(control_.emotion.begin(), control_.emotion.end(), x);
        // Melody pitch-class profiles of the last 16 steps ("this bar": the bar being harmonised is not generated
        // yet) and of the 16 before, weighted by sounding steps.
        float count_now = 0.0f, count_prev = 0.0f, pitch_sum = 0.0f, onsets = 0.0f;
        for (int back = 1; back <= 32; ++back) {
            if (static_cast<std::uint64_t>(back) > step_index_) break;
            const std::size_t slot = (step_index_ - static_cast<std::uint64_t>(back)) % kHistory;
            const int p = history_pitch_[slot];
            if (back <= 16) onsets += history_onset_[slot];
            if (p < 0) continue;
            if (back <= 16) {
                x[64 + music::pitch_class(p)] += 1.0f;
                count_now += 1.0f;
                pitch_sum += static_cast<float>(p);
            } else {
                x[76 + music::pitch_class(p)] += 1.0f;
                count_prev += 1.0f;
            }
        }
        for (int i = 0; i < 12; ++i) {
            if (count_now > 0.0f) x[64 + i] /= count_now;
            if (count_prev > 0.0f) x[76 + i] /= count_prev;
        }
        x[88 + music::pitch_class(control_.key_tonic)] = 1.0f;
        x[music::key_is_minor(key) ? 101 : 100] = 1.0f;
        if (music::is_pitched_chord(prev_chord_)) {
            x[102 + music::chord_root(prev_chord_)] = 1.0f;
            x[114 + static_cast<int>(music::chord_quality(prev_chord_))] = 1.0f;
        } else {
            x[119] = 1.0f;
        }
        x[120 + bar % kBarsPerPhrase] = 1.0f;
        x[124] = clip((control_.tempo_bpm - 120.0f) / 60.0f, -1.0f, 1.0f);
        x[125] = clip(onsets / 16.0f, 0.0f, 1.0f);
        x[126] = count_now > 0.0f ? clip((pitch_sum / count_now - 60.0f) / 24.0f, -1.0f, 1.0f) : 0.0f;
        x[127] = bar == 0 ? 1.0f : 0.0f;
        net->forward(x, out_.data());
        chord_ = music::choose_chord(out_.data(), key);
    }
    chord_changed_ = chord_ != before;
}

void MidiGenerator::run_dynamics() noexcept {
    need_dynamics_ = false;
    nn::Model* net = nets_[static_cast<std::size_t>(MidiNet::Dynamics)];
    if (net == nullptr) {
        expression_ = kDefaultExpression;
        return;
    }
    const int k = static_cast<int>(step_index_ % kStepsPerBar);
    const int beat = k / kStepsPerBeat;
    const int bar_in_phrase = static_cast<int>((step_index_ / kStepsPerBar) % kBarsPerPhrase);
    float* x = in_.data();
    std::fill(in_.begin(), in_.begin() + 32, 0.0f);
    std::copy(control_.emotion.begin(), control_.emotion.begin() + 12, x);
    x[12 + beat] = 1.0f;
    x[16 + bar_in_phrase] = 1.0f;
    x[20] = clip((control_.tempo_bpm - 120.0f) / 60.0f, -1.0f, 1.0f);
    float onsets = 0.0f, count = 0.0f, sum = 0.0f;
    int lo = 127, hi = 0;
    for (int back = 1; back <= 16 && static_cast<std::uint64_t>(back) <= step_index_; ++back) {
        const std::size_t slot = (step_index_ - static_cast<std::uint64_t>(back)) % kHistory;
        onsets += history_onset_[slot];
        const int p = history_pitch_[slot];
        if (p < 0) continue;
        count += 1.0f;
        sum += static_cast<float>(p);
        lo = std::min(lo, p);
        hi = std::max(hi, p);
    }
    x[21] = clip(onsets / 16.0f, 0.0f, 1.0f);
    x[22] = count > 0.0f ? clip((sum / count - 60.0f) / 24.0f, -1.0f, 1.0f) : 0.0f;
    x[23] = count > 0.0f ? clip(static_cast<float>(hi - lo) / 24.0f, 0.0f, 1.0f) : 0.0f;
    if (music::is_pitched_chord(chord_))
        x[24 + static_cast<int>(music::chord_quality(chord_))] = 1.0f;
    else
        x[29] = 1.0f;
    x[30] = (beat == 0 && chord_changed_) ? 1.0f : 0.0f;
    x[31] = static_cast<float>(bar_in_phrase * 4 + beat) / 15.0f;
    net->forward(x, out_.data());
    for (std::size_t i = 0; i < 16; ++i) expression_[i] = clip(out_[i], 0.0f, 1.0f);
}

int MidiGenerator::choose_melody_pitch() noexcept {
    nn::Model* net = nets_[static_cast<std::size_t>(MidiNet::Melody)];
    if (net == nullptr) {
        std::fill(out_.begin(), out_.end(), 0.0f);
        melody_sounds_ = false;
        return -1;
    }
    std::copy(control_.emotion.begin(), control_.emotion.end(), in_.begin());
    net->forward(in_.data(), out_.data());
    const music::Key key{control_.key_tonic, control_.scale};
    // Does a melody note sound at all? The expected number of sounding pitches in the range (README: output k is
    // the probability that pitch k sounds during the step).
    float mass = 0.0f, best = 0.0f;
    for (int p = kMelodyLow; p <= kMelodyHigh; ++p) {
        const float prob = out_[static_cast<std::size_t>(p)];
        if (!(prob >= 0.0f)) continue;  // NaN never counts
        mass += prob;
        if (music::in_key(p, key)) best = std::max(best, prob);
    }
    melody_floor_ = std::max(kCandidateFloor, kCandidateShare * best);
    melody_sounds_ = mass >= kSoundingMass && best >= melody_floor_;
    if (!melody_sounds_) return -1;
    const int reference = melody_.active ? melody_.pitch : (last_pitch_ >= 0 ? last_pitch_ : 72);
    std::array<double, kMelodyHigh - kMelodyLow + 1> weight{};
    double total = 0.0;
    for (int p = kMelodyLow; p <= kMelodyHigh; ++p) {
        const float prob = out_[static_cast<std::size_t>(p)];
        if (!(prob >= melody_floor_) || !music::in_key(p, key)) continue;
        const double w = static_cast<double>(prob) * prob * std::exp(-std::abs(p - reference) / 4.0);
        weight[static_cast<std::size_t>(p - kMelodyLow)] = w;
        total += w;
    }
    if (!(total > 0.0)) return -1;
    double r = uniform() * total;
    int chosen = -1;
    for (int p = kMelodyLow; p <= kMelodyHigh; ++p) {
        const double w = weight[static_cast<std::size_t>(p - kMelodyLow)];
        if (w <= 0.0) continue;
        chosen = p;  // the last candidate also catches rounding at the top end
        if (r < w) break;
        r -= w;
    }
    last_pitch_ = chosen;
    return chosen;
}

void MidiGenerator::update_melody(int pitch, std::uint64_t onset, int k, SpscRing<MidiEvent>& out) noexcept {
    const float onset_prob = groove_onset_[static_cast<std::size_t>(k)];
    const bool may_start = onset_prob >= kOnsetGate;
    const music::Key key{control_.key_tonic, control_.scale};
    bool end_current = false, start_new = false;
    if (melody_.active) {
        const int held = melody_.pitch;
        const bool held_sounds =
            melody_sounds_ && out_[static_cast<std::size_t>(held)] >= melody_floor_ && music::in_key(held, key);
        if (pitch == held) {
            end_current = start_new = onset_prob >= kRestrikeGate;
        } else if (pitch >= 0 && may_start) {
            end_current = start_new = true;
        } else if (!(pitch >= 0 && held_sounds)) {
            end_current = true;  // a rest, or a new pitch that may not start here while the old one has gone
        }
    } else {
        start_new = pitch >= 0 && may_start;
    }

    if (end_current) {
        const double on = static_cast<double>(melody_.on_time);
        const double written_end = static_cast<double>(onset);
        const double last = std::min(written_end - on, step_samples_);
        double off = written_end - (1.0 - articulation()) * last;
        off = std::max(off, on + std::max(1.0, kMinLengthSteps * step_samples_));
        std::uint64_t off_time = to_time(off);
        if (start_new && pitch == melody_.pitch) off_time = std::min(off_time, onset - 1);
        push_off(melody_, std::max(off_time, melody_.on_time + 1), out);
        melody_.active = false;
    }
    bool onset_made = false;
    if (start_new) {
        Note note{true, control_.melody_channel, static_cast<std::uint8_t>(pitch), onset};
        if (push_on(note, velocity(k, true), out)) {
            melody_ = note;
            onset_made = true;
        }
    }
    record_history(melody_.active ? melody_.pitch : -1, onset_made);
}

void MidiGenerator::strike_chord(std::uint64_t onset, int k, SpscRing<MidiEvent>& out) noexcept {
    const std::uint64_t min_len = to_time(std::max(1.0, kMinLengthSteps * step_samples_));
    for (Note& note : chord_notes_) {
        if (!note.active) continue;
        push_off(note, std::max(onset - 1, note.on_time + min_len), out);
        note.active = false;
    }
    int pitches[music::kMaxChordVoices];
    const int n = music::voice_chord(chord_, pitches);
    if (n == 0) return;
    const double roll = std::min(0.080 * expression_[12] * sample_rate_, kMaxRollSteps * step_samples_);
    const int vel = velocity(k, false);
    for (int i = 0; i < n; ++i) {
        const std::uint64_t on = onset + to_time(roll * i / n);
        Note note{true, control_.chord_channel, static_cast<std::uint8_t>(pitches[i]), on};
        if (push_on(note, vel, out)) chord_notes_[static_cast<std::size_t>(i)] = note;
    }
}

int MidiGenerator::velocity(int k, bool melody) noexcept {
    const auto& e = expression_;
    double v = 1.0 + 126.0 * e[0] + gaussian() * 24.0 * e[1];  // spread: standard deviation 24 y (clamped at 2 sigma)
    v += (k % kStepsPerBeat == 0) ? 32.0 * e[2] : 32.0 * e[3];
    v += (2.0 * e[4] - 1.0) * 16.0 * (k % kStepsPerBeat) / kStepsPerBeat;
    const double prominence = (2.0 * e[11] - 1.0) * 24.0;
    v += melody ? prominence / 2.0 : -prominence / 2.0;
    return static_cast<int>(std::clamp(std::lround(v), 1L, 127L));
}

double MidiGenerator::onset_offset(int k) noexcept {
    const auto& e = expression_;
    double offset = groove_timing_[static_cast<std::size_t>(k)] * 0.5 * step_samples_;  // y / 2 sixteenths
    offset += (2.0 * e[7] - 1.0) * 0.030 * sample_rate_;                                // +-30 ms
    offset += gaussian() * 0.015 * e[8] * sample_rate_;                                 // jitter, 15 y ms
    const double limit = kMaxTimingSteps * step_samples_;
    return std::clamp(offset, -limit, limit);
}

double MidiGenerator::articulation() noexcept {
    const auto& e = expression_;
    return std::clamp(0.1 + e[5] + gaussian() * 0.25 * e[6], 0.1, 1.1);
}

double MidiGenerator::uniform() noexcept {
    // splitmix64: tiny, seeded, and the same sequence whatever the block split.
    std::uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

double MidiGenerator::gaussian() noexcept {
    // Irwin-Hall: four uniforms, centred and scaled to unit variance.
    const double sum = uniform() + uniform() + uniform() + uniform();
    return std::clamp((sum - 2.0) * 1.7320508075688772, -2.0, 2.0);
}

bool MidiGenerator::push_on(Note& note, int velocity, SpscRing<MidiEvent>& out) noexcept {
    note.on_time = std::max(note.on_time, key_free_at_[static_cast<std::size_t>(note.channel) * 128 + note.pitch]);
    MidiEvent ev;
    ev.sample_time = note.on_time;
    ev.bytes[0] = static_cast<std::uint8_t>(kMidiNoteOn | note.channel);
    ev.bytes[1] = note.pitch;
    ev.bytes[2] = static_cast<std::uint8_t>(std::clamp(velocity, 1, 127));
    ev.size = 3;
    // A note-off still waiting in the backlog must reach the ring before anything after it.
    if (backlog_count_ > 0 || !out.push(ev)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    note_ons_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void MidiGenerator::push_off(const Note& note, std::uint64_t time, SpscRing<MidiEvent>& out) noexcept {
    MidiEvent ev;
    ev.sample_time = time;
    ev.bytes[0] = static_cast<std::uint8_t>(kMidiNoteOff | note.channel);
    ev.bytes[1] = note.pitch;
    ev.bytes[2] = 0;
    ev.size = 3;
    last_off_ = std::max(last_off_, time);
    std::uint64_t& free_at = key_free_at_[static_cast<std::size_t>(note.channel) * 128 + note.pitch];
    free_at = std::max(free_at, time + 1);
    if (backlog_count_ == 0 && out.push(ev)) {
        note_offs_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // At most one note-off per sounding note is ever outstanding, far fewer than the backlog holds.
    if (backlog_count_ < kBacklogSize) backlog_[static_cast<std::size_t>(backlog_count_++)] = ev;
    backlog_now_.store(static_cast<std::uint64_t>(backlog_count_), std::memory_order_relaxed);
}

void MidiGenerator::flush_backlog(SpscRing<MidiEvent>& out) noexcept {
    if (backlog_count_ == 0) return;
    int sent = 0;
    while (sent < backlog_count_ && out.push(backlog_[static_cast<std::size_t>(sent)])) ++sent;
    note_offs_.fetch_add(static_cast<std::uint64_t>(sent), std::memory_order_relaxed);
    std::copy(backlog_.begin() + sent, backlog_.begin() + backlog_count_, backlog_.begin());
    backlog_count_ -= sent;
    backlog_now_.store(static_cast<std::uint64_t>(backlog_count_), std::memory_order_relaxed);
}

void MidiGenerator::record_history(int pitch, bool onset) noexcept {
    const std::size_t slot = step_index_ % kHistory;
    history_pitch_[slot] = static_cast<std::int8_t>(pitch);
    history_onset_[slot] = onset ? 1 : 0;
}

}  // namespace idaw
