// The engine's real-time path never allocates, locks or sleeps. libidaw_rtcheck interposes those functions and counts
// calls made inside an rt::Section; the first test cases prove it sees every kind of call it claims to, so a clean
// result for the engine means something.
#include <doctest/doctest.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine_stress.h"
#include "idaw/rt_check.h"
#include "idaw/true_peak_limiter.h"
#include "idaw_rtcheck.h"
#include "rtcheck_support.h"

using namespace idaw::test;

namespace {

/// What running something inside a section cost: violations added, and the function named by the last one.
struct Seen {
    unsigned long long count;
    std::string last;
};

/// Runs `fn` inside an rt::Section (nothing else happens in there) and reports the violations it caused.
template <typename Fn>
Seen in_section(Fn&& fn) {
    const unsigned long long before = idaw_rtcheck_violations();
    {
        idaw::rt::Section section;
        fn();
    }
    const unsigned long long count = idaw_rtcheck_violations() - before;
    return {count, idaw_rtcheck_last_violation()};  // the string is built outside the section
}

/// A CLOCK_REALTIME deadline `ms` milliseconds from now (negative: in the past).
timespec deadline_in(int ms) {
    timespec t{};
    clock_gettime(CLOCK_REALTIME, &t);
    const long long ns =
        static_cast<long long>(t.tv_sec) * 1'000'000'000 + t.tv_nsec + static_cast<long long>(ms) * 1'000'000;
    t.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    t.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    return t;
}

/// An over-aligned type: its new-expression goes through operator new(size_t, align_val_t).
struct alignas(256) Aligned {
    char bytes[256];
};

}  // namespace

TEST_CASE("checker self-test: allocations inside a section are seen") {
    CheckerInstalled checker;
    void* p = nullptr;
    Seen s = in_section([&] {
        p = std::malloc(64);
        escape(p);
    });
    CHECK(s.count == 1);
    CHECK(s.last == "malloc");
    s = in_section([&] { std::free(p); });
    CHECK(s.count == 1);
    CHECK(s.last == "free");
    CHECK(in_section([] { std::free(nullptr); }).count == 0);  // a no-op, not a violation

    s = in_section([&] {
        p = std::calloc(4, 16);
        escape(p);
    });
    CHECK((s.count == 1 && s.last == "calloc"));
    s = in_section([&] {
        p = std::realloc(p, 4096);
        escape(p);
    });
    CHECK((s.count == 1 && s.last == "realloc"));
    std::free(p);
    int rc = -1;
    s = in_section([&] { rc = posix_memalign(&p, 64, 100); });
    CHECK(rc == 0);
    CHECK((s.count == 1 && s.last == "posix_memalign"));
    std::free(p);
    s = in_section([&] {
        p = aligned_alloc(64, 128);
        escape(p);
    });
    CHECK((s.count == 1 && s.last == "aligned_alloc"));
    std::free(p);
    s = in_section([&] {
        p = memalign(64, 128);
        escape(p);
    });
    CHECK((s.count == 1 && s.last == "memalign"));
    std::free(p);

    int* q = nullptr;
    s = in_section([&] {
        q = new int(7);
        escape(q);
    });
    CHECK(s.count == 1);
    CHECK(s.last == "malloc");  // libstdc++'s operator new calls malloc
    s = in_section([&] { delete q; });
    CHECK((s.count == 1 && s.last == "free"));
    Aligned* a = nullptr;
    s = in_section([&] {
        a = new Aligned;
        escape(a);
    });
    CHECK(s.count == 1);  // aligned_alloc (or posix_memalign, depending on how libstdc++ was built)
    delete a;

    std::vector<int> v;
    s = in_section([&] { v.push_back(1); });
    CHECK((s.count == 1 && s.last == "malloc"));
    std::string text;
    s = in_section([&] { text = "long enough to leave the small-string buffer"; });
    CHECK(s.count >= 1);
    CHECK(idaw_rtcheck_depth() == 0);
}

