// Every layer type of the network runtime against values worked out by hand, then against double-precision
// formulas (RTNeural's) with seeded weights at sizes that exercise the padding; both kernel sets; the kernels alone.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "idaw/nn/activation_layer.h"
#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/dense.h"
#include "idaw/nn/packed_matrix.h"
#include "nn_test_support.h"

using namespace idaw::nn;
using namespace idaw::nn::test;

namespace {

/// Runs frames through a model from zero state; returns the outputs, frame after frame.
std::vector<std::vector<float>> run(Model& model, const std::vector<std::vector<float>>& frames) {
    std::vector<std::vector<float>> out;
    for (const auto& x : frames) {
        REQUIRE(x.size() == static_cast<std::size_t>(model.input_size()));
        std::vector<float> y(static_cast<std::size_t>(model.output_size()));
        model.forward(x.data(), y.data());
        out.push_back(y);
    }
    return out;
}

/// Checks two sequences of frames agree within `tolerance` (absolute).
void check_close(const std::vector<std::vector<float>>& got, const std::vector<std::vector<double>>& want,
                 double tolerance) {
    REQUIRE(got.size() == want.size());
    double worst = 0.0;
    for (std::size_t t = 0; t < got.size(); ++t) {
        REQUIRE(got[t].size() == want[t].size());
        for (std::size_t i = 0; i < got[t].size(); ++i) {
            const double d = std::fabs(static_cast<double>(got[t][i]) - want[t][i]);
            if (!(d <= tolerance)) {
                INFO("frame " << t << " output " << i << ": got " << got[t][i] << ", want " << want[t][i]);
                CHECK(d <= tolerance);
            }
            worst = std::max(worst, d);
        }
    }
    CHECK(worst <= tolerance);
}

std::vector<std::vector<float>> random_frames(Rng& rng, int count, int width, double scale = 1.0) {
    std::vector<std::vector<float>> frames;
    for (int t = 0; t < count; ++t) frames.push_back(random_values(rng, static_cast<std::size_t>(width), scale));
    return frames;
}

// Double-precision references, written from RTNeural's layer code (see the layer headers).

std::vector<double> dense_ref(const std::vector<float>& kernel, const std::vector<float>& bias,
                              const std::vector<double>& x) {
    const std::size_t out = bias.size(), in = x.size();
    std::vector<double> y(out);
    for (std::size_t o = 0; o < out; ++o) {
        double s = bias[o];
        for (std::size_t i = 0; i < in; ++i) s += static_cast<double>(kernel[i * out + o]) * x[i];
        y[o] = s;
    }
    return y;
}

/// Gate pre-activations W x + U h + b for `gates` columns of Keras-layout kernels.
std::vector<double> gates_ref(const std::vector<float>& kernel, const std::vector<float>& recurrent,
                              const std::vector<double>& x, const std::vector<double>& h, std::size_t gates) {
    std::vector<double> g(gates, 0.0);
    for (std::size_t j = 0; j < gates; ++j) {
        for (std::size_t i = 0; i < x.size(); ++i) g[j] += static_cast<double>(kernel[i * gates + j]) * x[i];
        for (std::size_t i = 0; i < h.size(); ++i) g[j] += static_cast<double>(recurrent[i * gates + j]) * h[i];
    }
    return g;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("dense: hand-computed outputs, with and without each activation") {
    // kernel (in x out) [[1, -1], [0.5, 2]], bias [0.25, -0.5], x = [2, 4]:
    // y0 = 1*2 + 0.5*4 + 0.25 = 4.25, y1 = -1*2 + 2*4 - 0.5 = 5.5.
    const std::vector<float> kernel{1.0f, -1.0f, 0.5f, 2.0f}, bias{0.25f, -0.5f};
    const std::vector<std::vector<float>> x{{2.0f, 4.0f}, {-2.0f, -4.0f}};
    // Second frame: y0 = -2 - 2 + 0.25 = -3.75, y1 = 2 - 8 - 0.5 = -6.5.
    struct Case {
        const char* act;
        std::vector<std::vector<double>> want;
    };
    const double s0 = std::exp(4.25) + std::exp(5.5), s1 = std::exp(-3.75) + std::exp(-6.5);
    const std::vector<Case> cases{
        {"", {{4.25, 5.5}, {-3.75, -6.5}}},
        {"relu", {{4.25, 5.5}, {0.0, 0.0}}},
        {"tanh", {{std::tanh(4.25), std::tanh(5.5)}, {std::tanh(-3.75), std::tanh(-6.5)}}},
        {"sigmoid", {{sigmoid(4.25), sigmoid(5.5)}, {sigmoid(-3.75), sigmoid(-6.5)}}},
        {"softmax", {{std::exp(4.25) / s0, std::exp(5.5) / s0}, {std::exp(-3.75) / s1, std::exp(-6.5) / s1}}},
        {"elu", {{4.25, 5.5}, {std::exp(-3.75) - 1.0, std::exp(-6.5) - 1.0}}},
    };
    for (Isa isa : test_isas()) {
        for (const auto& c : cases) {
            CAPTURE(isa_name(isa));
            CAPTURE(std::string(c.act));
            auto model = must_load(model_json(2, {dense_json(2, 2, kernel, bias, c.act)}), isa);
            CHECK(model->num_parameters() == 6);
            check_close(run(*model, x), c.want, 3e-7);
        }
    }
}

TEST_CASE("dense: time-distributed-dense is read as dense") {
    json layer = dense_json(2, 1, {1.0f, 2.0f}, {0.5f});
    layer["type"] = "time-distributed-dense";
    auto model = must_load(model_json(2, {layer}));
    check_close(run(*model, {{1.0f, 1.0f}}), {{3.5}}, 1e-7);
}

TEST_CASE("lstm: hand-computed two frames (gate order i, f, g, o; state carried; reset)") {
    // One input, one unit. Kernel columns (i, f, g, o) = (0.5, -0.5, 1, 2); recurrent (0.1, 0.2, 0.3, 0.4);
    // bias (0, 1, 0, -1).
    const auto model_doc = model_json(
        1, {lstm_json(1, 1, {0.5f, -0.5f, 1.0f, 2.0f}, {0.1f, 0.2f, 0.3f, 0.4f}, {0.0f, 1.0f, 0.0f, -1.0f})});
    // Frame 1, x = 1, h = c = 0: i = s(0.5), f = s(0.5), g = tanh(1), o = s(1); c1 = i g; h1 = o tanh(c1).
    const double i1 = sigmoid(0.5), g1 = std::tanh(1.0), o1 = sigmoid(1.0);
    const double c1 = i1 * g1, h1 = o1 * std::tanh(c1);
    // Frame 2, x = -1: i = s(-0.5 + 0.1 h1), f = s(0.5 + 0.2 h1 + 1), g = tanh(-1 + 0.3 h1), o = s(-2 + 0.4 h1 - 1).
    const double i2 = sigmoid(-0.5 + 0.1 * h1), f2 = sigmoid(0.5 + 0.2 * h1 + 1.0);
    const double g2 = std::tanh(-1.0 + 0.3 * h1), o2 = sigmoid(-2.0 + 0.4 * h1 - 1.0);
    const double c2 = f2 * c1 + i2 * g2, h2 = o2 * std::tanh(c2);
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        auto model = must_load(model_doc, isa);
        CHECK(model->num_parameters() == 12);
        check_close(run(*model, {{1.0f}, {-1.0f}}), {{h1}, {h2}}, 3e-7);
        model->reset();
        check_close(run(*model, {{1.0f}}), {{h1}}, 3e-7);
    }
}

TEST_CASE("gru: hand-computed two frames (RTNeural's formula, gates z, r, h, two bias rows)") {
    // Kernel columns (z, r, h) = (0.5, -1, 2); recurrent (0.25, 0.5, -0.5); bias rows (0.1, 0.2, 0.3), (0.4, 0.5, 0.6).
    const auto model_doc = model_json(
        1, {gru_json(1, 1, {0.5f, -1.0f, 2.0f}, {0.25f, 0.5f, -0.5f}, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f})});
    auto step = [](double x, double h) {
        const double z = sigmoid(0.5 * x + 0.25 * h + 0.1 + 0.4);
        const double r = sigmoid(-1.0 * x + 0.5 * h + 0.2 + 0.5);
        const double c = std::tanh(2.0 * x + 0.3 + r * (-0.5 * h + 0.6));
        return (1.0 - z) * c + z * h;
    };
    const double h1 = step(1.0, 0.0), h2 = step(-0.5, h1);
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        auto model = must_load(model_doc, isa);
        CHECK(model->num_parameters() == 12);
        check_close(run(*model, {{1.0f}, {-0.5f}}), {{h1}, {h2}}, 3e-7);
        model->reset();
        check_close(run(*model, {{1.0f}}), {{h1}}, 3e-7);
    }
}

