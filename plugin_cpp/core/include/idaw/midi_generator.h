// Turns the Melody / Harmony / Dynamics / Groove nets into MIDI notes on the audio thread, on a sixteenth-note grid of
// the engine's sample clock. Design notes: docs/MIDI.md.
//
// Grid. Enabling starts a grid whose step 0 begins `lookahead_samples()` after the block in which the control was
// taken up; step t+1 begins one sixteenth (60 / bpm / 4 s) after step t, accumulated in double precision, so step
// times do not depend on how the audio is split into blocks. A tempo change applies from the next step not yet
// generated. A bar is 16 steps (4/4), a phrase 4 bars. A key change applies from the next bar start (the chords
// and the melody's scale change together, on a bar line).
//
// Following a heard beat. A control with a beat_anchor (the engine sample time of a beat heard in the input, as
// the sidecar's follower reports it) moves the grid so that its next beat step (every 4th step) falls on that
// beat's train (anchor + n beats at the control's tempo): the offset, wrapped to within half a beat, is taken up
// at once at the grid frontier, but never so that the next step starts less than `lead` after the block (then the
// rest waits for the next anchor). Notes already generated keep their times.
//
// Lookahead. Step t is generated (nets run, notes decided) as soon as a processed chunk reaches
// start(t) - lookahead, lookahead = 1.5 steps + lead, lead = 100 ms. Every event of step t then lies at least `lead`
// minus one block after the block that produced it: the host receives each event that long before it is due and can
// send it on time (realtime/midi_out.py). Everything the generator hears (controls, model swaps) therefore takes
// effect `lookahead` later in musical time; the audio itself has no added latency. The lead is fixed in seconds (not
// tied to the block size) so that the same control gives the same notes at any block size.
//
// Nets (inputs and outputs as realtime/nets/README.md defines them):
//   Groove   at each bar start: emotion -> onset probability and micro-timing of each of the bar's 16 steps.
//   Harmony  at each bar start: HARMONY_CONTEXT -> chord distribution. With the theory layer on (MidiControl::theory,
//            the default) the chord is music::theory_chord(): the net's probabilities weighed with the corpus's
//            progressions and the phrase's cadence plan (idaw/theory_layer.h), voiced by music::lead_voices() (bass
//            on the bass channel, three upper voices by the smallest motion, no parallel fifths or octaves). Off:
//            the most probable chord that fits the key (all tones in the scale; or N), root in octave 36-47 on the
//            bass channel, chord tones once each in 48-59. A chord plan (MidiControl::chord_plan) fixes the chord of
//            the bars it names; the net still runs there, and the plan's chord is voiced like the net's.
//   Dynamics at each beat start: DYNAMICS_CONTEXT -> 16 expression parameters for the beat's notes.
//   Melody   at every step: emotion -> probability that each pitch sounds. The step has a melody note when the
//            probabilities within [kMelodyLow, kMelodyHigh] sum to >= 0.5 (the expected number of sounding pitches;
//            else a rest). The pitch is drawn, from the seeded generator, among the pitches in the key whose
//            probability is at least 15 % of the best in-key one, with weight p^2 * exp(-|interval to the previous
//            melody pitch| / 4): a confident net is followed; a flat distribution (an untrained net, or the trained
//            one fed a constant emotion, whose output settles to the pitch prior) gives a stepwise line in the key
//            rather than one frozen pitch. The theory layer multiplies these weights (melody_weight()): chord
//            tones on beats, the tonic where an authentic cadence lands, resolved leading tones and sevenths, a step
//            back after a leap, no parallel fifth or octave with the bass from one bar start to the next; in a
//            minor key the leading tone is raised under the dominant.
//   Bass     (bass channel) the voicing's bass at each bar start; the fifth on beat 3 and the third on beat 4 where
//            the groove has an onset probability of at least 0.5 there.
//   Drums    (drum channel, General MIDI numbers) from the GroovePredictor's pattern: kick on beat 1 (and 3 and
//            strong off-beats), snare on 2 and 4, closed hi-hat on the steps the groove plays, a crash at each
//            phrase start, a fill in the last beat of every 4th bar and the last two beats of every 8th.
// A missing net has a fixed stand-in: no melody, no chords (and no bass), default expression, a plain 4/4 groove
// that plays no drums.
//
// Notes. A new melody onset needs the groove's onset probability of the step >= 0.35 (else the previous note is
// held when the melody net still has it sounding); the same pitch is struck again when that probability is >= 0.65.
// Onset time = step start + groove micro-timing + dynamics timing offset and jitter, clamped to +-0.45 step.
// Velocity = dynamics velocity mean + spread, beat / off-beat accent and crescendo, +- melody prominence (chords get
// the opposite half). A note ends at the next step that does not continue it, shortened or lengthened by the
// articulation parameter within its last step. Chords are struck at each bar start (rolled by chord_roll) and held
// to the next bar.
//
// Ending notes. Every note-on pushed has exactly one note-off pushed after it (pushed later; its time is later), and a
// key (channel, pitch) is never struck again before its previous note-off: a note-on that would be is moved just
// after it (the musical rules make that rare: a repeated pitch is ended one sample before it is struck again).
// Disabling, changing channels, and swapping any net end every sounding note at the grid frontier (the start of the
// first step not yet generated), so notes already handed out keep their times and nothing is left hanging. A
// note-off that does not fit into the ring waits in a small backlog and is pushed at the next block; a note-on that
// does not fit is dropped together with its note. After prepare() nothing is sounding: the host ends what it sent.
//
// Threads: one control thread calls push_control(); one loader thread calls install()/clear()/collect(); the
// audio thread calls begin_block() and run() (through Engine::process). counters() from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "idaw/emotion_map.h"  // kEmotionDims
#include "idaw/midi_event.h"
#include "idaw/music_theory.h"
#include "idaw/nn/model.h"
#include "idaw/nn/model_slot.h"
#include "idaw/spsc_ring.h"
#include "idaw/theory_layer.h"
#include "idaw/timing_histogram.h"

