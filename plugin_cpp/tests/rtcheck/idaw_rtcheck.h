// C interface of libidaw_rtcheck.so, the real-time safety checker (see rt_interposer.cpp).
//
// Install idaw_rtcheck_section as the engine's section hook (idaw::rt::set_section_hook in C++, or
// idaw_core.set_rt_section_hook(address) from Python with the library in LD_PRELOAD); from then on every
// allocation, lock or sleep a thread makes inside a real-time section counts as a violation.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/// The section hook: 1 when the calling thread enters a real-time section, 0 when it leaves (sections nest).
void idaw_rtcheck_section(int entering);

/// Number of violations since start-up or the last idaw_rtcheck_reset(), over all threads.
unsigned long long idaw_rtcheck_violations(void);

/// Zeroes the violation count and forgets the last violation.
void idaw_rtcheck_reset(void);

/// Name of the function behind the most recent violation (e.g. "malloc"), or "" when there was none.
const char* idaw_rtcheck_last_violation(void);

/// Current section depth of the calling thread (0 outside any section); for tests of the checker itself.
int idaw_rtcheck_depth(void);

#ifdef __cplusplus
}
#endif
