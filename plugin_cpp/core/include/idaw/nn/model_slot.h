// Hands models from a loader thread to the audio thread without locks or allocation on the audio side.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "idaw/nn/model.h"

namespace idaw::nn {

/// One model in use by the audio thread, one waiting to be taken up, and one mailbox for the model the audio
/// thread has let go of.
///
/// The loader (control) thread builds a model off the audio thread and install()s it. At a block boundary the
/// audio thread calls acquire(): one atomic exchange takes the waiting model, and the model it replaces goes into
/// the mailbox, from which the loader thread frees it (collect(), also called by install()). The audio thread
/// never allocates, frees or waits. While the mailbox is still full, acquire() keeps the current model and tries
/// again at the next block, so no model is ever lost or freed on the audio thread.
///
/// Threads: one loader thread calls install()/clear()/collect(); one audio thread calls acquire()/current().
/// The new model starts from zero state (crossfading old and new outputs is up to the caller).
class ModelSlot {
  public:
    ModelSlot() noexcept = default;
    /// Frees every model. Only when no thread uses the slot any more.
    ~ModelSlot();
    ModelSlot(const ModelSlot&) = delete;
    ModelSlot& operator=(const ModelSlot&) = delete;

    /// Loader thread: offers `model` (not null) to the audio thread, replacing (and freeing) any model offered
    /// earlier and not yet taken up; frees what the audio thread retired. Not real-time safe.
    void install(std::unique_ptr<Model> model);
    /// Loader thread: asks the audio thread to drop its model (acquire() then returns null). Not real-time safe.
    void clear();
    /// Loader thread: frees the model the audio thread retired, if any; returns true if one was freed.
    /// Not real-time safe.
    bool collect();

    /// Audio thread, at a block boundary: takes up a waiting model if there is one and the mailbox is free, and
    /// returns the model to use for the block (null when none). Real-time safe: lock-free, no allocation.
    Model* acquire() noexcept;
    /// Audio thread: the model the last acquire() returned. Real-time safe.
    Model* current() const noexcept { return current_; }

    /// How many models the audio thread has taken up (clear() counts too). Any thread; real-time safe.
    std::uint64_t swaps() const noexcept { return swaps_.load(std::memory_order_relaxed); }
    /// True while an offered model waits for acquire(). Any thread; real-time safe.
    bool pending() const noexcept { return pending_.load(std::memory_order_acquire) != nullptr; }

  private:
    /// Stands for "no model" in pending_ (null there means "nothing offered").
    static Model* empty_marker() noexcept;

    std::atomic<Model*> pending_{nullptr};  // loader -> audio
    std::atomic<Model*> retired_{nullptr};  // audio -> loader (the mailbox)
    Model* current_ = nullptr;              // audio thread only
    std::atomic<std::uint64_t> swaps_{0};
};

}  // namespace idaw::nn
