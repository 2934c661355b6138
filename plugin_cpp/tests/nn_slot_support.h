// Models that say who they are and count their own destruction, for the ModelSlot tests.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "idaw/nn/layer.h"
#include "idaw/nn/model.h"

namespace idaw::nn::test {

/// Live and ever-built counts of tagged models.
struct ModelCensus {
    std::atomic<long> built{0};
    std::atomic<long> destroyed{0};
};

/// A one-in, one-out layer that outputs its model's id and reports its destruction to a census.
class TagLayer final : public Layer {
  public:
    TagLayer(const Kernels& k, float id, ModelCensus& census)
        : Layer(k, {LayerType::Activation, Activation::None, 1, 1, 0, 0, 0}), id_(id), census_(census) {
        census_.built.fetch_add(1, std::memory_order_relaxed);
    }
    ~TagLayer() override { census_.destroyed.fetch_add(1, std::memory_order_relaxed); }

    /// Writes the id. Real-time safe.
    void forward(const float*, float* out) noexcept override { out[0] = id_; }

  private:
    float id_;
    ModelCensus& census_;
};

/// A model whose output is always `id`.
inline std::unique_ptr<Model> tagged_model(float id, ModelCensus& census) {
    std::vector<std::unique_ptr<Layer>> layers;
    layers.push_back(std::make_unique<TagLayer>(best_kernels(), id, census));
    return std::make_unique<Model>(best_kernels(), 1, std::move(layers));
}

/// Runs one frame and returns the id of the model.
inline float model_id(Model& m) noexcept {
    const float x = 0.0f;
    float y = -1.0f;
    m.forward(&x, &y);
    return y;
}

}  // namespace idaw::nn::test
