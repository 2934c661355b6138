#include "idaw/nn/activation.h"

#include <algorithm>
#include <cmath>

namespace idaw::nn {

const char* activation_name(Activation a) noexcept {
    switch (a) {
        case Activation::None:
            return "";
        case Activation::Tanh:
            return "tanh";
        case Activation::Relu:
            return "relu";
        case Activation::Sigmoid:
            return "sigmoid";
        case Activation::Softmax:
            return "softmax";
        case Activation::Elu:
            return "elu";
    }
    return "?";
}

bool parse_activation(std::string_view name, Activation& out) noexcept {
    static constexpr Activation kAll[] = {Activation::None,    Activation::Tanh,    Activation::Relu,
                                          Activation::Sigmoid, Activation::Softmax, Activation::Elu};
    for (Activation a : kAll) {
        if (name == activation_name(a)) {
            out = a;
            return true;
        }
    }
    return false;
}

void apply_activation(const Kernels& k, Activation a, float* v, int n) noexcept {
    switch (a) {
        case Activation::None:
            return;
        case Activation::Tanh:
            k.tanh(v, n);
            return;
        case Activation::Relu:
            for (int i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
            return;
        case Activation::Sigmoid:
            k.sigmoid(v, n);
            return;
        case Activation::Softmax: {
            if (n <= 0) return;
            float top = v[0];
            for (int i = 1; i < n; ++i) top = std::max(top, v[i]);
            for (int i = 0; i < n; ++i) v[i] -= top;
            k.exp(v, n);
            float sum = 0.0f;
            for (int i = 0; i < n; ++i) sum += v[i];
            const float scale = 1.0f / sum;
            for (int i = 0; i < n; ++i) v[i] *= scale;
            return;
        }
        case Activation::Elu: {
            // exp(x) - 1 on every element is cheaper vectorised than a branch per element; keep x where x > 0.
            constexpr int kBlock = 64;
            float e[kBlock];
            for (int start = 0; start < n; start += kBlock) {
                const int count = std::min(kBlock, n - start);
                for (int i = 0; i < count; ++i) e[i] = std::min(v[start + i], 0.0f);
                k.exp(e, count);
                for (int i = 0; i < count; ++i) {
                    const float x = v[start + i];
                    v[start + i] = x > 0.0f ? x : e[i] - 1.0f;
                }
            }
            return;
        }
    }
}

}  // namespace idaw::nn
