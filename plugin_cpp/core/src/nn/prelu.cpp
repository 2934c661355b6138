#include "idaw/nn/prelu.h"

#include <cstring>

namespace idaw::nn {

Prelu::Prelu(const Kernels& k, int size, const float* alpha, std::size_t parameters)
    : Layer(k, {LayerType::Prelu, Activation::None, size, size, parameters, 0, 0}),
      alpha_(round_up(static_cast<std::size_t>(size), kChunk)) {
    std::memcpy(alpha_.data(), alpha, static_cast<std::size_t>(size) * sizeof(float));
}

void Prelu::forward(const float* in, float* out) noexcept {
    const float* alpha = alpha_.data();
    for (int i = 0; i < info_.out_size; ++i) out[i] = in[i] >= 0.0f ? in[i] : in[i] * alpha[i];
}

}  // namespace idaw::nn
