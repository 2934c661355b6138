// Marks the real-time section so a test build can prove nothing in it allocates or locks.
#pragma once

#include <atomic>

namespace idaw::rt {

/// Called with 1 when a thread enters the engine's real-time section and 0 when it leaves.
using SectionHook = void (*)(int entering);

/// The installed hook, or null (the default: then marking costs one relaxed load and a branch).
std::atomic<SectionHook>& section_hook() noexcept;

/// Installs (or with nullptr removes) the hook. Only from test harnesses.
inline void set_section_hook(SectionHook hook) noexcept { section_hook().store(hook, std::memory_order_release); }

/// RAII marker around real-time work. Real-time safe.
class Section {
  public:
    Section() noexcept : hook_(section_hook().load(std::memory_order_acquire)) {
        if (hook_) hook_(1);
    }
    ~Section() {
        if (hook_) hook_(0);
    }
    Section(const Section&) = delete;
    Section& operator=(const Section&) = delete;

  private:
    SectionHook hook_;
};

}  // namespace idaw::rt