TEST_CASE("conv1d: hand-computed causal stream (JSON tap K-1 is the newest frame), dilation, reset") {
    // K = 2, one channel: JSON kernel [[[0.5]], [[2]]] (tap 0 = oldest), bias 1: y[t] = 1 + 2 x[t] + 0.5 x[t - d].
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        auto d1 = must_load(model_json(1, {conv1d_json(1, 1, 2, 1, {0.5f, 2.0f}, {1.0f})}), isa);
        check_close(run(*d1, {{1.0f}, {2.0f}, {3.0f}}), {{3.0}, {5.5}, {8.0}}, 1e-6);
        d1->reset();
        check_close(run(*d1, {{1.0f}}), {{3.0}}, 1e-6);
        // Dilation 2: x = 1, 2, 3, 4 -> 3, 5, 1 + 6 + 0.5 = 7.5, 1 + 8 + 1 = 10.
        auto d2 = must_load(model_json(1, {conv1d_json(1, 1, 2, 2, {0.5f, 2.0f}, {1.0f})}), isa);
        check_close(run(*d2, {{1.0f}, {2.0f}, {3.0f}, {4.0f}}), {{3.0}, {5.0}, {7.5}, {10.0}}, 1e-6);
        // Fused activation.
        auto act = must_load(model_json(1, {conv1d_json(1, 1, 2, 1, {0.5f, 2.0f}, {-4.0f}, "relu")}), isa);
        check_close(run(*act, {{1.0f}, {2.0f}}), {{0.0}, {0.5}}, 1e-6);
        CHECK(act->layer(0).info().kernel_size == 2);
        CHECK(act->layer(0).info().dilation == 1);
    }
}