TEST_CASE("checker self-test: locks, waits and sleeps inside a section are seen") {
    CheckerInstalled checker;
    std::mutex m;
    Seen s = in_section([&] {
        m.lock();
        m.unlock();  // unlocking is not counted: the lock already was
    });
    CHECK((s.count == 1 && s.last == "pthread_mutex_lock"));
    s = in_section([&] {
        if (m.try_lock()) m.unlock();
    });
    CHECK((s.count == 1 && s.last == "pthread_mutex_trylock"));
    pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
    int rc = -1;
    const timespec soon = deadline_in(1000);
    s = in_section([&] {
        rc = pthread_mutex_timedlock(&pm, &soon);
        if (rc == 0) pthread_mutex_unlock(&pm);
    });
    CHECK(rc == 0);
    CHECK((s.count == 1 && s.last == "pthread_mutex_timedlock"));
    std::timed_mutex tm;
    s = in_section([&] {
        if (tm.try_lock_for(std::chrono::milliseconds(10))) tm.unlock();
    });
    CHECK(s.count == 1);  // pthread_mutex_clocklock (or timedlock on an older libstdc++)

    std::shared_mutex rw;
    s = in_section([&] {
        rw.lock();
        rw.unlock();
    });
    CHECK((s.count == 1 && s.last == "pthread_rwlock_wrlock"));
    s = in_section([&] {
        rw.lock_shared();
        rw.unlock_shared();
    });
    CHECK((s.count == 1 && s.last == "pthread_rwlock_rdlock"));
    s = in_section([&] {
        if (rw.try_lock()) rw.unlock();
    });
    CHECK((s.count == 1 && s.last == "pthread_rwlock_trywrlock"));
    s = in_section([&] {
        if (rw.try_lock_shared()) rw.unlock_shared();
    });
    CHECK((s.count == 1 && s.last == "pthread_rwlock_tryrdlock"));

    // Condition variables: the timed wait must also really time out (forwarded to the right glibc version).
    pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&pm);
    const timespec past = deadline_in(-10);
    s = in_section([&] { rc = pthread_cond_timedwait(&pc, &pm, &past); });
    pthread_mutex_unlock(&pm);
    CHECK(rc == ETIMEDOUT);
    CHECK((s.count == 1 && s.last == "pthread_cond_timedwait"));
    std::condition_variable cv;
    {
        std::unique_lock<std::mutex> lock(m);
        s = in_section([&] { cv.wait_for(lock, std::chrono::microseconds(1)); });
    }
    CHECK(s.count == 1);  // pthread_cond_clockwait (or timedwait on an older libstdc++)
    {
        bool ready = false;
        std::atomic<bool> waiting{false};
        std::thread notifier([&] {
            while (!waiting.load()) std::this_thread::yield();
            {
                std::lock_guard<std::mutex> g(m);  // blocks until the waiter has released m inside cv.wait
                ready = true;
            }
            cv.notify_one();
        });
        std::unique_lock<std::mutex> lock(m);
        s = in_section([&] {
            waiting.store(true);
            while (!ready) cv.wait(lock);
        });
        lock.unlock();
        notifier.join();
        CHECK((s.count == 1 && s.last == "pthread_cond_wait"));
    }

    sem_t sem;
    sem_init(&sem, 0, 2);
    s = in_section([&] { rc = sem_wait(&sem); });
    CHECK(rc == 0);
    CHECK((s.count == 1 && s.last == "sem_wait"));
    const timespec later = deadline_in(1000);
    s = in_section([&] { rc = sem_timedwait(&sem, &later); });
    CHECK(rc == 0);
    CHECK((s.count == 1 && s.last == "sem_timedwait"));
    sem_destroy(&sem);

    s = in_section([] { std::this_thread::sleep_for(std::chrono::microseconds(1)); });
    CHECK(s.count == 1);  // nanosleep (or clock_nanosleep)
    s = in_section([] {
        const timespec t{0, 1000};
        nanosleep(&t, nullptr);
    });
    CHECK((s.count == 1 && s.last == "nanosleep"));
    s = in_section([] {
        const timespec t{0, 1000};
        clock_nanosleep(CLOCK_MONOTONIC, 0, &t, nullptr);
    });
    CHECK((s.count == 1 && s.last == "clock_nanosleep"));
    s = in_section([] { usleep(1); });
    CHECK((s.count == 1 && s.last == "usleep"));
}

