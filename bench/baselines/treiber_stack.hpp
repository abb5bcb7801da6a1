// SPDX-License-Identifier: MIT
#pragma once

// TreiberStack: the floor, not a contender. A bare lock-free free list (R. K. Treiber, "Systems
// Programming: Coping with Parallelism", IBM RJ 5118, 1986): one CAS to pop, one CAS to push, a
// pop counter beside the index against ABA. No reference count, no metadata reset, no waiting
// (get() spins while the stack is empty), no decommit. It shows how close a pool with the full
// IMemAllocator contract gets to the cheapest possible one; it runs in scenarios 1 and 3 only.
//
// Threading: any thread, lock-free; never allocates after construction.

#include "common.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <thread>

namespace sluice::bench {

class TreiberStack {
public:
    struct alignas(kCacheLineSize) Sample {
        // Index of the next free sample. Read racily by a pop that may lose its CAS, so atomic.
        std::atomic<std::uint32_t> next{0};
        std::uint32_t index = 0;
        std::byte* data = nullptr;
    };
    using Buffer = Sample*;
    static constexpr std::string_view kName = "treiber";
    static constexpr PoolKind kKind = PoolKind::spinning_pool;

    explicit TreiberStack(std::size_t buffers) : samples_(new Sample[buffers]), payload_(buffers) {
        for (std::size_t i = 0; i < buffers; ++i) {
            samples_[i].index = std::uint32_t(i);
            samples_[i].data = payload_.at(i);
            // relaxed: published by the thread start (or whatever hands the pool to users).
            samples_[i].next.store(i + 1 < buffers ? std::uint32_t(i + 1) : kNil, std::memory_order_relaxed);
        }
        // relaxed: as above.
        head_.store(0, std::memory_order_relaxed);
    }

    [[gnu::always_inline]] Buffer get() noexcept {
        // acquire: pairs with the release CAS of the push that stored this head, so the sample's
        // `next` and everything its last holder wrote are visible.
        std::uint64_t head = head_.load(std::memory_order_acquire);
        for (;;) {
            const auto index = std::uint32_t(head);
            if (index == kNil) [[unlikely]] {
                std::this_thread::yield();
                // acquire: as above.
                head = head_.load(std::memory_order_acquire);
                continue;
            }
            // relaxed: stale if another pop took this sample meanwhile; the CAS then fails
            // because the pop counter moved. The samples are never freed while the stack lives.
            const std::uint32_t next = samples_[index].next.load(std::memory_order_relaxed);
            // acquire on both: as the first load, for the sample taken or the head reloaded.
            if (head_.compare_exchange_weak(head, ((head >> 32) + 1) << 32 | next, std::memory_order_acquire,
                                            std::memory_order_acquire))
                return &samples_[index];
        }
    }

    static bool valid(const Buffer& b) noexcept { return b != nullptr; }

    [[gnu::always_inline]] void release(Buffer&& s) noexcept {
        // relaxed: only the index is used, and the CAS below validates it.
        std::uint64_t head = head_.load(std::memory_order_relaxed);
        do {
            // relaxed: published by the release CAS.
            s->next.store(std::uint32_t(head), std::memory_order_relaxed);
            // release: our use of the sample and its `next` happen-before the next pop of it.
        } while (!head_.compare_exchange_weak(head, (head & ~std::uint64_t(0xffffffff)) | s->index,
                                              std::memory_order_release, std::memory_order_relaxed));
    }

private:
    static constexpr std::uint32_t kNil = 0xffffffff;

    std::unique_ptr<Sample[]> samples_;
    PayloadBlock payload_;
    // [ 32-bit pop counter | 32-bit index of the top sample, kNil when empty ]
    alignas(kCacheLineSize) std::atomic<std::uint64_t> head_{kNil};
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the stack head must be one lock-free word");

}  // namespace sluice::bench