namespace idaw {

/// The nets the generator runs, in MidiGenerator slot order.
enum class MidiNet : std::uint8_t { Melody, Harmony, Dynamics, Groove };
inline constexpr int kNumMidiNets = 4;

/// Name (as the exported files are called: <name>.json), input and output width of each MidiNet.
struct MidiNetSpec {
    std::string_view name;
    int inputs;
    int outputs;
};
inline constexpr std::array<MidiNetSpec, kNumMidiNets> kMidiNetSpecs{{
    {"MelodyTransformer", 64, 128},
    {"HarmonyPredictor", 128, 64},
    {"DynamicsEngine", 32, 16},
    {"GroovePredictor", 64, 32},
}};

/// Full state of the generator's controls (a snapshot, never a delta), handed to the audio thread through a ring.
struct MidiControl {
    static constexpr float kMinTempo = 20.0f;  ///< quarter notes per minute
    static constexpr float kMaxTempo = 300.0f;
    static constexpr int kMaxChordPlanBars = 16;  ///< the longest chord plan (it repeats over the bars)

    bool enabled = false;
    std::uint8_t melody_channel = 0;            ///< 0..15 (MIDI channel 1..16)
    std::uint8_t chord_channel = 0;             ///< 0..15; may equal melody_channel (their pitch ranges then never
                                                ///< overlap)
    std::uint8_t bass_channel = 0;              ///< 0..15; may equal the others (the bass lies below every chord)
    std::uint8_t drum_channel = 9;              ///< 0..15; General MIDI percussion is 9 (channel 10)
    bool theory = true;                         ///< the theory layer (idaw/theory_layer.h) filters the nets' choices
    std::uint8_t key_tonic = 0;                 ///< pitch class 0 (C) .. 11 (B)
    std::uint8_t scale = 0;                     ///< index into music::kScales
    float tempo_bpm = 120.0f;                   ///< kMinTempo..kMaxTempo
    std::array<float, kEmotionDims> emotion{};  ///< each in [-1, 1]
    std::uint64_t seed = 1;         ///< seeds velocity spread, articulation spread and timing jitter (per enable)
    std::uint64_t sequence = 0;     ///< the sender's tag, reported back in counters()
    std::uint64_t beat_anchor = 0;  ///< engine sample time of a heard beat to lock the grid to (0: none)
    /// A chord plan (idaw sketch's progressions): bar b of the grid plays chord_plan[b % chord_plan_bars], a chord
    /// class (0..59, or kNoChord for none) voiced as the nets' chords are, or -1 where the nets choose (through the
    /// theory layer when it is on). chord_plan_bars = 0: no plan.
    std::array<std::int8_t, kMaxChordPlanBars> chord_plan{};
    std::uint8_t chord_plan_bars = 0;  ///< 0..kMaxChordPlanBars
    /// Where a grid this control starts carries on from (idaw sketch's sections, each a grid of its own): the voicing
    /// sounding on the last bar line before it (bass and three upper pitches; start_bass -1: none) and the melody
    /// pitch on that bar line (-1: none). The first bar then leads its voices from them, as from a bar of its own:
    /// by the smallest motion, without parallel fifths or octaves. Read only when a grid starts.
    std::int8_t start_bass = -1;
    std::array<std::int8_t, 3> start_upper{{-1, -1, -1}};
    std::int8_t start_melody = -1;
};

/// Why a control snapshot is refused ("tempo_bpm out of range", ...), or null when it is valid. Real-time safe.
const char* check_midi_control(const MidiControl& control) noexcept;

/// What the generator did; counters only grow (except last_* and the timing maximum, which reset on prepare()).
struct MidiGeneratorCounters {
    std::uint64_t steps = 0;              ///< grid steps generated
    std::uint64_t note_ons = 0;           ///< note-ons pushed to the ring
    std::uint64_t note_offs = 0;          ///< note-offs pushed to the ring
    std::uint64_t dropped_notes = 0;      ///< note-ons that did not fit into the ring (their notes were never started)
    std::uint64_t backlog = 0;            ///< note-offs waiting for room in the ring now
    std::uint64_t controls_applied = 0;   ///< control snapshots taken up
    std::uint64_t applied_sequence = 0;   ///< MidiControl::sequence of the last one
    std::uint64_t model_swaps = 0;        ///< blocks at which at least one net changed
    std::uint64_t step_ns_total = 0;      ///< audio-thread time spent generating steps (nets + decisions)
    std::uint64_t step_ns_max = 0;        ///< the longest single step
    std::uint64_t bar_steps = 0;          ///< steps that ran every net (bar starts)
    std::uint64_t bar_step_ns_total = 0;  ///< time of those steps
    std::uint64_t chord_choices = 0;      ///< bars whose chord the HarmonyPredictor chose (the layer on or off;
                                          ///< bars a chord plan fixes are not counted)
    std::uint64_t chords_kept = 0;        ///< ... of which the theory layer kept the net's own choice
    std::uint64_t melody_choices = 0;     ///< melody pitches drawn from the MelodyTransformer
    std::uint64_t melody_kept = 0;        ///< ... that the theory layer's weights left as the net's weights draw them
    std::uint64_t key_changes = 0;        ///< key changes taken up at a bar start
    std::uint64_t phase_locks = 0;        ///< controls whose beat_anchor moved the grid
    std::int64_t last_phase_shift = 0;    ///< samples the last of them moved it by (negative: earlier)
};

/// See the file comment.
class MidiGenerator {
  public:
    /// Melody notes lie in [kMelodyLow, kMelodyHigh].
    static constexpr int kMelodyLow = 60;
    static constexpr int kMelodyHigh = 84;
    static constexpr int kStepsPerBeat = 4;
    static constexpr int kStepsPerBar = 16;
    static constexpr int kBarsPerPhrase = music::kBarsPerPhrase;
    /// The lead (see the file comment).
    static constexpr double kLeadSeconds = 0.100;
    /// Note-offs that may wait for room in the ring.
    static constexpr int kBacklogSize = 64;

