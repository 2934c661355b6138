// The plugin's editor: the chain's controls grouped as the signal flows, the model folder, the sidecar and the
// audio thread's load.
#pragma once

#include <memory>
#include <vector>

#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_gui_basics/juce_gui_basics.h>

#include "cpu_load.h"

namespace idaw::plugin {

class IdawProcessor;

/// One rotary control bound to a parameter: the knob, its value box and its name above it.
class ParameterKnob : public juce::Component {
  public:
    /// A knob for the parameter with ID `id` of `state`.
    ParameterKnob(juce::AudioProcessorValueTreeState& state, const juce::String& id, const juce::String& label);
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
    /// Places the groups left to right (input, drive, EQ, output) and the status rows below.
    void resized() override;

  private:
    /// A titled group of knobs laid out in a grid of `columns`.
    struct Group {
        std::unique_ptr<juce::GroupComponent> frame;
        std::vector<std::unique_ptr<ParameterKnob>> knobs;  ///< null entries leave a cell empty
        int columns = 1;
    };

    void timerCallback() override;
    void add_group(const juce::String& title, const juce::StringArray& ids, int columns);
    void layout_group(Group& group, juce::Rectangle<int> area);
    void choose_model_folder();
    void send_description();
    void update_status();
    void write_snapshot_if_asked();

    IdawProcessor& processor_;
    std::vector<Group> groups_;
    juce::Label title_;
    juce::Label sidecar_status_;
    juce::Label model_caption_, model_path_, model_status_;
    juce::TextButton choose_button_{"Choose..."};
    juce::Label describe_caption_;
    juce::TextEditor describe_box_;
    juce::TextButton send_button_{"Send"};
    juce::Label describe_status_;
    juce::Label cpu_status_;
    std::unique_ptr<juce::FileChooser> chooser_;

    // Telemetry baseline for the load over the last interval.
    TimingHistogram::Snapshot last_timing_{};
    std::uint64_t last_frames_ = 0;
    int ticks_ = 0;
    bool snapshot_written_ = false;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(IdawEditor)
};

}  // namespace idaw::plugin
