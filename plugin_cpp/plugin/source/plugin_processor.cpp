#include "plugin_processor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "curve_keys.h"
#include "idaw/rt_check.h"
#include "plugin_editor.h"
#include "rt_hook.h"
#include "sidecar_protocol.h"

namespace idaw::plugin {
namespace {

/// The scales a heard key is played in (realtime/follow.py: major or minor).
constexpr int kMajorScale = scale_index("major");
constexpr int kMinorScale = scale_index("minor");
static_assert(kMajorScale >= 0 && kMinorScale >= 0, "the core's scales lack major or minor");

}  // namespace

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
        model_folder_.attach(engine_->midi_generator());
        last_control_.emotion = emotion_from_valence_arousal(0.0, 0.0);
    }
    if (link_) link_->stop();  // its analysis windows follow the engine's rate
    num_channels_ =
        std::clamp(std::max(getTotalNumInputChannels(), getTotalNumOutputChannels()), 1, Engine::kMaxChannels);
    engine_->prepare(sample_rate, std::max(max_block, kMinEngineBlock), num_channels_);
    reader_.read(seen_);
    current_ = seen_;
    current_.sequence = applied_sidecar_;
    engine_->set_parameters_now(current_);
    last_pushed_ = current_;
    block_start_ = 0;
    // Drop MIDI events a previous run left behind, and end what it left sounding.
    MidiEvent stale;
    while (engine_->midi_ring().pop(stale)) {
    }
    pending_count_ = 0;
    end_notes_on_ |= channels_with_notes_;
    channels_with_notes_ = 0;
    control_dirty_ = true;
    follow_was_on_ = false;  // following starts afresh (the link restarts below)
    setLatencySamples(engine_->latency_samples());
    // A bounce must not depend on how fast the nets load: offline, wait for them (the audio thread is not running).
    if (isNonRealtime()) model_folder_.wait_until_idle(kOfflineModelWaitMs);
    start_sidecar_link();
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
    push_parameters();
    push_midi_control();

    const int channels = std::min(buffer.getNumChannels(), num_channels_);
    for (int c = channels; c < buffer.getNumChannels(); ++c) buffer.clear(c, 0, frames);
    engine_->process(buffer.getArrayOfWritePointers(), channels, frames);
    emit_midi(midi, frames);
    block_start_ += static_cast<std::uint64_t>(frames);
}

void IdawProcessor::push_parameters() noexcept {
    // Per parameter, the latest change wins: the host's (a value that moved since the last block) or the sidecar's.
    Parameters now;
    reader_.read(now);
    for (std::size_t i = 0; i < kNumParams; ++i) {
        if (now.values[i] != seen_.values[i]) current_.values[i] = seen_.values[i] = now.values[i];
    }
    if (link_ && link_->mailbox().snapshot() > applied_sidecar_) {
        std::uint64_t snapshot = 0;
        sidecar::EqValues eq;
        // A read that overlaps the link thread's write fails; the snapshot is then taken up at the next block.
        if (link_->mailbox().read(snapshot, eq) && snapshot > applied_sidecar_) {
            std::copy(eq.begin(), eq.end(), current_.values.begin() + kEqFirstParam);
            applied_sidecar_ = snapshot;
        }
    }
    if (current_.values == last_pushed_.values && last_pushed_.sequence == applied_sidecar_) return;
    current_.sequence = applied_sidecar_;
    // One producer (this thread); a full queue only means the engine has not run since: try again next block.
    if (!engine_->push_parameters(current_)) return;
    last_pushed_ = current_;
    if (link_) {
        sidecar::EqValues eq;
        std::copy(current_.values.begin() + kEqFirstParam, current_.values.begin() + kEqFirstParam + kNumEqParams,
                  eq.begin());
        link_->held().write(applied_sidecar_, eq);
    }
}

