// SpscRing: edge cases, then two threads carrying a counting sequence through a small ring.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "idaw/spsc_ring.h"
#include "test_support.h"

using idaw::SpscRing;
using idaw::test::Rng;

namespace {

/// Items per stress run: IDAW_RING_ITEMS when set, else 10^7 (10^6 under TSan; see run_cpp_tests.sh for timings).
std::uint64_t stress_items() {
    constexpr std::uint64_t kDefault = idaw::test::kThreadSanitizer ? 1'000'000 : 10'000'000;
    return idaw::test::env_u64("IDAW_RING_ITEMS", kDefault);
}

// Small, so the producer keeps running into a full ring and the consumer into an empty one.
constexpr std::size_t kStressCapacity = 1024;
// Bulk requests go up to 1.5x the capacity, so partial pushes and pops are exercised too.
constexpr std::size_t kMaxBatch = kStressCapacity + kStressCapacity / 2;

/// An item wider than a register whose fields all derive from its sequence number, so a torn, stale or
/// misplaced copy shows up as fields that disagree.
struct Record {
    std::uint64_t seq;
    std::uint64_t inverted;
    double as_double;
    std::uint32_t hash;
    std::uint16_t low;
    std::uint8_t parity;
};

/// The record that carries sequence number `seq`.
Record make_record(std::uint64_t seq) {
    return {seq,
            ~seq,
            static_cast<double>(seq),
            static_cast<std::uint32_t>((seq * 0x9E3779B97F4A7C15ull) >> 32),
            static_cast<std::uint16_t>(seq),
            static_cast<std::uint8_t>(__builtin_popcountll(seq) & 1)};
}

/// True when every field of `r` is the one make_record(seq) produces.
bool record_matches(const Record& r, std::uint64_t seq) {
    const Record e = make_record(seq);
    return r.seq == e.seq && r.inverted == e.inverted && r.as_double == e.as_double && r.hash == e.hash &&
           r.low == e.low && r.parity == e.parity;
}

/// Whether an endpoint moves one item per call or uses the bulk overload.
enum class Mode { kOne, kBulk };

/// What the two endpoints of a stress run saw.
struct StressOutcome {
    std::uint64_t received = 0;
    std::uint64_t mismatches = 0;          ///< items that were not the next in sequence
    std::uint64_t first_mismatch = ~0ull;  ///< stream position of the first of them
    std::uint64_t full_hits = 0;           ///< pushes that found no room at all
    std::uint64_t empty_hits = 0;          ///< pops that found nothing at all
    std::uint64_t stalled_pauses = 0;      ///< pauses that ended at the cap, the other side having made no progress
    std::size_t size_after = 0;            ///< ring.size() once both sides are done
};

/// Gives the other thread the core; both threads may share one core on a busy 2-core machine.
void backoff() { std::this_thread::yield(); }

/// Yields in a pause this many times at most: minutes, where the other side needs at most 1024 items' worth.
constexpr std::uint64_t kMaxPauseYields = 200'000'000;

/// A pause of one side: yields until the other side's counter `hits` passes `seen` (it found the ring full, or
/// empty) or `other_done` is set. Returns false when kMaxPauseYields went by without either: no progress at all.
bool pause_until(const std::atomic<std::uint64_t>& hits, std::uint64_t seen, const std::atomic<bool>& other_done) {
    for (std::uint64_t i = 0; i < kMaxPauseYields; ++i) {
        if (hits.load(std::memory_order_acquire) > seen || other_done.load(std::memory_order_acquire)) return true;
        std::this_thread::yield();
    }
    return false;
}

/// Carries `items` sequence numbers from a producer thread to this thread through a small ring. `make(seq)` builds
/// the item for `seq`, `matches(item, seq)` checks one. Each side pauses now and then (the producer 8 times, the
/// consumer 8 times, out of phase) until the other has found the ring empty (the consumer) or full (the producer),
/// so both slow paths are sure to run: counts, not sleeps, so however the threads are scheduled. The two never
/// pause together: their pause points are more than a ring's capacity apart in the stream.
template <typename T, typename Make, typename Matches>
StressOutcome run_stress(std::uint64_t items, Mode producer_mode, Mode consumer_mode, Make make, Matches matches) {
    SpscRing<T> ring(kStressCapacity);
    const std::uint64_t pause_every = std::max<std::uint64_t>(items / 8, 4 * kStressCapacity);
    std::atomic<std::uint64_t> full_hits{0}, empty_hits{0}, stalled{0};
    std::atomic<bool> producer_done{false}, consumer_done{false};

    std::thread producer([&] {
        Rng rng(0x5eed);
        std::vector<T> batch(kMaxBatch);
        std::uint64_t next_pause = pause_every;
        const auto full = [&] { full_hits.fetch_add(1, std::memory_order_release); };
        for (std::uint64_t next = 0; next < items;) {
            if (next >= next_pause) {
                if (!pause_until(empty_hits, empty_hits.load(std::memory_order_acquire), consumer_done))
                    stalled.fetch_add(1);
                next_pause += pause_every;
            }
            if (producer_mode == Mode::kOne) {
                const T item = make(next);
                while (!ring.push(item)) {
                    full();
                    backoff();
                }
                ++next;
                continue;
            }
            const auto want = static_cast<std::size_t>(
                std::min<std::uint64_t>(1 + rng.below(static_cast<int>(kMaxBatch)), items - next));
            for (std::size_t i = 0; i < want; ++i) batch[i] = make(next + i);
            for (std::size_t done = 0; done < want;) {
                const std::size_t n = ring.push(batch.data() + done, want - done);
                if (n == 0) {
                    full();
                    backoff();
                }
                done += n;
            }
            next += want;
        }
        producer_done.store(true, std::memory_order_release);
    });

    StressOutcome out;
    Rng rng(0xc0ffee);
    std::vector<T> batch(kMaxBatch);
    std::uint64_t next_pause = pause_every + pause_every / 2;
    const auto empty = [&] {
        ++out.empty_hits;
        empty_hits.fetch_add(1, std::memory_order_release);
    };
    auto check = [&](const T& item) {
        if (!matches(item, out.received)) {
            if (out.mismatches++ == 0) out.first_mismatch = out.received;
        }
        ++out.received;
    };
    while (out.received < items) {
        if (out.received >= next_pause) {
            if (!pause_until(full_hits, full_hits.load(std::memory_order_acquire), producer_done)) stalled.fetch_add(1);
            next_pause += pause_every;
        }
        if (consumer_mode == Mode::kOne) {
            T item{};
            if (ring.pop(item)) {
                check(item);
            } else {
                empty();
                backoff();
            }
            continue;
        }
        const std::size_t n = ring.pop(batch.data(), 1 + rng.below(static_cast<int>(kMaxBatch)));
        if (n == 0) {
            empty();
            backoff();
        }
        // More than was sent would also be a failure: stop at `items` and let the size check below catch extras.
        for (std::size_t i = 0; i < n; ++i) check(batch[i]);
    }
    consumer_done.store(true, std::memory_order_release);
    producer.join();
    out.full_hits = full_hits.load(std::memory_order_relaxed);
    out.stalled_pauses = stalled.load(std::memory_order_relaxed);
    out.size_after = ring.size();
    return out;
}

/// The assertions every stress run must pass.
void check_outcome(const StressOutcome& out, std::uint64_t items) {
    INFO("first out-of-sequence item at stream position " << out.first_mismatch);
    CHECK(out.mismatches == 0);
    CHECK(out.received == items);  // a duplicate or a lost item shifts the sequence; an extra one shows here
    CHECK(out.size_after == 0);
    // Guards the test itself: both slow paths (re-reading the other side's index) must have run.
    CHECK(out.full_hits > 0);
    CHECK(out.empty_hits > 0);
    CHECK(out.stalled_pauses == 0);
    MESSAGE(items << " items, producer found the ring full " << out.full_hits << " times, consumer found it empty "
                  << out.empty_hits << " times");
}

/// Sequence number as its own item.
std::uint64_t make_u64(std::uint64_t seq) { return seq; }
/// Checks a plain sequence number.
bool u64_matches(std::uint64_t v, std::uint64_t seq) { return v == seq; }

}  // namespace