TEST_CASE("prelu: per-channel and shared slopes") {
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        auto per = must_load(model_json(2, {prelu_json(2, {0.1f, 0.2f})}), isa);
        check_close(run(*per, {{-1.0f, 3.0f}, {2.0f, -5.0f}}), {{-0.1, 3.0}, {2.0, -1.0}}, 1e-7);
        auto shared = must_load(model_json(2, {prelu_json(2, {0.25f})}), isa);
        CHECK(shared->num_parameters() == 1);
        check_close(run(*shared, {{-2.0f, -4.0f}}), {{-0.5, -1.0}}, 1e-7);
    }
}

TEST_CASE("batchnorm: affine and non-affine, epsilon inside the square root") {
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        // gamma 2, beta 1, mean 3, var 4, eps 0: 2 (x - 3) / 2 + 1 = x - 2.
        auto affine = must_load(model_json(1, {batchnorm_json(1, {2.0f}, {1.0f}, {3.0f}, {4.0f}, 0.0)}), isa);
        check_close(run(*affine, {{5.0f}}), {{3.0}}, 1e-6);
        // mean 1, var 0.25: (x - 1) / 0.5.
        auto plain = must_load(model_json(1, {batchnorm_json(1, {}, {}, {1.0f}, {0.25f}, 0.0)}), isa);
        CHECK(plain->num_parameters() == 2);
        check_close(run(*plain, {{2.0f}}), {{2.0}}, 1e-6);
        // var 0.75 + eps 0.25 = 1: x - mean.
        auto eps = must_load(model_json(1, {batchnorm_json(1, {}, {}, {1.0f}, {0.75f}, 0.25)}), isa);
        check_close(run(*eps, {{3.0f}}), {{2.0}}, 1e-6);
    }
}

