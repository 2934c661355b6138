#include "idaw/nn/conv1d.h"

#include <cstddef>
#include <cstring>

namespace idaw::nn {

Conv1d::Conv1d(const Kernels& k, int in_size, int out_size, int kernel_size, int dilation, const float* kernel,
               const float* bias, Activation act)
    : Layer(k, {LayerType::Conv1d, act, in_size, out_size,
                static_cast<std::size_t>(kernel_size) * in_size * out_size + static_cast<std::size_t>(out_size),
                kernel_size, dilation}),
      kernel_size_(kernel_size),
      dilation_(dilation),
      x_cols_(static_cast<int>(round_up(static_cast<std::size_t>(in_size), kChunk))),
      history_((kernel_size - 1) * dilation + 1),
      // Column block m multiplies the frame m * d steps back, which is JSON tap K - 1 - m.
      w_(out_size, kernel_size * x_cols_,
         [&](int o, int c) {
             const int m = c / x_cols_, j = c % x_cols_;
             if (j >= in_size) return 0.0f;
             const std::size_t tap = static_cast<std::size_t>(kernel_size - 1 - m);
             return kernel[(tap * in_size + j) * out_size + o];
         }),
      bias_(static_cast<std::size_t>(w_.padded_rows())),
      ring_(static_cast<std::size_t>(history_) * x_cols_),
      taps_(static_cast<std::size_t>(kernel_size) * x_cols_) {
    std::memcpy(bias_.data(), bias, static_cast<std::size_t>(out_size) * sizeof(float));
}

void Conv1d::forward(const float* in, float* out) noexcept {
    newest_ = newest_ + 1 == history_ ? 0 : newest_ + 1;
    const std::size_t row_bytes = static_cast<std::size_t>(x_cols_) * sizeof(float);
    std::memcpy(ring_.data() + static_cast<std::size_t>(newest_) * x_cols_, in,
                static_cast<std::size_t>(info_.in_size) * sizeof(float));
    for (int m = 0; m < kernel_size_; ++m) {
        int slot = newest_ - m * dilation_;
        if (slot < 0) slot += history_;
        std::memcpy(taps_.data() + static_cast<std::size_t>(m) * x_cols_,
                    ring_.data() + static_cast<std::size_t>(slot) * x_cols_, row_bytes);
    }
    w_.multiply(k_, taps_.data(), bias_.data(), out);
    apply_activation(k_, info_.activation, out, info_.out_size);
}

void Conv1d::reset() noexcept {
    ring_.zero();
    newest_ = 0;
}

}  // namespace idaw::nn
