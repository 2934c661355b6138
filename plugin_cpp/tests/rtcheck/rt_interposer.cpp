// Real-time safety checker: interposes the allocation, locking and sleeping functions and counts every call a
// thread makes while it is inside a real-time section (marked through idaw_rtcheck_section, the engine's hook).
//
// Linked into an executable (ahead of libc) or loaded with LD_PRELOAD, these definitions come first in symbol
// lookup, so calls from the program and from every library reach them: operator new and delete in libstdc++ call
// malloc / aligned_alloc / free, std::mutex calls pthread_mutex_lock, std::this_thread::sleep_for calls nanosleep.
// Calls glibc makes to itself internally are not seen; neither are raw futex or other system calls.
//
// The checker must never allocate, lock or run lazy initialisation on these paths (it would recurse or deadlock):
// the allocation functions forward straight to glibc's exported __libc_* entry points, the others through
// pointers resolved with dlsym(RTLD_NEXT) in a constructor (or on first use, should another library's
// constructor call one of them earlier), the section depth lives in initial-exec TLS (a plain %fs-relative
// access: no __tls_get_addr, which may allocate), and the counters are lock-free atomics.
//
// Not for sanitizer builds: ASan and TSan put their own malloc and pthread interceptors first in the lookup
// order, so the definitions here would never be reached.
//
// Set IDAW_RTCHECK_ABORT=1 to abort at the first violation (for a backtrace under a debugger or from a core file).

#include "idaw_rtcheck.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

// glibc's own allocator entry points: exported, stable (GLIBC_2.2.5) and never interposed themselves.
extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);
}

namespace {

// Initial-exec TLS: never allocates on first access in a thread (fine for a library loaded at start-up).
thread_local int t_depth __attribute__((tls_model("initial-exec"))) = 0;

std::atomic<unsigned long long> g_violations{0};
std::atomic<const char*> g_last_violation{""};
std::atomic<bool> g_abort_on_violation{false};

/// Writes a message to stderr with write(2) only (no stdio: it may allocate or lock).
void write_stderr(const char* text) noexcept {
    const size_t len = strlen(text);
    ssize_t ignored = write(STDERR_FILENO, text, len);
    (void)ignored;
}

/// Reports an unrecoverable problem of the checker itself and aborts.
[[noreturn]] void fatal(const char* what, const char* name) noexcept {
    write_stderr("idaw_rtcheck: ");
    write_stderr(what);
    write_stderr(name);
    write_stderr("\n");
    abort();
}

/// Counts a violation by `what` (a string literal, so storing the pointer is safe).
void record_violation(const char* what) noexcept {
    g_violations.fetch_add(1, std::memory_order_relaxed);
    g_last_violation.store(what, std::memory_order_relaxed);
    if (g_abort_on_violation.load(std::memory_order_relaxed)) fatal("real-time violation in ", what);
}

/// Counts a violation when the calling thread is inside a real-time section.
inline void check(const char* what) noexcept {
    if (__builtin_expect(t_depth > 0, 0)) record_violation(what);
}

/// The next definition of a function after this library (glibc's), resolved once and cached.
template <typename Fn>
struct Next {
    const char* name;
    const char* version;  ///< symbol version to ask for first (x86-64 condvars have an old and a new one), or null
    std::atomic<Fn> fn{nullptr};

