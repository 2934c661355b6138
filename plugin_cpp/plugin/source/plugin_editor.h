// The plugin's editor: the chain's controls grouped as the signal flows, the model folder, the sidecar and the
// audio thread's load.
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_gui_basics/juce_gui_basics.h>

#include <memory>
#include <vector>

#include "cpu_load.h"

namespace idaw::plugin {

class IdawProcessor;

/// One rotary control bound to a parameter: the knob, its value box and its name above it.
class ParameterKnob : public juce::Component {
  public:
    /// A knob for the parameter with ID `id` of `state`, titled with the parameter's name.
    ParameterKnob(juce::AudioProcessorValueTreeState& state, const juce::String& id);
    /// Name on top, knob and value box below.
    void resized() override;

  private:
    juce::Label label_;
    juce::Slider slider_;
    juce::AudioProcessorValueTreeState::SliderAttachment attachment_;
};

/// The editor. Reads the processor's lock-free telemetry on a 10 Hz timer; never touches the audio thread.
class IdawEditor : public juce::AudioProcessorEditor, private juce::Timer {
  public:
    /// Builds every control for `owner`.
    explicit IdawEditor(IdawProcessor& owner);
    ~IdawEditor() override;

    /// Background and section titles.
    void paint(juce::Graphics& g) override;
    /// Places the groups left to right (input, drive, EQ, output, MIDI) and the status rows below.
    void resized() override;

  private:
    /// A titled group of knobs laid out in a grid of `columns`.
    struct Group {
        std::unique_ptr<juce::GroupComponent> frame;
        std::vector<std::unique_ptr<ParameterKnob>> knobs;  ///< null entries leave a cell empty
        int columns = 1;
    };

    /// 10 Hz: status lines, and the test hooks below.
    void timerCallback() override;
    /// Adds a titled group with a knob per parameter ID ("" leaves a cell empty).
    void add_group(const juce::String& title, const juce::StringArray& ids, int columns);
    /// Places a group's frame and knobs in `area`.
    void layout_group(Group& group, juce::Rectangle<int> area);
    /// Opens the folder chooser; the chosen folder is saved with the state and loaded off the audio thread.
    void choose_model_folder();
    /// Sends the text box's words to the sidecar.
    void send_description();
    /// Sends the mood box's words to the sidecar (its answer sets valence and arousal).
    void send_mood();
    /// Applies the endpoint and key folder boxes: the processor saves them and reconnects its link.
    void connect_sidecar();
    /// Refreshes the model, sidecar, describe and audio-thread status lines.
    void update_status();
    /// Test support: when the environment variable `variable` holds words, types them into `box` and presses
    /// `button`, once (`done`), when the editor is on screen and a sidecar has welcomed the plugin.
    void type_if_asked(const char* variable, bool& done, juce::TextEditor& box, juce::Button& button);
    /// Test support (IDAW_EDITOR_DESCRIBE): types words into the text box and presses Send.
    void describe_if_asked();
    /// Test support (IDAW_EDITOR_MOOD): types words into the mood box and presses Set.
    void mood_if_asked();
    /// Test support (IDAW_EDITOR_ENDPOINT, IDAW_EDITOR_KEYS): types an endpoint and key folder and presses Connect.
    void connect_if_asked();
    /// Test support (IDAW_EDITOR_SNAPSHOT): saves a picture of the editor and its status texts.
    void write_snapshot_if_asked();
    /// Test support (IDAW_EDITOR_STATUS): writes the status texts and the follow report at every tick.
    void write_status_if_asked();
    /// The status lines' texts (and the follow report), as the test hooks write them.
    juce::var status_texts();

    IdawProcessor& processor_;
    std::vector<Group> groups_;
    juce::ToggleButton midi_toggle_{"MIDI out"};
    juce::AudioProcessorValueTreeState::ButtonAttachment midi_attachment_;
    juce::ToggleButton follow_toggle_{"Follow"};  ///< the midi_follow switch (follow the input)
    juce::AudioProcessorValueTreeState::ButtonAttachment follow_attachment_;
    juce::Label follow_status_;
    juce::Label title_;
    juce::Label sidecar_status_;
    juce::Label model_caption_, model_path_, model_status_;
    juce::TextButton choose_button_{"Choose..."};
    juce::TextButton built_in_button_{"Built-in"};  ///< back to the nets shipped with the plugin
    juce::Label describe_caption_;
    juce::TextEditor describe_box_;
    juce::TextButton send_button_{"Send"};
    juce::Label describe_status_;
    juce::Label mood_caption_;
    juce::TextEditor mood_box_;  ///< words for the MIDI generator's mood (valence, arousal) through the sidecar
    juce::TextButton mood_button_{"Set"};
    juce::Label mood_status_;
    juce::Label endpoint_caption_;
    juce::TextEditor endpoint_box_, keys_box_;
    juce::TextButton connect_button_{"Connect"};
    juce::Label cpu_status_;
    std::unique_ptr<juce::FileChooser> chooser_;

    // Telemetry baseline for the load over the last interval.
    TimingHistogram::Snapshot last_timing_{};
    std::uint64_t last_frames_ = 0;
    int ticks_ = 0;
    bool snapshot_written_ = false;
    bool describe_sent_ = false;
    bool mood_sent_ = false;
    bool connect_done_ = false;
    std::size_t midi_group_ = 0;  ///< index of the MIDI group in groups_ (its first cell holds the switch)

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(IdawEditor)
};

}  // namespace idaw::plugin
