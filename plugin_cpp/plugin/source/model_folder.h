// The model folder: the MIDI generator's nets (RTNeural JSON), loaded and checked on a worker thread and handed to
// the audio thread through the generator's lock-free model slots.
#pragma once

#include <juce_core/juce_core.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "idaw/midi_generator.h"

namespace idaw::plugin {

/// What the model folder's status line says.
struct ModelFolderStatus {
    enum class Kind { None, Loading, Loaded, Error };
    Kind kind = Kind::None;
    juce::String text;             ///< one line for the editor
    std::uint64_t generation = 0;  ///< increases with every finished load attempt
};

/// The nets come from the chosen folder or, with none chosen, from the trained nets shipped inside the plugin
/// (bundled_nets()); the status line says which set is loaded.
///
/// Loads `<name>.json` for each of the generator's nets (MelodyTransformer, HarmonyPredictor, DynamicsEngine,
/// GroovePredictor; other files are ignored) with the strict RTNeural loader, checks each fits its role, and only
/// then installs them (a net the folder lacks gets the generator's stand-in). A net's name that is not a regular
/// file (a FIFO, a device, a directory) is an error of the folder, reported without ever blocking on it. A folder
/// that cannot be loaded completely changes nothing the audio thread uses: the error is only reported in the status.
///
/// Threads: set_folder()/attach()/folder()/status()/wait_until_idle() from non-audio threads. The worker thread
/// (started by the first set_folder() or attach(), so constructing one costs nothing) is the generator's one
/// loader thread: it alone calls install()/clear()/collect(). Nothing is loaded before attach().
class ModelFolder {
  public:
    ModelFolder() = default;
    /// Stops the worker. Must run before the attached generator is destroyed.
    ~ModelFolder();
    ModelFolder(const ModelFolder&) = delete;
    ModelFolder& operator=(const ModelFolder&) = delete;

    /// Remembers `path` and asks the worker to load it (an empty path: the built-in nets, or the stand-ins where the
    /// plugin has none). Returns at once.
    void set_folder(const juce::String& path);
    /// Names the generator the nets go to (once, when the engine exists) and loads the current folder into it.
    void attach(MidiGenerator& generator);
    /// The folder last given to set_folder().
    juce::String folder() const;
    /// The current status.
    ModelFolderStatus status() const;
    /// Blocks until no load is pending or running, or `timeout_ms` passed; true when idle. Not for the audio thread.
    bool wait_until_idle(int timeout_ms) const;
    /// The folder of the trained nets shipped with the plugin: the VST3 bundle's Contents/Resources/nets, or nets/
    /// beside the Standalone's executable (found from the binary this code is in); a null File when neither exists.
    static juce::File bundled_nets();

  private:
    /// Asks the worker for a load (starting it if needed); mutex_ held.
    void request_load_locked();
    /// The worker: loads on request, frees retired nets now and then.
    void run();
    /// Worker: loads the nets of `path` (the built-in ones for an empty path).
    void load(const juce::String& path, MidiGenerator& generator);
    /// Worker: loads and checks every net of `dir`, then installs them all (or changes nothing); `what` names the
    /// set in the status line ("built-in nets", or the folder's path in errors).
    void load_folder(const juce::File& dir, const juce::String& what, bool built_in, MidiGenerator& generator);
    /// Sets the status line and counts a finished attempt.
    void set_status(ModelFolderStatus::Kind kind, const juce::String& text);

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    MidiGenerator* generator_ = nullptr;
    juce::String folder_;
    bool request_pending_ = false;
    bool busy_ = false;
    bool stop_ = false;
    ModelFolderStatus status_{ModelFolderStatus::Kind::None, "no model folder", 0};
    std::thread worker_;
};

}  // namespace idaw::plugin
