// The network runtime's audio-thread calls (Model::forward, Model::reset, ModelSlot::acquire) never allocate,
// lock or sleep, as seen by libidaw_rtcheck (normal builds only: sanitizers interpose the same functions).
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "idaw/nn/model_slot.h"
#include "idaw/rt_check.h"
#include "idaw_rtcheck.h"
#include "nn_slot_support.h"
#include "nn_test_support.h"
#include "rtcheck_support.h"

using namespace idaw::nn;
using namespace idaw::nn::test;
using namespace idaw::test;

namespace {

/// A model with every layer type and activation.
json every_layer_model() {
    Rng rng(5);
    auto v = [&](std::size_t n) { return random_values(rng, n, 0.5); };
    return model_json(
        6, {dense_json(6, 12, v(72), v(12), "tanh"), lstm_json(12, 9, v(432), v(324), v(36)),
            gru_json(9, 10, v(270), v(300), v(60)), conv1d_json(10, 7, 3, 2, v(210), v(7), "elu"), prelu_json(7, v(7)),
            batchnorm_json(7, v(7), v(7), v(7), {1, 2, 3, 1, 2, 3, 1}, 1e-5), dense_json(7, 5, v(35), v(5), "relu"),
            dense_json(5, 4, v(20), v(4), "sigmoid"), activation_json(4, "softmax")});
}

}  // namespace

TEST_CASE("checker sanity: an allocation inside a section is seen") { CHECK(checker_sees_an_allocation()); }

TEST_CASE("Model::forward and reset make no allocation, lock or sleep, on both kernel sets") {
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        auto model = must_load(every_layer_model(), isa);
        std::vector<float> x(6), y(4);
        CheckerInstalled checker;
        {
            idaw::rt::Section section;
            for (int t = 0; t < 200; ++t) {
                for (int i = 0; i < 6; ++i) x[static_cast<std::size_t>(i)] = 0.01f * static_cast<float>(t - 3 * i);
                model->forward(x.data(), y.data());
            }
            model->reset();
            model->forward(x.data(), y.data());
        }
        CHECK(idaw_rtcheck_violations() == 0);
        CHECK(std::string(idaw_rtcheck_last_violation()).empty());
    }
}

TEST_CASE("ModelSlot::acquire on the audio thread stays clean while a loader thread builds and frees models") {
    ModelCensus census;
    ModelSlot slot;
    std::atomic<bool> stop{false};
    CheckerInstalled checker;
    std::thread audio([&] {
        std::vector<float> x(6, 0.1f), y(4);
        while (!stop.load(std::memory_order_acquire)) {
            idaw::rt::Section section;  // one audio block
            if (Model* m = slot.acquire()) {
                if (m->input_size() == 6)
                    m->forward(x.data(), y.data());
                else
                    (void)model_id(*m);
            }
        }
    });
    // The loader allocates and frees outside any section: none of that may count.
    for (int i = 0; i < 60; ++i) {
        if (i % 2)
            slot.install(must_load(every_layer_model()));
        else
            slot.install(tagged_model(static_cast<float>(i), census));
        std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    while (slot.pending()) {
        slot.collect();
        std::this_thread::yield();
    }
    stop.store(true, std::memory_order_release);
    audio.join();
    slot.collect();
    CHECK(slot.swaps() >= 1);
    CHECK(idaw_rtcheck_violations() == 0);
    CHECK(std::string(idaw_rtcheck_last_violation()).empty());
}
