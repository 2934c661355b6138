// The idaw audio plugin: the real-time core (idaw::Engine) behind JUCE's AudioProcessor.
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "idaw/engine.h"
#include "model_folder.h"
#include "plugin_parameters.h"
#include "sidecar_link.h"

namespace idaw::plugin {

/// An audio effect (mono or stereo, in place) with a MIDI output: the engine's MIDI generator, whose nets come from
/// the model folder.
///
/// Threads: the constructor, prepareToPlay(), state and editor calls run on the message thread; processBlock() on
/// the audio thread and is the only producer of the engine's parameter queue and of the generator's control queue.
/// Construction is cheap (hosts create instances just to scan them): the engine, the model loader's worker and the
/// sidecar link's thread start in the first prepareToPlay().
///
/// Sidecar snapshots: the link thread puts each newer one in a mailbox; the audio thread takes it up at the next
/// block (the EQ part of the snapshot it pushes, tagged with the sidecar's snapshot number), and the message thread
/// then sets the EQ parameters to the same values, so hosts, the editor and the saved state see them. Per
/// parameter, the latest change wins, whether it came from the host or the sidecar.
class IdawProcessor : public juce::AudioProcessor, private juce::AsyncUpdater {
  public:
    /// Root type of the saved state (the value tree holding every parameter, plus the model folder).
    static constexpr const char* kStateType = "IDAW";
    /// Property of the saved state holding the model folder's path.
    static constexpr const char* kModelFolderProperty = "model_folder";
    /// Largest MIDI events written into the host's buffer per block (JUCE's VST3 wrapper reserves 2048 bytes and
    /// the Standalone's player 1000; 96 three-byte events take 864): later events wait for the next block.
    static constexpr int kMaxMidiEventsPerBlock = 96;
    /// Generated MIDI events waiting for the block they are due in (the generator works ahead of the audio).
    static constexpr int kMaxPendingMidi = 512;
    /// Property of the saved state holding the sidecar endpoint the user set ("" = the default).
    static constexpr const char* kSidecarEndpointProperty = "sidecar_endpoint";
    /// Property of the saved state holding the CURVE key folder's path ("" = the default); never key material.
    static constexpr const char* kSidecarKeysProperty = "sidecar_keys";
    /// Name the plugin gives in its hello.
    static constexpr const char* kSidecarName = "idaw plugin";
    /// Tempo of the MIDI generator when the host does not report one.
    static constexpr double kDefaultTempo = 120.0;
    /// In offline (non-real-time) rendering, prepareToPlay() waits this long for a model folder still loading, so
    /// a bounce never depends on how fast the disk was.
    static constexpr int kOfflineModelWaitMs = 20000;
    /// Smallest block the engine is prepared for; it splits longer blocks itself.
    static constexpr int kMinEngineBlock = 2048;

    IdawProcessor();
    ~IdawProcessor() override;

    /// Creates the engine on the first call, then sizes and resets it; parameters snap to their current values.
    /// Ends the notes a previous run left sounding (all notes off at the next block).
    void prepareToPlay(double sample_rate, int max_block) override;
    /// Keeps the engine (its memory is small); a later prepareToPlay() resets it.
    void releaseResources() override;
    /// Mono in/mono out or stereo in/stereo out.
    bool isBusesLayoutSupported(const BusesLayout& layouts) const override;
    /// Pushes a parameter snapshot and a generator control when anything moved, runs the engine in place and emits
    /// the MIDI events due in this block at their sample offsets. Real-time safe: no allocation, lock or system
    /// call (checked under IDAW_RTCHECK=1).
    void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer& midi) override;
    using juce::AudioProcessor::processBlock;

    /// The editor (generic controls grouped like the chain, model folder, sidecar, audio-thread load).
    juce::AudioProcessorEditor* createEditor() override;
    /// True: the plugin has an editor.
    bool hasEditor() const override { return true; }

    /// "idaw".
    const juce::String getName() const override { return JucePlugin_Name; }
    /// False: MIDI input is not used.
    bool acceptsMidi() const override { return false; }
    /// True: the engine's MIDI events leave through the plugin's MIDI output.
    bool producesMidi() const override { return true; }
    /// False: an audio effect that also sends MIDI.
    bool isMidiEffect() const override { return false; }
    /// Limiter release and filter ringing: 0.1 s.
    double getTailLengthSeconds() const override { return 0.1; }

    /// One program (the state is the parameters).
    int getNumPrograms() override { return 1; }
    /// Always program 0.
    int getCurrentProgram() override { return 0; }
    /// Programs are not used.
    void setCurrentProgram(int) override {}
    /// Programs have no names.
    const juce::String getProgramName(int) override { return {}; }
    /// Programs are not used.
    void changeProgramName(int, const juce::String&) override {}

    /// Saves every parameter and the model folder (XML in JUCE's binary wrapper).
    void getStateInformation(juce::MemoryBlock& dest) override;
    /// Restores what getStateInformation() saved; a running engine ramps to the restored values.
    void setStateInformation(const void* data, int size) override;