TEST_CASE("capacity must be a power of two >= 2") {
    for (std::size_t bad : {0u, 1u, 3u, 6u, 1000u, 1025u}) {
        INFO("capacity " << bad);
        CHECK_THROWS_AS(SpscRing<int>{bad}, std::invalid_argument);
    }
    for (std::size_t good : {2u, 4u, 1024u, 1u << 16}) {
        SpscRing<int> ring(good);
        CHECK(ring.capacity() == good);
        CHECK(ring.size() == 0);
    }
}

TEST_CASE("push fails when full and keeps what is queued") {
    SpscRing<int> ring(8);
    for (int i = 0; i < 8; ++i) REQUIRE(ring.push(i));
    CHECK(ring.size() == 8);
    CHECK_FALSE(ring.push(99));
    CHECK(ring.size() == 8);
    int v = -1;
    REQUIRE(ring.pop(v));
    CHECK(v == 0);
    CHECK(ring.push(8));  // one slot freed, one push fits
    CHECK_FALSE(ring.push(9));
    for (int i = 1; i <= 8; ++i) {
        REQUIRE(ring.pop(v));
        CHECK(v == i);  // the rejected 99 and 9 never appear
    }
}

TEST_CASE("pop fails when empty and leaves the output untouched") {
    SpscRing<int> ring(4);
    int v = 42;
    CHECK_FALSE(ring.pop(v));
    CHECK(v == 42);
    REQUIRE(ring.push(7));
    REQUIRE(ring.pop(v));
    CHECK(v == 7);
    v = 42;
    CHECK_FALSE(ring.pop(v));
    CHECK(v == 42);
    int buf[4] = {1, 2, 3, 4};
    CHECK(ring.pop(buf, 4) == 0);
    CHECK(buf[0] == 1);
}

