// Wait-free single-producer / single-consumer ring buffer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <type_traits>

namespace idaw {

/// Cache-line size used to keep producer and consumer indices apart (no false sharing).
inline constexpr std::size_t kCacheLine = 64;

/// Wait-free SPSC ring of trivially copyable items with power-of-two capacity.
///
/// One thread pushes, one thread pops; neither ever blocks, allocates or makes a system call.
/// Indices grow monotonically (wrapping at 2^64) and are masked on access, so the full capacity
/// is usable. The producer publishes with release and the consumer observes with acquire.
template <typename T>
class SpscRing {
    static_assert(std::is_trivially_copyable_v<T>, "ring items are copied with plain assignment");

  public:
    /// Allocates storage for `capacity` items; `capacity` must be a power of two >= 2. Not real-time safe.
    explicit SpscRing(std::size_t capacity) : capacity_(capacity), mask_(capacity - 1) {
        if (capacity < 2 || (capacity & (capacity - 1)) != 0)
            throw std::invalid_argument("SpscRing capacity must be a power of two >= 2");
        items_ = std::make_unique<T[]>(capacity);
    }

    SpscRing(const SpscRing&) = delete;
    SpscRing& operator=(const SpscRing&) = delete;

    /// Number of slots. Real-time safe.
    std::size_t capacity() const noexcept { return capacity_; }

    /// Producer: appends one item; returns false (and drops nothing already queued) when full. Real-time safe.
    bool push(const T& item) noexcept {
        const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
        if (tail - cached_head_ >= capacity_) {
            cached_head_ = head_.load(std::memory_order_acquire);
            if (tail - cached_head_ >= capacity_) return false;
        }
        items_[tail & mask_] = item;
        tail_.store(tail + 1, std::memory_order_release);
        return true;
    }

    /// Producer: appends up to `count` items, returns how many fit. Real-time safe.
    std::size_t push(const T* items, std::size_t count) noexcept {
        const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
        std::uint64_t free_slots = capacity_ - (tail - cached_head_);
        if (free_slots < count) {
            cached_head_ = head_.load(std::memory_order_acquire);
            free_slots = capacity_ - (tail - cached_head_);
        }
        const std::size_t n = count < free_slots ? count : static_cast<std::size_t>(free_slots);
        for (std::size_t i = 0; i < n; ++i) items_[(tail + i) & mask_] = items[i];
        tail_.store(tail + n, std::memory_order_release);
        return n;
    }

    /// Consumer: removes the oldest item into `out`; returns false when empty. Real-time safe.
    bool pop(T& out) noexcept {
        const std::uint64_t head = head_.load(std::memory_order_relaxed);
        if (head == cached_tail_) {
            cached_tail_ = tail_.load(std::memory_order_acquire);
            if (head == cached_tail_) return false;
        }
        out = items_[head & mask_];
        head_.store(head + 1, std::memory_order_release);
        return true;
    }

    /// Consumer: removes up to `max_count` items into `out`, returns how many. Real-time safe.
    std::size_t pop(T* out, std::size_t max_count) noexcept {
        const std::uint64_t head = head_.load(std::memory_order_relaxed);
        std::uint64_t available = cached_tail_ - head;
        if (available < max_count) {
            cached_tail_ = tail_.load(std::memory_order_acquire);
            available = cached_tail_ - head;
        }
        const std::size_t n = max_count < available ? max_count : static_cast<std::size_t>(available);
        for (std::size_t i = 0; i < n; ++i) out[i] = items_[(head + i) & mask_];
        head_.store(head + n, std::memory_order_release);
        return n;
    }

    /// Approximate number of queued items (exact when called by either endpoint while the other is idle).
    std::size_t size() const noexcept {
        const std::uint64_t tail = tail_.load(std::memory_order_acquire);
        const std::uint64_t head = head_.load(std::memory_order_acquire);
        return static_cast<std::size_t>(tail - head);
    }

  private:
    const std::size_t capacity_;
    const std::size_t mask_;
    std::unique_ptr<T[]> items_;
    // Producer-owned line: its index and its cached view of the consumer's index.
    alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0};
    std::uint64_t cached_head_ = 0;
    // Consumer-owned line.
    alignas(kCacheLine) std::atomic<std::uint64_t> head_{0};
    std::uint64_t cached_tail_ = 0;
    char pad_[kCacheLine - sizeof(std::atomic<std::uint64_t>) - sizeof(std::uint64_t)] = {};
};

}  // namespace idaw