    /// Creates the control ring (allocates). Not real-time safe.
    MidiGenerator();

    /// Sets the sample rate and forgets all musical state (nothing is sounding afterwards).
    /// The last control taken up stays; when it is enabled a new grid starts at the next block. Not real-time safe;
    /// never concurrent with begin_block()/run().
    void prepare(double sample_rate);

    /// Control thread: queues a snapshot. False when check_midi_control() refuses it or the queue is full.
    /// Real-time safe.
    bool push_control(const MidiControl& control) noexcept;

    /// Loader thread: offers a net to the audio thread (taken up at a block boundary). Returns an empty string, or
    /// why the model does not fit the role ("MelodyTransformer needs 64 inputs, the model has 128"), in which case
    /// it is freed. Not real-time safe.
    std::string install(MidiNet net, std::unique_ptr<nn::Model> model);
    /// Loader thread: asks the audio thread to drop a net (its stand-in takes over). Not real-time safe.
    void clear(MidiNet net);
    /// Loader thread: frees nets the audio thread has let go of. Not real-time safe.
    void collect();

    /// Audio thread, once per block before run(): takes up the newest control and any waiting nets; ends every
    /// sounding note at the grid frontier when the change requires it. Real-time safe.
    void begin_block(std::uint64_t block_start, SpscRing<MidiEvent>& out) noexcept;
    /// Audio thread: generates every step due in the chunk [chunk_start, chunk_start + frames) and pushes its
    /// events (and any backlog) to `out`. Real-time safe: no allocation, lock, system call or logging.
    void run(std::uint64_t chunk_start, int frames, SpscRing<MidiEvent>& out) noexcept;

