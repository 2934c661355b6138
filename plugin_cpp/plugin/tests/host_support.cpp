#include "host_support.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdlib>

namespace idaw::plugin_host {

void fail(const juce::String& message) { throw HostError{message}; }

/// The parameter's name as the core spells it: "Mid1 Q" -> "mid1_q" (what pedalboard does too).
juce::String python_name(const juce::AudioProcessorParameter& p) {
    return p.getName(100).toLowerCase().trim().replaceCharacter(' ', '_');
}

juce::AudioProcessorParameter* find_parameter(juce::AudioPluginInstance& plugin, const juce::String& name) {
    for (auto* p : plugin.getParameters())
        if (python_name(*p) == name) return p;
    fail("the plugin has no parameter " + name);
}

/// Loads the plugin at `path` (a .vst3 bundle) as a DAW would.
std::unique_ptr<juce::AudioPluginInstance> load_plugin(juce::AudioPluginFormatManager& formats,
                                                       const juce::String& path, double rate, int block) {
    juce::OwnedArray<juce::PluginDescription> types;
    juce::VST3PluginFormat vst3;
    vst3.findAllTypesForFile(types, path);
    if (types.isEmpty()) fail("no VST3 plugin found in " + path);
    juce::String error;
    auto instance = formats.createPluginInstance(*types[0], rate, block, error);
    if (instance == nullptr) fail("cannot load " + path + ": " + error);
    return instance;
}

/// Mono or stereo in and out.
void set_channels(juce::AudioPluginInstance& plugin, int channels) {
    juce::AudioProcessor::BusesLayout layout;
    const auto set = juce::AudioChannelSet::canonicalChannelSet(channels);
    layout.inputBuses.add(set);
    layout.outputBuses.add(set);
    if (!plugin.setBusesLayout(layout)) fail("the plugin refuses " + juce::String(channels) + " channels");
}

juce::Array<juce::AudioProcessorParameter*> non_bypass_automatable(juce::AudioPluginInstance& plugin) {
    juce::Array<juce::AudioProcessorParameter*> out;
    for (auto* p : plugin.getParameters())
        if (p->isAutomatable() && p != plugin.getBypassParameter() && python_name(*p) != "bypass") out.add(p);
    return out;
}

namespace {
/// Steps of a discrete parameter minus one (its normalised values are k / last), or 0 for a continuous one.
int last_step(const juce::AudioProcessorParameter& p) {
    return p.isDiscrete() && p.getNumSteps() > 1 ? p.getNumSteps() - 1 : 0;
}
}  // namespace

bool is_stepped(const juce::AudioProcessorParameter& p) { return last_step(p) != 0; }

float nearest_step(const juce::AudioProcessorParameter& p, float value) {
    const int last = last_step(p);
    if (last == 0) return value;
    const float v = juce::jlimit(0.0f, 1.0f, value);
    return static_cast<float>(std::floor(static_cast<double>(v) * last + 0.5)) / static_cast<float>(last);
}

float random_in_between(const juce::AudioProcessorParameter& p, juce::Random& rng) {
    const int last = last_step(p);
    for (;;) {
        const float v = rng.nextFloat();
        if (last == 0) return v;
        // Where v falls inside its step (0 and 1: on a step, 0.5: where rounding turns); away from both, the
        // expected step does not depend on how the plugin rounds a tie.
        const double within = static_cast<double>(v) * last - std::floor(static_cast<double>(v) * last);
        if (std::abs(within) > 0.01 && std::abs(within - 0.5) > 0.01 && std::abs(within - 1.0) > 0.01) return v;
    }
}

// ---- The plugin's own state inside the host's VST3 state ------------------------------------------------------
// JUCE's VST3 host saves <VST3PluginState><IComponent>base64</IComponent>...; the component's data is the plugin's
// getStateInformation() (XML in JUCE's binary wrapper) followed by JUCE's private trailer, which the binary
// wrapper's size field lets us ignore.

std::unique_ptr<juce::XmlElement> host_state_xml(juce::AudioPluginInstance& plugin) {
    juce::MemoryBlock block;
    plugin.getStateInformation(block);
    auto head = juce::AudioProcessor::getXmlFromBinary(block.getData(), static_cast<int>(block.getSize()));
    if (head == nullptr || head->getChildByName("IComponent") == nullptr) fail("unexpected host state format");
    return head;
}

std::unique_ptr<juce::XmlElement> plugin_state_xml(juce::AudioPluginInstance& plugin) {
    const auto head = host_state_xml(plugin);
    juce::MemoryBlock data;
    data.fromBase64Encoding(head->getChildByName("IComponent")->getAllSubText().trim());
    auto xml = juce::AudioProcessor::getXmlFromBinary(data.getData(), static_cast<int>(data.getSize()));
    if (xml == nullptr) fail("the plugin's state is not XML");
    return xml;
}

void set_plugin_state_xml(juce::AudioPluginInstance& plugin, const juce::XmlElement& xml) {
    auto head = host_state_xml(plugin);
    juce::MemoryBlock data;
    juce::AudioProcessor::copyXmlToBinary(xml, data);
    auto* component = head->getChildByName("IComponent");
    component->deleteAllTextElements();
    component->addTextElement(data.toBase64Encoding());
    juce::MemoryBlock block;
    juce::AudioProcessor::copyXmlToBinary(*head, block);
    plugin.setStateInformation(block.getData(), static_cast<int>(block.getSize()));
}

void set_model_folder(juce::AudioPluginInstance& plugin, const juce::String& folder) {
    auto xml = plugin_state_xml(plugin);
    xml->setAttribute("model_folder", folder);
    set_plugin_state_xml(plugin, *xml);
}

/// Plain values of the core parameters as the plugin holds them (from its saved state: exact).
juce::var plugin_values(juce::AudioPluginInstance& plugin) {
    const auto xml = plugin_state_xml(plugin);
    auto values = std::make_unique<juce::DynamicObject>();
    for (auto* param : xml->getChildWithTagNameIterator("PARAM"))
        values->setProperty(param->getStringAttribute("id"), param->getDoubleAttribute("value"));
    return juce::var(values.release());
}

RtCheck find_rtcheck() {
    RtCheck c;
    c.section = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_section"));
    c.violations = reinterpret_cast<unsigned long long (*)()>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_violations"));
    c.reset = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_reset"));
    c.last = reinterpret_cast<const char* (*)()>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_last_violation"));
    if (!c.section || !c.violations || !c.reset || !c.last) fail("--rtcheck: libidaw_rtcheck.so is not in LD_PRELOAD");
    return c;
}

/// Proves the checker counts: one allocation and one free inside a section must give two violations.
unsigned long long rtcheck_control(const RtCheck& c) {
    c.reset();
    c.section(1);
    void* volatile p = std::malloc(64);
    std::free(p);
    c.section(0);
    const unsigned long long seen = c.violations();
    c.reset();
    return seen;
}

juce::var rtcheck_report(const RtCheck& c, unsigned long long control) {
    auto rt = std::make_unique<juce::DynamicObject>();
    rt->setProperty("control_violations", static_cast<juce::int64>(control));
    rt->setProperty("violations", static_cast<juce::int64>(c.violations()));
    rt->setProperty("last_violation", juce::String(c.last()));
    return juce::var(rt.release());
}

void intern_window_manager_atoms() {
    void* x11 = dlopen("libX11.so.6", RTLD_NOW | RTLD_LOCAL);
    if (x11 == nullptr) fail("cannot load libX11.so.6");
    using OpenDisplay = void* (*)(const char*);
    using InternAtom = unsigned long (*)(void*, const char*, int);
    auto open_display = reinterpret_cast<OpenDisplay>(dlsym(x11, "XOpenDisplay"));
    auto intern_atom = reinterpret_cast<InternAtom>(dlsym(x11, "XInternAtom"));
    if (!open_display || !intern_atom) fail("libX11.so.6 lacks XOpenDisplay/XInternAtom");
    void* display = open_display(nullptr);
    if (display == nullptr) fail("cannot open the X display (DISPLAY=" + juce::String(getenv("DISPLAY")) + ")");
    for (const char* name :
         {"WM_PROTOCOLS", "WM_TAKE_FOCUS", "WM_DELETE_WINDOW", "_NET_WM_PING", "WM_CHANGE_STATE", "WM_STATE",
          "_NET_WM_WINDOW_TYPE", "_NET_WM_WINDOW_TYPE_NORMAL", "_NET_WM_STATE", "_NET_WM_STATE_HIDDEN"})
        intern_atom(display, name, 0);
}

}  // namespace idaw::plugin_host
