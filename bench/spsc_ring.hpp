// SPDX-License-Identifier: MIT
#pragma once

// SpscRing: the bounded single-producer single-consumer queue scenario 2 hands buffers through,
// after rigtorp/SPSCQueue: two free-running indices on their own cache lines, each side caching
// the other's index so the common case reads no shared line but the slot.
//
// Threading: try_push from one producer thread, try_pop from one consumer thread. Never blocks,
// never locks, never allocates.

#include <array>
#include <atomic>
#include <cstddef>
#include <utility>

namespace sluice::bench {

template <class T, std::size_t Capacity>
class SpscRing {
    static_assert(Capacity >= 1 && (Capacity & (Capacity - 1)) == 0, "Capacity must be a power of two");

public:
    // false when full. Producer thread only.
    [[nodiscard]] bool try_push(T&& v) noexcept {
        static_assert(offsetof(SpscRing, head_) - offsetof(SpscRing, tail_) >= kLine &&
                          offsetof(SpscRing, slots_) - offsetof(SpscRing, head_) >= kLine,
                      "producer and consumer indices must be a cache line apart to prevent false sharing");
        // relaxed: only this thread writes tail_.
        const std::size_t tail = tail_.load(std::memory_order_relaxed);
        if (tail - head_cache_ == Capacity) {
            // acquire: pairs with try_pop's release of head_: the slot's old value was moved out.
            head_cache_ = head_.load(std::memory_order_acquire);
            if (tail - head_cache_ == Capacity) return false;
        }
        slots_[tail & (Capacity - 1)] = std::move(v);
        // release: publishes the slot to try_pop's acquire.
        tail_.store(tail + 1, std::memory_order_release);
        return true;
    }

    // false when empty. Consumer thread only.
    [[nodiscard]] bool try_pop(T& out) noexcept {
        // relaxed: only this thread writes head_.
        const std::size_t head = head_.load(std::memory_order_relaxed);
        if (head == tail_cache_) {
            // acquire: pairs with try_push's release of tail_: the slot is written.
            tail_cache_ = tail_.load(std::memory_order_acquire);
            if (head == tail_cache_) return false;
        }
        out = std::move(slots_[head & (Capacity - 1)]);
        // release: the slot is free for try_push to overwrite.
        head_.store(head + 1, std::memory_order_release);
        return true;
    }

private:
    static constexpr std::size_t kLine = 64;

    // Invariant: 0 <= tail_ - head_ <= Capacity; slots [head_, tail_) hold values.
    alignas(kLine) std::atomic<std::size_t> tail_{0};  // written by the producer
    std::size_t head_cache_ = 0;                        // producer's last view of head_
    alignas(kLine) std::atomic<std::size_t> head_{0};  // written by the consumer
    std::size_t tail_cache_ = 0;                        // consumer's last view of tail_
    alignas(kLine) std::array<T, Capacity> slots_{};
};

}  // namespace sluice::bench
