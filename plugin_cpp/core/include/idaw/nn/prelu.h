// Parametric ReLU with one slope per channel.
#pragma once

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/layer.h"

namespace idaw::nn {

/// y = x >= 0 ? x : alpha_i x (RTNeural's PReLUActivation).
class Prelu final : public Layer {
  public:
    /// `alpha` has `size` slopes. Not real-time safe.
    Prelu(const Kernels& k, int size, const float* alpha, std::size_t parameters);

    /// One frame. Real-time safe.
    void forward(const float* in, float* out) noexcept override;

  private:
    AlignedBuffer alpha_;
};

}  // namespace idaw::nn