void IdawProcessor::push_midi_control() noexcept {
    const MidiParameters m = reader_.read_midi();
    double tempo = kDefaultTempo;
    if (auto* head = getPlayHead())
        if (const auto position = head->getPosition())
            if (const auto bpm = position->getBpm()) tempo = *bpm;
    MidiControl control = last_control_;
    control.enabled = m.enabled;
    // Melody, chords and bass on channels N, N + 1, N + 2 (wrapping after 16), or all on N (the core then keeps the
    // chords and bass below the melody); drums on General MIDI percussion (channel 10) either way.
    const int first = m.channel - 1;
    control.melody_channel = static_cast<std::uint8_t>(first);
    control.chord_channel = static_cast<std::uint8_t>(m.one_channel ? first : (first + 1) % 16);
    control.bass_channel = static_cast<std::uint8_t>(m.one_channel ? first : (first + 2) % 16);
    control.drum_channel = 9;
    control.tempo_bpm = std::clamp(static_cast<float>(tempo), MidiControl::kMinTempo, MidiControl::kMaxTempo);
    control.key_tonic = static_cast<std::uint8_t>(m.key_tonic);
    control.scale = static_cast<std::uint8_t>(m.scale);
    control.beat_anchor = 0;
    float valence = m.valence, arousal = m.arousal;
    // Following (realtime/follow.py): once a beat was heard, its tempo replaces the host's, a heard key the
    // plugin's, a heard mood the valence and arousal knobs; each new heard beat is pushed once as the beat anchor.
    take_heard(m.follow);
    const bool following = m.follow && followed_.count != 0;
    if (following) {
        control.tempo_bpm = followed_.tempo_bpm;
        if (followed_.has_key) {
            control.key_tonic = followed_.key_tonic;
            control.scale = static_cast<std::uint8_t>(followed_.key_minor ? kMinorScale : kMajorScale);
        }
        if (followed_.has_emotion) {
            valence = followed_.valence;
            arousal = followed_.arousal;
        }
        control.beat_anchor = pending_anchor_;
    }
    // The emotion is recomputed only when valence or arousal moved (eight exp() calls, no allocation).
    const bool emotion_moved = valence != last_valence_ || arousal != last_arousal_;
    if (emotion_moved) control.emotion = emotion_from_valence_arousal(valence, arousal);
    if (!control_dirty_ && !emotion_moved && control.beat_anchor == 0 && control.enabled == last_control_.enabled &&
        control.melody_channel == last_control_.melody_channel &&
        control.chord_channel == last_control_.chord_channel && control.bass_channel == last_control_.bass_channel &&
        control.tempo_bpm == last_control_.tempo_bpm && control.key_tonic == last_control_.key_tonic &&
        control.scale == last_control_.scale)
        return;
    control.sequence = last_control_.sequence + 1;
    // A full queue means the engine has not run since the last push: try again at the next block.
    if (engine_->midi_generator().push_control(control)) {
        last_control_ = control;
        last_valence_ = valence;
        last_arousal_ = arousal;
        control_dirty_ = false;
        pending_anchor_ = 0;
        pushed_tempo_.store(control.tempo_bpm, std::memory_order_relaxed);
        pushed_key_tonic_.store(control.key_tonic, std::memory_order_relaxed);
        pushed_scale_.store(control.scale, std::memory_order_relaxed);
        pushed_heard_.store(following ? followed_.count : 0, std::memory_order_relaxed);
    }
}

void IdawProcessor::take_heard(bool follow) noexcept {
    if (!follow || !link_) {
        follow_was_on_ = false;
        return;
    }
    const sidecar::HeardCell& cell = link_->heard();
    if (!follow_was_on_) {  // switched on: what was heard before is not followed
        follow_was_on_ = true;
        followed_ = sidecar::HeardValues{};
        pending_anchor_ = 0;
        heard_taken_ = cell.count();
    }
    if (cell.count() <= heard_taken_) return;
    sidecar::HeardValues h;
    // A read that overlaps the link thread's write fails; the message is taken up at the next block.
    if (!cell.read(h) || h.count <= heard_taken_) return;
    heard_taken_ = h.count;
    followed_.count = h.count;
    followed_.tempo_bpm = h.tempo_bpm;
    pending_anchor_ = h.beat_anchor;
    if (h.has_key) {
        followed_.has_key = true;
        followed_.key_tonic = h.key_tonic;
        followed_.key_minor = h.key_minor;
    }
    if (h.has_emotion) {
        followed_.has_emotion = true;
        followed_.valence = h.valence;
        followed_.arousal = h.arousal;
    }
}

