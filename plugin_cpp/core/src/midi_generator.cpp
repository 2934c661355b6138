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
constexpr int kRegisterWindow = 2;        // the theory layer reads the melody net's register over +-2 semitones

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

/// Melody candidate weights, one per pitch of the melody's range.
using PitchWeights = std::array<double, MidiGenerator::kMelodyHigh - MidiGenerator::kMelodyLow + 1>;

/// The pitch whose weight interval holds r (0 <= r < the weights' sum); -1 when every weight is 0.
int draw_pitch(const PitchWeights& weights, double r) noexcept {
    int chosen = -1;
    for (int p = MidiGenerator::kMelodyLow; p <= MidiGenerator::kMelodyHigh; ++p) {
        const double w = weights[static_cast<std::size_t>(p - MidiGenerator::kMelodyLow)];
        if (w <= 0.0) continue;
        chosen = p;  // the last candidate also catches rounding at the top end
        if (r < w) break;
        r -= w;
    }
    return chosen;
}

}  // namespace

const char* check_midi_control(const MidiControl& c) noexcept {
    if (c.melody_channel > 15 || c.chord_channel > 15 || c.bass_channel > 15 || c.drum_channel > 15)
        return "channel out of range (0..15)";
    if (c.key_tonic > 11) return "key tonic out of range (0..11)";
    if (c.scale >= music::kNumScales) return "unknown scale";
    if (!finite_in(c.tempo_bpm, MidiControl::kMinTempo, MidiControl::kMaxTempo)) return "tempo out of range (20..300)";
    for (float e : c.emotion)
        if (!finite_in(e, -1.0f, 1.0f)) return "emotion value out of range (-1..1)";
    if (c.chord_plan_bars > MidiControl::kMaxChordPlanBars) return "chord plan longer than 16 bars";
    if (c.start_bass >= 0)
        for (std::int8_t p : c.start_upper)
            if (p < 0) return "start voicing needs a bass and three upper pitches (0..127)";
    if (c.start_bass < -1 || c.start_melody < -1) return "start pitch out of range (-1 for none, 0..127)";
    for (int i = 0; i < c.chord_plan_bars; ++i) {
        const int chord = c.chord_plan[static_cast<std::size_t>(i)];
        if (chord < -1 || chord > music::kNoChord) return "chord plan entry out of range (-1, 0..59 or 60 for none)";
    }
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
    bass_ = Note{};
    last_off_ = 0;
    min_onset_ = 0;
    key_free_at_.fill(0);
    next_step_start_ = 0.0;
    step_index_ = 0;
    key_pending_ = false;
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
    k.chord_choices = chord_choices_.load(std::memory_order_relaxed);
    k.chords_kept = chords_kept_.load(std::memory_order_relaxed);
    k.melody_choices = melody_choices_.load(std::memory_order_relaxed);
    k.melody_kept = melody_kept_.load(std::memory_order_relaxed);
    k.key_changes = key_changes_.load(std::memory_order_relaxed);
    k.phase_locks = phase_locks_.load(std::memory_order_relaxed);
    k.last_phase_shift = last_phase_shift_.load(std::memory_order_relaxed);
    return k;
}

int MidiGenerator::sounding_notes() const noexcept {
    int n = (melody_.active ? 1 : 0) + (bass_.active ? 1 : 0);
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
        if (next.beat_anchor != 0) lock_to_beat(next.beat_anchor, block_start);
    } else {
        // The key changes on the next bar line (generate_step); until then the bar goes on in the old one.
        key_pending_ = next.key_tonic != previous.key_tonic || next.scale != previous.scale;
        if (key_pending_) {
            pending_tonic_ = next.key_tonic;
            pending_scale_ = next.scale;
            control_.key_tonic = previous.key_tonic;
            control_.scale = previous.scale;
        }
        if (next.melody_channel != previous.melody_channel || next.chord_channel != previous.chord_channel ||
            next.bass_channel != previous.bass_channel || next.drum_channel != previous.drum_channel)
            end_all_at_frontier(out);
        if (next.tempo_bpm != previous.tempo_bpm) {
            step_samples_ = step_samples(next.tempo_bpm);
            lookahead_ = lookahead_samples(next.tempo_bpm);
            // A slower tempo lengthens the lookahead: move the grid so the next step is still that far ahead.
            next_step_start_ = std::max(next_step_start_, static_cast<double>(block_start) + lookahead_);
        }
        if (next.beat_anchor != 0) lock_to_beat(next.beat_anchor, block_start);
    }
    controls_applied_.fetch_add(1, std::memory_order_relaxed);
    applied_sequence_.store(next.sequence, std::memory_order_relaxed);
}

