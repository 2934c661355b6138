// Builds one layer of a model from its entry of "layers": one reader per RTNeural layer type, picked from a table
// by the entry's "type" (the format: see the comment at the top of layer_readers.cpp and export/FORMAT.md).
// Internal to the core; the API is idaw/nn/model_loader.h.
#pragma once

#include <cstdint>
#include <memory>

#include "idaw/nn/kernels.h"
#include "idaw/nn/layer.h"
#include "idaw/nn/model_loader.h"
#include "loader_json.h"

namespace idaw::nn::loader {

/// The totals the limits bound across all the layers of one model (zero before the first layer).
struct LayerTotals {
    std::uint64_t parameters = 0;  ///< numbers in the weights so far (at most max_parameters)
    std::uint64_t stored = 0;      ///< floats the packed, padded weights will take (at most 2 x max_parameters)
    std::uint64_t history = 0;     ///< floats of conv1d history buffers (at most max_history_floats)
};

/// Validates entry `index` of "layers", whose input is `in` values wide, and builds it with `kernels`, adding its
/// sizes to `totals` (checked against `limits` before anything of that size is allocated). Throws LoadError with a
/// message starting "layer I (type): ", or "layer I" when the entry has no usable "type". Not real-time safe.
std::unique_ptr<Layer> read_layer(const json& layer, int index, int in, const LoadLimits& limits, LayerTotals& totals,
                                  const Kernels& kernels);

}  // namespace idaw::nn::loader
