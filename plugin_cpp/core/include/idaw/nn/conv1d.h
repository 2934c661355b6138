// Causal streaming 1-D convolution: RTNeural's Conv1D, one frame in, one frame out, history kept inside.
#pragma once

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/layer.h"
#include "idaw/nn/packed_matrix.h"

namespace idaw::nn {

/// y[t] = act(b + sum_j W_j x[t - (K - 1 - j) d]) over taps j = 0..K-1, with x before the first frame zero: PyTorch's
/// Conv1d(in, out, K, dilation=d) on a signal left-padded with (K - 1) d zeros, evaluated at the newest frame.
class Conv1d final : public Layer {
  public:
    /// `kernel` is K x in x out, row-major (PyTorch weight.permute(2, 1, 0), the JSON order); `bias` has out
    /// values. Not real-time safe.
    Conv1d(const Kernels& k, int in_size, int out_size, int kernel_size, int dilation, const float* kernel,
           const float* bias, Activation act);

    /// One frame. Real-time safe.
    void forward(const float* in, float* out) noexcept override;
    /// Forgets the history (back to zeros). Real-time safe.
    void reset() noexcept override;

  private:
    int kernel_size_;
    int dilation_;
    int x_cols_;      // padded input width
    int history_;     // frames kept: (K - 1) d + 1
    int newest_ = 0;  // slot of the newest frame in the ring
    PackedMatrix w_;  // out rows over the K gathered frames, newest first
    AlignedBuffer bias_;
    AlignedBuffer ring_;  // history_ x x_cols_
    AlignedBuffer taps_;  // K x x_cols_, gathered newest first
};

}  // namespace idaw::nn
