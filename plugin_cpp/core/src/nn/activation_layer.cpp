#include "idaw/nn/activation_layer.h"

#include <cstring>

namespace idaw::nn {

ActivationLayer::ActivationLayer(const Kernels& k, int size, Activation act)
    : Layer(k, {LayerType::Activation, act, size, size, 0, 0, 0}) {}

void ActivationLayer::forward(const float* in, float* out) noexcept {
    std::memcpy(out, in, static_cast<std::size_t>(info_.out_size) * sizeof(float));
    apply_activation(k_, info_.activation, out, info_.out_size);
}

}  // namespace idaw::nn
