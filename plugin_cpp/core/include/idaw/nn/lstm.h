// LSTM layer: RTNeural's LSTMLayer (gates i, f, g, o; sigmoid gates, tanh cell), state carried between frames.
#pragma once

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/layer.h"
#include "idaw/nn/packed_matrix.h"

namespace idaw::nn {

/// i, f, o = sigmoid(.), g = tanh(.) of W x + U h + b; c = f c + i g; h = o tanh(c); the output is h.
/// The four gates' kernel and recurrent weights form one matrix over the vector [x; h], so a frame is a single
/// pass over the weights.
class Lstm final : public Layer {
  public:
    /// `kernel` is in x 4H and `recurrent` H x 4H, row-major, gate blocks in the order i, f, g, o (PyTorch's
    /// weight_ih.T and weight_hh.T); `bias` has 4H values (b_ih + b_hh). Not real-time safe.
    Lstm(const Kernels& k, int in_size, int hidden, const float* kernel, const float* recurrent, const float* bias);

    /// One frame. Real-time safe.
    void forward(const float* in, float* out) noexcept override;
    /// Zeroes h and c. Real-time safe.
    void reset() noexcept override;

  private:
    int hidden_;
    int x_cols_;          // input part of [x; h], padded to a chunk
    PackedMatrix w_;      // 4H rows (i, f, g, o blocks) x (x_cols_ + H)
    AlignedBuffer bias_;  // 4H padded
    AlignedBuffer xh_;    // [x (padded); h]
    AlignedBuffer c_;     // cell state
    AlignedBuffer gates_;
};

}  // namespace idaw::nn
