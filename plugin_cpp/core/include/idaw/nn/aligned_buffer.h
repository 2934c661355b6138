// Zero-initialised, cache-line-aligned float storage for weights, state and scratch of the network runtime.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>

namespace idaw::nn {

/// Alignment of every buffer: one cache line, and enough for any SIMD load the kernels make.
inline constexpr std::size_t kBufferAlignment = 64;

/// `n` rounded up to a multiple of `step` (a power of two).
constexpr std::size_t round_up(std::size_t n, std::size_t step) noexcept { return (n + step - 1) & ~(step - 1); }

/// Owning array of floats, 64-byte aligned and zeroed on allocation. Move-only.
class AlignedBuffer {
  public:
    AlignedBuffer() noexcept = default;
    /// Allocates `count` zeroed floats (throws std::bad_alloc). Not real-time safe.
    explicit AlignedBuffer(std::size_t count) : size_(count) {
        if (count == 0) return;
        data_ = static_cast<float*>(::operator new(count * sizeof(float), std::align_val_t(kBufferAlignment)));
        std::memset(data_, 0, count * sizeof(float));
    }
    ~AlignedBuffer() { release(); }
    AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), size_(other.size_) {
        other.data_ = nullptr;
        other.size_ = 0;
    }
    AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = other.data_;
            size_ = other.size_;
            other.data_ = nullptr;
            other.size_ = 0;
        }
        return *this;
    }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;

    /// First element (null when empty). Real-time safe.
    float* data() noexcept { return data_; }
    /// First element (null when empty). Real-time safe.
    const float* data() const noexcept { return data_; }
    /// Number of floats. Real-time safe.
    std::size_t size() const noexcept { return size_; }
    /// Sets every element to zero. Real-time safe.
    void zero() noexcept {
        if (data_) std::memset(data_, 0, size_ * sizeof(float));
    }

  private:
    void release() noexcept {
        if (data_) ::operator delete(data_, std::align_val_t(kBufferAlignment));
        data_ = nullptr;
        size_ = 0;
    }

    float* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace idaw::nn
