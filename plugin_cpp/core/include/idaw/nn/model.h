// A sequential network: the runtime's equivalent of RTNeural's Model<float>, batch 1, one frame per call.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/kernels.h"
#include "idaw/nn/layer.h"

namespace idaw::nn {

/// Layers run in order, each writing a preallocated buffer the next one reads. Built off the audio thread
/// (normally by load_model_*()); forward() and reset() are then the only calls the audio thread makes.
/// One thread at a time may call forward()/reset() on one model.
class Model {
  public:
    /// Takes the layers; each layer's input width must equal the previous output width (the first one's
    /// `input_size`), else std::invalid_argument. Allocates; not real-time safe.
    Model(const Kernels& kernels, int input_size, std::vector<std::unique_ptr<Layer>> layers);
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    /// Runs one frame: reads input_size() floats from `in`, writes output_size() floats to `out`, carries
    /// recurrent and convolution state to the next call. Real-time safe: no allocation, lock or system call.
    void forward(const float* in, float* out) noexcept;
    /// Returns every layer's state to zero, as after loading. Real-time safe.
    void reset() noexcept;

    /// Floats forward() reads. Real-time safe.
    int input_size() const noexcept { return input_size_; }
    /// Floats forward() writes. Real-time safe.
    int output_size() const noexcept { return layers_.empty() ? input_size_ : layers_.back()->out_size(); }
    /// Numbers in the weights of every layer, as the JSON file holds them. Real-time safe.
    std::size_t num_parameters() const noexcept;
    /// Number of layers (fused activations count with their layer). Real-time safe.
    std::size_t num_layers() const noexcept { return layers_.size(); }
    /// Layer `i` (i < num_layers()). Real-time safe.
    const Layer& layer(std::size_t i) const noexcept { return *layers_[i]; }
    /// The kernel set this model runs ("avx2+fma", "sse2" or "scalar"). Real-time safe.
    const char* kernel_name() const noexcept { return kernels_.name; }

  private:
    const Kernels& kernels_;
    int input_size_;
    std::vector<std::unique_ptr<Layer>> layers_;
    std::vector<float*> slots_;  // slots_[0] = input copy, slots_[i + 1] = output of layer i
    AlignedBuffer arena_;        // every slot, each padded to whole chunks and aligned to a cache line
};

}  // namespace idaw::nn
