// Test support built into the plugin: with IDAW_RTCHECK=1 the plugin hands its real-time sections to the
// allocation/lock checker (plugin_cpp/tests/rtcheck, loaded into the host with LD_PRELOAD).
#pragma once

namespace idaw::plugin {

/// When the environment has IDAW_RTCHECK=1, looks up idaw_rtcheck_section in the process (dlsym(RTLD_DEFAULT))
/// and installs it as this plugin's section hook (the plugin carries its own copy of the core, hence its own hook).
/// Prints one line to stderr saying whether it worked. Returns true when a hook is installed. Not real-time safe.
bool install_rtcheck_hook_from_environment();

}  // namespace idaw::plugin