void IdawProcessor::emit_midi(juce::MidiBuffer& midi, int frames) noexcept {
    // The generator works ahead: keep its events, in time order, until the block they are due in.
    MidiEvent e;
    while (pending_count_ < kMaxPendingMidi && engine_->midi_ring().pop(e)) {
        int at = pending_count_++;
        for (; at > 0 && pending_[static_cast<std::size_t>(at - 1)].sample_time > e.sample_time; --at)
            pending_[static_cast<std::size_t>(at)] = pending_[static_cast<std::size_t>(at - 1)];
        pending_[static_cast<std::size_t>(at)] = e;
    }
    if (frames <= 0) return;
    int written = 0;
    for (int channel = 0; end_notes_on_ != 0 && channel < 16; ++channel) {
        if ((end_notes_on_ & (1u << channel)) == 0) continue;
        const std::uint8_t bytes[3] = {static_cast<std::uint8_t>(kMidiControlChange | channel), kMidiAllNotesOff, 0};
        midi.addEvent(bytes, 3, 0);
        end_notes_on_ = static_cast<std::uint16_t>(end_notes_on_ & ~(1u << channel));
        ++written;
    }
    const std::uint64_t block_end = block_start_ + static_cast<std::uint64_t>(frames);
    int used = 0;
    for (; used < pending_count_ && written < kMaxMidiEventsPerBlock; ++used, ++written) {
        const MidiEvent& p = pending_[static_cast<std::size_t>(used)];
        if (p.sample_time >= block_end) break;
        // Late events (never expected: the generator's lead is 100 ms) go out at the block's start.
        const int offset = p.sample_time > block_start_ ? static_cast<int>(p.sample_time - block_start_) : 0;
        midi.addEvent(p.bytes, p.size, offset);
        if ((p.bytes[0] & 0xF0) == kMidiNoteOn)
            channels_with_notes_ |= static_cast<std::uint16_t>(1u << (p.bytes[0] & 0x0F));
    }
    std::copy(pending_.begin() + used, pending_.begin() + pending_count_, pending_.begin());
    pending_count_ -= used;
}

juce::AudioProcessorEditor* IdawProcessor::createEditor() { return new IdawEditor(*this); }

void IdawProcessor::getStateInformation(juce::MemoryBlock& dest) {
    juce::ValueTree state = parameters_.copyState();
    state.setProperty(kModelFolderProperty, model_folder_.folder(), nullptr);
    state.setProperty(kSidecarEndpointProperty, endpoint_setting_, nullptr);
    state.setProperty(kSidecarKeysProperty, key_dir_setting_, nullptr);
    if (const auto xml = state.createXml()) copyXmlToBinary(*xml, dest);
}

void IdawProcessor::setStateInformation(const void* data, int size) {
    const auto xml = getXmlFromBinary(data, size);
    if (xml == nullptr || !xml->hasTagName(parameters_.state.getType())) return;
    juce::ValueTree state = juce::ValueTree::fromXml(*xml);
    const juce::String folder = state.getProperty(kModelFolderProperty).toString();
    const juce::String endpoint = state.getProperty(kSidecarEndpointProperty).toString().trim();
    const juce::String key_dir = state.getProperty(kSidecarKeysProperty).toString().trim();
    for (const char* property : {kModelFolderProperty, kSidecarEndpointProperty, kSidecarKeysProperty})
        state.removeProperty(property, nullptr);
    parameters_.replaceState(state);
    push_restored_values(parameters_);  // switches and choices a host left between steps, too
    if (folder != model_folder_.folder()) set_model_folder(folder);
    if (endpoint != endpoint_setting_ || key_dir != key_dir_setting_) set_sidecar_endpoint(endpoint, key_dir);
}

void IdawProcessor::set_model_folder(const juce::String& path) { model_folder_.set_folder(path); }

void IdawProcessor::start_sidecar_link() {
    // IDAW_SIDECAR=0 turns the link off (the plugin then never opens a socket).
    const char* flag = std::getenv("IDAW_SIDECAR");
    if (flag != nullptr && std::strcmp(flag, "0") == 0) return;
    if (!link_) {
        link_ = std::make_unique<sidecar::Link>(
            *engine_, sidecar_endpoint().toStdString(), sidecar_key_dir().toStdString(), kSidecarName,
            [](void* self) { static_cast<IdawProcessor*>(self)->triggerAsyncUpdate(); }, this);
        link_->watch_intensity(reader_.intensity_value());
        link_->watch_follow(reader_.follow_value());
    }
    sidecar::EqValues eq;
    std::copy(current_.values.begin() + kEqFirstParam, current_.values.begin() + kEqFirstParam + kNumEqParams,
              eq.begin());
    link_->held().write(applied_sidecar_, eq);  // the audio thread is not running: this thread may write
    link_->start();
}

