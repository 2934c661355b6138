// A weight matrix repacked so the matrix-vector product reads it as one contiguous stream.
#pragma once

#include <cstddef>

#include "idaw/nn/aligned_buffer.h"
#include "idaw/nn/kernels.h"

namespace idaw::nn {

/// Row-major rows x cols matrix stored in panels of kPanelRows rows. Inside a panel, column chunk c holds, row by
/// row, the kChunk floats of columns [c * kChunk, c * kChunk + kChunk). Rows and columns are zero-padded to
/// multiples of kPanelRows and kChunk, so a product writes padded_rows() outputs and reads padded_cols() inputs.
class PackedMatrix {
  public:
    PackedMatrix() noexcept = default;

    /// Packs the matrix whose element (r, c) is `at(r, c)`. Allocates; not real-time safe.
    template <typename At>
    PackedMatrix(int rows, int cols, At&& at)
        : rows_(rows),
          cols_(cols),
          panels_(static_cast<int>(round_up(static_cast<std::size_t>(rows), kPanelRows) / kPanelRows)),
          chunks_(static_cast<int>(round_up(static_cast<std::size_t>(cols), kChunk) / kChunk)),
          data_(static_cast<std::size_t>(panels_) * chunks_ * kPanelRows * kChunk) {
        for (int r = 0; r < rows; ++r) {
            const int p = r / kPanelRows, pr = r % kPanelRows;
            for (int c = 0; c < cols; ++c) {
                const int chunk = c / kChunk, lane = c % kChunk;
                const std::size_t at_index =
                    ((static_cast<std::size_t>(p) * chunks_ + chunk) * kPanelRows + pr) * kChunk + lane;
                data_.data()[at_index] = at(r, c);
            }
        }
    }

    /// y[0, padded_rows()) = W x (+ bias, which then holds padded_rows() floats); x holds padded_cols() floats
    /// whose padding is finite. Real-time safe.
    void multiply(const Kernels& k, const float* x, const float* bias, float* y) const noexcept {
        k.matvec(data_.data(), x, bias, y, panels_, chunks_);
    }

    /// Logical row count. Real-time safe.
    int rows() const noexcept { return rows_; }
    /// Logical column count. Real-time safe.
    int cols() const noexcept { return cols_; }
    /// Rows rounded up to a whole panel. Real-time safe.
    int padded_rows() const noexcept { return panels_ * kPanelRows; }
    /// Columns rounded up to a whole chunk. Real-time safe.
    int padded_cols() const noexcept { return chunks_ * kChunk; }
    /// Floats stored, padding included. Real-time safe.
    std::size_t stored_floats() const noexcept { return data_.size(); }

  private:
    int rows_ = 0;
    int cols_ = 0;
    int panels_ = 0;
    int chunks_ = 0;
    AlignedBuffer data_;
};

}  // namespace idaw::nn
