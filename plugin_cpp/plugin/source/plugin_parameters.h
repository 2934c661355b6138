// The plugin's automatable parameters: the core's table (idaw/parameters.h) as JUCE parameters, and the reader
// that turns their current values into an engine snapshot on the audio thread.
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <string_view>

#include "idaw/emotion_map.h"  // emotion_from_valence_arousal: the generator's input from valence, arousal
#include "idaw/midi_generator.h"
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
/// ID of the MIDI channel (1..16) the generator's melody goes out on (and, with kMidiTracksId "One channel", its
/// chords and bass).
inline constexpr const char* kMidiChannelId = "midi_channel";
/// ID of the tracks' channels (a choice): "Own channels" (melody on the MIDI channel N, chords on N + 1, bass on
/// N + 2, wrapping after 16; the default) or "One channel" (melody, chords and bass all on N, the chords below the
/// melody); the drums are on channel 10 either way.
inline constexpr const char* kMidiTracksId = "midi_tracks";
/// ID of the key's tonic (a choice: C, C#, D, Eb, ... B), as the Python host's --key names it.
inline constexpr const char* kMidiKeyId = "midi_key";
/// ID of the key's scale (a choice of the core's music::kScales, by index).
inline constexpr const char* kMidiScaleId = "midi_scale";
/// ID of the emotion's valence (-1 negative .. 1 positive), as the Python host's --valence.
inline constexpr const char* kValenceId = "valence";
/// ID of the emotion's arousal (-1 calm .. 1 excited), as the Python host's --arousal.
inline constexpr const char* kArousalId = "arousal";
/// ID of the follow switch (off by default): the MIDI generator takes its tempo, beat phase, key and mood from what
/// the sidecar hears in the plugin's input (the protocol's follow and heard messages), as `idaw live --follow` does.
inline constexpr const char* kMidiFollowId = "midi_follow";
/// ID of the intensity (0 flat .. 1 full) of the descriptions sent to the sidecar.
inline constexpr const char* kIntensityId = "intensity";
/// Default intensity: the sidecar command line's default (idaw sidecar --intensity).
inline constexpr float kDefaultIntensity = 0.7f;

/// The name of pitch class `tonic` (0..11) as the midi_key parameter spells it ("C", "C#", ... "B").
juce::String tonic_name(int tonic);
/// Index of scale `name` in the core's music::kScales (what MidiControl::scale carries); -1 when there is none.
constexpr int scale_index(std::string_view name) {
    for (int i = 0; i < music::kNumScales; ++i)
        if (music::kScales[static_cast<std::size_t>(i)].name == name) return i;
    return -1;
}

/// The plugin's own controls of the MIDI generator, as the audio thread reads them.
struct MidiParameters {
    bool enabled = false;
    int channel = 1;           ///< 1..16
    bool one_channel = false;  ///< melody, chords and bass share `channel` (else N, N + 1, N + 2)
    int key_tonic = 0;         ///< pitch class 0 (C) .. 11 (B)
    int scale = 0;             ///< index into music::kScales
    float valence = 0.0f;      ///< -1..1
    float arousal = 0.0f;      ///< -1..1
    bool follow = false;       ///< take tempo, beat, key and mood from what the sidecar hears (kMidiFollowId)
};

/// The core parameters the plugin had before its own were added: these come first in the layout, the core's later
/// ones (the compressor, from ParamId::CompThresholdDb on) after the plugin's own.
inline constexpr std::size_t kCoreParamsBeforeOwn = static_cast<std::size_t>(ParamId::CompThresholdDb);

/// Every parameter of the plugin: the core's first kCoreParamsBeforeOwn, the plugin's own (see
/// add_plugin_parameters()), then the core's later ones.
juce::AudioProcessorValueTreeState::ParameterLayout create_parameter_layout();

/// After `state.replaceState()`: sets every parameter of `state` to the value the restored tree holds (its default
/// where the tree has none), even where JUCE saw no change. JUCE compares plain values only, so a switch or choice a
/// host left between steps (normalised 0.45 for "off") kept that in-between value, and hosts read it back instead of
/// the restored one; after this, each parameter's getValue() is its restored value, normalised. Message thread.
void push_restored_values(juce::AudioProcessorValueTreeState& state);

/// Reads the parameters' current values from the value tree state for the audio thread.
///
/// Built once (looks up each parameter's atomic); the reads only load atomics, so they are real-time safe.
class ParameterReader {
  public:
    /// Looks up the raw value of every parameter in `state` (message thread, at construction).
    explicit ParameterReader(juce::AudioProcessorValueTreeState& state);

    /// Fills `out.values` with the core parameters' current values, each clamped into its range. Real-time safe.
    void read(Parameters& out) const noexcept;
    /// The MIDI generator's controls (switch, channel, key, scale, emotion, follow). Real-time safe.
    MidiParameters read_midi() const noexcept;
    /// The intensity of sidecar descriptions (0..1). Any thread.
    float intensity() const noexcept;
    /// The intensity's raw value, for the sidecar link's thread to watch.
    const std::atomic<float>* intensity_value() const noexcept { return intensity_; }
    /// The follow switch's raw value (>= 0.5: on), for the sidecar link's thread to watch.
    const std::atomic<float>* follow_value() const noexcept { return midi_follow_; }

  private:
    std::array<std::atomic<float>*, kNumParams> values_{};
    std::atomic<float>* midi_enabled_ = nullptr;
    std::atomic<float>* midi_channel_ = nullptr;
    std::atomic<float>* midi_tracks_ = nullptr;
    std::atomic<float>* midi_key_ = nullptr;
    std::atomic<float>* midi_scale_ = nullptr;
    std::atomic<float>* valence_ = nullptr;
    std::atomic<float>* arousal_ = nullptr;
    std::atomic<float>* intensity_ = nullptr;
    std::atomic<float>* midi_follow_ = nullptr;
};

}  // namespace idaw::plugin