    /// Lookahead in samples at the given tempo (see the file comment); a grid started at block start t has its first
    /// step at t + lookahead. Any thread, after prepare().
    double lookahead_samples(double tempo_bpm) const noexcept;
    /// Samples per sixteenth at the given tempo. Any thread, after prepare().
    double step_samples(double tempo_bpm) const noexcept { return sample_rate_ * 15.0 / tempo_bpm; }
    /// Counters; any thread.
    MidiGeneratorCounters counters() const noexcept;
    /// Audio thread (or when it is idle): notes whose note-on was pushed and whose note-off was not yet pushed.
    int sounding_notes() const noexcept;
    /// Time of every generated step on the audio thread (lock-free histogram; cleared by prepare()).
    const TimingHistogram& step_timing() const noexcept { return step_timing_; }
    /// The same for bar starts only (steps that run all four nets).
    const TimingHistogram& bar_timing() const noexcept { return bar_timing_; }

  private:
    struct Note {
        bool active = false;
        std::uint8_t channel = 0;
        std::uint8_t pitch = 0;
        std::uint64_t on_time = 0;
    };

    void apply_control(const MidiControl& next, std::uint64_t block_start, SpscRing<MidiEvent>& out) noexcept;
    void start_grid(std::uint64_t block_start) noexcept;
    void lock_to_beat(std::uint64_t anchor, std::uint64_t block_start) noexcept;
    void reset_music() noexcept;
    void end_all_at_frontier(SpscRing<MidiEvent>& out) noexcept;
    void generate_step(SpscRing<MidiEvent>& out) noexcept;
    void run_groove() noexcept;
    void run_harmony() noexcept;
    int planned_chord(int bar) const noexcept;  // the chord plan's chord of the bar, -1 where the nets choose
    void run_dynamics() noexcept;
    int choose_melody_pitch() noexcept;  // runs the melody net; -1 for a rest
    void update_melody(int pitch, std::uint64_t onset, int step_in_bar, SpscRing<MidiEvent>& out) noexcept;
    void strike_chord(std::uint64_t onset, int step_in_bar, SpscRing<MidiEvent>& out) noexcept;
    void play_bass(std::uint64_t onset, int step_in_bar, bool strike, SpscRing<MidiEvent>& out) noexcept;
    void play_drums(std::uint64_t onset, int step_in_bar, SpscRing<MidiEvent>& out) noexcept;
    void strike_short(std::uint8_t channel, int pitch, std::uint64_t onset, int velocity,
                      SpscRing<MidiEvent>& out) noexcept;             // a note with its note-off half a step later
    double melody_weight(int pitch, int step_in_bar) const noexcept;  // the theory layer's factor (1 when off)
    std::uint16_t melody_mask() const noexcept;                       // pitch classes the melody may use now
    music::VoiceRanges voice_ranges() const noexcept;                 // the bass's and chords' ranges now
    int velocity(int step_in_bar, bool melody) noexcept;
    double onset_offset(int step_in_bar) noexcept;
    double articulation() noexcept;
    double gaussian() noexcept;                                                 // approximately N(0, 1), clamped to +-2
    double uniform() noexcept;                                                  // [0, 1)
    bool push_on(Note& note, int velocity, SpscRing<MidiEvent>& out) noexcept;  // may move note.on_time later
    void push_off(const Note& note, std::uint64_t time, SpscRing<MidiEvent>& out) noexcept;
    void flush_backlog(SpscRing<MidiEvent>& out) noexcept;
    void record_history(int pitch, bool onset) noexcept;

