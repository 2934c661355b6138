// The plugin's automatable parameters: the core's table (idaw/parameters.h) as JUCE parameters, and the reader
// that turns their current values into an engine snapshot on the audio thread.
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>

#include <array>
#include <atomic>
#include <cstddef>

#include "idaw/parameters.h"

namespace idaw::plugin {

/// Version hint of every parameter ID (VST3/AU use it to keep automation stable across releases).
inline constexpr int kParameterVersion = 1;

/// Parameter ID of core parameter `index`: the core's own name (e.g. "low_gain"), as in the Python host.
juce::String core_parameter_id(std::size_t index);

/// Display name of core parameter `index` ("Low gain", "Mid1 Q"): hosts and pedalboard turn it back into the id.
juce::String core_parameter_name(std::size_t index);

/// Value text shown by hosts: unit in the text ("3.0 dB", "560 Hz", "0.71"), no separate label.
juce::String format_value(std::size_t index, float value);

/// Parses what a user typed for parameter `index` ("400", "400 Hz", "8.2 kHz", "-3 dB") into a plain value.
float parse_value(std::size_t index, const juce::String& text);

/// Plain value of core parameter `index` at normalised position `proportion` (0..1): linear for gains, mix and
/// crunch, geometric (log) for frequencies and Q, the way the engine smooths them.
float from_normalised(std::size_t index, float proportion);

/// Normalised position (0..1) of plain value `value` of core parameter `index`; inverse of from_normalised().
float to_normalised(std::size_t index, float value);

/// ID of the plugin's switch for the MIDI generator (off by default).
inline constexpr const char* kMidiEnabledId = "midi_enabled";
/// ID of the MIDI channel (1..16) the generator's melody and chords go out on.
inline constexpr const char* kMidiChannelId = "midi_channel";

/// The plugin's own controls of the MIDI generator, as the audio thread reads them.
struct MidiParameters {
    bool enabled = false;
    int channel = 1;  ///< 1..16
};

/// Every parameter of the plugin: the core's 18, then the plugin's own (see add_plugin_parameters()).
juce::AudioProcessorValueTreeState::ParameterLayout create_parameter_layout();

/// Reads the parameters' current values from the value tree state for the audio thread.
///
/// Built once (looks up each parameter's atomic); the reads only load atomics, so they are real-time safe.
class ParameterReader {
  public:
    /// Looks up the raw value of every parameter in `state` (message thread, at construction).
    explicit ParameterReader(juce::AudioProcessorValueTreeState& state);

    /// Fills `out.values` with the core parameters' current values, each clamped into its range. Real-time safe.
    void read(Parameters& out) const noexcept;
    /// The MIDI generator's switch and channel. Real-time safe.
    MidiParameters read_midi() const noexcept;

  private:
    std::array<std::atomic<float>*, kNumParams> values_{};
    std::atomic<float>* midi_enabled_ = nullptr;
    std::atomic<float>* midi_channel_ = nullptr;
};

}  // namespace idaw::plugin
