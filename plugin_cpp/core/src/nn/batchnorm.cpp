#include "idaw/nn/batchnorm.h"

#include <cmath>

namespace idaw::nn {

BatchNorm::BatchNorm(const Kernels& k, int size, const float* gamma, const float* beta, const float* mean,
                     const float* var, float epsilon)
    : Layer(k, {LayerType::BatchNorm, Activation::None, size, size, static_cast<std::size_t>(size) * (gamma ? 4 : 2), 0,
                0}),
      multiplier_(round_up(static_cast<std::size_t>(size), kChunk)),
      mean_(round_up(static_cast<std::size_t>(size), kChunk)),
      beta_(round_up(static_cast<std::size_t>(size), kChunk)) {
    for (int i = 0; i < size; ++i) {
        const float g = gamma ? gamma[i] : 1.0f;
        multiplier_.data()[i] = g / std::sqrt(var[i] + epsilon);  // float, as RTNeural's updateMultiplier()
        mean_.data()[i] = mean[i];
        beta_.data()[i] = beta ? beta[i] : 0.0f;
    }
}

void BatchNorm::forward(const float* in, float* out) noexcept {
    const float* m = multiplier_.data();
    const float* mean = mean_.data();
    const float* beta = beta_.data();
    for (int i = 0; i < info_.out_size; ++i) out[i] = m[i] * (in[i] - mean[i]) + beta[i];
}

}  // namespace idaw::nn