    /// The resolved function; resolving twice from two threads is harmless (both store the same pointer).
    Fn get() noexcept {
        Fn f = fn.load(std::memory_order_acquire);
        if (__builtin_expect(f != nullptr, 1)) return f;
        void* p = version != nullptr ? dlvsym(RTLD_NEXT, name, version) : nullptr;
        if (p == nullptr) p = dlsym(RTLD_NEXT, name);
        if (p == nullptr) fatal("cannot resolve ", name);
        f = reinterpret_cast<Fn>(p);
        fn.store(f, std::memory_order_release);
        return f;
    }
};

// Unversioned dlsym() of pthread_cond_* can return the pre-2.3.2 compatibility versions, which use a different
// condvar layout; ask for the current ones explicitly (other architectures fall back to the default version).
constexpr const char* kCondVersion = "GLIBC_2.3.2";

Next<int (*)(pthread_mutex_t*)> next_mutex_lock{"pthread_mutex_lock", nullptr};
Next<int (*)(pthread_mutex_t*)> next_mutex_trylock{"pthread_mutex_trylock", nullptr};
Next<int (*)(pthread_mutex_t*, const timespec*)> next_mutex_timedlock{"pthread_mutex_timedlock", nullptr};
Next<int (*)(pthread_mutex_t*, clockid_t, const timespec*)> next_mutex_clocklock{"pthread_mutex_clocklock", nullptr};
Next<int (*)(pthread_rwlock_t*)> next_rwlock_rdlock{"pthread_rwlock_rdlock", nullptr};
Next<int (*)(pthread_rwlock_t*)> next_rwlock_wrlock{"pthread_rwlock_wrlock", nullptr};
Next<int (*)(pthread_rwlock_t*)> next_rwlock_tryrdlock{"pthread_rwlock_tryrdlock", nullptr};
Next<int (*)(pthread_rwlock_t*)> next_rwlock_trywrlock{"pthread_rwlock_trywrlock", nullptr};
Next<int (*)(pthread_rwlock_t*, const timespec*)> next_rwlock_timedrdlock{"pthread_rwlock_timedrdlock", nullptr};
Next<int (*)(pthread_rwlock_t*, const timespec*)> next_rwlock_timedwrlock{"pthread_rwlock_timedwrlock", nullptr};
Next<int (*)(pthread_rwlock_t*, clockid_t, const timespec*)> next_rwlock_clockrdlock{"pthread_rwlock_clockrdlock",
                                                                                     nullptr};
Next<int (*)(pthread_rwlock_t*, clockid_t, const timespec*)> next_rwlock_clockwrlock{"pthread_rwlock_clockwrlock",
                                                                                     nullptr};
Next<int (*)(pthread_cond_t*, pthread_mutex_t*)> next_cond_wait{"pthread_cond_wait", kCondVersion};
Next<int (*)(pthread_cond_t*, pthread_mutex_t*, const timespec*)> next_cond_timedwait{"pthread_cond_timedwait",
                                                                                      kCondVersion};
Next<int (*)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*)> next_cond_clockwait{
    "pthread_cond_clockwait", nullptr};
Next<int (*)(sem_t*)> next_sem_wait{"sem_wait", nullptr};
Next<int (*)(sem_t*, const timespec*)> next_sem_timedwait{"sem_timedwait", nullptr};
Next<int (*)(sem_t*, clockid_t, const timespec*)> next_sem_clockwait{"sem_clockwait", nullptr};
Next<int (*)(const timespec*, timespec*)> next_nanosleep{"nanosleep", nullptr};
Next<int (*)(clockid_t, int, const timespec*, timespec*)> next_clock_nanosleep{"clock_nanosleep", nullptr};
Next<int (*)(useconds_t)> next_usleep{"usleep", nullptr};
Next<unsigned (*)(unsigned)> next_sleep{"sleep", nullptr};

/// Resolves every forwarded function before main(), so the lazy path (which calls dlsym) is rarely needed.
__attribute__((constructor)) void resolve_all() {
    next_mutex_lock.get();
    next_mutex_trylock.get();
    next_mutex_timedlock.get();
    next_mutex_clocklock.get();
    next_rwlock_rdlock.get();
    next_rwlock_wrlock.get();
    next_rwlock_tryrdlock.get();
    next_rwlock_trywrlock.get();
    next_rwlock_timedrdlock.get();
    next_rwlock_timedwrlock.get();
    next_rwlock_clockrdlock.get();
    next_rwlock_clockwrlock.get();
    next_cond_wait.get();
    next_cond_timedwait.get();
    next_cond_clockwait.get();
    next_sem_wait.get();
    next_sem_timedwait.get();
    next_sem_clockwait.get();
    next_nanosleep.get();
    next_clock_nanosleep.get();
    next_usleep.get();
    next_sleep.get();
    const char* abort_env = getenv("IDAW_RTCHECK_ABORT");
    g_abort_on_violation.store(abort_env != nullptr && abort_env[0] != '\0' && abort_env[0] != '0');
}

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

// ---- The checker's interface (documented in idaw_rtcheck.h) --------------------------------------------------

void idaw_rtcheck_section(int entering) { t_depth += entering ? 1 : -1; }

unsigned long long idaw_rtcheck_violations(void) { return g_violations.load(std::memory_order_relaxed); }

void idaw_rtcheck_reset(void) {
    g_violations.store(0, std::memory_order_relaxed);
    g_last_violation.store("", std::memory_order_relaxed);
}

const char* idaw_rtcheck_last_violation(void) { return g_last_violation.load(std::memory_order_relaxed); }

int idaw_rtcheck_depth(void) { return t_depth; }

// ---- Interposed functions: each counts a violation inside a section, then does exactly what glibc's does ----

// Allocation: forwarded to glibc's __libc_* entry points (no symbol lookup, so no recursion through dlsym).

void* malloc(size_t size) __THROW {
    check("malloc");
    return __libc_malloc(size);
}

void free(void* ptr) __THROW {
    if (ptr != nullptr) check("free");  // free(NULL) is a no-op, not a violation
    __libc_free(ptr);
}

void* calloc(size_t count, size_t size) __THROW {
    check("calloc");
    return __libc_calloc(count, size);
}

