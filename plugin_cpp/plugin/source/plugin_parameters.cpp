#include "plugin_parameters.h"

#include <algorithm>
#include <cmath>
#include <memory>

namespace idaw::plugin {
namespace {

const ParamSpec& spec(std::size_t index) { return kParamSpecs[index]; }

bool is_log(std::size_t index) { return spec(index).scale == ParamScale::Log; }

/// The JUCE range of core parameter `index`, built on from_normalised()/to_normalised().
juce::NormalisableRange<float> range_of(std::size_t index) {
    const ParamSpec& s = spec(index);
    return juce::NormalisableRange<float>(
        s.min_value, s.max_value,
        [index](float, float, float proportion) { return from_normalised(index, proportion); },
        [index](float, float, float value) { return to_normalised(index, value); },
        [index](float, float, float value) { return std::clamp(value, spec(index).min_value, spec(index).max_value); });
}

/// Tonic names as the Python host's MidiSettings.key_name spells them.
const juce::StringArray& tonic_names() {
    static const juce::StringArray names{"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"};
    return names;
}

/// Scale names in the core's order (music::kScales; the index is what MidiControl::scale carries).
juce::StringArray scale_names() {
    juce::StringArray names;
    for (const auto& scale : music::kScales) names.add(juce::String(scale.name.data(), scale.name.size()));
    return names;
}

/// A float parameter shown with two decimals.
std::unique_ptr<juce::AudioParameterFloat> plain_float(const char* id, const char* name, float low, float high,
                                                       float initial) {
    const auto attributes = juce::AudioParameterFloatAttributes()
                                .withStringFromValueFunction([](float v, int) { return juce::String(v, 2); })
                                .withAutomatable(true);
    return std::make_unique<juce::AudioParameterFloat>(juce::ParameterID{id, kParameterVersion}, name,
                                                       juce::NormalisableRange<float>(low, high), initial, attributes);
}

/// Adds the parameters that belong to the plugin rather than to the engine's snapshot. The engine's table
/// (kParamSpecs) is the single source for everything the engine smooths; controls of the plugin's own features
/// are added here, after the core's first kCoreParamsBeforeOwn, so no parameter's ID or index ever changes. New
/// ones go at the end (of these, or of the layout for the core's later ones): hosts that store parameters by index
/// keep their automation.
void add_plugin_parameters(juce::AudioProcessorValueTreeState::ParameterLayout& layout) {
    layout.add(std::make_unique<juce::AudioParameterBool>(juce::ParameterID{kMidiEnabledId, kParameterVersion},
                                                          "MIDI enabled", false));
    layout.add(std::make_unique<juce::AudioParameterInt>(juce::ParameterID{kMidiChannelId, kParameterVersion},
                                                         "MIDI channel", 1, 16, 1));
    layout.add(std::make_unique<juce::AudioParameterChoice>(juce::ParameterID{kMidiKeyId, kParameterVersion},
                                                            "MIDI key", tonic_names(), 0));
    layout.add(std::make_unique<juce::AudioParameterChoice>(juce::ParameterID{kMidiScaleId, kParameterVersion},
                                                            "MIDI scale", scale_names(), 0));
    layout.add(plain_float(kValenceId, "Valence", -1.0f, 1.0f, 0.0f));
    layout.add(plain_float(kArousalId, "Arousal", -1.0f, 1.0f, 0.0f));
    layout.add(plain_float(kIntensityId, "Intensity", 0.0f, 1.0f, kDefaultIntensity));
    layout.add(std::make_unique<juce::AudioParameterChoice>(juce::ParameterID{kMidiTracksId, kParameterVersion},
                                                            "MIDI tracks",
                                                            juce::StringArray{"Own channels", "One channel"}, 0));
    layout.add(std::make_unique<juce::AudioParameterBool>(juce::ParameterID{kMidiFollowId, kParameterVersion},
                                                          "MIDI follow", false));
}

}  // namespace

juce::String tonic_name(int tonic) { return tonic_names()[std::clamp(tonic, 0, 11)]; }

juce::String core_parameter_id(std::size_t index) {
    const std::string_view name = spec(index).name;
    return juce::String(name.data(), name.size());
}

juce::String core_parameter_name(std::size_t index) {
    // "mid1_q" -> "Mid1 Q": words split at '_', the first letter and one-letter words upper case.
    juce::StringArray words = juce::StringArray::fromTokens(core_parameter_id(index), "_", "");
    for (int i = 0; i < words.size(); ++i) {
        if (words[i].length() == 1 || i == 0)
            words.set(i, words[i].substring(0, 1).toUpperCase() + words[i].substring(1));
    }
    return words.joinIntoString(" ");
}

juce::String format_value(std::size_t index, float value) {
    const std::string_view unit = spec(index).unit;
    if (unit == "dB") return juce::String(value, 1) + " dB";
    if (unit == "Hz") return juce::String(juce::roundToInt(value)) + " Hz";
    if (unit == "ms") return juce::String(value, 1) + " ms";
    return juce::String(value, 2);
}

float parse_value(std::size_t index, const juce::String& text) {
    const juce::String trimmed = text.trim();
    float value = trimmed.getFloatValue();
    // "8.2 kHz" and "8.2k" mean 8200 Hz.
    if (spec(index).unit == "Hz" && trimmed.trimCharactersAtStart("+-0123456789.eE ").startsWithIgnoreCase("k"))
        value *= 1000.0f;
    return std::clamp(value, spec(index).min_value, spec(index).max_value);
}

float from_normalised(std::size_t index, float proportion) {
    const ParamSpec& s = spec(index);
    const double t = std::clamp(static_cast<double>(proportion), 0.0, 1.0);
    double v;
    if (is_log(index))
        v = s.min_value * std::exp(t * std::log(static_cast<double>(s.max_value) / s.min_value));
    else
        v = s.min_value + t * (static_cast<double>(s.max_value) - s.min_value);
    return std::clamp(static_cast<float>(v), s.min_value, s.max_value);
}

float to_normalised(std::size_t index, float value) {
    const ParamSpec& s = spec(index);
    const double v =
        std::clamp(static_cast<double>(value), static_cast<double>(s.min_value), static_cast<double>(s.max_value));
    double t;
    if (is_log(index))
        t = std::log(v / s.min_value) / std::log(static_cast<double>(s.max_value) / s.min_value);
    else
        t = (v - s.min_value) / (static_cast<double>(s.max_value) - s.min_value);
    return static_cast<float>(std::clamp(t, 0.0, 1.0));
}

juce::AudioProcessorValueTreeState::ParameterLayout create_parameter_layout() {
    juce::AudioProcessorValueTreeState::ParameterLayout layout;
    auto add_core = [&layout](std::size_t i) {
        const auto attributes =
            juce::AudioParameterFloatAttributes()
                .withStringFromValueFunction([i](float v, int) { return format_value(i, v); })
                .withValueFromStringFunction([i](const juce::String& t) { return parse_value(i, t); })
                .withAutomatable(true);
        layout.add(std::make_unique<juce::AudioParameterFloat>(
            juce::ParameterID{core_parameter_id(i), kParameterVersion}, core_parameter_name(i), range_of(i),
            spec(i).default_value, attributes));
    };
    // The core's first parameters, the plugin's own, then the core's later ones (the compressor): every parameter
    // keeps the index it had when it was added, for hosts that store parameters by index.
    for (std::size_t i = 0; i < kCoreParamsBeforeOwn; ++i) add_core(i);
    add_plugin_parameters(layout);
    for (std::size_t i = kCoreParamsBeforeOwn; i < kNumParams; ++i) add_core(i);
    return layout;
}

void push_restored_values(juce::AudioProcessorValueTreeState& state) {
    for (auto* parameter : state.processor.getParameters()) {
        auto* p = dynamic_cast<juce::RangedAudioParameter*>(parameter);
        if (p == nullptr || state.getParameter(p->paramID) != p) continue;  // not one of this tree's
        // The tree's layout: <PARAM id="..." value="plain value"/> per parameter (AudioProcessorValueTreeState).
        const juce::ValueTree child = state.state.getChildWithProperty("id", p->paramID);
        const float plain = child.hasProperty("value") ? static_cast<float>(child.getProperty("value"))
                                                       : p->convertFrom0to1(p->getDefaultValue());
        const float normalised = p->convertTo0to1(plain);
        if (p->getValue() != normalised) p->setValueNotifyingHost(normalised);
    }
}

ParameterReader::ParameterReader(juce::AudioProcessorValueTreeState& state) {
    for (std::size_t i = 0; i < kNumParams; ++i) {
        values_[i] = state.getRawParameterValue(core_parameter_id(i));
        jassert(values_[i] != nullptr);
    }
    midi_enabled_ = state.getRawParameterValue(kMidiEnabledId);
    midi_channel_ = state.getRawParameterValue(kMidiChannelId);
    midi_tracks_ = state.getRawParameterValue(kMidiTracksId);
    midi_key_ = state.getRawParameterValue(kMidiKeyId);
    midi_scale_ = state.getRawParameterValue(kMidiScaleId);
    valence_ = state.getRawParameterValue(kValenceId);
    arousal_ = state.getRawParameterValue(kArousalId);
    intensity_ = state.getRawParameterValue(kIntensityId);
    midi_follow_ = state.getRawParameterValue(kMidiFollowId);
    jassert(midi_enabled_ && midi_channel_ && midi_tracks_ && midi_key_ && midi_scale_ && valence_ && arousal_ &&
            intensity_ && midi_follow_);
}

float ParameterReader::intensity() const noexcept {
    return std::clamp(intensity_->load(std::memory_order_relaxed), 0.0f, 1.0f);
}

MidiParameters ParameterReader::read_midi() const noexcept {
    MidiParameters m;
    m.enabled = midi_enabled_->load(std::memory_order_relaxed) >= 0.5f;
    m.channel = std::clamp(static_cast<int>(std::lround(midi_channel_->load(std::memory_order_relaxed))), 1, 16);
    m.one_channel = midi_tracks_->load(std::memory_order_relaxed) >= 0.5f;
    m.key_tonic = std::clamp(static_cast<int>(std::lround(midi_key_->load(std::memory_order_relaxed))), 0, 11);
    m.scale = std::clamp(static_cast<int>(std::lround(midi_scale_->load(std::memory_order_relaxed))), 0,
                         music::kNumScales - 1);
    m.valence = std::clamp(valence_->load(std::memory_order_relaxed), -1.0f, 1.0f);
    m.arousal = std::clamp(arousal_->load(std::memory_order_relaxed), -1.0f, 1.0f);
    m.follow = midi_follow_->load(std::memory_order_relaxed) >= 0.5f;
    return m;
}

void ParameterReader::read(Parameters& out) const noexcept {
    for (std::size_t i = 0; i < kNumParams; ++i) {
        const float v = values_[i]->load(std::memory_order_relaxed);
        out.values[i] = std::clamp(v, kParamSpecs[i].min_value, kParamSpecs[i].max_value);
    }
}

}  // namespace idaw::plugin
