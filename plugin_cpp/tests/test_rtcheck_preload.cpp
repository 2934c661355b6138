// libidaw_rtcheck.so loaded with LD_PRELOAD instead of linked, the way the Python tests use it: the hook is looked up
// by name at run time, installed through idaw::rt::set_section_hook, and the interposed functions still come first.
#include <doctest/doctest.h>

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "idaw/engine.h"
#include "idaw/rt_check.h"

namespace {

/// The checker's entry points, found in the process's global symbol scope.
struct Checker {
    void (*section)(int) = nullptr;
    unsigned long long (*violations)() = nullptr;
    void (*reset)() = nullptr;
    const char* (*last)() = nullptr;
};

/// Looks the checker up by name; every pointer stays null when the library is not preloaded.
Checker find_checker() {
    Checker k;
    k.section = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_section"));
    k.violations = reinterpret_cast<unsigned long long (*)()>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_violations"));
    k.reset = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_reset"));
    k.last = reinterpret_cast<const char* (*)()>(dlsym(RTLD_DEFAULT, "idaw_rtcheck_last_violation"));
    return k;
}

}  // namespace

TEST_CASE("a preloaded checker installed by address catches violations and passes the engine") {
    const Checker k = find_checker();
    const bool preloaded = k.section && k.violations && k.reset && k.last;
    REQUIRE_MESSAGE(preloaded, "libidaw_rtcheck.so is not loaded: run with LD_PRELOAD=<path to it>");
    // The malloc this executable calls must be the checker's, although the executable never linked against it.
    Dl_info info{};
    REQUIRE(dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) != 0);
    CHECK(std::string(info.dli_fname).find("libidaw_rtcheck") != std::string::npos);

    auto engine = std::make_unique<idaw::Engine>();
    engine->prepare(48000.0, 256, 2);
    std::vector<float> left(256, 0.25f), right(256, -0.25f);
    float* channels[] = {left.data(), right.data()};

    idaw::rt::set_section_hook(k.section);
    k.reset();
    std::mutex m;
    void* p = nullptr;
    {
        idaw::rt::Section section;
        p = std::malloc(100);
        asm volatile("" : : "g"(p) : "memory");
        m.lock();
        m.unlock();
    }
    std::free(p);  // outside: not counted
    CHECK(k.violations() == 2);
    CHECK(std::string(k.last()) == "pthread_mutex_lock");

    k.reset();
    for (int i = 0; i < 1000; ++i) engine->process(channels, 2, 256);
    CHECK(k.violations() == 0);
    idaw::rt::set_section_hook(nullptr);
}
