// Fully connected layer with an optional fused activation.
#pragma once

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/layer.h"
#include "idaw/nn/packed_matrix.h"

namespace idaw::nn {

/// y = act(W x + b), RTNeural's Dense followed by the activation named in the same JSON layer.
class Dense final : public Layer {
  public:
    /// `kernel` is in_size x out_size, row-major (Keras/RTNeural orientation: kernel[i * out + o] = W[o][i]);
    /// `bias` has out_size values. Not real-time safe.
    Dense(const Kernels& k, int in_size, int out_size, const float* kernel, const float* bias, Activation act);

    /// One frame. Real-time safe.
    void forward(const float* in, float* out) noexcept override;

  private:
    PackedMatrix w_;
    AlignedBuffer bias_;  // padded_rows
};

}  // namespace idaw::nn
