#include "plugin_editor.h"

#include <cstdlib>
#include <functional>

#include "plugin_parameters.h"
#include "plugin_processor.h"

namespace idaw::plugin {
namespace {

constexpr int kKnobWidth = 92;
constexpr int kKnobHeight = 104;
constexpr int kMargin = 10;
constexpr int kRowHeight = 26;
constexpr int kGroupTitle = 18;
constexpr int kGroupHeight = 3 * kKnobHeight + kGroupTitle + 12;
constexpr int kHeaderHeight = 36;
constexpr int kTimerHz = 10;
/// Timer ticks the editor waits, once showing, before a requested snapshot (the first paints have settled).
constexpr int kSnapshotTicks = 5;

const juce::Colour kBackground{0xff1e2126};
const juce::Colour kText{0xffe6e6e6};
const juce::Colour kDim{0xff9aa3ad};
const juce::Colour kAccent{0xff4fb3bf};
const juce::Colour kError{0xffe06c5a};

/// A label in the editor's style.
void style_label(juce::Label& label, const juce::String& text, float size, juce::Colour colour) {
    label.setText(text, juce::dontSendNotification);
    label.setFont(juce::Font(size));
    label.setColour(juce::Label::textColourId, colour);
    label.setJustificationType(juce::Justification::centredLeft);
}

/// A row where words are typed and sent: its caption, the text box with a hint shown while it is empty, and the
/// button that sends (Return in the box sends too); all made visible in `editor`.
void set_up_text_row(juce::Component& editor, juce::Label& caption, const juce::String& name, juce::TextEditor& box,
                     const juce::String& hint, juce::Button& button, const std::function<void()>& send) {
    style_label(caption, name, 13.0f, kDim);
    box.setTextToShowWhenEmpty(hint, kDim);
    box.setFont(juce::Font(14.0f));
    box.onReturnKey = send;
    button.onClick = send;
    for (auto* c : std::initializer_list<juce::Component*>{&caption, &box, &button}) editor.addAndMakeVisible(c);
}

/// Lays a text row out across `row`: the caption at the left, the button at the right, the box between them.
void lay_out_text_row(juce::Rectangle<int> row, juce::Label& caption, juce::TextEditor& box, juce::Button& button) {
    caption.setBounds(row.removeFromLeft(100));
    button.setBounds(row.removeFromRight(100));
    row.removeFromRight(6);
    box.setBounds(row);
}

}  // namespace

ParameterKnob::ParameterKnob(juce::AudioProcessorValueTreeState& state, const juce::String& id)
    : slider_(juce::Slider::RotaryHorizontalVerticalDrag, juce::Slider::TextBoxBelow), attachment_(state, id, slider_) {
    const juce::String label = state.getParameter(id)->getName(64);
    style_label(label_, label, 13.0f, kText);
    label_.setJustificationType(juce::Justification::centred);
    slider_.setTextBoxStyle(juce::Slider::TextBoxBelow, false, kKnobWidth - 8, 18);
    slider_.setColour(juce::Slider::rotarySliderFillColourId, kAccent);
    slider_.setColour(juce::Slider::textBoxTextColourId, kText);
    slider_.setColour(juce::Slider::textBoxOutlineColourId, juce::Colours::transparentBlack);
    slider_.setTitle(label);
    addAndMakeVisible(label_);
    addAndMakeVisible(slider_);
}

void ParameterKnob::resized() {
    auto area = getLocalBounds();
    label_.setBounds(area.removeFromTop(18));
    slider_.setBounds(area);
}

IdawEditor::IdawEditor(IdawProcessor& owner)
    : juce::AudioProcessorEditor(owner),
      processor_(owner),
      midi_attachment_(owner.parameters(), kMidiEnabledId, midi_toggle_),
      follow_attachment_(owner.parameters(), kMidiFollowId, follow_toggle_) {
    style_label(title_, "idaw", 22.0f, kText);
    style_label(sidecar_status_, {}, 13.0f, kDim);
    sidecar_status_.setJustificationType(juce::Justification::centredRight);
    addAndMakeVisible(title_);
    addAndMakeVisible(sidecar_status_);

    add_group("Input", {"input_gain"}, 1);
    add_group("Drive", {"drive", "crunch"}, 1);
    // EQ: one column per band in series order, rows gain / frequency / Q (the shelves have no Q).
    add_group("EQ",
              {"low_gain", "mid1_gain", "mid2_gain", "mid3_gain", "high_gain", "low_freq", "mid1_freq", "mid2_freq",
               "mid3_freq", "high_freq", "", "mid1_q", "mid2_q", "mid3_q", ""},
              5);
    // The compressor after the EQ, as in the chain: threshold and ratio, knee and makeup, attack and release.
    add_group("Compressor", {"comp_threshold", "comp_ratio", "comp_knee", "comp_makeup", "comp_attack", "comp_release"},
              2);
    add_group("Output", {"mix", "output_gain"}, 1);
    // MIDI: the switch sits in the first cell, then channel and tracks, key, scale and the follow switch, and the
    // emotion (valence, arousal).
    midi_group_ = groups_.size();
    add_group("MIDI", {"", kMidiChannelId, kMidiTracksId, kMidiKeyId, kMidiScaleId, "", kValenceId, kArousalId}, 3);
    add_group("Sidecar", {kIntensityId}, 1);
    midi_toggle_.setColour(juce::ToggleButton::textColourId, kText);
    midi_toggle_.setColour(juce::ToggleButton::tickColourId, kAccent);
    addAndMakeVisible(midi_toggle_);
    follow_toggle_.setColour(juce::ToggleButton::textColourId, kText);
    follow_toggle_.setColour(juce::ToggleButton::tickColourId, kAccent);
    follow_toggle_.setTooltip("Tempo, beat, key and mood from what the sidecar hears in the input");
    addAndMakeVisible(follow_toggle_);

    style_label(model_caption_, "Model folder", 13.0f, kDim);
    style_label(model_path_, processor_.model_folder().folder(), 13.0f, kText);
    style_label(model_status_, {}, 13.0f, kDim);
    model_path_.setColour(juce::Label::outlineColourId, kDim.withAlpha(0.4f));
    choose_button_.onClick = [this] { choose_model_folder(); };
    built_in_button_.onClick = [this] {
        processor_.set_model_folder({});
        update_status();
    };
    for (auto* c : std::initializer_list<juce::Component*>{&model_caption_, &model_path_, &choose_button_,
                                                           &built_in_button_, &model_status_})
        addAndMakeVisible(c);

    set_up_text_row(*this, describe_caption_, "Describe", describe_box_, "e.g. warm, a bit brighter", send_button_,
                    [this] { send_description(); });
    set_up_text_row(*this, mood_caption_, "Mood", mood_box_, "e.g. melancholic but hopeful (sets valence and arousal)",
                    mood_button_, [this] { send_mood(); });
    for (auto* status : {&describe_status_, &mood_status_, &cpu_status_, &follow_status_}) {
        style_label(*status, {}, 13.0f, kDim);
        addAndMakeVisible(status);
    }

    style_label(endpoint_caption_, "Sidecar at", 13.0f, kDim);
    endpoint_box_.setText(processor_.sidecar_endpoint(), juce::dontSendNotification);
    endpoint_box_.setTextToShowWhenEmpty("tcp://127.0.0.1:47800", kDim);
    keys_box_.setText(processor_.sidecar_key_dir(), juce::dontSendNotification);
    keys_box_.setTextToShowWhenEmpty("CURVE key folder (needed beyond loopback)", kDim);
    for (auto* box : {&endpoint_box_, &keys_box_}) {
        box->setFont(juce::Font(14.0f));
        box->onReturnKey = [this] { connect_sidecar(); };
    }
    connect_button_.onClick = [this] { connect_sidecar(); };
    for (auto* c :
         std::initializer_list<juce::Component*>{&endpoint_caption_, &endpoint_box_, &keys_box_, &connect_button_})
        addAndMakeVisible(c);

    int width = 2 * kMargin;
    for (const auto& group : groups_) width += group.columns * kKnobWidth + 2 * kMargin;
    setSize(width, 2 * kMargin + kHeaderHeight + kGroupHeight + 2 * kMargin + 7 * kRowHeight + 34);
    update_status();
    startTimerHz(kTimerHz);
}

IdawEditor::~IdawEditor() { stopTimer(); }

void IdawEditor::add_group(const juce::String& title, const juce::StringArray& ids, int columns) {
    Group group;
    group.columns = columns;
    group.frame = std::make_unique<juce::GroupComponent>(title, title);
    group.frame->setColour(juce::GroupComponent::outlineColourId, kDim.withAlpha(0.5f));
    group.frame->setColour(juce::GroupComponent::textColourId, kText);
    addAndMakeVisible(*group.frame);
    for (const auto& id : ids) {
        if (id.isEmpty()) {
            group.knobs.push_back(nullptr);
            continue;
        }
        auto knob = std::make_unique<ParameterKnob>(processor_.parameters(), id);
        addAndMakeVisible(*knob);
        group.knobs.push_back(std::move(knob));
    }
    groups_.push_back(std::move(group));
}

void IdawEditor::paint(juce::Graphics& g) {
    g.fillAll(kBackground);
    g.setColour(kDim.withAlpha(0.3f));
    g.drawHorizontalLine(kMargin + kHeaderHeight + kGroupHeight + kMargin, static_cast<float>(kMargin),
                         static_cast<float>(getWidth() - kMargin));
}

void IdawEditor::layout_group(Group& group, juce::Rectangle<int> area) {
    group.frame->setBounds(area);
    auto inner = area.reduced(kMargin / 2).withTrimmedTop(kGroupTitle);
    for (std::size_t i = 0; i < group.knobs.size(); ++i) {
        if (!group.knobs[i]) continue;
        const int column = static_cast<int>(i) % group.columns;
        const int row = static_cast<int>(i) / group.columns;
        group.knobs[i]->setBounds(inner.getX() + column * kKnobWidth, inner.getY() + row * kKnobHeight, kKnobWidth,
                                  kKnobHeight);
    }
}

void IdawEditor::resized() {
    auto area = getLocalBounds().reduced(kMargin);
    auto header = area.removeFromTop(kHeaderHeight);
    title_.setBounds(header.removeFromLeft(200));
    sidecar_status_.setBounds(header);

    auto controls = area.removeFromTop(kGroupHeight);
    for (auto& group : groups_) {
        const int width = group.columns * kKnobWidth + kMargin;
        layout_group(group, controls.removeFromLeft(width));
        controls.removeFromLeft(kMargin);
    }
    const auto midi_frame = groups_[midi_group_].frame->getBounds();
    midi_toggle_.setBounds(midi_frame.getX() + kMargin, midi_frame.getY() + kGroupTitle + kKnobHeight / 3,
                           kKnobWidth - kMargin, 28);
    // The follow switch in the MIDI group's free cell (third column, second row), level with the MIDI switch.
    follow_toggle_.setBounds(midi_frame.getX() + kMargin + 2 * kKnobWidth,
                             midi_frame.getY() + kGroupTitle + kKnobHeight + kKnobHeight / 3, kKnobWidth - kMargin, 28);

    area.removeFromTop(2 * kMargin);
    auto model_row = area.removeFromTop(kRowHeight);
    model_caption_.setBounds(model_row.removeFromLeft(100));
    built_in_button_.setBounds(model_row.removeFromRight(80));
    model_row.removeFromRight(kMargin / 2);
    choose_button_.setBounds(model_row.removeFromRight(100));
    model_row.removeFromRight(6);
    model_path_.setBounds(model_row);
    area.removeFromTop(4);
    model_status_.setBounds(area.removeFromTop(kRowHeight).withTrimmedLeft(100));
    area.removeFromTop(6);
    lay_out_text_row(area.removeFromTop(kRowHeight), describe_caption_, describe_box_, send_button_);
    area.removeFromTop(6);
    lay_out_text_row(area.removeFromTop(kRowHeight), mood_caption_, mood_box_, mood_button_);
    area.removeFromTop(6);
    auto endpoint_row = area.removeFromTop(kRowHeight);
    endpoint_caption_.setBounds(endpoint_row.removeFromLeft(100));
    connect_button_.setBounds(endpoint_row.removeFromRight(100));
    endpoint_row.removeFromRight(6);
    endpoint_box_.setBounds(endpoint_row.removeFromLeft(endpoint_row.getWidth() / 2 - 3));
    endpoint_row.removeFromLeft(6);
    keys_box_.setBounds(endpoint_row);
    area.removeFromTop(4);
    auto last_row = area.removeFromTop(kRowHeight);
    cpu_status_.setBounds(last_row.removeFromRight(last_row.getWidth() / 2));
    describe_status_.setBounds(last_row.withTrimmedLeft(100));
    auto status_row = area.removeFromTop(kRowHeight);
    mood_status_.setBounds(status_row.removeFromRight(status_row.getWidth() / 2));
    follow_status_.setBounds(status_row.withTrimmedLeft(100));
}

void IdawEditor::choose_model_folder() {
    chooser_ = std::make_unique<juce::FileChooser>("Model folder (RTNeural .json files)",
                                                   juce::File(processor_.model_folder().folder()));
    chooser_->launchAsync(juce::FileBrowserComponent::openMode | juce::FileBrowserComponent::canSelectDirectories,
                          [this](const juce::FileChooser& chooser) {
                              const juce::File folder = chooser.getResult();
                              if (folder == juce::File()) return;
                              processor_.set_model_folder(folder.getFullPathName());
                              update_status();
                          });
}

void IdawEditor::send_description() {
    const juce::String words = describe_box_.getText().trim();
    if (words.isEmpty()) return;
    juce::String message;
    processor_.send_description(words, message);
    describe_status_.setText(message, juce::dontSendNotification);
}

void IdawEditor::send_mood() {
    juce::String message;
    processor_.send_mood(mood_box_.getText(), message);
    mood_status_.setText("mood: " + message, juce::dontSendNotification);
}

void IdawEditor::connect_sidecar() {
    // An empty box means the default, so a project saved without a choice follows $IDAW_SIDECAR_ENDPOINT.
    processor_.set_sidecar_endpoint(endpoint_box_.getText().trim(), keys_box_.getText().trim());
    update_status();
}

void IdawEditor::update_status() {
    const ModelFolderStatus status = processor_.model_folder().status();
    const juce::String folder = processor_.model_folder().folder();
    model_path_.setText(folder.isEmpty() ? juce::String("(none chosen: the built-in nets)") : folder,
                        juce::dontSendNotification);
    model_status_.setText(status.text, juce::dontSendNotification);
    model_status_.setColour(juce::Label::textColourId, status.kind == ModelFolderStatus::Kind::Error ? kError : kDim);
    sidecar_status_.setText(processor_.sidecar_status(), juce::dontSendNotification);
    sidecar_status_.setColour(juce::Label::textColourId, processor_.sidecar_failed() ? kError : kDim);
    follow_status_.setText(processor_.follow_status(), juce::dontSendNotification);
    const juce::String described = processor_.describe_status();
    if (described.isNotEmpty()) describe_status_.setText(described, juce::dontSendNotification);
    const juce::String mood = processor_.mood_status();
    if (mood.isNotEmpty()) mood_status_.setText("mood: " + mood, juce::dontSendNotification);

    Engine* engine = processor_.engine();
    if (engine == nullptr) {
        cpu_status_.setText("audio thread: not running", juce::dontSendNotification);
        return;
    }
    const TimingHistogram::Snapshot now = engine->timing().snapshot();
    const std::uint64_t frames = engine->counters().frames;
    const std::uint64_t new_frames = frames >= last_frames_ ? frames - last_frames_ : frames;
    const CpuLoad load = cpu_load_between(last_timing_, now, new_frames, engine->sample_rate());
    last_timing_ = now;
    last_frames_ = frames;
    if (load.blocks == 0) {
        cpu_status_.setText("audio thread: idle", juce::dontSendNotification);
        return;
    }
    juce::String text = juce::String::formatted("audio thread: %.2f %% load, p99 %.0f us, max %.0f us",
                                                100.0 * load.load, load.p99_us, load.max_us);
    // The compressor's meter: its gain reduction now, while it is on (ratio above 1).
    const double reduction = engine->counters().compressor_reduction_db;
    const std::atomic<float>* ratio = processor_.parameters().getRawParameterValue("comp_ratio");
    if ((ratio != nullptr && ratio->load(std::memory_order_relaxed) > 1.0f) || reduction > 0.0)
        text << juce::String::formatted("; compressor -%.1f dB", reduction);
    cpu_status_.setText(text, juce::dontSendNotification);
}

void IdawEditor::timerCallback() {
    update_status();
    connect_if_asked();
    describe_if_asked();
    mood_if_asked();
    write_snapshot_if_asked();
    write_status_if_asked();
}

void IdawEditor::type_if_asked(const char* variable, bool& done, juce::TextEditor& box, juce::Button& button) {
    const char* words = std::getenv(variable);
    if (done || words == nullptr || *words == '\0' || !isShowing() || !processor_.sidecar_connected()) return;
    done = true;
    box.setText(juce::String::fromUTF8(words), juce::dontSendNotification);
    button.triggerClick();
}

void IdawEditor::describe_if_asked() {
    type_if_asked("IDAW_EDITOR_DESCRIBE", describe_sent_, describe_box_, send_button_);
}

void IdawEditor::mood_if_asked() { type_if_asked("IDAW_EDITOR_MOOD", mood_sent_, mood_box_, mood_button_); }

void IdawEditor::connect_if_asked() {
    // Test support: IDAW_EDITOR_ENDPOINT (and IDAW_EDITOR_KEYS) are typed into the boxes and Connect is pressed,
    // once the editor is on screen, while the audio runs.
    const char* endpoint = std::getenv("IDAW_EDITOR_ENDPOINT");
    if (connect_done_ || endpoint == nullptr || *endpoint == '\0' || !isShowing()) return;
    connect_done_ = true;
    const char* keys = std::getenv("IDAW_EDITOR_KEYS");
    endpoint_box_.setText(juce::String::fromUTF8(endpoint), juce::dontSendNotification);
    keys_box_.setText(keys != nullptr ? juce::String::fromUTF8(keys) : juce::String(), juce::dontSendNotification);
    connect_button_.triggerClick();
}

void IdawEditor::write_snapshot_if_asked() {
    // Test support: IDAW_EDITOR_SNAPSHOT=path.png makes the editor save a picture of itself, and path.png.json the
    // texts of its status lines, once it has been on screen for a moment (and, with IDAW_EDITOR_DESCRIBE, the
    // sidecar has answered), or after 5 s in any case.
    if (snapshot_written_) return;
    const char* target = std::getenv("IDAW_EDITOR_SNAPSHOT");
    if (target == nullptr || *target == '\0') return;
    ++ticks_;
    const char* words = std::getenv("IDAW_EDITOR_DESCRIBE");
    const juce::String described = describe_status_.getText();
    const char* mood = std::getenv("IDAW_EDITOR_MOOD");
    const juce::String mood_text = mood_status_.getText();
    const bool answered = (words == nullptr || *words == '\0' ||
                           (describe_sent_ && !described.startsWith("sen") && described.isNotEmpty())) &&
                          (mood == nullptr || *mood == '\0' ||
                           (mood_sent_ && !mood_text.startsWith("mood: sen") && mood_text.isNotEmpty()));
    if (!(isShowing() && ticks_ >= kSnapshotTicks && answered) && ticks_ < 5 * kTimerHz) return;
    snapshot_written_ = true;
    const juce::File png(juce::String::fromUTF8(target));
    const juce::Image image = createComponentSnapshot(getLocalBounds(), true, 1.0f);
    png.deleteFile();
    if (auto stream = png.createOutputStream()) {
        juce::PNGImageFormat format;
        format.writeImageToStream(image, *stream);
    }
    auto info = std::make_unique<juce::DynamicObject>();
    info->setProperty("showing", isShowing());
    info->setProperty("width", image.getWidth());
    info->setProperty("height", image.getHeight());
    info->setProperty("model_status", model_status_.getText());
    info->setProperty("model_folder", model_path_.getText());
    info->setProperty("sidecar_status", sidecar_status_.getText());
    info->setProperty("cpu_status", cpu_status_.getText());
    info->setProperty("describe_status", describe_status_.getText());
    info->setProperty("mood_status", mood_status_.getText());
    info->setProperty("valence", processor_.parameters().getRawParameterValue(kValenceId)->load());
    info->setProperty("arousal", processor_.parameters().getRawParameterValue(kArousalId)->load());
    info->setProperty("sidecar_endpoint", endpoint_box_.getText());
    info->setProperty("sidecar_keys", keys_box_.getText());
    info->setProperty("sidecar_endpoint_used", processor_.sidecar_endpoint());
    info->setProperty("follow_status", follow_status_.getText());
    juce::File(png.getFullPathName() + ".json").replaceWithText(juce::JSON::toString(juce::var(info.release())));
}

juce::var IdawEditor::status_texts() {
    auto info = std::make_unique<juce::DynamicObject>();
    info->setProperty("sidecar_status", sidecar_status_.getText());
    info->setProperty("follow_status", follow_status_.getText());
    info->setProperty("describe_status", describe_status_.getText());
    info->setProperty("mood_status", mood_status_.getText());
    info->setProperty("cpu_status", cpu_status_.getText());
    info->setProperty("follow", processor_.follow_report());
    return juce::var(info.release());
}

void IdawEditor::write_status_if_asked() {
    // Test support: IDAW_EDITOR_STATUS=path.json makes the editor write its status lines and the follow report there
    // at every tick (10 Hz), so a host running the plugin live can report what the editor shows while it changes.
    // The file is replaced whole (written beside it, then renamed): a reader never sees half of it.
    const char* target = std::getenv("IDAW_EDITOR_STATUS");
    if (target == nullptr || *target == '\0') return;
    juce::File(juce::String::fromUTF8(target)).replaceWithText(juce::JSON::toString(status_texts(), true));
}

}  // namespace idaw::plugin