TEST_CASE("activation layers: each function by hand") {
    const double ln3 = std::log(3.0);
    struct Case {
        const char* act;
        std::vector<float> x;
        std::vector<double> want;
    };
    const std::vector<Case> cases{
        {"softmax", {0.0f, static_cast<float>(ln3)}, {0.25, 0.75}},
        {"softmax", {1000.0f, 1000.0f}, {0.5, 0.5}},  // shifted by the maximum: no overflow
        {"elu", {-1.0f, 2.0f}, {std::exp(-1.0) - 1.0, 2.0}},
        {"relu", {-1.0f, 2.0f}, {0.0, 2.0}},
        {"tanh", {0.5f, -3.0f}, {std::tanh(0.5), std::tanh(-3.0)}},
        {"sigmoid", {0.0f, -2.0f}, {0.5, sigmoid(-2.0)}},
    };
    for (Isa isa : test_isas()) {
        for (const auto& c : cases) {
            CAPTURE(isa_name(isa));
            CAPTURE(std::string(c.act));
            auto model = must_load(model_json(2, {activation_json(2, c.act)}), isa);
            CHECK(model->num_parameters() == 0);
            check_close(run(*model, {c.x}), {c.want}, 3e-7);
        }
    }
}

TEST_CASE("random weights at padding-exercising sizes match double-precision RTNeural formulas over 40 frames") {
    Rng rng(0x5eed);
    const int in = 5, hidden = 11, conv_out = 9, taps = 3, dilation = 2, dense_out = 13;
    const auto lstm_k = random_values(rng, in * 4 * hidden, 0.5), lstm_u = random_values(rng, hidden * 4 * hidden, 0.5);
    const auto lstm_b = random_values(rng, 4 * hidden, 0.5);
    const auto gru_k = random_values(rng, hidden * 3 * hidden, 0.5),
               gru_u = random_values(rng, hidden * 3 * hidden, 0.5);
    const auto gru_b = random_values(rng, 2 * 3 * hidden, 0.5);
    const auto conv_k = random_values(rng, taps * hidden * conv_out, 0.4), conv_b = random_values(rng, conv_out, 0.4);
    const auto alpha = random_values(rng, conv_out, 0.5);
    const auto gamma = random_values(rng, conv_out, 1.0), beta = random_values(rng, conv_out, 1.0);
    const auto mean = random_values(rng, conv_out, 1.0);
    std::vector<float> var = random_values(rng, conv_out, 1.0);
    for (float& v : var) v = std::fabs(v) + 0.1f;
    const double eps = 1e-3;
    const auto dense_k = random_values(rng, conv_out * dense_out, 0.5), dense_b = random_values(rng, dense_out, 0.5);

    const json doc =
        model_json(in, {lstm_json(in, hidden, lstm_k, lstm_u, lstm_b), gru_json(hidden, hidden, gru_k, gru_u, gru_b),
                        conv1d_json(hidden, conv_out, taps, dilation, conv_k, conv_b, "elu"),
                        prelu_json(conv_out, alpha), batchnorm_json(conv_out, gamma, beta, mean, var, eps),
                        dense_json(conv_out, dense_out, dense_k, dense_b, "softmax")});
    const auto frames = random_frames(rng, 40, in, 1.5);

    // Reference, frame by frame in double.
    std::vector<double> h_lstm(hidden, 0.0), c_lstm(hidden, 0.0), h_gru(hidden, 0.0);
    std::vector<std::vector<double>> history;  // conv inputs, oldest first
    std::vector<std::vector<double>> want;
    for (const auto& frame : frames) {
        const auto x = to_double(frame);
        // LSTM.
        auto g = gates_ref(lstm_k, lstm_u, x, h_lstm, 4 * hidden);
        for (int u = 0; u < hidden; ++u) {
            const double i = sigmoid(g[u] + lstm_b[u]), f = sigmoid(g[hidden + u] + lstm_b[hidden + u]);
            const double gg = std::tanh(g[2 * hidden + u] + lstm_b[2 * hidden + u]);
            const double o = sigmoid(g[3 * hidden + u] + lstm_b[3 * hidden + u]);
            c_lstm[u] = f * c_lstm[u] + i * gg;
            h_lstm[u] = o * std::tanh(c_lstm[u]);
        }
        // GRU (RTNeural: b0 input row, b1 recurrent row; r multiplies U_h h + b1_h).
        std::vector<double> gx(3 * hidden, 0.0), gh(3 * hidden, 0.0);
        for (int j = 0; j < 3 * hidden; ++j)
            for (int i = 0; i < hidden; ++i) {
                gx[j] += static_cast<double>(gru_k[i * 3 * hidden + j]) * h_lstm[i];
                gh[j] += static_cast<double>(gru_u[i * 3 * hidden + j]) * h_gru[i];
            }
        std::vector<double> h_next(hidden);
        for (int u = 0; u < hidden; ++u) {
            const double b0z = gru_b[u], b0r = gru_b[hidden + u], b0h = gru_b[2 * hidden + u];
            const double b1z = gru_b[3 * hidden + u], b1r = gru_b[4 * hidden + u], b1h = gru_b[5 * hidden + u];
            const double z = sigmoid(gx[u] + gh[u] + b0z + b1z);
            const double r = sigmoid(gx[hidden + u] + gh[hidden + u] + b0r + b1r);
            const double c = std::tanh(gx[2 * hidden + u] + b0h + r * (gh[2 * hidden + u] + b1h));
            h_next[u] = (1.0 - z) * c + z * h_gru[u];
        }
        h_gru = h_next;
        // Conv1d: y = b + sum_j W_j x[t - (K - 1 - j) d], zeros before the start; then ELU.
        history.push_back(h_gru);
        std::vector<double> y(conv_out);
        for (int o = 0; o < conv_out; ++o) {
            double s = conv_b[o];
            for (int j = 0; j < taps; ++j) {
                const long back = static_cast<long>(taps - 1 - j) * dilation;
                const long t = static_cast<long>(history.size()) - 1 - back;
                if (t < 0) continue;
                for (int i = 0; i < hidden; ++i)
                    s += static_cast<double>(conv_k[(static_cast<std::size_t>(j) * hidden + i) * conv_out + o]) *
                         history[static_cast<std::size_t>(t)][i];
            }
            y[o] = s > 0.0 ? s : std::exp(s) - 1.0;
        }
        // PReLU, batchnorm.
        for (int o = 0; o < conv_out; ++o) {
            y[o] = y[o] >= 0.0 ? y[o] : alpha[o] * y[o];
            y[o] = gamma[o] / std::sqrt(var[o] + eps) * (y[o] - mean[o]) + beta[o];
        }
        // Dense + softmax.
        auto d = dense_ref(dense_k, dense_b, y);
        const double top = *std::max_element(d.begin(), d.end());
        double sum = 0.0;
        for (double& v : d) sum += (v = std::exp(v - top));
        for (double& v : d) v /= sum;
        want.push_back(d);
    }

    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        auto model = must_load(doc, isa);
        CHECK(model->input_size() == in);
        CHECK(model->output_size() == dense_out);
        CHECK(model->num_layers() == 6);
        const auto first = run(*model, frames);
        check_close(first, want, 2e-6);
        // reset() returns every state to zero: the same frames give bit-identical outputs.
        model->reset();
        CHECK(run(*model, frames) == first);
    }
}

