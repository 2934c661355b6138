// GRU layer: RTNeural's GRULayer (Keras reset_after layout), state carried between frames.
#pragma once

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/layer.h"
#include "idaw/nn/packed_matrix.h"

namespace idaw::nn {

/// RTNeural's formula, with gate blocks z, r, h and bias rows b0 (input) and b1 (recurrent):
///   z = sigmoid(Wz x + Uz h + b0z + b1z), r = sigmoid(Wr x + Ur h + b0r + b1r),
///   c = tanh(Wh x + b0h + r (Uh h + b1h)), h' = (1 - z) c + z h.
/// This equals PyTorch's GRU once its gates (r, z, n) are reordered to (z, r, n).
class Gru final : public Layer {
  public:
    /// `kernel` is in x 3H and `recurrent` H x 3H, row-major, gate blocks z, r, h; `bias` is 2 x 3H row-major
    /// (row 0 input biases, row 1 recurrent biases). Not real-time safe.
    Gru(const Kernels& k, int in_size, int hidden, const float* kernel, const float* recurrent, const float* bias);

    /// One frame. Real-time safe.
    void forward(const float* in, float* out) noexcept override;
    /// Zeroes h. Real-time safe.
    void reset() noexcept override;

  private:
    int hidden_;
    int x_cols_;
    PackedMatrix zr_;          // 2H rows (z, r) over [x; h]
    PackedMatrix wh_;          // H rows over x
    PackedMatrix uh_;          // H rows over h
    AlignedBuffer zr_bias_;    // b0 + b1 for z and r
    AlignedBuffer b0h_, b1h_;  // candidate biases, kept apart as r multiplies only the recurrent part
    AlignedBuffer xh_;         // [x (padded); h]
    AlignedBuffer zr_out_, cx_, ch_;
};

}  // namespace idaw::nn
