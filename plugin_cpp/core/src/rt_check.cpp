#include "idaw/rt_check.h"

namespace idaw::rt {
namespace {
// Constant-initialised, so reading it never runs a guarded static initialiser on the audio thread.
std::atomic<SectionHook> g_section_hook{nullptr};
}  // namespace

std::atomic<SectionHook>& section_hook() noexcept { return g_section_hook; }

}  // namespace idaw::rt
