// The model folder: RTNeural JSON models loaded off the audio thread and handed over through nn::ModelSlot.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include <juce_core/juce_core.h>

#include "idaw/nn/model_slot.h"

namespace idaw::plugin {

/// What the model folder's status line says.
struct ModelFolderStatus {
    enum class Kind { None, Loading, Loaded, Error };
    Kind kind = Kind::None;
    juce::String text;             ///< one line for the editor
    std::uint64_t generation = 0;  ///< increases with every finished load attempt
};

/// Loads every `*.json` file of a folder (sorted by name, at most kMaxModels) with the strict RTNeural loader on a
/// worker thread, then offers them to the audio thread through one ModelSlot each. A folder that cannot be loaded
/// completely changes nothing the audio thread uses: the error is only reported in the status.
///
/// Threads: set_folder()/folder()/status() from any non-audio thread; acquire() and model() from the audio thread.
/// The worker thread starts on the first set_folder(), so constructing one costs nothing.
class ModelFolder {
  public:
    /// Most models one folder may hold.
    static constexpr int kMaxModels = 8;

    ModelFolder() = default;
    /// Stops the worker. Only when the audio thread no longer calls acquire().
    ~ModelFolder();
    ModelFolder(const ModelFolder&) = delete;
    ModelFolder& operator=(const ModelFolder&) = delete;

    /// Remembers `path` and asks the worker to load it (an empty path unloads every model). Returns at once.
    void set_folder(const juce::String& path);
    /// The folder last given to set_folder().
    juce::String folder() const;
    /// The current status.
    ModelFolderStatus status() const;
    /// Blocks until no load is pending or running, or `timeout_ms` passed; true when idle. Not for the audio thread.
    bool wait_until_idle(int timeout_ms) const;

    /// Audio thread, at a block boundary: takes up newly loaded models. Real-time safe.
    void acquire() noexcept;
    /// Audio thread: the model in slot `index` (null when none). Real-time safe.
    nn::Model* model(int index) const noexcept { return slots_[static_cast<std::size_t>(index)].current(); }

  private:
    void run();
    void load(const juce::String& path);
    void set_status(ModelFolderStatus::Kind kind, const juce::String& text);

    std::array<nn::ModelSlot, kMaxModels> slots_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    juce::String folder_;
    juce::String requested_;
    bool request_pending_ = false;
    bool busy_ = false;
    bool stop_ = false;
    ModelFolderStatus status_{ModelFolderStatus::Kind::None, "no model folder", 0};
    std::thread worker_;
};

}  // namespace idaw::plugin
