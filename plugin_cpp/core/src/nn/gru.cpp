#include "idaw/nn/gru.h"

#include <cstddef>
#include <cstring>

namespace idaw::nn {

Gru::Gru(const Kernels& k, int in_size, int hidden, const float* kernel, const float* recurrent, const float* bias)
    : Layer(k, {LayerType::Gru, Activation::None, in_size, hidden,
                (static_cast<std::size_t>(in_size) + hidden + 2) * 3 * static_cast<std::size_t>(hidden), 0, 0}),
      hidden_(hidden),
      x_cols_(static_cast<int>(round_up(static_cast<std::size_t>(in_size), kChunk))),
      zr_(2 * hidden, x_cols_ + hidden,
          [&](int r, int c) {
              const std::size_t gates = 3 * static_cast<std::size_t>(hidden);
              if (c < x_cols_) return c < in_size ? kernel[static_cast<std::size_t>(c) * gates + r] : 0.0f;
              return recurrent[static_cast<std::size_t>(c - x_cols_) * gates + r];
          }),
      wh_(hidden, in_size,
          [&](int r, int c) { return kernel[static_cast<std::size_t>(c) * 3 * hidden + 2 * hidden + r]; }),
      uh_(hidden, hidden,
          [&](int r, int c) { return recurrent[static_cast<std::size_t>(c) * 3 * hidden + 2 * hidden + r]; }),
      zr_bias_(static_cast<std::size_t>(zr_.padded_rows())),
      b0h_(static_cast<std::size_t>(wh_.padded_rows())),
      b1h_(static_cast<std::size_t>(uh_.padded_rows())),
      xh_(static_cast<std::size_t>(zr_.padded_cols())),
      zr_out_(static_cast<std::size_t>(zr_.padded_rows())),
      cx_(static_cast<std::size_t>(wh_.padded_rows())),
      ch_(static_cast<std::size_t>(uh_.padded_rows())) {
    const std::size_t gates = 3 * static_cast<std::size_t>(hidden);
    for (int r = 0; r < 2 * hidden; ++r) zr_bias_.data()[r] = bias[r] + bias[gates + r];
    for (int u = 0; u < hidden; ++u) {
        b0h_.data()[u] = bias[2 * hidden + u];
        b1h_.data()[u] = bias[gates + 2 * hidden + u];
    }
}

void Gru::forward(const float* in, float* out) noexcept {
    const int h = hidden_;
    float* xh = xh_.data();
    float* h_state = xh + x_cols_;
    std::memcpy(xh, in, static_cast<std::size_t>(info_.in_size) * sizeof(float));
    float* zr = zr_out_.data();
    float* cx = cx_.data();
    const float* ch = ch_.data();
    zr_.multiply(k_, xh, zr_bias_.data(), zr);
    wh_.multiply(k_, xh, b0h_.data(), cx);
    uh_.multiply(k_, h_state, b1h_.data(), ch_.data());
    k_.sigmoid(zr, 2 * h);
    const float* z = zr;
    const float* r = zr + h;
    for (int u = 0; u < h; ++u) cx[u] += r[u] * ch[u];
    k_.tanh(cx, h);
    for (int u = 0; u < h; ++u) {
        const float next = (1.0f - z[u]) * cx[u] + z[u] * h_state[u];
        out[u] = next;
        h_state[u] = next;
    }
}

void Gru::reset() noexcept { xh_.zero(); }

}  // namespace idaw::nn
