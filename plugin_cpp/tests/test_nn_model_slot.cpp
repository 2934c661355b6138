// ModelSlot: the loader thread installs models, the audio thread takes them up at block boundaries with one atomic
// exchange, and every replaced model is freed on the loader side. Single-thread semantics, then two threads
// (run under TSan and ASan too: a model freed while in use, or never freed, fails there).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "idaw/nn/model_slot.h"
#include "nn_slot_support.h"
#include "test_support.h"

using namespace idaw::nn;
using namespace idaw::nn::test;

TEST_CASE("model slot: install, take up, retire, collect, clear") {
    ModelCensus census;
    {
        ModelSlot slot;
        CHECK(slot.acquire() == nullptr);
        CHECK_FALSE(slot.pending());
        CHECK_FALSE(slot.collect());

        slot.install(tagged_model(1, census));
        CHECK(slot.pending());
        CHECK(slot.current() == nullptr);  // nothing changes until the audio thread asks
        Model* m1 = slot.acquire();
        REQUIRE(m1 != nullptr);
        CHECK(model_id(*m1) == 1.0f);
        CHECK(slot.current() == m1);
        CHECK(slot.swaps() == 1);
        CHECK_FALSE(slot.pending());
        CHECK(slot.acquire() == m1);  // nothing pending: same model, no swap
        CHECK(slot.swaps() == 1);

        slot.install(tagged_model(2, census));
        Model* m2 = slot.acquire();
        CHECK(model_id(*m2) == 2.0f);
        CHECK(census.destroyed == 0);  // model 1 waits in the mailbox: the audio thread never frees
        CHECK(slot.collect());
        CHECK(census.destroyed == 1);
        CHECK_FALSE(slot.collect());

        // Two installs before the audio thread looks: the first one is freed by the second install.
        slot.install(tagged_model(3, census));
        slot.install(tagged_model(4, census));
        CHECK(census.destroyed == 2);
        CHECK(model_id(*slot.acquire()) == 4.0f);

        // clear(): the audio thread drops its model at the next block.
        slot.clear();
        CHECK(slot.pending());
        CHECK(slot.acquire() == nullptr);
        CHECK(slot.current() == nullptr);
        CHECK(slot.collect());
        CHECK(census.destroyed == 4);  // 1, 3, 2 and 4

        slot.install(tagged_model(5, census));
        slot.install(nullptr);  // ignored (only collects)
        CHECK(model_id(*slot.acquire()) == 5.0f);
        slot.install(tagged_model(6, census));  // left pending: the destructor frees it
    }
    CHECK(census.built == 6);
    CHECK(census.destroyed == 6);
}

TEST_CASE("model slot: a loader thread and an audio thread hand over 300 models without loss or early free") {
    using idaw::test::kThreadSanitizer;
    const int models = kThreadSanitizer ? 100 : 300;
    ModelCensus census;
    std::atomic<bool> loader_done{false}, stop{false};
    std::atomic<long> bad_ids{0}, backwards{0}, blocks{0}, blocks_with_model{0};
    float last_seen = 0.0f;
    {
        ModelSlot slot;
        std::thread audio([&] {
            float last = 0.0f;
            while (!stop.load(std::memory_order_acquire)) {
                Model* m = slot.acquire();  // block boundary
                blocks.fetch_add(1, std::memory_order_relaxed);
                if (m != nullptr) {
                    // A block: several frames with the same model.
                    for (int f = 0; f < 8; ++f) {
                        const float id = model_id(*m);
                        if (!(id >= 1.0f && id <= static_cast<float>(models))) bad_ids.fetch_add(1);
                        if (id < last) backwards.fetch_add(1);
                        last = id;
                    }
                    blocks_with_model.fetch_add(1, std::memory_order_relaxed);
                }
            }
            last_seen = last;
        });
        idaw::test::Rng rng(3);
        for (int id = 1; id <= models; ++id) {
            slot.install(tagged_model(static_cast<float>(id), census));
            const int pause_us = rng.below(200);
            if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
            if (rng.below(4) == 0) slot.collect();
        }
        // Let the audio thread take up the last model, then stop it.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (slot.pending() && std::chrono::steady_clock::now() < deadline) {
            slot.collect();
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        loader_done = true;
        CHECK_FALSE(slot.pending());
        stop.store(true, std::memory_order_release);
        audio.join();
        CHECK(model_id(*slot.current()) == static_cast<float>(models));
        slot.collect();
        // Everything but the current model is freed, on this thread.
        CHECK(census.destroyed == models - 1);
        CHECK(slot.swaps() >= 1);
        MESSAGE("model slot: " << slot.swaps() << " swaps seen by the audio thread for " << models << " installs over "
                               << blocks.load() << " blocks");
    }
    CHECK(loader_done);
    CHECK(bad_ids == 0);
    CHECK(backwards == 0);
    CHECK(last_seen == static_cast<float>(models));
    CHECK(blocks_with_model > 0);
    CHECK(census.built == models);
    CHECK(census.destroyed == models);
}
