// The interface every layer of the network runtime implements.
#pragma once

#include <cstddef>

#include "idaw/nn/activation.h"
#include "idaw/nn/kernels.h"

namespace idaw::nn {

/// Layer kinds, named as in RTNeural's JSON "type" field.
enum class LayerType { Dense, Lstm, Gru, Conv1d, Prelu, BatchNorm, Activation };

/// RTNeural type name of a layer kind ("dense", "lstm", ...). Real-time safe.
const char* layer_type_name(LayerType t) noexcept;

/// What a layer is, for summaries and checks.
struct LayerInfo {
    LayerType type = LayerType::Dense;
    Activation activation = Activation::None;  ///< fused activation (dense, conv1d) or the activation layer's
    int in_size = 0;
    int out_size = 0;
    std::size_t parameters = 0;  ///< numbers the layer's JSON weights hold
    int kernel_size = 0;         ///< conv1d only
    int dilation = 0;            ///< conv1d only
};

/// One layer, batch 1, one frame per call. Weights and state are allocated by the constructor; forward() and
/// reset() never allocate. Vectors passed in and out are padded to a multiple of kChunk floats; the padding of
/// an input must be finite (the model keeps it zero).
class Layer {
  public:
    /// Remembers the kernel set and sizes.
    Layer(const Kernels& kernels, LayerInfo info) noexcept : k_(kernels), info_(info) {}
    virtual ~Layer() = default;
    Layer(const Layer&) = delete;
    Layer& operator=(const Layer&) = delete;

    /// Computes one frame: reads in_size() floats, writes out_size() (may zero the padding), advances state.
    /// Real-time safe.
    virtual void forward(const float* in, float* out) noexcept = 0;
    /// Clears recurrent or convolution state (no-op for stateless layers). Real-time safe.
    virtual void reset() noexcept {}

    /// Kind, sizes, activation and parameter count. Real-time safe.
    const LayerInfo& info() const noexcept { return info_; }
    /// Input width. Real-time safe.
    int in_size() const noexcept { return info_.in_size; }
    /// Output width. Real-time safe.
    int out_size() const noexcept { return info_.out_size; }

  protected:
    const Kernels& k_;
    LayerInfo info_;
};

}  // namespace idaw::nn
