#include "idaw/nn/model.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace idaw::nn {

const char* layer_type_name(LayerType t) noexcept {
    switch (t) {
        case LayerType::Dense:
            return "dense";
        case LayerType::Lstm:
            return "lstm";
        case LayerType::Gru:
            return "gru";
        case LayerType::Conv1d:
            return "conv1d";
        case LayerType::Prelu:
            return "prelu";
        case LayerType::BatchNorm:
            return "batchnorm";
        case LayerType::Activation:
            return "activation";
    }
    return "?";
}

namespace {

/// Floats reserved for a vector of `n`: whole chunks, rounded to a cache line so slots never share one.
std::size_t slot_floats(int n) noexcept {
    return round_up(static_cast<std::size_t>(n), kBufferAlignment / sizeof(float));
}

}  // namespace

Model::Model(const Kernels& kernels, int input_size, std::vector<std::unique_ptr<Layer>> layers)
    : kernels_(kernels), input_size_(input_size), layers_(std::move(layers)) {
    if (input_size < 1) throw std::invalid_argument("model input size must be positive");
    int width = input_size;
    std::size_t total = slot_floats(width);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (!layers_[i]) throw std::invalid_argument("layer " + std::to_string(i) + " is null");
        if (layers_[i]->in_size() != width)
            throw std::invalid_argument("layer " + std::to_string(i) + " takes " +
                                        std::to_string(layers_[i]->in_size()) + " inputs, previous output has " +
                                        std::to_string(width));
        width = layers_[i]->out_size();
        total += slot_floats(width);
    }
    arena_ = AlignedBuffer(total);
    float* next = arena_.data();
    slots_.push_back(next);
    next += slot_floats(input_size);
    for (const auto& layer : layers_) {
        slots_.push_back(next);
        next += slot_floats(layer->out_size());
    }
    reset();
}

Model::~Model() = default;

void Model::forward(const float* in, float* out) noexcept {
    std::memcpy(slots_[0], in, static_cast<std::size_t>(input_size_) * sizeof(float));
    for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->forward(slots_[i], slots_[i + 1]);
    std::memcpy(out, slots_.back(), static_cast<std::size_t>(output_size()) * sizeof(float));
}

void Model::reset() noexcept {
    for (auto& layer : layers_) layer->reset();
}

std::size_t Model::num_parameters() const noexcept {
    std::size_t total = 0;
    for (const auto& layer : layers_) total += layer->info().parameters;
    return total;
}

}  // namespace idaw::nn
