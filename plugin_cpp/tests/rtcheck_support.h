// Test-side helpers for the real-time checker (libidaw_rtcheck): install it as the section hook for one test case,
// keep allocations from being optimised away, and prove the checker is live in the test binary.
#pragma once

#include <vector>

#include "idaw/rt_check.h"
#include "idaw_rtcheck.h"

namespace idaw::test {

/// Installs the checker as the section hook for one test case, with a zero count.
struct CheckerInstalled {
    CheckerInstalled() {
        idaw::rt::set_section_hook(&idaw_rtcheck_section);
        idaw_rtcheck_reset();
    }
    ~CheckerInstalled() { idaw::rt::set_section_hook(nullptr); }
    CheckerInstalled(const CheckerInstalled&) = delete;
    CheckerInstalled& operator=(const CheckerInstalled&) = delete;
};

/// Keeps the optimiser from deleting an allocation whose result is otherwise unused.
template <typename T>
void escape(T* p) {
    asm volatile("" : : "g"(p) : "memory");
}

/// True when an allocation made inside an rt::Section is counted: the checker is interposed in this binary, so a
/// zero count elsewhere means something.
inline bool checker_sees_an_allocation() {
    CheckerInstalled checker;
    {
        idaw::rt::Section section;
        auto* p = new std::vector<int>(100);
        escape(p);
        delete p;
    }
    return idaw_rtcheck_violations() > 0;
}

}  // namespace idaw::test