void* realloc(void* ptr, size_t size) __THROW {
    check("realloc");
    return __libc_realloc(ptr, size);
}

void* reallocarray(void* ptr, size_t count, size_t size) __THROW {
    check("reallocarray");
    size_t bytes = 0;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return nullptr;
    }
    return __libc_realloc(ptr, bytes);
}

int posix_memalign(void** out, size_t alignment, size_t size) __THROW {
    check("posix_memalign");
    if (alignment == 0 || alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    const int saved_errno = errno;  // posix_memalign reports through its result and leaves errno alone
    void* p = __libc_memalign(alignment, size);
    errno = saved_errno;
    if (p == nullptr) return ENOMEM;
    *out = p;
    return 0;
}

void* aligned_alloc(size_t alignment, size_t size) __THROW {
    check("aligned_alloc");
    return __libc_memalign(alignment, size);
}

void* memalign(size_t alignment, size_t size) __THROW {
    check("memalign");
    return __libc_memalign(alignment, size);
}

void* valloc(size_t size) __THROW {
    check("valloc");
    return __libc_valloc(size);
}

void* pvalloc(size_t size) __THROW {
    check("pvalloc");
    return __libc_pvalloc(size);
}

// Locks: pthread_mutex_unlock and friends are not interposed (the lock already counted).

int pthread_mutex_lock(pthread_mutex_t* m) __THROW {
    check("pthread_mutex_lock");
    return next_mutex_lock.get()(m);
}

int pthread_mutex_trylock(pthread_mutex_t* m) __THROW {
    check("pthread_mutex_trylock");
    return next_mutex_trylock.get()(m);
}

int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) __THROW {
    check("pthread_mutex_timedlock");
    return next_mutex_timedlock.get()(m, abstime);
}

int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const timespec* abstime) __THROW {
    check("pthread_mutex_clocklock");
    return next_mutex_clocklock.get()(m, clock, abstime);
}

int pthread_rwlock_rdlock(pthread_rwlock_t* l) __THROW {
    check("pthread_rwlock_rdlock");
    return next_rwlock_rdlock.get()(l);
}

int pthread_rwlock_wrlock(pthread_rwlock_t* l) __THROW {
    check("pthread_rwlock_wrlock");
    return next_rwlock_wrlock.get()(l);
}

int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) __THROW {
    check("pthread_rwlock_tryrdlock");
    return next_rwlock_tryrdlock.get()(l);
}

int pthread_rwlock_trywrlock(pthread_rwlock_t* l) __THROW {
    check("pthread_rwlock_trywrlock");
    return next_rwlock_trywrlock.get()(l);
}

int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const timespec* abstime) __THROW {
    check("pthread_rwlock_timedrdlock");
    return next_rwlock_timedrdlock.get()(l, abstime);
}

int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const timespec* abstime) __THROW {
    check("pthread_rwlock_timedwrlock");
    return next_rwlock_timedwrlock.get()(l, abstime);
}

int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock, const timespec* abstime) __THROW {
    check("pthread_rwlock_clockrdlock");
    return next_rwlock_clockrdlock.get()(l, clock, abstime);
}

int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock, const timespec* abstime) __THROW {
    check("pthread_rwlock_clockwrlock");
    return next_rwlock_clockwrlock.get()(l, clock, abstime);
}

// Waits and sleeps. These are cancellation points, hence no __THROW, matching glibc's declarations.

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
    check("pthread_cond_wait");
    return next_cond_wait.get()(c, m);
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const timespec* abstime) {
    check("pthread_cond_timedwait");
    return next_cond_timedwait.get()(c, m, abstime);
}

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* abstime) {
    check("pthread_cond_clockwait");
    return next_cond_clockwait.get()(c, m, clock, abstime);
}

int sem_wait(sem_t* s) {
    check("sem_wait");
    return next_sem_wait.get()(s);
}

int sem_timedwait(sem_t* s, const timespec* abstime) {
    check("sem_timedwait");
    return next_sem_timedwait.get()(s, abstime);
}

int sem_clockwait(sem_t* s, clockid_t clock, const timespec* abstime) {
    check("sem_clockwait");
    return next_sem_clockwait.get()(s, clock, abstime);
}

int nanosleep(const timespec* duration, timespec* remaining) {
    check("nanosleep");
    return next_nanosleep.get()(duration, remaining);
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* request, timespec* remaining) {
    check("clock_nanosleep");
    return next_clock_nanosleep.get()(clock, flags, request, remaining);
}

int usleep(useconds_t usec) {
    check("usleep");
    return next_usleep.get()(usec);
}

unsigned int sleep(unsigned int seconds) {
    check("sleep");
    return next_sleep.get()(seconds);
}

}  // extern "C"
#pragma GCC visibility pop