    /// The parameters (for the editor's attachments).
    juce::AudioProcessorValueTreeState& parameters() noexcept { return parameters_; }
    /// The engine once prepareToPlay() has run, else null. Any thread may read its lock-free telemetry.
    Engine* engine() noexcept { return engine_ptr_.load(std::memory_order_acquire); }
    /// The model folder loader (for the editor).
    ModelFolder& model_folder() noexcept { return model_folder_; }
    /// Sets the model folder (saved with the state) and starts loading it off the audio thread.
    void set_model_folder(const juce::String& path);
    /// One line about the sidecar link, for the editor.
    juce::String sidecar_status() const;
    /// True while a sidecar has welcomed the plugin and not gone quiet since.
    bool sidecar_connected() const;
    /// True when the link stopped on an error (bad endpoint, missing CURVE keys): the editor shows it in red.
    bool sidecar_failed() const;
    /// One line about following (the midi_follow switch), for the editor: off, asking, refused, or what was heard
    /// and what the generator runs.
    juce::String follow_status() const;
    /// The numbers behind follow_status(), for the editor's test report: the switch, the link's follow counters and
    /// newest heard values, what the audio thread last pushed to the generator and the generator's counters.
    juce::var follow_report() const;
    /// What the last description sent to the sidecar came to, for the editor.
    juce::String describe_status() const;
    /// Asks the sidecar for the EQ that `text` describes (words split at spaces and commas) at the intensity
    /// parameter's value; `message` says what happened. Message thread.
    bool send_description(const juce::String& text, juce::String& message);
    /// What the last mood sent to the sidecar came to, for the editor.
    juce::String mood_status() const;
    /// Asks the sidecar for the valence and arousal that `text` describes (as `idaw live --midi --mood` reads words;
    /// cut to 500 bytes of whole characters); when it answers, the valence and arousal parameters take them (on the
    /// message thread, so the host sees them move). `message` says what happened. Message thread.
    bool send_mood(const juce::String& text, juce::String& message);
    /// The endpoint the link uses: the user's, else $IDAW_SIDECAR_ENDPOINT, else the protocol's default.
    juce::String sidecar_endpoint() const;
    /// The CURVE key folder the link uses for a non-loopback endpoint: the user's, else curve_keys.h's default.
    juce::String sidecar_key_dir() const;
    /// Sets the endpoint and key folder ("" = default; saved with the state) and reconnects the link on this
    /// thread. Message thread, never audio.
    void set_sidecar_endpoint(const juce::String& endpoint, const juce::String& key_dir);

  private:
    /// Audio thread: merges the host's changes and a new sidecar snapshot, and pushes when anything moved.
    void push_parameters() noexcept;
    /// Audio thread: pushes the MIDI generator's control when the switch, channel, host tempo, key or emotion changed
    /// or, following, a new heard beat came (its values override the host's tempo and the plugin's key and emotion).
    void push_midi_control() noexcept;
    /// Audio thread: with `follow` on, takes a newer heard message from the link into followed_ (its beat becomes
    /// pending_anchor_); switching on forgets what was heard before. Off: nothing.
    void take_heard(bool follow) noexcept;
    /// Audio thread: writes the generated events due in this block into `midi`, at their sample offsets.
    void emit_midi(juce::MidiBuffer& midi, int frames) noexcept;
    /// Message thread: creates (once) and starts the sidecar link unless IDAW_SIDECAR=0.
    void start_sidecar_link();
    /// Message thread, after a sidecar snapshot or mood arrived: the EQ parameters take the snapshot's values, the
    /// valence and arousal parameters the newest mood's.
    void handleAsyncUpdate() override;

    juce::AudioProcessorValueTreeState parameters_;
    ParameterReader reader_;
    std::unique_ptr<Engine> engine_;
    std::atomic<Engine*> engine_ptr_{nullptr};
    ModelFolder model_folder_;             // after engine_: its worker stops before the engine goes
    std::unique_ptr<sidecar::Link> link_;  // after engine_: stops before the engine goes
    juce::String endpoint_setting_;        ///< the user's endpoint, "" for the default (message thread)
    juce::String key_dir_setting_;         ///< the user's CURVE key folder, "" for the default (message thread)

    // Audio thread only (and prepareToPlay while the audio thread is stopped).
    Parameters seen_ = Parameters::defaults();         ///< the parameters' values at the last block
    Parameters current_ = Parameters::defaults();      ///< what the engine should run: host and sidecar merged
    Parameters last_pushed_ = Parameters::defaults();  ///< what it was last given
    std::uint64_t applied_sidecar_ = 0;                ///< newest sidecar snapshot taken up
    std::uint64_t applied_moods_ = 0;                  ///< mood answers whose valence and arousal were set (message
                                                       ///< thread)
    MidiControl last_control_{};
    float last_valence_ = 0.0f, last_arousal_ = 0.0f;  ///< what last_control_.emotion was computed from
    bool control_dirty_ = true;         ///< push the generator's control at the next block whatever it holds
    bool follow_was_on_ = false;        ///< the follow switch at the last block
    sidecar::HeardValues followed_{};   ///< what was heard since following began (key and mood kept until replaced)
    std::uint64_t pending_anchor_ = 0;  ///< a heard beat not yet pushed as a beat_anchor (0: none)
    std::uint64_t heard_taken_ = 0;     ///< the link's heard count last taken (or seen when following began)
    std::uint64_t block_start_ = 0;     ///< engine sample clock at the start of the current block
    int num_channels_ = 0;
    std::array<MidiEvent, kMaxPendingMidi> pending_{};  ///< sorted by time (stable)
    int pending_count_ = 0;
    std::uint16_t channels_with_notes_ = 0;  ///< channels a note-on went out on since the last all-notes-off
    std::uint16_t end_notes_on_ = 0;         ///< channels that get all-notes-off at the next block

    // What the audio thread last pushed to the generator, for follow_report() (written by the audio thread only).
    std::atomic<float> pushed_tempo_{0.0f};
    std::atomic<int> pushed_key_tonic_{0}, pushed_scale_{0};
    std::atomic<std::uint64_t> pushed_heard_{0};  ///< count of the heard message the last push followed (0: none)

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(IdawProcessor)
};

}  // namespace idaw::plugin