TEST_CASE("layers can be built directly; Model refuses sizes that do not chain") {
    const Kernels& k = best_kernels();
    std::vector<std::unique_ptr<Layer>> layers;
    const float kernel[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};  // in 3 x out 2
    const float bias[] = {0.5f, -0.5f};
    layers.push_back(std::make_unique<Dense>(k, 3, 2, kernel, bias, Activation::None));
    layers.push_back(std::make_unique<ActivationLayer>(k, 2, Activation::Relu));
    Model model(k, 3, std::move(layers));
    // kernel[i * 2 + o]: y0 = 1 x0 + 3 x1 + 5 x2 + 0.5, y1 = 2 x0 + 4 x1 + 6 x2 - 0.5, then relu.
    const float x1[] = {1.0f, 1.0f, 0.0f}, x2[] = {1.0f, 1.0f, -1.0f};
    float y[2];
    model.forward(x1, y);
    CHECK(y[0] == doctest::Approx(4.5));
    CHECK(y[1] == doctest::Approx(5.5));
    model.forward(x2, y);
    CHECK(y[0] == 0.0f);  // -0.5 before relu
    CHECK(y[1] == 0.0f);
    CHECK(model.num_parameters() == 8);

    std::vector<std::unique_ptr<Layer>> bad;
    bad.push_back(std::make_unique<ActivationLayer>(k, 4, Activation::Tanh));
    CHECK_THROWS_AS(Model(k, 3, std::move(bad)), std::invalid_argument);
}