    double sample_rate_ = 48000.0;
    double lead_ = 0.0;

    SpscRing<MidiControl> controls_;
    std::array<nn::ModelSlot, kNumMidiNets> slots_;
    std::array<nn::Model*, kNumMidiNets> nets_{};  // audio thread's view, refreshed by begin_block()

    // Audio-thread state.
    MidiControl control_{};  // applied
    bool running_ = false;
    double next_step_start_ = 0.0;  // sample time of the next step to generate
    double step_samples_ = 6000.0;
    double lookahead_ = 0.0;
    std::uint64_t step_index_ = 0;  // steps generated since the grid started
    double resume_floor_ = 0.0;     // a new grid may not start before this (past offs of the previous one)
    std::uint64_t rng_state_ = 1;
    bool start_pending_ = false;  // prepare() left an enabled control: start a grid at the next block
    bool key_pending_ = false;    // a key change waits for the next bar start ...
    std::uint8_t pending_tonic_ = 0, pending_scale_ = 0;  // ... to this key
    std::uint64_t last_off_ = 0;                          // latest note-off time pushed or queued
    std::uint64_t min_onset_ = 0;  // no onset before this (after notes were ended at the frontier)
    int last_pitch_ = -1;          // most recent melody pitch (-1: none since the grid started)
    bool melody_sounds_ = false;   // this step's melody verdict (choose_melody_pitch)
    float melody_floor_ = 1.0f;    // ... and the probability a candidate pitch needs

    Note melody_{};
    std::array<Note, music::kMaxChordVoices> chord_notes_{};
    Note bass_{};
    music::Voicing voicing_{};     // the current bar's voices (theory layer; count 0: none)
    int bar_melody_ = -1;          // melody pitch sounding at the current bar's start (-1: none)
    int prev_bar_melody_ = -1;     // ... and at the previous bar's start
    int bar_bass_ = -1;            // the current bar's bass (-1: none)
    int prev_bar_bass_ = -1;       // ... and the previous bar's
    int before_last_pitch_ = -1;   // the melody pitch before last_pitch_ (-1: none)
    int chord_ = music::kNoChord;  // chord of the current bar
    int prev_chord_ = -1;          // chord of the previous bar (-1: none yet)
    bool chord_changed_ = false;
    bool need_groove_ = true, need_harmony_ = true, need_dynamics_ = true;
    std::array<float, 16> groove_onset_{}, groove_timing_{};
    std::array<float, 16> expression_{};
    static constexpr int kHistory = 32;
    std::array<std::int8_t, kHistory> history_pitch_{};  // melody pitch per step, -1 = rest; ring by step index
    std::array<std::uint8_t, kHistory> history_onset_{};
    std::array<std::uint64_t, 16 * 128> key_free_at_{};  // per channel and pitch: earliest time a note-on may have
    std::array<MidiEvent, kBacklogSize> backlog_{};
    int backlog_count_ = 0;
    alignas(64) std::array<float, 128> in_{};
    alignas(64) std::array<float, 128> out_{};

    std::atomic<std::uint64_t> steps_{0}, note_ons_{0}, note_offs_{0}, dropped_{0}, backlog_now_{0};
    std::atomic<std::uint64_t> controls_applied_{0}, applied_sequence_{0}, swaps_{0};
    std::atomic<std::uint64_t> step_ns_total_{0}, step_ns_max_{0}, bar_steps_{0}, bar_ns_total_{0};
    std::atomic<std::uint64_t> chord_choices_{0}, chords_kept_{0}, melody_choices_{0}, melody_kept_{0};
    std::atomic<std::uint64_t> key_changes_{0}, phase_locks_{0};
    std::atomic<std::int64_t> last_phase_shift_{0};
    TimingHistogram step_timing_, bar_timing_;
};

}  // namespace idaw
