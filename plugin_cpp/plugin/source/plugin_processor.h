// The idaw audio plugin: the real-time core (idaw::Engine) behind JUCE's AudioProcessor.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <juce_audio_processors/juce_audio_processors.h>

#include "idaw/engine.h"
#include "model_folder.h"
#include "plugin_parameters.h"

namespace idaw::plugin {

/// An audio effect (mono or stereo, in place) with a MIDI output.
///
/// Threads: the constructor, prepareToPlay(), state and editor calls run on the message thread; processBlock() on
/// the audio thread and is the only producer of the engine's parameter queue. Construction is cheap (hosts create
/// instances just to scan them): the engine is created and sized in prepareToPlay().
class IdawProcessor : public juce::AudioProcessor {
  public:
    /// Root type of the saved state (the value tree holding every parameter, plus the model folder).
    static constexpr const char* kStateType = "IDAW";
    /// Property of the saved state holding the model folder's path.
    static constexpr const char* kModelFolderProperty = "model_folder";
    /// Largest MIDI events written into the host's buffer per block (JUCE's VST3 wrapper reserves 2048 bytes and
    /// the Standalone's player 1000; 96 three-byte events take 864): later events wait for the next block.
    static constexpr int kMaxMidiEventsPerBlock = 96;
    /// Smallest block the engine is prepared for; it splits longer blocks itself.
    static constexpr int kMinEngineBlock = 2048;

    IdawProcessor();
    ~IdawProcessor() override;

    /// Creates the engine on the first call, then sizes and resets it; parameters snap to their current values.
    void prepareToPlay(double sample_rate, int max_block) override;
    /// Keeps the engine (its memory is small); a later prepareToPlay() resets it.
    void releaseResources() override;
    /// Mono in/mono out or stereo in/stereo out.
    bool isBusesLayoutSupported(const BusesLayout& layouts) const override;
    /// Pushes a parameter snapshot when any value moved, runs the engine in place and emits its MIDI events.
    /// Real-time safe: no allocation, lock or system call (checked under IDAW_RTCHECK=1).
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
    /// Asks the sidecar for the EQ that `words` describe; `message` says what happened. Message thread.
    bool send_description(const juce::String& words, juce::String& message);

  private:
    juce::AudioProcessorValueTreeState parameters_;
    CoreParameterReader reader_;
    ModelFolder model_folder_;
    std::unique_ptr<Engine> engine_;
    std::atomic<Engine*> engine_ptr_{nullptr};

    // Audio thread only (and prepareToPlay while the audio thread is stopped).
    Parameters last_pushed_ = Parameters::defaults();
    std::uint64_t sequence_ = 0;
    std::uint64_t block_start_ = 0;  ///< engine sample clock at the start of the current block
    int num_channels_ = 0;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(IdawProcessor)
};

}  // namespace idaw::plugin