TEST_CASE("checker self-test: only the thread inside a section is checked, sections nest, reset clears") {
    CheckerInstalled checker;
    void* p = std::malloc(32);  // outside any section: not counted
    std::free(p);
    std::mutex m;
    m.lock();
    m.unlock();
    CHECK(idaw_rtcheck_violations() == 0);
    CHECK(std::string(idaw_rtcheck_last_violation()).empty());

    std::atomic<int> stage{0};
    std::thread other([&] {
        while (stage.load() != 1) std::this_thread::yield();
        void* mem = std::malloc(100);  // while the main thread is inside a section: still not counted
        escape(mem);
        std::free(mem);
        stage.store(2);
    });
    {
        idaw::rt::Section outer;
        CHECK(idaw_rtcheck_depth() == 1);
        stage.store(1);
        while (stage.load() != 2) {
        }
        {
            idaw::rt::Section inner;
            CHECK(idaw_rtcheck_depth() == 2);
        }
        CHECK(idaw_rtcheck_depth() == 1);  // leaving the inner section does not end the outer one
        void* mem = std::malloc(8);
        escape(mem);
        std::free(mem);
    }
    other.join();
    CHECK(idaw_rtcheck_depth() == 0);
    CHECK(idaw_rtcheck_violations() == 2);  // the malloc and free in the outer section, nothing from `other`
    idaw_rtcheck_reset();
    CHECK(idaw_rtcheck_violations() == 0);
    CHECK(std::string(idaw_rtcheck_last_violation()).empty());
}

