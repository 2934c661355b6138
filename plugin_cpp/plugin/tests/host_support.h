// Shared parts of idaw_plugin_host (plugin_host.cpp): loading the VST3, the plugin's state inside the host's VST3
// state, the real-time checker's hooks, and the X11 set-up and window the editor commands need.
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_gui_basics/juce_gui_basics.h>

#include <memory>

namespace idaw::plugin_host {

/// A command-line failure: printed as one line, exit code 1.
struct HostError {
    juce::String message;
};

/// Throws HostError(message).
[[noreturn]] void fail(const juce::String& message);

/// The parameter's name as the core spells it: "Mid1 Q" -> "mid1_q" (what pedalboard does too).
juce::String python_name(const juce::AudioProcessorParameter& p);
/// The plugin's parameter called `name` (python_name()), or fail().
juce::AudioProcessorParameter* find_parameter(juce::AudioPluginInstance& plugin, const juce::String& name);
/// Loads the plugin at `path` (a .vst3 bundle) as a DAW would.
std::unique_ptr<juce::AudioPluginInstance> load_plugin(juce::AudioPluginFormatManager& formats,
                                                       const juce::String& path, double rate, int block);
/// Mono or stereo in and out.
void set_channels(juce::AudioPluginInstance& plugin, int channels);

// ---- Parameters as a host sees them (normalised 0..1) ------------------------------------------------------------

/// The parameters a host automates and a validator such as pluginval moves: automatable, not the bypass.
juce::Array<juce::AudioProcessorParameter*> non_bypass_automatable(juce::AudioPluginInstance& plugin);
/// True for a parameter with a few steps (a switch, a choice, an integer), false for a continuous one.
bool is_stepped(const juce::AudioProcessorParameter& p);
/// The value a plugin can hold for host value `value`: the nearest of the parameter's steps for a discrete one
/// (a switch: off below 0.5, on from 0.5), `value` itself for a continuous one.
float nearest_step(const juce::AudioProcessorParameter& p, float value);
/// A random normalised value for `p` that lies between steps (at least 1 % of a step away from a step and from the
/// midpoint where rounding turns), so a discrete parameter is left at an in-between value as a host may leave it.
float random_in_between(const juce::AudioProcessorParameter& p, juce::Random& rng);

// The plugin's own state inside the host's VST3 state (host_support.cpp says how JUCE nests it).

/// The host's whole state of the plugin.
std::unique_ptr<juce::XmlElement> host_state_xml(juce::AudioPluginInstance& plugin);
/// The plugin's own state (<IDAW model_folder=...><PARAM .../>...).
std::unique_ptr<juce::XmlElement> plugin_state_xml(juce::AudioPluginInstance& plugin);
/// Restores `xml` as the plugin's own state, as a host restoring a project would.
void set_plugin_state_xml(juce::AudioPluginInstance& plugin, const juce::XmlElement& xml);
/// Sets the model folder through the saved state.
void set_model_folder(juce::AudioPluginInstance& plugin, const juce::String& folder);
/// Plain values of the core parameters as the plugin holds them (from its saved state: exact).
juce::var plugin_values(juce::AudioPluginInstance& plugin);

/// The real-time checker's entry points (libidaw_rtcheck.so, in LD_PRELOAD).
struct RtCheck {
    void (*section)(int) = nullptr;
    unsigned long long (*violations)() = nullptr;
    void (*reset)() = nullptr;
    const char* (*last)() = nullptr;
};

/// The checker's entry points, or fail() when it is not preloaded.
RtCheck find_rtcheck();
/// Proves the checker counts: one allocation and one free inside a section must give two violations.
unsigned long long rtcheck_control(const RtCheck& c);
/// The checker's report for a command's JSON: the control count, the violations since then and the last one.
juce::var rtcheck_report(const RtCheck& c, unsigned long long control);

/// A bare X server (Xvfb without a window manager) has not yet created the WM_* and _NET_WM_* atoms, which JUCE 7
/// asks for only if they exist and then uses anyway (BadAtom, and Xlib's default handler exits). Creates them, once
/// per server, through libX11 loaded at run time (as JUCE loads it), before JUCE opens its own connection. The
/// connection stays open for the life of the process: an X server that loses its last client resets and forgets
/// its atoms.
void intern_window_manager_atoms();

/// The host's window around the plugin's editor.
class EditorWindow : public juce::DocumentWindow {
  public:
    /// A window titled after the plugin, holding (not owning) `editor`.
    explicit EditorWindow(juce::AudioProcessorEditor& editor)
        : juce::DocumentWindow("idaw editor", juce::Colours::black, juce::DocumentWindow::closeButton) {
        setUsingNativeTitleBar(false);
        setContentNonOwned(&editor, true);
        setTopLeftPosition(20, 20);
        setVisible(true);
    }
    /// Closing the window ends the command.
    void closeButtonPressed() override { juce::MessageManager::getInstance()->stopDispatchLoop(); }
};

}  // namespace idaw::plugin_host