void MidiGenerator::lock_to_beat(std::uint64_t anchor, std::uint64_t block_start) noexcept {
    const double beat = kStepsPerBeat * step_samples_;
    const auto to_next_beat = static_cast<double>((kStepsPerBeat - step_index_ % kStepsPerBeat) % kStepsPerBeat);
    const double grid_beat = next_step_start_ + to_next_beat * step_samples_;
    const double heard_beat = static_cast<double>(anchor);
    double offset = std::fmod(grid_beat - heard_beat, beat);  // how late the grid is against the heard beats
    if (offset < 0.0) offset += beat;
    if (offset >= 0.5 * beat) offset -= beat;
    // Earlier than this the host could no longer send the next step's notes on time.
    const double earliest = static_cast<double>(block_start) + lead_;
    const double moved = std::max(next_step_start_ - offset, std::min(earliest, next_step_start_));
    if (moved == next_step_start_) return;
    last_phase_shift_.store(static_cast<std::int64_t>(std::llround(moved - next_step_start_)),
                            std::memory_order_relaxed);
    phase_locks_.fetch_add(1, std::memory_order_relaxed);
    next_step_start_ = moved;
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
    before_last_pitch_ = -1;
    voicing_ = music::Voicing{};
    bar_melody_ = prev_bar_melody_ = -1;
    bar_bass_ = prev_bar_bass_ = -1;
    // Carry on from where the control says the music was (MidiControl::start_bass): the first bar line then leads
    // from that voicing and checks its melody and bass against that bar line's.
    if (control_.start_bass >= 0) {
        voicing_.bass = control_.start_bass;
        for (int i = 0; i < 3; ++i) voicing_.upper[i] = control_.start_upper[static_cast<std::size_t>(i)];
        voicing_.count = 3;
        bar_bass_ = control_.start_bass;
    }
    if (control_.start_melody >= 0) bar_melody_ = last_pitch_ = control_.start_melody;
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
    end(bass_);
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
    if (bar_start && key_pending_) {
        key_pending_ = false;
        control_.key_tonic = pending_tonic_;
        control_.scale = pending_scale_;
        key_changes_.fetch_add(1, std::memory_order_relaxed);
    }
    bool strike = false;
    if (bar_start || need_groove_) run_groove();
    if (bar_start || need_harmony_) {
        run_harmony();
        strike = true;
    }
    if (k % kStepsPerBeat == 0 || need_dynamics_) run_dynamics();

    const std::uint64_t onset = std::max(to_time(next_step_start_ + onset_offset(k)), min_onset_);
    if (bar_start) {
        prev_bar_melody_ = bar_melody_;
        prev_bar_bass_ = bar_bass_;
    }
    if (strike) strike_chord(onset, k, out);
    play_bass(onset, k, strike, out);
    const int pitch = choose_melody_pitch();
    update_melody(pitch, onset, k, out);
    if (bar_start) bar_melody_ = melody_.active ? melody_.pitch : -1;
    play_drums(onset, k, out);
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
        net->forward(x, out_.data());  // run even under a plan: the net's state follows the music it hears
        const int net_choice = music::choose_chord(out_.data(), key);
        chord_ = control_.theory ? music::theory_chord(out_.data(), key, static_cast<std::uint64_t>(bar), prev_chord_)
                                 : net_choice;
        if (planned_chord(bar) < 0) {
            chord_choices_.fetch_add(1, std::memory_order_relaxed);
            if (chord_ == net_choice) chords_kept_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (planned_chord(bar) >= 0) chord_ = planned_chord(bar);
    chord_changed_ = chord_ != before;
}

int MidiGenerator::planned_chord(int bar) const noexcept {
    if (control_.chord_plan_bars == 0) return -1;
    return control_.chord_plan[static_cast<std::size_t>(bar % control_.chord_plan_bars)];
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
    const std::uint16_t mask = melody_mask();
    const int k = static_cast<int>(step_index_ % kStepsPerBar);
    // Does a melody note sound at all? The expected number of sounding pitches in the range (README: output k is
    // the probability that pitch k sounds during the step).
    float mass = 0.0f, best = 0.0f;
    for (int p = kMelodyLow; p <= kMelodyHigh; ++p) {
        const float prob = out_[static_cast<std::size_t>(p)];
        if (!(prob >= 0.0f)) continue;  // NaN never counts
        mass += prob;
        if ((mask >> music::pitch_class(p)) & 1u) best = std::max(best, prob);
    }
    melody_floor_ = std::max(kCandidateFloor, kCandidateShare * best);
    melody_sounds_ = mass >= kSoundingMass && best >= melody_floor_;
    if (!melody_sounds_) return -1;
    const int reference = melody_.active ? melody_.pitch : (last_pitch_ >= 0 ? last_pitch_ : 72);
    // The net's weights and the theory layer's (the net's times melody_weight()), drawn with one uniform: the
    // layer kept the net's choice when both draws agree.
    //
    // The net never sees the key, so its preference among pitch classes is its training corpus's, the same in
    // every key. The layer keeps what the net says about register (its probabilities averaged over +-2 semitones,
    // kRegisterWindow) and takes the pitch class from the key and the harmony (melody_weight()).
    PitchWeights net_weight{}, weight{};
    double net_total = 0.0, total = 0.0;
    for (int p = kMelodyLow; p <= kMelodyHigh; ++p) {
        const float prob = out_[static_cast<std::size_t>(p)];
        if (!((mask >> music::pitch_class(p)) & 1u)) continue;
        const double motion = std::exp(-std::abs(p - reference) / 4.0);
        if (prob >= melody_floor_) {
            const double w = static_cast<double>(prob) * prob * motion;
            net_weight[static_cast<std::size_t>(p - kMelodyLow)] = w;
            net_total += w;
        }
        if (control_.theory) {
            double register_prob = 0.0;
            for (int q = p - kRegisterWindow; q <= p + kRegisterWindow; ++q) {
                const float near = out_[static_cast<std::size_t>(q)];
                if (near >= 0.0f) register_prob += static_cast<double>(near);  // NaN never counts
            }
            register_prob /= 2 * kRegisterWindow + 1;
            if (register_prob < kCandidateFloor) continue;
            const double shaped = register_prob * register_prob * motion * melody_weight(p, k);
            weight[static_cast<std::size_t>(p - kMelodyLow)] = shaped;
            total += shaped;
        }
    }
    if (!control_.theory) {
        weight = net_weight;
        total = net_total;
    }
    if (!(net_total > 0.0)) return -1;
    if (!(total > 0.0)) {  // the layer ruled out every candidate: the net's own draw stands
        weight = net_weight;
        total = net_total;
    }
    const double u = uniform();
    const int chosen = draw_pitch(weight, u * total);
    melody_choices_.fetch_add(1, std::memory_order_relaxed);
    if (chosen == draw_pitch(net_weight, u * net_total)) melody_kept_.fetch_add(1, std::memory_order_relaxed);
    if (chosen != last_pitch_) before_last_pitch_ = last_pitch_;
    last_pitch_ = chosen;
    return chosen;
}

music::VoiceRanges MidiGenerator::voice_ranges() const noexcept {
    return control_.chord_channel == control_.melody_channel ? music::kSharedRanges : music::kSeparateRanges;
}

std::uint16_t MidiGenerator::melody_mask() const noexcept {
    const music::Key key{control_.key_tonic, control_.scale};
    return control_.theory ? music::melody_mask(key, chord_) : music::key_mask(key);
}

double MidiGenerator::melody_weight(int p, int k) const noexcept {
    const music::Key key{control_.key_tonic, control_.scale};
    const bool functional = music::is_functional(key);
    const int pc = music::pitch_class(p);
    const int tonic = music::pitch_class(key.tonic);
    double w = 1.0;
    // The key's tonal hierarchy (the net never sees the key: its pitch preferences are the same in every key), and
    // chord tones, most on the beats.
    const float profile = music::kKeyProfile[music::mode_of(key)][music::pitch_class(pc - tonic)];
    w *= static_cast<double>(profile) * profile;
    if ((music::chord_mask(chord_) >> pc) & 1u) w *= k % 8 == 0 ? 4.0 : (k % kStepsPerBeat == 0 ? 3.0 : 1.5);
    // An authentic cadence lands on the tonic.
    const std::uint64_t bar = step_index_ / kStepsPerBar;
    if (functional && k == 0 && pc == tonic && music::bar_role(bar) == music::BarRole::AuthenticCadence) w *= 8.0;
    if (last_pitch_ >= 0) {
        const int last_pc = music::pitch_class(last_pitch_);
        const int step = p - last_pitch_;
        // Tendency tones: the leading tone rises to the tonic; the fourth degree (a dominant seventh's seventh)
        // falls by step under a chord that holds the tonic.
        if (functional && last_pc == music::pitch_class(tonic + 11) && step == 1) w *= 6.0;
        if (functional && last_pc == music::pitch_class(tonic + 5) && (step == -1 || step == -2) &&
            ((music::chord_mask(chord_) >> tonic) & 1u))
            w *= 3.0;
        // A leap of a fourth or more is followed by a step back the other way.
        if (before_last_pitch_ >= 0) {
            const int leap = last_pitch_ - before_last_pitch_;
            if (std::abs(leap) >= 5 && step != 0) {
                if ((step > 0) != (leap > 0) && std::abs(step) <= 2)
                    w *= 4.0;
                else if ((step > 0) == (leap > 0) && std::abs(step) >= 3)
                    w *= 0.2;
            }
        }
    }
    // No parallel fifth or octave with the bass from the previous bar's start to this one's.
    if (k == 0 && music::parallel_perfect(prev_bar_melody_, prev_bar_bass_, p, bar_bass_)) w = 0.0;
    return w;
}

void MidiGenerator::update_melody(int pitch, std::uint64_t onset, int k, SpscRing<MidiEvent>& out) noexcept {
    const float onset_prob = groove_onset_[static_cast<std::size_t>(k)];
    // With the theory layer on, an onset is drawn with the groove's probability (a beat always may start one), so
    // that the rhythm varies from bar to bar as written music does; off, the probability is a threshold.
    const bool may_start = control_.theory ? (k % kStepsPerBeat == 0 && onset_prob >= kOnsetGate) ||
                                                 uniform() < static_cast<double>(onset_prob)
                                           : onset_prob >= kOnsetGate;
    const std::uint16_t mask = melody_mask();
    bool end_current = false, start_new = false;
    if (melody_.active) {
        const int held = melody_.pitch;
        // A note held into a bar start that would move in parallel fifths or octaves with the bass ends there.
        const bool held_parallel =
            control_.theory && k == 0 && music::parallel_perfect(prev_bar_melody_, prev_bar_bass_, held, bar_bass_);
        const bool held_sounds = melody_sounds_ && out_[static_cast<std::size_t>(held)] >= melody_floor_ &&
                                 ((mask >> music::pitch_class(held)) & 1u) && !held_parallel;
        if (pitch == held && held_parallel) {
            end_current = true;
        } else if (pitch == held) {
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
    int n = 0;
    if (control_.theory) {
        voicing_ = music::lead_voices(chord_, voicing_, voice_ranges());
        for (int i = 0; i < voicing_.count; ++i) pitches[n++] = voicing_.upper[i];
        bar_bass_ = voicing_.count > 0 ? voicing_.bass : -1;
    } else {
        int all[music::kMaxChordVoices];
        const int voiced = music::voice_chord(chord_, all);
        for (int i = 1; i < voiced; ++i) pitches[n++] = all[i];
        bar_bass_ = voiced > 0 ? all[0] : -1;
    }
    if (n == 0) return;
    const double roll = std::min(0.080 * expression_[12] * sample_rate_, kMaxRollSteps * step_samples_);
    const int vel = velocity(k, false);
    for (int i = 0; i < n; ++i) {
        const std::uint64_t on = onset + to_time(roll * i / n);
        Note note{true, control_.chord_channel, static_cast<std::uint8_t>(pitches[i]), on};
        if (push_on(note, vel, out)) chord_notes_[static_cast<std::size_t>(i)] = note;
    }
}

void MidiGenerator::play_bass(std::uint64_t onset, int k, bool strike, SpscRing<MidiEvent>& out) noexcept {
    int pitch = -1;
    if (strike) {
        pitch = bar_bass_;
    } else if (bar_bass_ >= 0 && music::is_pitched_chord(chord_)) {
        // Beat 3: the fifth; beat 4: the third (each in the bass octave), where the groove plays.
        const auto quality = music::chord_quality(chord_);
        const int third = (quality == music::ChordQuality::Min || quality == music::ChordQuality::Dim) ? 3 : 4;
        const int fifth = quality == music::ChordQuality::Dim ? 6 : (quality == music::ChordQuality::Aug ? 8 : 7);
        const music::VoiceRanges ranges = voice_ranges();
        const float p = groove_onset_[static_cast<std::size_t>(k)];
        // Above the root where the range allows, else below; never out of the range.
        auto near = [&](int interval) {
            const int up = bar_bass_ + interval, down = up - 12;
            return up <= ranges.bass_high ? up : (down >= ranges.bass_low ? down : -1);
        };
        if (k == 8 && p >= 0.5f) pitch = near(fifth);
        if (k == 12 && p >= 0.5f) pitch = near(third);
        if (pitch < 0) return;
    }
    if (bass_.active) {
        const std::uint64_t min_len = to_time(std::max(1.0, kMinLengthSteps * step_samples_));
        push_off(bass_, std::max(onset - 1, bass_.on_time + min_len), out);
        bass_.active = false;
    }
    if (pitch < 0) return;
    Note note{true, control_.bass_channel, static_cast<std::uint8_t>(pitch), onset};
    if (push_on(note, velocity(k, false), out)) bass_ = note;
}

void MidiGenerator::play_drums(std::uint64_t onset, int k, SpscRing<MidiEvent>& out) noexcept {
    if (nets_[static_cast<std::size_t>(MidiNet::Groove)] == nullptr) return;  // the stand-in plays no drums
    constexpr int kKick = 36, kSnare = 38, kClosedHat = 42, kCrash = 49;
    constexpr int kFill[8] = {38, 38, 50, 50, 47, 47, 45, 41};  // snare, then toms high to low (GM numbers)
    const std::uint64_t bar = step_index_ / kStepsPerBar;
    const float p = groove_onset_[static_cast<std::size_t>(k)];
    const std::uint8_t ch = control_.drum_channel;
    const bool fill = (bar % 8 == 7 && k >= 8) || (bar % kBarsPerPhrase == kBarsPerPhrase - 1 && k >= 12);
    if (fill) {
        if (k % 2 == 0 || p >= kOnsetGate) strike_short(ch, kFill[k - 8], onset, velocity(k, false), out);
        return;
    }
    if (k == 0 && bar > 0 && bar % kBarsPerPhrase == 0) strike_short(ch, kCrash, onset, velocity(k, false), out);
    if (k == 0 || (k == 8 && p >= 0.5f) || (k % 4 == 2 && p >= 0.85f))
        strike_short(ch, kKick, onset, velocity(k, false), out);
    if (k == 4 || k == 12) strike_short(ch, kSnare, onset, velocity(k, false), out);
    // The hi-hat plays the beats, and each other step by chance: off-beat eighths with the groove's onset
    // probability held within [0.3, 0.7], sixteenths with half of it, so that no two bars need be the same.
    const double hat = k % kStepsPerBeat == 0 ? 1.0
                       : k % 2 == 0           ? std::clamp(static_cast<double>(p), 0.3, 0.7)
                                              : 0.5 * static_cast<double>(p);
    if (uniform() < hat) strike_short(ch, kClosedHat, onset, std::max(1, velocity(k, false) * 3 / 4), out);
}

void MidiGenerator::strike_short(std::uint8_t channel, int pitch, std::uint64_t onset, int vel,
                                 SpscRing<MidiEvent>& out) noexcept {
    // A drum sharing a channel with the other tracks never strikes a key one of their notes holds.
    auto holds = [&](const Note& n) { return n.active && n.channel == channel && n.pitch == pitch; };
    if (holds(melody_) || holds(bass_)) return;
    for (const Note& n : chord_notes_)
        if (holds(n)) return;
    Note note{true, channel, static_cast<std::uint8_t>(pitch), onset};
    if (!push_on(note, vel, out)) return;
    push_off(note, note.on_time + to_time(std::max(1.0, 0.5 * step_samples_)), out);
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