TEST_CASE("single-item wraparound keeps order across many laps") {
    SpscRing<std::uint32_t> ring(4);
    std::uint32_t sent = 0, expected = 0;
    for (int round = 0; round < 1000; ++round) {
        const int n = 1 + round % 4;  // 1..4 items: the fill level and the wrap point both move
        for (int i = 0; i < n; ++i) REQUIRE(ring.push(sent++));
        CHECK(ring.size() == static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            std::uint32_t v = 0;
            REQUIRE(ring.pop(v));
            REQUIRE(v == expected++);
        }
    }
    CHECK(ring.size() == 0);
}

TEST_CASE("bulk push and pop wrap around the end of the storage") {
    SpscRing<int> ring(8);
    int scratch[8];
    for (int i = 0; i < 6; ++i) scratch[i] = i;
    REQUIRE(ring.push(scratch, 6) == 6);
    REQUIRE(ring.pop(scratch, 6) == 6);
    // Both indices now sit at 6: the next 8 items occupy slots 6, 7, 0, 1, ..., 5.
    int in[8], out[8] = {};
    for (int i = 0; i < 8; ++i) in[i] = 100 + i;
    CHECK(ring.push(in, 8) == 8);
    CHECK(ring.size() == 8);
    CHECK(ring.pop(out, 8) == 8);
    for (int i = 0; i < 8; ++i) CHECK(out[i] == 100 + i);
}

TEST_CASE("bulk push and pop move only what fits or what is there") {
    SpscRing<int> ring(8);
    int in[16];
    for (int i = 0; i < 16; ++i) in[i] = i;
    CHECK(ring.push(in, 0) == 0);
    CHECK(ring.push(in, 5) == 5);
    CHECK(ring.push(in + 5, 10) == 3);  // only 3 slots left
    CHECK(ring.push(in + 8, 1) == 0);
    CHECK_FALSE(ring.push(in[8]));
    int out[16] = {};
    CHECK(ring.pop(out, 0) == 0);
    CHECK(ring.pop(out, 3) == 3);
    CHECK(ring.pop(out + 3, 100) == 5);
    for (int i = 0; i < 8; ++i) CHECK(out[i] == i);
    CHECK(ring.pop(out, 100) == 0);
    // Mixed single and bulk calls share the same indices.
    REQUIRE(ring.push(in, 7) == 7);
    int v = -1;
    REQUIRE(ring.pop(v));
    CHECK(v == 0);
    CHECK(ring.push(in + 7, 4) == 2);
    CHECK(ring.pop(out, 16) == 8);
    for (int i = 0; i < 8; ++i) CHECK(out[i] == i + 1);
}

TEST_CASE("stress: uint64 sequence, one item per call") {
    const std::uint64_t items = stress_items();
    check_outcome(run_stress<std::uint64_t>(items, Mode::kOne, Mode::kOne, make_u64, u64_matches), items);
}

TEST_CASE("stress: uint64 sequence, bulk push and bulk pop") {
    const std::uint64_t items = stress_items();
    check_outcome(run_stress<std::uint64_t>(items, Mode::kBulk, Mode::kBulk, make_u64, u64_matches), items);
}

TEST_CASE("stress: struct sequence, one item per call") {
    const std::uint64_t items = stress_items();
    check_outcome(run_stress<Record>(items, Mode::kOne, Mode::kOne, make_record, record_matches), items);
}

TEST_CASE("stress: struct sequence, bulk push and single pop") {
    const std::uint64_t items = stress_items();
    check_outcome(run_stress<Record>(items, Mode::kBulk, Mode::kOne, make_record, record_matches), items);
}

TEST_CASE("stress: struct sequence, single push and bulk pop") {
    const std::uint64_t items = stress_items();
    check_outcome(run_stress<Record>(items, Mode::kOne, Mode::kBulk, make_record, record_matches), items);
}
