#include "plugin_processor.h"

#include <algorithm>

#include "idaw/rt_check.h"
#include "plugin_editor.h"
#include "rt_hook.h"

namespace idaw::plugin {

IdawProcessor::IdawProcessor()
    : juce::AudioProcessor(BusesProperties()
                               .withInput("Input", juce::AudioChannelSet::stereo(), true)
                               .withOutput("Output", juce::AudioChannelSet::stereo(), true)),
      parameters_(*this, nullptr, kStateType, create_parameter_layout()),
      reader_(parameters_) {
    install_rtcheck_hook_from_environment();
}

IdawProcessor::~IdawProcessor() = default;

void IdawProcessor::prepareToPlay(double sample_rate, int max_block) {
    if (!engine_) {
        engine_ = std::make_unique<Engine>();
        engine_ptr_.store(engine_.get(), std::memory_order_release);
    }
    num_channels_ = std::clamp(std::max(getTotalNumInputChannels(), getTotalNumOutputChannels()), 1,
                               Engine::kMaxChannels);
    engine_->prepare(sample_rate, std::max(max_block, kMinEngineBlock), num_channels_);
    Parameters current = Parameters::defaults();
    reader_.read(current);
    current.sequence = ++sequence_;
    engine_->set_parameters_now(current);
    last_pushed_ = current;
    block_start_ = 0;
    // Drop MIDI events a previous run left behind.
    MidiEvent stale;
    while (engine_->midi_ring().pop(stale)) {
    }
    setLatencySamples(engine_->latency_samples());
}

void IdawProcessor::releaseResources() {}

bool IdawProcessor::isBusesLayoutSupported(const BusesLayout& layouts) const {
    const auto in = layouts.getMainInputChannelSet();
    const auto out = layouts.getMainOutputChannelSet();
    return in == out && (out == juce::AudioChannelSet::mono() || out == juce::AudioChannelSet::stereo());
}

void IdawProcessor::processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer& midi) {
    rt::Section section;  // the whole callback is the real-time section, not only the engine
    juce::ScopedNoDenormals no_denormals;
    const int frames = buffer.getNumSamples();
    midi.clear();
    if (engine_ == nullptr) {
        buffer.clear();
        return;
    }
    model_folder_.acquire();

    Parameters current;
    reader_.read(current);
    if (current.values != last_pushed_.values) {
        current.sequence = sequence_ + 1;
        // One producer (this thread); a full queue only means the engine has not run since: try again next block.
        if (engine_->push_parameters(current)) {
            sequence_ = current.sequence;
            last_pushed_ = current;
        }
    }

    const int channels = std::min(buffer.getNumChannels(), num_channels_);
    for (int c = channels; c < buffer.getNumChannels(); ++c) buffer.clear(c, 0, frames);
    engine_->process(buffer.getArrayOfWritePointers(), channels, frames);

    // MIDI the engine generated during this block, placed at its sample offset.
    MidiEvent events[kMaxMidiEventsPerBlock];
    const std::size_t count = engine_->midi_ring().pop(events, kMaxMidiEventsPerBlock);
    for (std::size_t i = 0; i < count; ++i) {
        const MidiEvent& e = events[i];
        const std::uint64_t offset = e.sample_time > block_start_ ? e.sample_time - block_start_ : 0;
        const int position = static_cast<int>(std::min<std::uint64_t>(offset, frames > 0 ? frames - 1 : 0));
        midi.addEvent(e.bytes, e.size, position);
    }
    block_start_ += static_cast<std::uint64_t>(frames);
}

juce::AudioProcessorEditor* IdawProcessor::createEditor() { return new IdawEditor(*this); }

void IdawProcessor::getStateInformation(juce::MemoryBlock& dest) {
    juce::ValueTree state = parameters_.copyState();
    state.setProperty(kModelFolderProperty, model_folder_.folder(), nullptr);
    if (const auto xml = state.createXml()) copyXmlToBinary(*xml, dest);
}

void IdawProcessor::setStateInformation(const void* data, int size) {
    const auto xml = getXmlFromBinary(data, size);
    if (xml == nullptr || !xml->hasTagName(parameters_.state.getType())) return;
    juce::ValueTree state = juce::ValueTree::fromXml(*xml);
    const juce::String folder = state.getProperty(kModelFolderProperty).toString();
    state.removeProperty(kModelFolderProperty, nullptr);
    parameters_.replaceState(state);
    if (folder != model_folder_.folder()) set_model_folder(folder);
}

void IdawProcessor::set_model_folder(const juce::String& path) { model_folder_.set_folder(path); }

juce::String IdawProcessor::sidecar_status() const { return "sidecar: no link in this build"; }

bool IdawProcessor::send_description(const juce::String& words, juce::String& message) {
    message = "not sent (no sidecar link in this build): " + words;
    return false;
}

}  // namespace idaw::plugin

/// JUCE's entry point: every plugin format creates the processor through this.
juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new idaw::plugin::IdawProcessor(); }
