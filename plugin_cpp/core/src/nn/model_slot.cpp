#include "idaw/nn/model_slot.h"

namespace idaw::nn {

Model* ModelSlot::empty_marker() noexcept {
    // Any address no Model can have: a static byte of this translation unit.
    static char marker;
    return reinterpret_cast<Model*>(&marker);
}

ModelSlot::~ModelSlot() {
    Model* pending = pending_.exchange(nullptr, std::memory_order_acquire);
    if (pending != empty_marker()) delete pending;
    delete retired_.exchange(nullptr, std::memory_order_acquire);
    delete current_;
    current_ = nullptr;
}

bool ModelSlot::collect() {
    Model* retired = retired_.exchange(nullptr, std::memory_order_acquire);
    delete retired;
    return retired != nullptr;
}

void ModelSlot::install(std::unique_ptr<Model> model) {
    collect();
    if (!model) return;
    // Release: the audio thread that exchanges the pointer out sees the fully built model.
    Model* earlier = pending_.exchange(model.release(), std::memory_order_acq_rel);
    // A model still in pending_ was never taken up by the audio thread (taking it clears pending_), so it is ours.
    if (earlier != empty_marker()) delete earlier;
}

void ModelSlot::clear() {
    collect();
    Model* earlier = pending_.exchange(empty_marker(), std::memory_order_acq_rel);
    if (earlier != empty_marker()) delete earlier;
}

Model* ModelSlot::acquire() noexcept {
    // Only the loader empties the mailbox, so once seen empty it stays empty until this thread fills it.
    if (pending_.load(std::memory_order_relaxed) == nullptr || retired_.load(std::memory_order_acquire) != nullptr)
        return current_;
    Model* next = pending_.exchange(nullptr, std::memory_order_acq_rel);
    if (next == nullptr) return current_;
    if (next == empty_marker()) next = nullptr;
    // Release: the loader that takes the retired model sees everything this thread did with it.
    retired_.store(current_, std::memory_order_release);
    current_ = next;
    swaps_.fetch_add(1, std::memory_order_relaxed);
    return current_;
}

}  // namespace idaw::nn
