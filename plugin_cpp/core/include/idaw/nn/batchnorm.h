// Batch normalisation (inference form) over the feature axis.
#pragma once

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/layer.h"

namespace idaw::nn {

/// RTNeural's BatchNorm1DLayer: y = m (x - mean) + beta with m = gamma / sqrt(var + epsilon) computed once in float.
class BatchNorm final : public Layer {
  public:
    /// Per-feature vectors of `size` values; `gamma` and `beta` may be null (non-affine: 1 and 0). `var + epsilon`
    /// must be positive. Not real-time safe.
    BatchNorm(const Kernels& k, int size, const float* gamma, const float* beta, const float* mean, const float* var,
              float epsilon);

    /// One frame. Real-time safe.
    void forward(const float* in, float* out) noexcept override;

  private:
    AlignedBuffer multiplier_, mean_, beta_;
};

}  // namespace idaw::nn