TEST_CASE("checker self-test: forwarded locks still exclude, wait and wake") {
    CheckerInstalled checker;
    std::mutex m;
    long counter = 0;
    auto bump = [&] {
        for (int i = 0; i < 200'000; ++i) {
            std::lock_guard<std::mutex> g(m);
            ++counter;
        }
    };
    std::thread t1(bump), t2(bump);
    t1.join();
    t2.join();
    CHECK(counter == 400'000);

    std::shared_mutex rw;
    long shared_value = 0;
    std::atomic<long> torn{0};
    std::thread writer([&] {
        for (int i = 0; i < 20'000; ++i) {
            std::unique_lock<std::shared_mutex> g(rw);
            ++shared_value;
            ++shared_value;  // readers must never see an odd value
        }
    });
    for (int i = 0; i < 20'000; ++i) {
        std::shared_lock<std::shared_mutex> g(rw);
        if (shared_value % 2 != 0) ++torn;
    }
    writer.join();
    CHECK(torn.load() == 0);
    CHECK(shared_value == 40'000);

    // Ping-pong through a condition variable and through semaphores.
    std::condition_variable cv;
    int turn = 0;
    std::thread pong([&] {
        for (int i = 0; i < 1000; ++i) {
            std::unique_lock<std::mutex> g(m);
            cv.wait(g, [&] { return turn == 1; });
            turn = 0;
            cv.notify_one();
        }
    });
    for (int i = 0; i < 1000; ++i) {
        std::unique_lock<std::mutex> g(m);
        turn = 1;
        cv.notify_one();
        cv.wait(g, [&] { return turn == 0; });
    }
    pong.join();
    sem_t ping_sem, pong_sem;
    sem_init(&ping_sem, 0, 0);
    sem_init(&pong_sem, 0, 0);
    std::thread sem_pong([&] {
        for (int i = 0; i < 1000; ++i) {
            sem_wait(&ping_sem);
            sem_post(&pong_sem);
        }
    });
    for (int i = 0; i < 1000; ++i) {
        sem_post(&ping_sem);
        sem_wait(&pong_sem);
    }
    sem_pong.join();
    sem_destroy(&ping_sem);
    sem_destroy(&pong_sem);
    CHECK(idaw_rtcheck_violations() == 0);  // none of this ran inside a section
}

TEST_CASE("checker self-test: the engine's own allocations are seen when made inside a section") {
    // prepare() and the constructor allocate by design; inside a section the checker must catch that, which shows
    // calls from the engine's code reach the interposer.
    CheckerInstalled checker;
    std::unique_ptr<idaw::Engine> engine;
    Seen s = in_section([&] { engine = std::make_unique<idaw::Engine>(); });
    CHECK(s.count >= 5);  // the engine itself and its four rings
    s = in_section([&] { engine->prepare(48000.0, 4096, 2); });
    CHECK(s.count >= 1);
}

TEST_CASE("the engine's real-time path is allocation-, lock- and sleep-free under concurrent control") {
    CheckerInstalled checker;
    for (int max_block : {64, 512, 1024}) {
        StressConfig cfg;
        cfg.max_block = max_block;
        cfg.frames = stress_frames();
        cfg.seed = 1000 + static_cast<std::uint64_t>(max_block);
        idaw_rtcheck_reset();
        const StressResult r = run_engine_stress(cfg);
        INFO("max_block " << max_block << ": last violation in " << std::string(idaw_rtcheck_last_violation()));
        CHECK(idaw_rtcheck_violations() == 0);
        check_stress_result(cfg, r);
    }
}

TEST_CASE("full rings, NaN input, limiting and snapshot bursts stay real-time safe") {
    // The slow paths that the concurrent run reaches only by chance: dropped telemetry and analysis samples,
    // sanitised NaN/Inf, the limiter, a full parameter queue, and prepare()-sized scratch at max_block.
    CheckerInstalled checker;
    auto engine = std::make_unique<idaw::Engine>();
    engine->prepare(48000.0, 256, 2);
    engine->set_analysis_enabled(true);
    Audio audio = noise(2, 256, 1.0, 17);
    audio.at(0, 3) = std::numeric_limits<float>::quiet_NaN();
    audio.at(1, 9) = std::numeric_limits<float>::infinity();
    idaw::Parameters loud = idaw::Parameters::defaults();
    loud[idaw::ParamId::OutputGainDb] = 24.0f;
    loud[idaw::ParamId::DriveDb] = 36.0f;
    std::vector<float*> ptrs = {audio.channel(0), audio.channel(1)};
    Rng rng(5);
    // Enough 256-frame blocks to overfill both the analysis ring and the telemetry ring.
    engine->set_telemetry_enabled(true);
    const std::size_t blocks =
        std::max(engine->analysis_ring().capacity() / 256, engine->telemetry_ring().capacity()) + 100;
    idaw_rtcheck_reset();
    for (std::size_t b = 0; b < blocks; ++b) {
        if (b % 100 == 0)
            for (int i = 0; i < 70; ++i) engine->push_parameters(i % 2 ? loud : random_parameters(rng));  // > queue
        audio.at(0, 3) = std::numeric_limits<float>::quiet_NaN();
        idaw::rt::Section section;
        engine->process(ptrs.data(), 2, 256);
    }
    INFO("last violation in " << std::string(idaw_rtcheck_last_violation()));
    CHECK(idaw_rtcheck_violations() == 0);
    const idaw::EngineCounters k = engine->counters();
    CHECK(k.analysis_dropped > 0);
    CHECK(k.telemetry_dropped > 0);
    CHECK(k.nonfinite_samples >= blocks);
    CHECK(k.limited_samples > 0);
}

TEST_CASE("the true-peak limiter's process() is real-time safe while it limits") {
    CheckerInstalled checker;
    idaw::TruePeakLimiter limiter;
    limiter.prepare(48000.0, 2, {-1.0, 2.0, 50.0});  // allocates: outside any section
    Audio audio = noise(2, 256, 1.0, 23);
    std::vector<float*> ptrs = {audio.channel(0), audio.channel(1)};
    idaw_rtcheck_reset();
    for (int b = 0; b < 400; ++b) {
        idaw::rt::Section section;
        limiter.process(ptrs.data(), 256);
    }
    INFO("last violation in " << std::string(idaw_rtcheck_last_violation()));
    CHECK(idaw_rtcheck_violations() == 0);
    CHECK(limiter.peak_reduction_db() > 0.0);
}
