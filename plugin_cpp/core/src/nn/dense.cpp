#include "idaw/nn/dense.h"

#include <cstddef>
#include <cstring>

namespace idaw::nn {

Dense::Dense(const Kernels& k, int in_size, int out_size, const float* kernel, const float* bias, Activation act)
    : Layer(k, {LayerType::Dense, act, in_size, out_size,
                static_cast<std::size_t>(in_size) * out_size + static_cast<std::size_t>(out_size), 0, 0}),
      w_(out_size, in_size, [&](int r, int c) { return kernel[static_cast<std::size_t>(c) * out_size + r]; }),
      bias_(static_cast<std::size_t>(w_.padded_rows())) {
    std::memcpy(bias_.data(), bias, static_cast<std::size_t>(out_size) * sizeof(float));
}

void Dense::forward(const float* in, float* out) noexcept {
    w_.multiply(k_, in, bias_.data(), out);
    apply_activation(k_, info_.activation, out, info_.out_size);
}

}  // namespace idaw::nn