juce::String IdawProcessor::sidecar_endpoint() const {
    if (endpoint_setting_.isNotEmpty()) return endpoint_setting_;
    const char* endpoint = std::getenv("IDAW_SIDECAR_ENDPOINT");
    if (endpoint != nullptr && *endpoint != '\0') return juce::String::fromUTF8(endpoint);
    return juce::String(sidecar::Schema::builtin().default_endpoint());
}

juce::String IdawProcessor::sidecar_key_dir() const {
    return key_dir_setting_.isNotEmpty() ? key_dir_setting_ : juce::String(sidecar::default_key_dir());
}

void IdawProcessor::set_sidecar_endpoint(const juce::String& endpoint, const juce::String& key_dir) {
    endpoint_setting_ = endpoint.trim();
    key_dir_setting_ = key_dir.trim();
    // The link thread owns the socket: stopping it and starting it again is the only safe way to move it.
    if (link_) link_->reconnect(sidecar_endpoint().toStdString(), sidecar_key_dir().toStdString());
}

void IdawProcessor::handleAsyncUpdate() {
    if (!link_) return;
    const sidecar::LinkStatus status = link_->status();
    if (status.moods_read > applied_moods_) {
        applied_moods_ = status.moods_read;
        const std::pair<const char*, float> moods[] = {{kValenceId, status.mood_valence},
                                                       {kArousalId, status.mood_arousal}};
        for (const auto& [id, value] : moods) {
            auto* param = parameters_.getParameter(id);
            param->beginChangeGesture();
            param->setValueNotifyingHost(param->convertTo0to1(value));
            param->endChangeGesture();
        }
    }
    std::uint64_t snapshot = 0;
    sidecar::EqValues eq;
    for (int tries = 0; tries < 1000 && !link_->mailbox().read(snapshot, eq); ++tries) std::this_thread::yield();
    if (snapshot == 0) return;
    for (std::size_t k = 0; k < kNumEqParams; ++k) {
        auto* param = parameters_.getParameter(core_parameter_id(kEqFirstParam + k));
        const float normalised = param->convertTo0to1(eq[k]);
        if (param->getValue() == normalised) continue;
        param->beginChangeGesture();
        param->setValueNotifyingHost(normalised);
        param->endChangeGesture();
    }
}

juce::String IdawProcessor::sidecar_status() const {
    if (!link_) return engine_ ? "sidecar: off (IDAW_SIDECAR=0)" : "sidecar: starts with the audio";
    const sidecar::LinkStatus s = link_->status();
    if (!s.last_error.empty() && !s.running) return "sidecar: " + juce::String(s.last_error);
    juce::String text = s.connected ? "sidecar: connected (" + juce::String(s.handler) + ")"
                                    : "sidecar: looking for " + juce::String(s.endpoint);
    if (s.snapshot != 0) text << ", snapshot " << juce::String(static_cast<juce::int64>(s.snapshot));
    std::uint64_t rejected = 0;
    for (const auto& [reason, n] : s.rejected) rejected += n;
    if (rejected != 0) text << ", " << juce::String(static_cast<juce::int64>(rejected)) << " rejected";
    return text;
}

bool IdawProcessor::sidecar_connected() const { return link_ && link_->status().connected; }

bool IdawProcessor::sidecar_failed() const {
    if (!link_) return false;
    const sidecar::LinkStatus s = link_->status();
    return !s.running && !s.last_error.empty();
}

juce::String IdawProcessor::follow_status() const {
    if (!reader_.read_midi().follow) return "follow: off";
    if (!link_) return "follow: needs the sidecar link (IDAW_SIDECAR=0)";
    const sidecar::LinkStatus s = link_->status();
    if (!s.connected) return "follow: waiting for the sidecar";
    if (!s.following)
        return s.follow_refused.empty() ? juce::String("follow: asking the sidecar")
                                        : "follow: refused (" + juce::String(s.follow_refused) + ")";
    // The audio thread's last push followed no heard beat yet (since the switch went on).
    if (pushed_heard_.load(std::memory_order_relaxed) == 0) return "follow: listening, no beat heard yet";
    const int scale = pushed_scale_.load(std::memory_order_relaxed);
    juce::String text = "follow: " + juce::String(pushed_tempo_.load(std::memory_order_relaxed), 1) + " BPM, " +
                        tonic_name(pushed_key_tonic_.load(std::memory_order_relaxed)) + " " +
                        juce::String(music::kScales[static_cast<std::size_t>(scale)].name.data(),
                                     music::kScales[static_cast<std::size_t>(scale)].name.size());
    if (!s.heard_emotion.empty()) text << " (" << juce::String(s.heard_emotion) << ")";
    if (Engine* engine = engine_ptr_.load(std::memory_order_acquire))
        text << ", " << juce::String(static_cast<juce::int64>(engine->midi_generator().counters().phase_locks))
             << " beat locks";
    return text;
}

