// CPU time of the calling thread, for the tests that guard against super-linear blow-up (a parser taking quadratic
// time). Unlike wall time it does not grow while the thread waits for a core on a busy machine, so a bound on it
// says something about the work done, not about the machine's load.
#pragma once

#include <time.h>

namespace idaw::test {

/// Seconds of CPU the calling thread has used so far (CLOCK_THREAD_CPUTIME_ID); 0 if the clock is unavailable.
inline double thread_cpu_seconds() noexcept {
    timespec ts{};
    if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0.0;
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace idaw::test
