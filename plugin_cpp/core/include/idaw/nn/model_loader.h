// Loads RTNeural-format JSON into a Model, validating everything first; never throws, aborts or hangs.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "idaw/nn/kernels.h"
#include "idaw/nn/model.h"

namespace idaw::nn {

/// Bounds a file must respect; checked before anything of that size is allocated. The parse itself is bounded
/// while it runs (see export/FORMAT.md, "Limits"): besides the depth, at most 1 + max_layers objects, no array
/// longer than 4 x max_layer_size (an LSTM's gate row), at most max_parameters * 17/16 + 65,536 values, only the
/// top-level keys "in_shape" and "layers", and a parse tree of at most max_tree_bytes_per_text_byte per byte of
/// text read so far plus tree_bytes_allowance, so loading takes a small multiple of the file's size at most.
struct LoadLimits {
    std::size_t max_file_bytes = std::size_t{64} << 20;       ///< size of the JSON text
    int max_json_depth = 16;                                  ///< nesting of arrays and objects (a model needs 7)
    std::size_t max_tree_bytes_per_text_byte = 8;             ///< parse tree (estimated bytes) per byte of text read
    std::size_t tree_bytes_allowance = std::size_t{1} << 20;  ///< tree bytes allowed on top of that
    int max_layers = 256;                                     ///< entries of "layers"
    int max_layer_size = 4096;                                ///< any width: input, output, hidden size
    std::size_t max_parameters = std::size_t{16} << 20;       ///< numbers in all weights together
    int max_kernel_size = 256;                                ///< conv1d taps
    int max_dilation = 4096;                                  ///< conv1d dilation
    std::size_t max_history_floats = std::size_t{4} << 20;    ///< conv1d history buffers together
};

/// How to load.
struct LoadOptions {
    LoadLimits limits;
    Isa isa = Isa::Auto;  ///< kernel set; Auto picks the best the CPU supports
};

/// A model, or why there is none.
struct LoadResult {
    std::unique_ptr<Model> model;  ///< null on failure
    std::string error;             ///< empty on success, else one line naming the layer and the problem

    /// True when a model was built.
    bool ok() const noexcept { return model != nullptr; }
};

/// Parses and validates RTNeural JSON text ({"in_shape": [..., N], "layers": [...]}) and builds the model.
/// Layers are numbered from 0 as in the "layers" array; errors read like
/// "layer 3 (lstm): weights[1] has 127 rows, expected 128 (hidden size)". Unlike RTNeural's parseJson, unknown
/// layer types and activations, unknown top-level keys, missing or extra weight rows and values, non-numbers,
/// NaN/Inf or values beyond float range and sizes that do not chain are all errors. Every error is one line of
/// valid UTF-8 (control characters and bytes that are not UTF-8 written as \xNN). Not real-time safe (allocates);
/// call off the audio thread.
LoadResult load_model_string(std::string_view json_text, const LoadOptions& options = LoadOptions()) noexcept;

/// Reads a regular file (at most limits.max_file_bytes; symlinks followed) and loads it as load_model_string()
/// does; errors start with the path. A FIFO, device, socket or directory is refused without blocking, and so is a
/// path holding a NUL byte. The text is freed before the model is built. Not real-time safe.
LoadResult load_model_file(const std::string& path, const LoadOptions& options = LoadOptions()) noexcept;

}  // namespace idaw::nn
