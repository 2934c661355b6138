// A layer that only applies an activation (RTNeural JSON type "activation").
#pragma once

#include "idaw/nn/layer.h"

namespace idaw::nn {

/// y = act(x), same width in and out.
class ActivationLayer final : public Layer {
  public:
    /// `act` must not be None. Not real-time safe.
    ActivationLayer(const Kernels& k, int size, Activation act);

    /// One frame. Real-time safe.
    void forward(const float* in, float* out) noexcept override;
};

}  // namespace idaw::nn