TEST_CASE("kernels: exp, tanh and sigmoid stay within 3e-7 of double precision on both instruction sets") {
    std::vector<float> xs;
    for (int i = -20000; i <= 20000; ++i) xs.push_back(static_cast<float>(i) * 0.001f);  // [-20, 20]
    for (float v : {-100.0f, -88.0f, -50.0f, 50.0f, 87.0f, 100.0f, 1e-8f, -1e-8f, 0.0f, -0.0f, 0.62499f, 0.625f})
        xs.push_back(v);
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        const Kernels& k = *kernels_for(isa);
        std::vector<float> t = xs, s = xs, e = xs;
        k.tanh(t.data(), static_cast<int>(t.size()));
        k.sigmoid(s.data(), static_cast<int>(s.size()));
        k.exp(e.data(), static_cast<int>(e.size()));
        double worst_t = 0.0, worst_s = 0.0, worst_e = 0.0;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const double x = xs[i];
            worst_t = std::max(worst_t, std::fabs(t[i] - std::tanh(x)));
            worst_s = std::max(worst_s, std::fabs(s[i] - sigmoid(x)));
            if (std::fabs(x) < 80.0) worst_e = std::max(worst_e, std::fabs(e[i] - std::exp(x)) / std::exp(x));
        }
        CHECK(worst_t < 3e-7);
        CHECK(worst_s < 3e-7);
        CHECK(worst_e < 3e-7);
        // Special values: NaN propagates, infinities saturate.
        const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
        std::vector<float> special{nan, inf, -inf};
        std::vector<float> st = special, ss = special;
        k.tanh(st.data(), 3);
        k.sigmoid(ss.data(), 3);
        CHECK(std::isnan(st[0]));
        CHECK(st[1] == 1.0f);
        CHECK(st[2] == -1.0f);
        CHECK(std::isnan(ss[0]));
        CHECK(ss[1] == 1.0f);
        CHECK(ss[2] == doctest::Approx(0.0).epsilon(1e-30));
    }
}

TEST_CASE("kernels: matrix-vector product of every small shape on both instruction sets") {
    Rng rng(42);
    for (Isa isa : test_isas()) {
        CAPTURE(isa_name(isa));
        const Kernels& k = *kernels_for(isa);
        for (int rows = 1; rows <= 19; rows += 3) {
            for (int cols = 1; cols <= 41; cols += 4) {
                CAPTURE(rows);
                CAPTURE(cols);
                const auto w = random_values(rng, static_cast<std::size_t>(rows) * cols, 1.0);
                const auto b = random_values(rng, static_cast<std::size_t>(rows), 1.0);
                PackedMatrix m(rows, cols, [&](int r, int c) { return w[static_cast<std::size_t>(r) * cols + c]; });
                AlignedBuffer x(static_cast<std::size_t>(m.padded_cols())),
                    bias(static_cast<std::size_t>(m.padded_rows()));
                AlignedBuffer y(static_cast<std::size_t>(m.padded_rows()));
                for (int c = 0; c < cols; ++c) x.data()[c] = static_cast<float>(rng.uniform(-1.0, 1.0));
                for (int r = 0; r < rows; ++r) bias.data()[r] = b[static_cast<std::size_t>(r)];
                m.multiply(k, x.data(), bias.data(), y.data());
                for (int r = 0; r < rows; ++r) {
                    double want = b[static_cast<std::size_t>(r)];
                    for (int c = 0; c < cols; ++c)
                        want += static_cast<double>(w[static_cast<std::size_t>(r) * cols + c]) * x.data()[c];
                    CHECK(y.data()[r] == doctest::Approx(want).epsilon(1e-5));
                }
                for (int r = rows; r < m.padded_rows(); ++r) CHECK(y.data()[r] == 0.0f);  // padding rows stay zero
                m.multiply(k, x.data(), nullptr, y.data());                               // no bias
                double want0 = 0.0;
                for (int c = 0; c < cols; ++c)
                    want0 += static_cast<double>(w[static_cast<std::size_t>(c)]) * x.data()[c];
                CHECK(y.data()[0] == doctest::Approx(want0).epsilon(1e-5));
            }
        }
    }
}