juce::var IdawProcessor::follow_report() const {
    auto report = std::make_unique<juce::DynamicObject>();
    report->setProperty("on", reader_.read_midi().follow);
    if (link_) {
        const sidecar::LinkStatus s = link_->status();
        const auto received = s.received.find("heard");
        report->setProperty("following", s.following);
        report->setProperty("follow_sent", static_cast<juce::int64>(s.follow_sent));
        report->setProperty("follow_refusals", static_cast<juce::int64>(s.follow_refusals));
        report->setProperty("follow_refused", juce::String(s.follow_refused));
        report->setProperty("heard", static_cast<juce::int64>(received == s.received.end() ? 0 : received->second));
        report->setProperty("heard_used", static_cast<juce::int64>(s.heard_used));
        report->setProperty("heard_tempo_bpm", s.heard_tempo_bpm);
        report->setProperty("heard_key_tonic", s.heard_key_tonic);
        report->setProperty("heard_key_minor", s.heard_key_minor);
        report->setProperty("heard_emotion", juce::String(s.heard_emotion));
        auto rejected = std::make_unique<juce::DynamicObject>();
        for (const auto& [reason, n] : s.rejected)
            rejected->setProperty(juce::String(reason), static_cast<juce::int64>(n));
        report->setProperty("rejected", juce::var(rejected.release()));
        report->setProperty("welcomes", static_cast<juce::int64>(s.welcomes));
    }
    report->setProperty("pushed_heard", static_cast<juce::int64>(pushed_heard_.load(std::memory_order_relaxed)));
    report->setProperty("tempo_bpm", pushed_tempo_.load(std::memory_order_relaxed));
    report->setProperty("key_tonic", pushed_key_tonic_.load(std::memory_order_relaxed));
    report->setProperty("scale", pushed_scale_.load(std::memory_order_relaxed));
    if (Engine* engine = engine_ptr_.load(std::memory_order_acquire)) {
        const MidiGeneratorCounters c = engine->midi_generator().counters();
        report->setProperty("phase_locks", static_cast<juce::int64>(c.phase_locks));
        report->setProperty("key_changes", static_cast<juce::int64>(c.key_changes));
        report->setProperty("controls_applied", static_cast<juce::int64>(c.controls_applied));
        report->setProperty("note_ons", static_cast<juce::int64>(c.note_ons));
    }
    return juce::var(report.release());
}

juce::String IdawProcessor::describe_status() const {
    return link_ ? juce::String(link_->status().describe_result) : juce::String();
}

juce::String IdawProcessor::mood_status() const {
    return link_ ? juce::String(link_->status().mood_result) : juce::String();
}

bool IdawProcessor::send_mood(const juce::String& text, juce::String& message) {
    if (!link_) {
        message = "not sent: the sidecar link is off";
        return false;
    }
    juce::String mood = text.trim();
    while (static_cast<std::size_t>(mood.getNumBytesAsUTF8()) > sidecar::Link::kMaxMoodBytes)
        mood = mood.dropLastCharacters(1);  // whole characters
    if (mood.isEmpty()) {
        message = "nothing to send";
        return false;
    }
    link_->mood(mood.toStdString());
    message = "sending...";
    return true;
}

bool IdawProcessor::send_description(const juce::String& text, juce::String& message) {
    if (!link_) {
        message = "not sent: the sidecar link is off";
        return false;
    }
    juce::StringArray tokens = juce::StringArray::fromTokens(text, " ,;\t\n", "");
    tokens.removeEmptyStrings();
    std::vector<std::string> words;
    for (juce::String token : tokens) {
        while (token.getNumBytesAsUTF8() > 64) token = token.dropLastCharacters(1);  // whole characters, <= 64 bytes
        if (token.isNotEmpty() && words.size() < 16) words.push_back(token.toStdString());
    }
    if (words.empty()) {
        message = "nothing to send";
        return false;
    }
    link_->describe(words, static_cast<double>(reader_.intensity()));
    message = "sending...";
    return true;
}

}  // namespace idaw::plugin

/// JUCE's entry point: every plugin format creates the processor through this.
juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new idaw::plugin::IdawProcessor(); }
