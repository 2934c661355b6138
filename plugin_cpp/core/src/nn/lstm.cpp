#include "idaw/nn/lstm.h"

#include <cstddef>
#include <cstring>

namespace idaw::nn {

Lstm::Lstm(const Kernels& k, int in_size, int hidden, const float* kernel, const float* recurrent, const float* bias)
    : Layer(k, {LayerType::Lstm, Activation::None, in_size, hidden,
                (static_cast<std::size_t>(in_size) + hidden + 1) * 4 * static_cast<std::size_t>(hidden), 0, 0}),
      hidden_(hidden),
      x_cols_(static_cast<int>(round_up(static_cast<std::size_t>(in_size), kChunk))),
      w_(4 * hidden, x_cols_ + hidden,
         [&](int r, int c) {
             const std::size_t gates = 4 * static_cast<std::size_t>(hidden);
             if (c < x_cols_) return c < in_size ? kernel[static_cast<std::size_t>(c) * gates + r] : 0.0f;
             return recurrent[static_cast<std::size_t>(c - x_cols_) * gates + r];
         }),
      bias_(static_cast<std::size_t>(w_.padded_rows())),
      xh_(static_cast<std::size_t>(w_.padded_cols())),
      c_(round_up(static_cast<std::size_t>(hidden), kChunk)),
      gates_(static_cast<std::size_t>(w_.padded_rows())) {
    std::memcpy(bias_.data(), bias, 4 * static_cast<std::size_t>(hidden) * sizeof(float));
}

void Lstm::forward(const float* in, float* out) noexcept {
    const int h = hidden_;
    float* xh = xh_.data();
    std::memcpy(xh, in, static_cast<std::size_t>(info_.in_size) * sizeof(float));
    float* g = gates_.data();
    w_.multiply(k_, xh, bias_.data(), g);
    k_.sigmoid(g, 2 * h);      // i, f
    k_.tanh(g + 2 * h, h);     // g
    k_.sigmoid(g + 3 * h, h);  // o
    const float* gi = g;
    const float* gf = g + h;
    const float* gg = g + 2 * h;
    const float* go = g + 3 * h;
    float* c = c_.data();
    for (int u = 0; u < h; ++u) {
        c[u] = gf[u] * c[u] + gi[u] * gg[u];
        out[u] = c[u];
    }
    k_.tanh(out, h);
    float* h_state = xh + x_cols_;
    for (int u = 0; u < h; ++u) {
        out[u] *= go[u];
        h_state[u] = out[u];
    }
}

void Lstm::reset() noexcept {
    xh_.zero();
    c_.zero();
}

}  // namespace idaw::nn
