// Element-wise activations of the network runtime, by RTNeural name.
#pragma once

#include <string_view>

#include "idaw/nn/kernels.h"

namespace idaw::nn {

/// The activations RTNeural's loader knows ("activation" field of dense, conv1d and activation layers).
enum class Activation { None, Tanh, Relu, Sigmoid, Softmax, Elu };

/// RTNeural name of an activation ("" for None). Real-time safe.
const char* activation_name(Activation a) noexcept;

/// Parses an RTNeural activation name ("" is None); returns false for an unknown name. Real-time safe.
bool parse_activation(std::string_view name, Activation& out) noexcept;

/// Applies `a` in place to v[0, n), with RTNeural's formulas: tanh, max(0, x), 1 / (1 + exp(-x)),
/// exp(x_i) / sum exp(x_j) (shifted by the maximum first, which RTNeural omits, so large inputs cannot overflow),
/// and x > 0 ? x : exp(x) - 1 (ELU with alpha 1, as RTNeural's loader builds it). Real-time safe.
void apply_activation(const Kernels& k, Activation a, float* v, int n) noexcept;

}  // namespace idaw::nn
